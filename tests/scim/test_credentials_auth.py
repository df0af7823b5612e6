"""Bearer and Basic credentials resolve to exactly one workspace, through ``authenticate_scim_request``."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from scim.auth import ScimAuthError, authenticate_scim_request
from scim.models import ScimCredential
from scim.services import scim_credential_create, scim_credential_revoke, scim_credential_rotate

from .credential_helpers import basic, enable_scim, owner_actor, scim_request


@pytest.fixture
def bearer_a(world):
    enable_scim(world.a, world.b)
    return scim_credential_create(workspace=world.a, kind="bearer", name="Okta", actor=owner_actor(world.owner_a))


@pytest.fixture
def basic_a(world):
    enable_scim(world.a, world.b)
    return scim_credential_create(workspace=world.a, kind="basic", name="Okta basic", actor=owner_actor(world.owner_a))


def _status(request, slug: str) -> int:
    with pytest.raises(ScimAuthError) as exc:
        authenticate_scim_request(request, slug)
    return exc.value.status


def test_bearer_token_authenticates_for_its_workspace(world, bearer_a):
    credential, token = bearer_a
    principal = authenticate_scim_request(scim_request(f"Bearer {token}"), "alpha")
    assert principal.workspace == world.a
    assert principal.credential == credential
    assert principal.auth_method == "scim_bearer"
    assert principal.actor.kind == "scim_client" and principal.actor.auth_method == "scim_bearer"


def test_bearer_token_of_workspace_a_is_refused_on_workspace_b(world, bearer_a):
    _, token = bearer_a
    assert _status(scim_request(f"Bearer {token}", path="/scim/v2/bravo/Users"), "bravo") == 401


def test_basic_key_and_secret_authenticate_for_its_workspace(world, basic_a):
    credential, key_and_secret = basic_a
    principal = authenticate_scim_request(scim_request(basic(key_and_secret)), "alpha")
    assert principal.credential == credential and principal.auth_method == "scim_basic"


def test_basic_credential_of_workspace_a_is_refused_on_workspace_b(world, basic_a):
    _, key_and_secret = basic_a
    assert _status(scim_request(basic(key_and_secret)), "bravo") == 401


def test_empty_bearer_header_never_authenticates(world, bearer_a):
    assert _status(scim_request("Bearer "), "alpha") == 401
    assert _status(scim_request("Bearer"), "alpha") == 401
    assert _status(scim_request(""), "alpha") == 401
    assert _status(scim_request(None), "alpha") == 401


def test_bearer_prefix_without_secret_never_authenticates(world, bearer_a):
    credential, _ = bearer_a
    assert _status(scim_request(f"Bearer gs_{credential.key_id}_"), "alpha") == 401
    assert _status(scim_request(f"Bearer gs_{credential.key_id}"), "alpha") == 401


def test_basic_with_empty_secret_never_authenticates(world, basic_a):
    credential, _ = basic_a
    assert _status(scim_request(basic(f"{credential.key_id}:")), "alpha") == 401
    assert _status(scim_request(basic(f"{credential.key_id}")), "alpha") == 401
    assert _status(scim_request("Basic "), "alpha") == 401
    assert _status(scim_request("Basic !!!not-base64"), "alpha") == 401


def test_basic_with_wrong_secret_is_refused(world, basic_a):
    credential, _ = basic_a
    assert _status(scim_request(basic(f"{credential.key_id}:wrong-secret")), "alpha") == 401


def test_bearer_token_sent_as_basic_secret_is_refused(world, bearer_a):
    credential, token = bearer_a
    assert _status(scim_request(basic(f"{credential.key_id}:{token}")), "alpha") == 401


def test_revoked_credential_is_refused(world, bearer_a):
    credential, token = bearer_a
    scim_credential_revoke(credential=credential, actor=owner_actor(world.owner_a))
    assert _status(scim_request(f"Bearer {token}"), "alpha") == 401


def test_expired_credential_is_refused(world, bearer_a):
    credential, token = bearer_a
    ScimCredential.objects.filter(pk=credential.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert _status(scim_request(f"Bearer {token}"), "alpha") == 401


def test_rotated_credential_keeps_working_during_the_overlap_next_to_its_replacement(world, bearer_a):
    old, old_token = bearer_a
    new, new_token = scim_credential_rotate(credential=old, actor=owner_actor(world.owner_a), overlap=timedelta(hours=24))
    assert authenticate_scim_request(scim_request(f"Bearer {old_token}"), "alpha").credential == old
    assert authenticate_scim_request(scim_request(f"Bearer {new_token}"), "alpha").credential == new


def test_rotated_credential_is_refused_after_the_overlap(world, bearer_a):
    old, old_token = bearer_a
    _, new_token = scim_credential_rotate(credential=old, actor=owner_actor(world.owner_a), overlap=timedelta(hours=24))
    ScimCredential.objects.filter(pk=old.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert _status(scim_request(f"Bearer {old_token}"), "alpha") == 401
    assert authenticate_scim_request(scim_request(f"Bearer {new_token}"), "alpha").workspace == world.a


def test_valid_credential_gets_403_while_scim_is_switched_off(world, bearer_a):
    _, token = bearer_a
    world.a.scim_enabled = False
    world.a.save(update_fields=["scim_enabled"])
    assert _status(scim_request(f"Bearer {token}"), "alpha") == 403


def test_successful_authentication_records_last_used_time(world, bearer_a):
    credential, token = bearer_a
    assert credential.last_used_at is None
    authenticate_scim_request(scim_request(f"Bearer {token}"), "alpha")
    credential.refresh_from_db()
    assert credential.last_used_at is not None


def test_unknown_oauth_looking_bearer_token_is_refused(world, bearer_a):
    assert _status(scim_request("Bearer not-a-token-we-issued"), "alpha") == 401


def test_only_the_hash_of_a_secret_is_stored(world, bearer_a, basic_a):
    credential, token = bearer_a
    basic_credential, key_and_secret = basic_a
    stored = ScimCredential.objects.filter(pk__in=[credential.pk, basic_credential.pk]).values_list("secret_hash", flat=True)
    for value in stored:
        assert token not in value and key_and_secret.split(":")[1] not in value and len(value) == 64
