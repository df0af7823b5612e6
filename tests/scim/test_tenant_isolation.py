"""A credential opens exactly one workspace; ids of another workspace's users and groups are 404 here."""

from __future__ import annotations

import pytest

from tests.factories import MembershipFactory, TeamFactory
from workspaces.models import Membership, Team

from .conftest import ScimClient, patch_body

ENDPOINTS = [
    ("GET", "Users"), ("POST", "Users"), ("GET", "Users/1"), ("PUT", "Users/1"), ("PATCH", "Users/1"),
    ("DELETE", "Users/1"), ("GET", "Groups"), ("POST", "Groups"), ("GET", "Groups/1"), ("PATCH", "Groups/1"),
    ("PUT", "Groups/1"), ("DELETE", "Groups/1"), ("GET", "ServiceProviderConfig"), ("GET", "ResourceTypes"),
    ("GET", "Schemas"), ("GET", "Schemas/urn:ietf:params:scim:schemas:core:2.0:User"),
]


@pytest.mark.parametrize("method,path", ENDPOINTS)
def test_workspace_b_credential_on_workspace_a_url_is_401_on_every_endpoint(world, bearer_b, method, path):
    client = ScimClient(world.a.slug, bearer_b)
    r = client.call(method, path, {"displayName": "x", "userName": "x@x.test"})
    assert r.status_code == 401
    assert r["WWW-Authenticate"].startswith("Bearer")
    assert r.json()["status"] == "401" and "Resources" not in r.json()


@pytest.mark.parametrize("method,path", ENDPOINTS)
def test_workspace_b_credential_on_its_own_url_is_not_refused(world, bearer_b, method, path):
    client = ScimClient(world.b.slug, bearer_b)
    r = client.call(method, path, {"displayName": "x", "userName": "x@x.test"})
    assert r.status_code != 401


@pytest.mark.parametrize("method,path", ENDPOINTS)
def test_missing_or_empty_credentials_are_401_on_every_endpoint(world, bearer_a, method, path):
    client = ScimClient(world.a.slug, bearer_a)
    client.cred = type(bearer_a)("bearer", "")
    r = client.call(method, path, {"displayName": "x"})
    assert r.status_code == 401 and r.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]


def test_workspace_b_user_id_in_workspace_a_url_is_404_for_every_method(world, scim_a):
    bid = world.outsider_b.pk
    assert scim_a.get(f"Users/{bid}").status_code == 404
    assert scim_a.put(f"Users/{bid}", {"userName": "taken@x.test"}).status_code == 404
    assert scim_a.patch(f"Users/{bid}", patch_body({"op": "replace", "value": {"active": False}})).status_code == 404
    assert scim_a.delete(f"Users/{bid}").status_code == 404
    world.outsider_b.refresh_from_db()
    assert world.outsider_b.is_active and world.outsider_b.scim_username == ""


def test_workspace_a_user_id_in_workspace_a_url_is_found(world, scim_a):
    assert scim_a.get(f"Users/{world.member_a.pk}").status_code == 200


def test_workspace_b_group_id_in_workspace_a_url_is_404_for_every_method(world, scim_a):
    team_b = TeamFactory(workspace=world.b, name="secret-b")
    assert scim_a.get(f"Groups/{team_b.pk}").status_code == 404
    assert scim_a.put(f"Groups/{team_b.pk}", {"displayName": "pwned"}).status_code == 404
    assert scim_a.patch(f"Groups/{team_b.pk}", patch_body({"op": "replace", "path": "displayName", "value": "p"})).status_code == 404
    assert scim_a.delete(f"Groups/{team_b.pk}").status_code == 404
    assert Team.objects.get(pk=team_b.pk).name == "secret-b"


def test_workspace_a_group_id_in_workspace_a_url_is_found(world, scim_a):
    team_a = TeamFactory(workspace=world.a, name="eng")
    assert scim_a.get(f"Groups/{team_a.pk}").status_code == 200


def test_workspace_b_users_cannot_be_added_to_a_workspace_a_group(world, scim_a):
    team_a = TeamFactory(workspace=world.a, name="eng")
    r = scim_a.patch(f"Groups/{team_a.pk}", patch_body({"op": "add", "path": "members", "value": [{"value": str(world.outsider_b.pk)}]}))
    assert r.status_code == 400 and r.json()["scimType"] == "invalidValue"
    assert team_a.members.count() == 0


def test_workspace_a_users_can_be_added_to_a_workspace_a_group(world, scim_a):
    team_a = TeamFactory(workspace=world.a, name="eng")
    r = scim_a.patch(f"Groups/{team_a.pk}", patch_body({"op": "add", "path": "members", "value": [{"value": str(world.member_a.pk)}]}))
    assert r.status_code == 204
    assert list(team_a.members.all()) == [world.member_a]


def test_filters_never_return_another_workspaces_users(world, scim_a):
    r = scim_a.get(f'Users?filter=emails.value eq "owner@bravo.test" or active eq true or id eq "{world.outsider_b.pk}"')
    ids = {u["id"] for u in r.json()["Resources"]}
    assert str(world.outsider_b.pk) not in ids
    assert r.json()["totalResults"] == Membership.objects.filter(workspace=world.a).count()
    assert all(Membership.objects.get(pk=i).workspace_id == world.a.pk for i in ids)


def test_the_same_username_in_two_workspaces_is_two_independent_users(world, scim_a, scim_b):
    body = {"userName": "shared@corp.test", "emails": [{"value": "shared@corp.test", "primary": True}]}
    ra, rb = scim_a.post("Users", body), scim_b.post("Users", body)
    assert ra.status_code == 201 and rb.status_code == 201
    a, b = Membership.objects.get(pk=ra.json()["id"]), Membership.objects.get(pk=rb.json()["id"])
    assert a.user_id == b.user_id and a.workspace_id != b.workspace_id  # one account, two memberships


def test_a_409_does_not_reveal_an_email_known_only_in_another_workspace(world, scim_a):
    MembershipFactory(workspace=world.b, user__email="only-in-b@corp.test")
    r = scim_a.post("Users", {"userName": "only-in-b@corp.test"})
    assert r.status_code == 201  # per-workspace uniqueness: B's member is not a conflict here
    member = Membership.objects.get(pk=r.json()["id"])
    assert member.workspace == world.a and member.role == "member"
