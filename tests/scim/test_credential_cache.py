"""The SCIM credential cache saves the credential query, and never lets a stopped credential through."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from scim.auth import ScimAuthError, authenticate_scim_request
from scim.services import (
    scim_credential_create,
    scim_credential_revoke,
    scim_credential_rotate,
    scim_set_enabled,
)

from .credential_helpers import basic, enable_scim, owner_actor, scim_request


@pytest.fixture
def bearer_a(world):
    enable_scim(world.a, world.b)
    return scim_credential_create(
        workspace=world.a, kind="bearer", name="Okta", actor=owner_actor(world.owner_a)
    )


def _status(authorization: str, slug: str = "alpha") -> int:
    with pytest.raises(ScimAuthError) as exc:
        authenticate_scim_request(scim_request(authorization, path=f"/scim/v2/{slug}/Users"), slug)
    return exc.value.status


def _authenticate_twice(authorization: str):
    authenticate_scim_request(scim_request(authorization), "alpha")  # reads the database, fills the cache
    return authenticate_scim_request(scim_request(authorization), "alpha")


def test_a_repeated_request_authenticates_without_a_database_query(world, bearer_a):
    credential, token = bearer_a
    authenticate_scim_request(scim_request(f"Bearer {token}"), "alpha")
    with CaptureQueriesContext(connection) as queries:
        principal = authenticate_scim_request(scim_request(f"Bearer {token}"), "alpha")
    assert principal.credential == credential and principal.workspace == world.a
    assert len(queries) == 0


def test_a_cached_credential_still_needs_its_secret(world, bearer_a):
    credential, token = bearer_a
    _authenticate_twice(f"Bearer {token}")
    assert _status(f"Bearer gs_{credential.key_id}_not-the-secret") == 401


def test_a_cached_credential_of_workspace_a_is_refused_on_workspace_b(world, bearer_a):
    _, token = bearer_a
    _authenticate_twice(f"Bearer {token}")
    assert _status(f"Bearer {token}", "bravo") == 401


def test_revoking_a_cached_credential_stops_it_at_once(world, bearer_a):
    credential, token = bearer_a
    _authenticate_twice(f"Bearer {token}")
    scim_credential_revoke(credential=credential, actor=owner_actor(world.owner_a))
    assert _status(f"Bearer {token}") == 401


def test_revoking_a_cached_basic_credential_stops_it_at_once(world):
    enable_scim(world.a)
    credential, key_and_secret = scim_credential_create(
        workspace=world.a, kind="basic", name="Basic", actor=owner_actor(world.owner_a)
    )
    _authenticate_twice(basic(key_and_secret))
    scim_credential_revoke(credential=credential, actor=owner_actor(world.owner_a))
    assert _status(basic(key_and_secret)) == 401


def test_rotating_a_cached_credential_without_overlap_stops_it_at_once(world, bearer_a):
    credential, token = bearer_a
    _authenticate_twice(f"Bearer {token}")
    _, new_token = scim_credential_rotate(
        credential=credential, actor=owner_actor(world.owner_a), overlap=timedelta(0)
    )
    assert _status(f"Bearer {token}") == 401
    assert authenticate_scim_request(scim_request(f"Bearer {new_token}"), "alpha").workspace == world.a


def test_switching_scim_off_refuses_a_cached_credential_at_once(world, bearer_a):
    _, token = bearer_a
    _authenticate_twice(f"Bearer {token}")
    scim_set_enabled(workspace=world.a, enabled=False, actor=owner_actor(world.owner_a))
    assert _status(f"Bearer {token}") == 403


def test_a_revocation_committed_by_another_request_clears_the_cache(
    world, bearer_a, django_capture_on_commit_callbacks
):
    credential, token = bearer_a
    _authenticate_twice(f"Bearer {token}")
    with django_capture_on_commit_callbacks(execute=True):
        scim_credential_revoke(credential=credential, actor=owner_actor(world.owner_a))
    assert _status(f"Bearer {token}") == 401
