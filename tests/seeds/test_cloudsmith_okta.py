"""Cloudsmith's Okta set-up, on Gatehouse: a SAML app with group sync, then SCIM in Okta's "HTTP Header" (bearer)
mode with provisioning To App (create, update attributes, deactivate) and Push Groups.

Okta's side follows its SCIM 2.0 reference (developer.okta.com, "Okta and SCIM Version 2.0"): "Test API
Credentials" lists two users, a lookup by userName precedes every create, profile updates are a PUT of the whole
user, deactivation a PATCH of ``active``, pushed groups a POST then PATCHes of members. The customer's Okta maps one
attribute Gatehouse does not use (``costCenter``) and its own extension schema; a person is renamed in Okta.
"""

from __future__ import annotations

from saml import services as saml_services
from scim.models import ScimRequestLog
from tests.scim.conftest import okta_user
from workspaces.models import Membership, Team

CUSTOM = "urn:okta:gatehouse:1.0:user:custom"


def test_sso_scim_group_push_rename_and_deprovision(setup_factory):
    s = setup_factory("bearer", groups_attribute="groups")
    world = s.world
    saml_services.group_mapping_create(workspace=world.a, actor=s.owner_actor(), idp_group="Cloudsmith Readers",
                                       new_team_name="Readers")
    saml_services.group_sync_set(workspace=world.a, actor=s.owner_actor(), enabled=True)

    # Test API Credentials.
    r = s.get("Users", startIndex=1, count=2)
    assert r.status_code == 200 and len(r.json()["Resources"]) == 2

    # Assign Ada: lookup, then create, with the customer's extra attribute and extension.
    assert s.lookup("ada@alpha.test") == []
    body = okta_user("ada@alpha.test", given="Ada", family="Lovelace", external_id="00u1ada")
    body["costCenter"] = "CC-42"
    body["schemas"] = [*body["schemas"], CUSTOM]
    body[CUSTOM] = {"badge": "1234"}
    r = s.post("Users", body)
    assert r.status_code == 201, r.text
    uid = r.json()["id"]
    ada = s.member(uid)
    assert "costCenter" not in ada.profile and CUSTOM not in ada.profile
    log = ScimRequestLog.objects.filter(method="POST", path__endswith="/Users").latest("id")
    assert "costCenter" in log.summary and CUSTOM in log.summary

    # Push Groups: Okta creates the group with its members, then adds and removes people.
    r = s.post("Groups", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Platform",
                          "members": [{"value": uid, "display": "ada@alpha.test"}]})
    assert r.status_code == 201, r.text
    gid = r.json()["id"]
    assert list(Team.objects.get(pk=gid).members.values_list("pk", flat=True)) == [int(uid)]

    # Ada signs in through Okta; group sync puts her in Readers.
    browser = s.login("ada@alpha.test", groups=("Cloudsmith Readers",))
    assert browser.acs.status_code == 302 and s.signed_in(browser)
    assert set(s.member(uid).teams.values_list("name", flat=True)) == {"Platform", "Readers"}

    # Okta renames her: a PUT of the whole profile.
    current = s.get(f"Users/{uid}").json()
    current.update(userName="ada.lovelace@alpha.test",
                   emails=[{"primary": True, "value": "ada.lovelace@alpha.test", "type": "work"}])
    r = s.put(f"Users/{uid}", current)
    assert r.status_code == 200, r.text
    assert s.lookup("ada.lovelace@alpha.test")[0]["id"] == uid
    assert s.lookup("ada@alpha.test") == []

    # The same Ada signs in under her new email; the old one no longer does. Nobody was duplicated.
    renamed = s.login("ada.lovelace@alpha.test", groups=("Cloudsmith Readers",))
    assert renamed.acs.status_code == 302 and s.signed_in(renamed)
    assert s.login("ada@alpha.test").acs.status_code == 403
    assert Membership.objects.filter(workspace=world.a).count() == 6
    assert s.member(uid).user.email == "ada.lovelace@alpha.test"

    # Unassigned in Okta: deactivated, and her open session is refused at its next request.
    r = s.patch(f"Users/{uid}", {"op": "replace", "value": {"active": False}})
    assert r.status_code == 200 and r.json()["active"] is False
    assert not s.signed_in(renamed)
    assert s.login("ada.lovelace@alpha.test").acs.status_code == 403
