"""Okta's documented SCIM 2.0 request sequence, replayed over real HTTP against the live server.

Bodies follow Okta's "SCIM 2.0 protocol reference" (developer.okta.com/docs/api/openapi/okta-scim/guides/scim-20):
test credentials, filter lookup before create, create, profile update by PUT, deactivate and
reactivate by PATCH, import paging, group push, member add/remove, rename, delete.
Run once with a bearer token (Okta's "HTTP Header" mode) and once with HTTP Basic.
"""

from __future__ import annotations

import pytest
import requests

from audit.models import AuditEvent
from workspaces.models import Membership, Team

from .conftest import SCIM_JSON, make_cred, okta_user, patch_body
from .oauth_helpers import oauth_access_token

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(params=["bearer", "basic", "oauth"])
def okta(request, world, live_server, password):
    if request.param == "oauth":  # Okta's OAuth 2 mode: authorization code approved by an Owner
        auth = {"Authorization": "Bearer " + oauth_access_token(live_server.url, world, password, grant="authorization_code")}
    else:
        auth = make_cred(world.owner_a, request.param, name="Okta").requests_auth
    session = requests.Session()
    session.headers.update({**auth, "Content-Type": SCIM_JSON, "Accept": SCIM_JSON,
                            "User-Agent": "Okta SCIM Client 1.0.0"})
    session.base = f"{live_server.url}/scim/v2/{world.a.slug}/"
    session.kind = request.param
    return session


def _url(s, path):
    return s.base + path


def test_okta_test_credentials_request_lists_two_users(okta):
    r = okta.get(_url(okta, "Users"), params={"startIndex": 1, "count": 2})
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/scim+json")
    body = r.json()
    assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:ListResponse"]
    assert body["totalResults"] == 5 and body["itemsPerPage"] == 2 and body["startIndex"] == 1
    assert len(body["Resources"]) == 2


def test_okta_user_lifecycle_lookup_create_update_deactivate_reactivate(okta, world):
    username = "Test.User@Okta.local"
    r = okta.get(_url(okta, "Users"), params={"filter": f'userName eq "{username.lower()}"', "startIndex": 1, "count": 100})
    assert r.status_code == 200 and r.json()["totalResults"] == 0 and r.json()["Resources"] == []

    r = okta.post(_url(okta, "Users"), json=okta_user(username, external_id="00u1ab2c3d"))
    assert r.status_code == 201, r.text
    created = r.json()
    uid = created["id"]
    assert created["userName"] == username  # case preserved (Okta's own test suite checks this)
    assert created["active"] is True and created["name"] == {"givenName": "Test", "familyName": "User"}
    assert r.headers["Location"].endswith(f"/Users/{uid}")
    assert r.headers["ETag"] == created["meta"]["version"]
    member = Membership.objects.get(pk=uid)
    assert member.workspace == world.a and not member.user.has_usable_password()

    r = okta.get(_url(okta, "Users"), params={"filter": f'userName eq "{username.upper()}"', "startIndex": 1, "count": 100})
    assert [u["id"] for u in r.json()["Resources"]] == [uid]

    r = okta.get(_url(okta, f"Users/{uid}"))
    assert r.status_code == 200 and r.json()["userName"] == username

    update = okta_user(username, given="Changed", family="Name", external_id="00u1ab2c3d")
    update["id"] = uid
    r = okta.put(_url(okta, f"Users/{uid}"), json=update)
    assert r.status_code == 200, r.text
    assert r.json()["name"] == {"givenName": "Changed", "familyName": "Name"}
    assert r.json()["displayName"] == "Changed Name"

    r = okta.patch(_url(okta, f"Users/{uid}"), json=patch_body({"op": "replace", "value": {"active": False}}))
    assert r.status_code == 200, r.text
    assert r.json()["active"] is False
    assert Membership.objects.get(pk=uid).is_active is False

    r = okta.patch(_url(okta, f"Users/{uid}"), json=patch_body({"op": "replace", "value": {"active": True}}))
    assert r.status_code == 200 and r.json()["active"] is True
    assert Membership.objects.get(pk=uid).is_active is True

    actions = list(
        AuditEvent.objects.filter(workspace_id=world.a.pk, target_id=uid).order_by("seq").values_list("action", "actor_kind", "auth_method")
    )
    expected_method = {"bearer": "scim_bearer", "basic": "scim_basic", "oauth": "oauth"}[okta.kind]
    assert [a for a, _, _ in actions] == [
        "member.created", "member.profile_changed", "member.profile_changed", "member.deactivated", "member.reactivated",
    ]
    assert {(k, m) for _, k, m in actions} == {("scim_client", expected_method)}


def test_okta_import_pages_through_every_user_once(okta, world):
    for i in range(7):
        assert okta.post(_url(okta, "Users"), json=okta_user(f"import{i}@okta.local", external_id=f"00u{i}")).status_code == 201
    seen, start = [], 1
    while True:
        page = okta.get(_url(okta, "Users"), params={"startIndex": start, "count": 4}).json()
        assert page["totalResults"] == 12
        seen += [u["id"] for u in page["Resources"]]
        start += page["itemsPerPage"]
        if start > page["totalResults"] or not page["Resources"]:
            break
    assert len(seen) == 12 and len(set(seen)) == 12


def test_okta_group_push_members_rename_and_delete(okta, world):
    u1 = okta.post(_url(okta, "Users"), json=okta_user("g1@okta.local", external_id="a1")).json()["id"]
    u2 = okta.post(_url(okta, "Users"), json=okta_user("g2@okta.local", external_id="a2")).json()["id"]

    r = okta.get(_url(okta, "Groups"), params={"filter": 'displayName eq "Test SCIMv2"', "startIndex": 1, "count": 100})
    assert r.status_code == 200 and r.json()["totalResults"] == 0
    r = okta.post(_url(okta, "Groups"), json={
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Test SCIMv2", "members": [],
    })
    assert r.status_code == 201, r.text
    gid = r.json()["id"]
    assert r.json()["members"] == []

    r = okta.patch(_url(okta, f"Groups/{gid}"), json=patch_body(
        {"op": "add", "path": "members", "value": [{"value": u1, "display": "g1@okta.local"},
                                                    {"value": u2, "display": "g2@okta.local"}]}
    ))
    assert r.status_code in (200, 204), r.text
    members = okta.get(_url(okta, f"Groups/{gid}")).json()["members"]
    assert sorted(m["value"] for m in members) == sorted([u1, u2])

    r = okta.patch(_url(okta, f"Groups/{gid}"), json=patch_body({"op": "remove", "path": f'members[value eq "{u1}"]'}))
    assert r.status_code in (200, 204)
    assert [m["value"] for m in okta.get(_url(okta, f"Groups/{gid}")).json()["members"]] == [u2]

    r = okta.patch(_url(okta, f"Groups/{gid}"), json=patch_body(
        {"op": "replace", "value": {"id": gid, "displayName": "Test SCIMv2 renamed"}}
    ))
    assert r.status_code in (200, 204)
    assert Team.objects.get(pk=gid).name == "Test SCIMv2 renamed"

    user_doc = okta.get(_url(okta, f"Users/{u2}")).json()
    assert user_doc["groups"][0]["value"] == gid and user_doc["groups"][0]["display"] == "Test SCIMv2 renamed"

    assert okta.delete(_url(okta, f"Groups/{gid}")).status_code == 204
    assert okta.get(_url(okta, f"Groups/{gid}")).status_code == 404
    assert not Team.objects.filter(pk=gid).exists()
    assert Membership.objects.filter(pk__in=[u1, u2], is_active=True).count() == 2


def test_okta_group_post_with_members_in_the_body_adds_them(okta, world):
    u1 = okta.post(_url(okta, "Users"), json=okta_user("body@okta.local", external_id="b1")).json()["id"]
    r = okta.post(_url(okta, "Groups"), json={"displayName": "Pushed", "members": [{"value": u1, "display": "x"}]})
    assert r.status_code == 201
    assert [m["value"] for m in r.json()["members"]] == [u1]
