"""Microsoft Entra ID, on Gatehouse: SCIM with a bearer token in Entra's request shapes (``Content-Type:
application/json``, capitalised PATCH ops, ``emails[type eq "work"].value`` paths, the enterprise extension, an
extension Entra's custom mapping adds, ``active`` as the string ``"False"``), and SAML whose people are identified by
Entra's object id claim. The user's UPN (SCIM ``userName``) and mail change in Entra: the same member, renamed.
"""

from __future__ import annotations

from workspaces.models import Membership

ENT = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
CUSTOM = "urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User"
OID = "http://schemas.microsoft.com/identity/claims/objectidentifier"
OBJECT_ID = "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4e1"


def test_entra_provisioning_and_sso_by_object_id_through_a_rename(setup_factory):
    s = setup_factory("bearer", user_agent="Azure Active Directory SCIM Provisioning", subject_attribute=OID)
    s.scim.headers["Content-Type"] = "application/json"
    world = s.world
    assert s.lookup("omar@alpha.test") == []
    r = s.post("Users", {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENT, CUSTOM],
        "externalId": OBJECT_ID,
        "userName": "omar@alpha.test",
        "active": True,
        "displayName": "Omar Haddad",
        "emails": [{"primary": True, "type": "work", "value": "omar@alpha.test"}],
        "name": {"formatted": "Omar Haddad", "familyName": "Haddad", "givenName": "Omar"},
        "roles": [],
        ENT: {"department": "Finance", "employeeNumber": "E-77"},
        CUSTOM: {"costCenterCode": "4410"},
    })
    assert r.status_code == 201, r.text
    uid = r.json()["id"]
    assert CUSTOM not in s.member(uid).profile

    first = s.login("omar@alpha.test", attributes={OID: [OBJECT_ID]})
    assert first.acs.status_code == 302 and s.signed_in(first)

    # The UPN and mail change in Entra.
    r = s.patch(f"Users/{uid}",
                {"op": "Replace", "path": "userName", "value": "omar.haddad@alpha.test"},
                {"op": "Replace", "path": 'emails[type eq "work"].value', "value": "omar.haddad@alpha.test"},
                {"op": "Replace", "path": f"{ENT}:department", "value": "Treasury"})
    assert r.status_code == 200, r.text
    assert r.json()[ENT]["department"] == "Treasury"
    assert s.lookup("omar.haddad@alpha.test")[0]["id"] == uid
    again = s.login("omar.haddad@alpha.test", attributes={OID: [OBJECT_ID]})
    assert again.acs.status_code == 302 and s.signed_in(again)
    assert Membership.objects.filter(workspace=world.a).count() == 6
    assert s.member(uid).user.email == "omar.haddad@alpha.test"

    # Entra's disable: "False" as a string; the session in use is refused at its next request.
    r = s.patch(f"Users/{uid}", {"op": "Replace", "path": "active", "value": "False"})
    assert r.status_code == 200 and r.json()["active"] is False
    assert not s.signed_in(again)
    assert s.login("omar.haddad@alpha.test", attributes={OID: [OBJECT_ID]}).acs.status_code == 403
