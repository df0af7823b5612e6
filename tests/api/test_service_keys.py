"""Workspace service keys: created by Owners with explicit scopes, and held to exactly those scopes."""

from __future__ import annotations

import pytest

from workspaces.exceptions import NotAllowed, ServiceError
from workspaces.services import actor_for_membership, api_key_create

from .conftest import ApiClient, personal_key, service_key

pytestmark = pytest.mark.django_db

BASE = "/api/v1/workspaces/alpha/"


@pytest.mark.parametrize("scope,path", [("members:read", "members/"), ("teams:read", "teams/"), ("repositories:read", "repositories/")])
def test_service_key_reads_what_its_scope_names(world, scope, path):
    assert ApiClient(service_key(world.a, [scope])).get(BASE + path).status_code == 200


@pytest.mark.parametrize("scope,path", [("teams:read", "members/"), ("members:read", "teams/"), ("members:read", "repositories/")])
def test_service_key_is_403_outside_its_scopes(world, scope, path):
    assert ApiClient(service_key(world.a, [scope])).get(BASE + path).status_code == 403


def test_any_service_key_reads_its_workspace(world):
    assert ApiClient(service_key(world.a, ["teams:read"])).get(BASE).json()["slug"] == "alpha"


def test_owner_creates_a_service_key_with_scopes(world):
    key, plain = api_key_create(
        workspace=world.a, name="governance", scopes=["members:read", "teams:read"],
        actor=actor_for_membership(world.owner_a, "password"),
    )
    assert key.is_service_key and key.scopes == ["members:read", "teams:read"]
    assert plain.startswith(f"gh_{key.prefix}_")


def test_manager_cannot_create_a_service_key(world):
    with pytest.raises(NotAllowed):
        api_key_create(workspace=world.a, name="x", scopes=["members:read"], actor=actor_for_membership(world.manager_a, "password"))


def test_service_key_needs_at_least_one_scope(world):
    with pytest.raises(ServiceError):
        api_key_create(workspace=world.a, name="x", actor=actor_for_membership(world.owner_a, "password"))


def test_unknown_scope_is_refused(world):
    with pytest.raises(ServiceError):
        api_key_create(workspace=world.a, name="x", scopes=["admin:all"], actor=actor_for_membership(world.owner_a, "password"))


def test_personal_key_scopes_narrow_the_owners_role(world):
    _, plain = api_key_create(
        workspace=world.a, membership=world.owner_a, name="narrow", scopes=["teams:read"],
        actor=actor_for_membership(world.owner_a, "password"),
    )
    assert ApiClient(plain).get(BASE + "teams/").status_code == 200
    assert ApiClient(plain).get(BASE + "members/").status_code == 403


def test_personal_key_without_scopes_acts_with_its_role(world):
    assert ApiClient(personal_key(world.owner_a)).get(BASE + "members/").status_code == 200
