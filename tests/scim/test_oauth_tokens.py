"""OAuth access tokens at ``authenticate_scim_request``: only live tokens of a live client, with their workspace's scope."""

from __future__ import annotations

import secrets
from datetime import timedelta

import pytest
from django.utils import timezone
from oauth2_provider.models import AccessToken, Application, set_token_value

from scim.auth import authenticate_scim_request
from scim.models import ScimCredential
from scim.oauth import workspace_scope
from scim.services import OAuthGrant, scim_credential_rotate, scim_oauth_client_create

from .credential_helpers import bearer_status, enable_scim, owner_actor, scim_request


@pytest.fixture
def client_a(world):
    enable_scim(world.a, world.b)
    credential, _ = scim_oauth_client_create(
        workspace=world.a, name="Entra", actor=owner_actor(world.owner_a), grant=OAuthGrant.CLIENT_CREDENTIALS,
    )
    return credential


def _token(application, scope: str, *, expires_in: timedelta = timedelta(hours=1), user=None) -> str:
    raw = secrets.token_urlsafe(30)
    token = AccessToken(application=application, user=user, scope=scope, expires=timezone.now() + expires_in)
    set_token_value(token, raw)
    token.save()
    return raw


def test_live_token_with_the_workspace_scope_authenticates(world, client_a):
    raw = _token(client_a.oauth_application, workspace_scope(world.a.pk))
    principal = authenticate_scim_request(scim_request(f"Bearer {raw}"), "alpha")
    assert principal.credential == client_a and principal.auth_method == "oauth"


def test_the_same_token_is_refused_on_another_workspace(world, client_a):
    raw = _token(client_a.oauth_application, workspace_scope(world.a.pk))
    assert bearer_status(raw, "bravo") == 401


def test_expired_token_is_refused(world, client_a):
    raw = _token(client_a.oauth_application, workspace_scope(world.a.pk), expires_in=timedelta(seconds=-1))
    assert bearer_status(raw) == 401


def test_token_without_the_workspace_scope_is_refused(world, client_a):
    raw = _token(client_a.oauth_application, f"read write {workspace_scope(world.b.pk)}")
    assert bearer_status(raw) == 401


def test_token_of_an_application_not_bound_to_scim_is_refused(world):
    enable_scim(world.a)
    stray = Application.objects.create(name="stray", client_type="confidential",
                                       authorization_grant_type="client-credentials")
    raw = _token(stray, workspace_scope(world.a.pk))
    assert bearer_status(raw) == 401


def test_token_of_a_revoked_client_is_refused_even_if_it_survived(world, client_a):
    raw = _token(client_a.oauth_application, workspace_scope(world.a.pk))
    ScimCredential.objects.filter(pk=client_a.pk).update(revoked_at=timezone.now())
    assert bearer_status(raw) == 401


def test_rotated_clients_old_token_works_during_the_overlap_then_stops(world, client_a):
    raw = _token(client_a.oauth_application, workspace_scope(world.a.pk))
    scim_credential_rotate(credential=client_a, actor=owner_actor(world.owner_a), overlap=timedelta(hours=1))
    assert bearer_status(raw) == 200
    ScimCredential.objects.filter(pk=client_a.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert bearer_status(raw) == 401


def test_token_approved_by_a_deactivated_owner_is_refused(world, client_a):
    raw = _token(client_a.oauth_application, workspace_scope(world.a.pk), user=world.owner_a.user)
    assert bearer_status(raw) == 200
    world.owner_a.is_active = False
    world.owner_a.save(update_fields=["is_active"])
    assert bearer_status(raw) == 401


def test_token_issued_before_the_owners_credentials_were_revoked_is_refused(world, client_a):
    raw = _token(client_a.oauth_application, workspace_scope(world.a.pk), user=world.owner_a.user)
    world.owner_a.credentials_valid_after = timezone.now() + timedelta(seconds=1)
    world.owner_a.save(update_fields=["credentials_valid_after"])
    assert bearer_status(raw) == 401


def test_valid_token_gets_403_while_scim_is_off(world, client_a):
    raw = _token(client_a.oauth_application, workspace_scope(world.a.pk))
    world.a.scim_enabled = False
    world.a.save(update_fields=["scim_enabled"])
    assert bearer_status(raw) == 403


def test_beat_clears_expired_oauth_tokens_daily(world):
    from datetime import timedelta

    from django.conf import settings
    from django.utils import timezone
    from oauth2_provider.models import AccessToken, get_application_model

    from scim.tasks import clear_expired_oauth_tokens

    job = settings.PERIODIC_JOBS["scim-clear-expired-oauth-tokens"]
    assert job["task"] == "scim.tasks.clear_expired_oauth_tokens" and job["every"] == 24 * 3600
    app = get_application_model().objects.create(
        name="t", client_type="confidential", authorization_grant_type="client-credentials", algorithm=""
    )
    old = AccessToken.objects.create(application=app, token="old-token", scope="scim:1",
                                     expires=timezone.now() - timedelta(days=2))
    live = AccessToken.objects.create(application=app, token="live-token", scope="scim:1",
                                      expires=timezone.now() + timedelta(hours=1))
    clear_expired_oauth_tokens.delay()
    assert not AccessToken.objects.filter(pk=old.pk).exists()
    assert AccessToken.objects.filter(pk=live.pk).exists()
