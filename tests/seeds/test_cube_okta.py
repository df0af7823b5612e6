"""Cube Cloud's Okta SCIM set-up, on Gatehouse: an API key as Okta's bearer token, provisioning To App, users and
groups assigned, Push Groups. Its guide warns about people who were members before SCIM was turned on: Okta looks
them up by userName and must link them, never create them a second time.
"""

from __future__ import annotations

from tests.scim.conftest import okta_user
from workspaces.models import Membership, Team, TeamMembership


def test_existing_members_are_linked_then_groups_are_pushed_renamed_and_emptied(setup_factory):
    s = setup_factory("bearer")
    world = s.world
    # Assigned in Okta, already a member from before SCIM: the lookup finds the member by its email ...
    [found] = s.lookup("member@alpha.test")
    assert found["id"] == str(world.member_a.pk)
    # ... and Okta's create of the same person links that member (a retry of it is no duplicate either).
    body = okta_user("member@alpha.test", given="Max", family="Member", external_id="00u3max")
    r = s.post("Users", body)
    assert r.status_code == 201 and r.json()["id"] == str(world.member_a.pk)
    world.member_a.refresh_from_db()
    assert world.member_a.scim_username == "member@alpha.test" and world.member_a.external_id == "00u3max"
    assert s.post("Users", body).status_code == 200  # Okta retrying a create whose answer it lost
    assert Membership.objects.filter(workspace=world.a).count() == 5

    # The customer's Okta maps an attribute Gatehouse has no use for: accepted, not stored.
    new = s.post("Users", {**okta_user("nia@alpha.test", given="Nia", external_id="00u3nia"), "costCenter": "CC-7"})
    assert new.status_code == 201, new.text
    nia = new.json()["id"]
    assert "costCenter" not in new.json() and "costCenter" not in Membership.objects.get(pk=nia).profile

    # Push Groups: create with members, add one, rename the group, remove one.
    r = s.post("Groups", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Analysts",
                          "members": [{"value": str(world.member_a.pk)}]})
    assert r.status_code == 201, r.text
    gid = r.json()["id"]
    assert s.patch(f"Groups/{gid}", {"op": "add", "path": "members", "value": [{"value": nia}]}).status_code in (200, 204)
    assert s.patch(f"Groups/{gid}", {"op": "replace", "value": {"id": gid, "displayName": "Data Analysts"}}
                   ).status_code in (200, 204)
    assert s.patch(f"Groups/{gid}", {"op": "remove", "path": f'members[value eq "{world.member_a.pk}"]'}
                   ).status_code in (200, 204)
    team = Team.objects.get(pk=gid)
    assert team.name == "Data Analysts"
    assert list(TeamMembership.objects.filter(team=team).values_list("membership_id", flat=True)) == [int(nia)]
    assert s.get("Groups", filter='displayName eq "Data Analysts"').json()["totalResults"] == 1

    # Nia is renamed in Okta; her SSO follows, the old address is nobody's.
    r = s.put(f"Users/{nia}", {**okta_user("nia.k@alpha.test", given="Nia", external_id="00u3nia")})
    assert r.status_code == 200, r.text
    assert s.login("nia.k@alpha.test").acs.status_code == 302
    assert s.login("nia@alpha.test").acs.status_code == 403
    # Unassigned in Okta: deactivated, and SSO refuses her.
    assert s.patch(f"Users/{nia}", {"op": "replace", "value": {"active": False}}).json()["active"] is False
    assert s.login("nia.k@alpha.test").acs.status_code == 403
