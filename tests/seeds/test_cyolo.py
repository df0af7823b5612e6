"""A Cyolo-style Okta set-up, on Gatehouse: SCIM with HTTP Basic (a key and secret), SAML whose people are
identified by Okta's user id (an attribute mapped to ``user.id``, Gatehouse's "Immutable subject"), and profiles
carrying what Okta's default mapping sends beyond what Gatehouse uses: phone numbers, addresses, a title, a password.

Okta updates with PATCH operations without a path (``{"op": "replace", "value": {...}}``); the person is renamed
at the IdP and signs in under the new email before SCIM has pushed it.
"""

from __future__ import annotations

from tests.scim.conftest import okta_user
from workspaces.models import Membership

OKTA_ID = "oktaUserId"


def test_basic_auth_profiles_patch_without_path_and_a_rename_seen_first_by_saml(setup_factory):
    s = setup_factory("basic", subject_attribute=OKTA_ID)
    world = s.world
    body = okta_user("ravi@alpha.test", given="Ravi", family="Shah", external_id="00u4ravi")
    body.update(
        title="SRE",
        phoneNumbers=[{"value": "+44 20 7946 0000", "type": "work", "primary": True}],
        addresses=[{"streetAddress": "1 Main St", "locality": "London", "country": "GB", "type": "work",
                    "primary": True}],
    )
    r = s.post("Users", body)
    assert r.status_code == 201, r.text
    uid = r.json()["id"]
    assert r.json()["phoneNumbers"][0]["value"] == "+44 20 7946 0000"
    assert "password" not in r.json()

    # A PATCH without a path changes what it names and leaves the rest (RFC 7644 3.5.2.3).
    r = s.patch(f"Users/{uid}", {"op": "replace", "value": {"name": {"givenName": "Ravinder"}, "title": "Lead SRE"}})
    assert r.status_code == 200, r.text
    assert r.json()["name"]["givenName"] == "Ravinder" and r.json()["name"]["familyName"] == "Shah"
    assert r.json()["title"] == "Lead SRE"

    # SSO by Okta's user id: the SCIM externalId links the first login ...
    first = s.login("ravi@alpha.test", attributes={OKTA_ID: ["00u4ravi"]})
    assert first.acs.status_code == 302 and s.signed_in(first)
    assert s.member(uid).saml_subject == "00u4ravi"
    # ... and a rename reaches SAML before SCIM: the same member, renamed in place.
    renamed = s.login("ravi.shah@alpha.test", attributes={OKTA_ID: ["00u4ravi"]})
    assert renamed.acs.status_code == 302 and s.signed_in(renamed)
    assert s.member(uid).directory_email == "ravi.shah@alpha.test"
    assert Membership.objects.filter(workspace=world.a).count() == 6
    # Someone else asserting Ravi's old email with another Okta id is not Ravi.
    assert s.login("ravi@alpha.test", attributes={OKTA_ID: ["00u9else"]}).acs.status_code == 403
    # SCIM's own push of the rename then agrees, and changes nothing more.
    r = s.patch(f"Users/{uid}", {"op": "replace", "value": {"userName": "ravi.shah@alpha.test", "emails": [
        {"value": "ravi.shah@alpha.test", "type": "work", "primary": True}]}})
    assert r.status_code == 200 and s.member(uid).user.email == "ravi.shah@alpha.test"

    # Okta deprovisions with a DELETE: 204, then 404, and SSO refuses him.
    r = s.scim.delete(s.url(f"Users/{uid}"))
    assert r.status_code == 204
    assert s.get(f"Users/{uid}").status_code == 404
    assert s.login("ravi.shah@alpha.test", attributes={OKTA_ID: ["00u4ravi"]}).acs.status_code == 403
