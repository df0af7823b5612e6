"""API key authentication: one workspace per key, refused at once when it should be."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from audit.record import Actor
from workspaces.models import ApiKey
from workspaces.services import actor_for_membership, api_key_create, api_key_revoke, membership_deactivate

from .conftest import ApiClient, personal_key, service_key

pytestmark = pytest.mark.django_db

ENDPOINTS = ["", "members/", "teams/", "repositories/"]


def url(slug: str, rest: str = "") -> str:
    return f"/api/v1/workspaces/{slug}/{rest}"


def test_request_without_key_is_401_with_www_authenticate(world):
    response = ApiClient(None).get(url("alpha", "members/"))
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_bearer_key_reads_the_workspace(world):
    response = ApiClient(personal_key(world.owner_a)).get(url("alpha"))
    assert response.status_code == 200
    assert response.json()["slug"] == "alpha"


def test_x_api_key_header_reads_the_workspace(world):
    response = ApiClient(personal_key(world.owner_a), header="x-api-key").get(url("alpha"))
    assert response.status_code == 200
    assert response.json()["name"] == "Alpha Inc"


@pytest.mark.parametrize("bad", ["", "gh_", "gh_abc", "nonsense", "gh_deadbeef_wrongsecret"])
def test_malformed_or_unknown_key_is_401(world, bad):
    personal_key(world.owner_a)
    response = ApiClient(bad).get(url("alpha", "members/"))
    assert response.status_code == 401
    assert "results" not in response.json()


def test_key_with_a_wrong_secret_for_a_real_prefix_is_401(world):
    plain = personal_key(world.owner_a)
    forged = plain[:-4] + ("aaaa" if not plain.endswith("aaaa") else "bbbb")
    assert ApiClient(forged).get(url("alpha")).status_code == 401


@pytest.mark.parametrize("rest", ENDPOINTS)
def test_key_of_workspace_a_on_workspace_b_is_401_and_returns_no_data(world, rest):
    response = ApiClient(personal_key(world.owner_a)).get(url("bravo", rest))
    assert response.status_code == 401
    assert "bravo" not in response.content.decode() and "owner@bravo.test" not in response.content.decode()


@pytest.mark.parametrize("rest", ENDPOINTS)
def test_key_of_workspace_b_on_workspace_b_works(world, rest):
    # The twin of the cross-workspace refusal: the same request with B's own key succeeds.
    assert ApiClient(personal_key(world.outsider_b)).get(url("bravo", rest)).status_code == 200


def test_service_key_of_workspace_a_on_workspace_b_is_401(world):
    key = service_key(world.a, ["members:read", "teams:read", "repositories:read", "access:check"])
    assert ApiClient(key).get(url("bravo", "members/")).status_code == 401
    response = ApiClient(key).post(url("bravo", "access-check"), {"repository": "x", "action": "pull", "member": "owner@bravo.test"})
    assert response.status_code == 401


def test_cross_workspace_member_detail_is_401(world):
    other = world.outsider_b.pk
    assert ApiClient(personal_key(world.owner_a)).get(url("bravo", f"members/{other}/")).status_code == 401


def test_member_of_workspace_b_by_id_is_404_through_workspace_a(world):
    response = ApiClient(personal_key(world.owner_a)).get(url("alpha", f"members/{world.outsider_b.pk}/"))
    assert response.status_code == 404


def test_member_of_workspace_a_by_id_is_found_through_workspace_a(world):
    response = ApiClient(personal_key(world.owner_a)).get(url("alpha", f"members/{world.member_a.pk}/"))
    assert response.status_code == 200
    assert response.json()["email"] == "member@alpha.test"


def test_deactivated_members_key_is_refused_on_the_next_request(world):
    client = ApiClient(personal_key(world.member_a))
    assert client.get(url("alpha", "members/")).status_code == 200
    membership_deactivate(membership=world.member_a, actor=actor_for_membership(world.owner_a, "password"))
    assert client.get(url("alpha", "members/")).status_code == 401


def test_inactive_members_key_is_refused_even_before_revocation_runs(world):
    client = ApiClient(personal_key(world.member_a))
    # Deactivated by a path that never queued the revocation task: the key row is still live.
    type(world.member_a).objects.filter(pk=world.member_a.pk).update(is_active=False)
    assert ApiKey.objects.get(membership=world.member_a).revoked_at is None
    assert client.get(url("alpha")).status_code == 401


def test_key_issued_before_credentials_were_revoked_is_refused_after_reactivation(world):
    client = ApiClient(personal_key(world.member_a))
    type(world.member_a).objects.filter(pk=world.member_a.pk).update(credentials_valid_after=timezone.now())
    assert client.get(url("alpha")).status_code == 401


def test_disabled_accounts_key_is_refused(world):
    client = ApiClient(personal_key(world.member_a))
    world.member_a.user.is_active = False
    world.member_a.user.save(update_fields=["is_active"])
    assert client.get(url("alpha")).status_code == 401


def test_revoked_key_is_refused(world):
    plain = personal_key(world.member_a)
    api_key_revoke(api_key=ApiKey.objects.get(membership=world.member_a), actor=Actor.system("test"))
    assert ApiClient(plain).get(url("alpha")).status_code == 401


def test_expired_key_is_refused(world):
    plain = personal_key(world.member_a)
    ApiKey.objects.filter(membership=world.member_a).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert ApiClient(plain).get(url("alpha")).status_code == 401


def test_last_used_is_written_at_most_once_a_minute(world):
    client = ApiClient(personal_key(world.member_a))
    client.get(url("alpha"))
    first = ApiKey.objects.get(membership=world.member_a).last_used_at
    assert first is not None
    client.get(url("alpha"))
    assert ApiKey.objects.get(membership=world.member_a).last_used_at == first
    ApiKey.objects.filter(membership=world.member_a).update(last_used_at=first - timedelta(minutes=2))
    client.get(url("alpha"))
    assert ApiKey.objects.get(membership=world.member_a).last_used_at > first - timedelta(minutes=1)


def _fields(obj) -> dict:
    return {f.attname: getattr(obj, f.attname) for f in obj._meta.concrete_fields}


def test_key_lookup_builds_the_same_objects_as_the_orm(world):
    from workspaces.api.authentication import resolve_api_key

    type(world.member_a).objects.filter(pk=world.member_a.pk).update(
        allowed_environments=["staging"], credentials_valid_after=timezone.now() - timedelta(days=1)
    )
    _, plain = api_key_create(
        workspace=world.a, membership=world.member_a, name="k", scopes=["teams:read"], actor=Actor.system("test")
    )
    principal = resolve_api_key(plain, "alpha")
    orm = ApiKey.objects.select_related("workspace", "membership__user").get(pk=principal.api_key.pk)
    assert _fields(principal.api_key) | {"last_used_at": None} == _fields(orm) | {"last_used_at": None}
    assert _fields(principal.workspace) == _fields(orm.workspace)
    assert _fields(principal.membership) == _fields(orm.membership)
    assert _fields(principal.membership.user) == _fields(orm.membership.user)
    assert principal.membership.allowed_environments == ["staging"] and principal.api_key.scopes == ["teams:read"]


def test_service_key_lookup_has_no_member(world):
    from workspaces.api.authentication import resolve_api_key

    principal = resolve_api_key(service_key(world.a, ["members:read"]), "alpha")
    assert principal.membership is None and principal.workspace.slug == "alpha"
