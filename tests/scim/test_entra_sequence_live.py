"""Microsoft Entra ID's documented SCIM requests, replayed over real HTTP against the live server.

Bodies follow "Tutorial: Develop a sample SCIM endpoint / Build a SCIM endpoint" on learn.microsoft.com
(User and Group operations), including Entra's quirks: capitalised ops, booleans as strings,
path-less replace with dotted keys, the enterprise extension, members removed with a value list,
groups created with a ``meta`` block, and DELETE of a user.
"""

from __future__ import annotations

import pytest
import requests

from workspaces.models import Membership, Team

from .conftest import SCIM_JSON, make_cred, patch_body
from .oauth_helpers import oauth_access_token

pytestmark = pytest.mark.django_db(transaction=True)

ENT = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


@pytest.fixture(params=["bearer", "basic", "oauth"])
def entra(request, world, live_server, password):
    if request.param == "oauth":  # Entra ID's OAuth 2 client-credentials grant
        auth = {"Authorization": "Bearer " + oauth_access_token(live_server.url, world, password, grant="client_credentials")}
    else:
        auth = make_cred(world.owner_a, request.param, name="Entra").requests_auth
    session = requests.Session()
    session.headers.update({**auth, "Content-Type": "application/json", "Accept": SCIM_JSON})
    session.base = f"{live_server.url}/scim/v2/{world.a.slug}/"
    return session


def entra_user(suffix: str) -> dict:
    return {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENT],
        "externalId": f"0a21f0f2-8d2a-4f8e-bf98-7363c4aed4e{suffix}",
        "userName": f"Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd{suffix}@testuser.com",
        "active": True,
        "emails": [{"primary": True, "type": "work", "value": f"Test_User_fd0ea19b-0777-472c-9f96-4f70d2226f2{suffix}@testuser.com"}],
        "meta": {"resourceType": "User"},
        "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"},
        "roles": [],
        ENT: {"department": "Engineering"},
    }


def test_entra_user_lifecycle(entra, world):
    body = entra_user("1")
    r = entra.get(entra.base + "Users", params={"filter": f'userName eq "{body["userName"]}"'})
    assert r.status_code == 200 and r.json()["totalResults"] == 0

    r = entra.post(entra.base + "Users", json=body)
    assert r.status_code == 201, r.text
    uid = r.json()["id"]
    assert r.json()[ENT] == {"department": "Engineering"}

    r = entra.get(entra.base + "Users", params={"filter": f'userName eq "{body["userName"]}"'})
    assert [u["id"] for u in r.json()["Resources"]] == [uid]
    r = entra.get(entra.base + "Users", params={"filter": f'externalId eq "{body["externalId"]}"'})
    assert [u["id"] for u in r.json()["Resources"]] == [uid]

    r = entra.patch(entra.base + f"Users/{uid}", json=patch_body(
        {"op": "Replace", "path": 'emails[type eq "work"].value', "value": "updatedEmail@microsoft.com"},
        {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"},
    ))
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["emails"][0]["value"] == "updatedEmail@microsoft.com"
    assert doc["name"]["familyName"] == "updatedFamilyName"
    member = Membership.objects.select_related("user").get(pk=uid)
    # A rename in the IdP renames the member in place; the account belongs to this workspace alone, so its own
    # email follows (docs/architecture.md, "Directory link").
    assert member.directory_email == "updatedEmail@microsoft.com" and member.user.email == "updatedEmail@microsoft.com"

    manager = entra.post(entra.base + "Users", json=entra_user("2")).json()["id"]
    r = entra.patch(entra.base + f"Users/{uid}", json=patch_body(
        {"op": "Add", "path": f"{ENT}:manager", "value": manager},
        {"op": "Replace", "value": {"name.givenName": "Given2", f"{ENT}:department": "Sales", "displayName": "Given2 F"}},
    ))
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc[ENT] == {"department": "Sales", "manager": {"value": manager}}
    assert doc["name"]["givenName"] == "Given2" and doc["displayName"] == "Given2 F"

    r = entra.patch(entra.base + f"Users/{uid}", json=patch_body({"op": "Replace", "path": "active", "value": "False"}))
    assert r.status_code == 200 and r.json()["active"] is False
    r = entra.get(entra.base + "Users", params={"filter": f'userName eq "{body["userName"]}"'})
    assert r.json()["Resources"][0]["active"] is False

    assert entra.delete(entra.base + f"Users/{uid}").status_code == 204
    assert entra.get(entra.base + f"Users/{uid}").status_code == 404
    member.refresh_from_db()
    assert member.is_active is False and member.scim_username == ""


def test_entra_group_lifecycle(entra, world):
    u1 = entra.post(entra.base + "Users", json=entra_user("3")).json()["id"]
    u2 = entra.post(entra.base + "Users", json=entra_user("4")).json()["id"]
    r = entra.post(entra.base + "Groups", json={
        "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159", "displayName": "displayName",
        "meta": {"resourceType": "Group"}, "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
    })
    assert r.status_code == 201, r.text
    gid = r.json()["id"]

    r = entra.get(entra.base + "Groups", params={"excludedAttributes": "members", "filter": 'displayName eq "displayName"'})
    assert r.status_code == 200
    assert [g["id"] for g in r.json()["Resources"]] == [gid] and "members" not in r.json()["Resources"][0]

    r = entra.patch(entra.base + f"Groups/{gid}", json=patch_body(
        {"op": "Add", "path": "members", "value": [{"$ref": None, "value": u1}, {"$ref": None, "value": u2}]}
    ))
    assert r.status_code in (200, 204), r.text
    r = entra.get(entra.base + "Groups", params={"filter": f'id eq "{gid}" and members eq "{u1}"', "excludedAttributes": "members"})
    assert r.json()["totalResults"] == 1

    r = entra.patch(entra.base + f"Groups/{gid}", json=patch_body(
        {"op": "Remove", "path": "members", "value": [{"$ref": None, "value": u1}]}
    ))
    assert r.status_code in (200, 204)
    assert sorted(Team.objects.get(pk=gid).members.values_list("pk", flat=True)) == [int(u2)]
    r = entra.get(entra.base + "Groups", params={"filter": f'id eq "{gid}" and members eq "{u1}"', "excludedAttributes": "members"})
    assert r.json()["totalResults"] == 0

    r = entra.patch(entra.base + f"Groups/{gid}", json=patch_body(
        {"op": "Replace", "path": "displayName", "value": "1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName"}
    ))
    assert r.status_code in (200, 204)
    assert Team.objects.get(pk=gid).name.endswith("updatedDisplayName")

    assert entra.delete(entra.base + f"Groups/{gid}").status_code == 204
    assert entra.get(entra.base + f"Groups/{gid}").status_code == 404
