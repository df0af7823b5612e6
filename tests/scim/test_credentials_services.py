"""Credential life cycle services: rights, audit events in the same transaction, rotation with overlap."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from audit.models import AuditEvent
from audit.record import Actor
from scim.models import ScimCredential
from scim.services import (
    OAuthGrant,
    scim_credential_create,
    scim_credential_revoke,
    scim_credential_rotate,
    scim_oauth_client_create,
    scim_set_enabled,
)
from workspaces.exceptions import NotAllowed, ServiceError
from workspaces.services import actor_for_membership

from .credential_helpers import owner_actor


def _events(workspace, action):
    return AuditEvent.objects.filter(workspace=workspace, action=action)


def test_creating_a_credential_is_audited_without_the_secret(world):
    credential, secret = scim_credential_create(workspace=world.a, kind="bearer", name="Okta", actor=owner_actor(world.owner_a))
    event = _events(world.a, "scim.credential_created").get()
    assert event.actor_label == "owner@alpha.test"
    assert event.details == {"kind": "bearer", "key_id": credential.key_id}
    assert secret not in str(event.details)


def test_several_credentials_per_workspace(world):
    actor = owner_actor(world.owner_a)
    scim_credential_create(workspace=world.a, kind="bearer", name="Okta", actor=actor)
    scim_credential_create(workspace=world.a, kind="basic", name="Okta test", actor=actor)
    scim_oauth_client_create(workspace=world.a, name="Entra", actor=actor, grant=OAuthGrant.CLIENT_CREDENTIALS)
    assert ScimCredential.objects.filter(workspace=world.a).count() == 3


def test_a_manager_cannot_create_credentials(world):
    with pytest.raises(NotAllowed):
        scim_credential_create(workspace=world.a, kind="bearer", name="x", actor=actor_for_membership(world.manager_a, "password"))
    assert not ScimCredential.objects.exists()


def test_an_owner_of_workspace_b_cannot_create_credentials_in_workspace_a(world):
    with pytest.raises(NotAllowed):
        scim_credential_create(workspace=world.a, kind="bearer", name="x", actor=owner_actor(world.outsider_b))


def test_an_owner_of_workspace_b_cannot_revoke_workspace_a_credentials(world):
    credential, _ = scim_credential_create(workspace=world.a, kind="bearer", name="Okta", actor=owner_actor(world.owner_a))
    with pytest.raises(NotAllowed):
        scim_credential_revoke(credential=credential, actor=owner_actor(world.outsider_b))
    credential.refresh_from_db()
    assert credential.revoked_at is None


def test_a_credential_needs_a_name(world):
    with pytest.raises(ServiceError):
        scim_credential_create(workspace=world.a, kind="bearer", name="  ", actor=owner_actor(world.owner_a))


def test_rotation_makes_a_new_credential_and_gives_the_old_one_an_expiry(world):
    old, _ = scim_credential_create(workspace=world.a, kind="basic", name="Okta", actor=owner_actor(world.owner_a))
    before = timezone.now()
    with override_settings(SCIM_CREDENTIAL_ROTATION_OVERLAP_HOURS=6):
        new, secret = scim_credential_rotate(credential=old, actor=owner_actor(world.owner_a))
    old.refresh_from_db()
    assert new.kind == "basic" and new.name == "Okta" and new.rotated_from == old
    assert secret.startswith(f"{new.key_id}:")
    assert before + timedelta(hours=6) <= old.expires_at <= timezone.now() + timedelta(hours=6)
    assert old.status == "expiring" and new.status == "live"
    event = _events(world.a, "scim.credential_rotated").get()
    assert event.details["old_key_id"] == old.key_id and event.details["new_key_id"] == new.key_id


def test_a_revoked_credential_cannot_be_rotated(world):
    credential, _ = scim_credential_create(workspace=world.a, kind="bearer", name="Okta", actor=owner_actor(world.owner_a))
    scim_credential_revoke(credential=credential, actor=owner_actor(world.owner_a))
    with pytest.raises(ServiceError):
        scim_credential_rotate(credential=credential, actor=owner_actor(world.owner_a))


def test_rotating_an_oauth_client_gives_a_new_client_id_with_the_same_grant_and_redirect(world):
    old, _ = scim_oauth_client_create(workspace=world.a, name="Okta", actor=owner_actor(world.owner_a),
                                      grant=OAuthGrant.AUTHORIZATION_CODE, redirect_uris="https://idp.example.test/cb")
    new, client_secret = scim_credential_rotate(credential=old, actor=owner_actor(world.owner_a))
    assert new.key_id != old.key_id and new.key_id == new.oauth_application.client_id
    assert new.oauth_application.authorization_grant_type == OAuthGrant.AUTHORIZATION_CODE
    assert new.oauth_application.redirect_uris == "https://idp.example.test/cb"
    assert client_secret and new.oauth_application.client_secret != client_secret


def test_authorization_code_client_needs_a_redirect_uri(world):
    with pytest.raises(ServiceError) as exc:
        scim_oauth_client_create(workspace=world.a, name="Okta", actor=owner_actor(world.owner_a),
                                 grant=OAuthGrant.AUTHORIZATION_CODE, redirect_uris="")
    assert exc.value.field == "redirect_uris"


def test_plain_http_redirect_uri_is_refused_outside_debug(world):
    with pytest.raises(ServiceError):
        scim_oauth_client_create(workspace=world.a, name="Okta", actor=owner_actor(world.owner_a),
                                 grant=OAuthGrant.AUTHORIZATION_CODE, redirect_uris="http://idp.example.test/cb")


def test_revocation_is_audited_once(world):
    credential, _ = scim_credential_create(workspace=world.a, kind="bearer", name="Okta", actor=owner_actor(world.owner_a))
    scim_credential_revoke(credential=credential, actor=owner_actor(world.owner_a))
    scim_credential_revoke(credential=credential, actor=owner_actor(world.owner_a))
    assert _events(world.a, "scim.credential_revoked").count() == 1


def test_switching_scim_on_and_off_is_audited(world):
    scim_set_enabled(workspace=world.a, enabled=True, actor=owner_actor(world.owner_a))
    scim_set_enabled(workspace=world.a, enabled=True, actor=owner_actor(world.owner_a))
    scim_set_enabled(workspace=world.a, enabled=False, actor=Actor.system("test"))
    world.a.refresh_from_db()
    assert world.a.scim_enabled is False
    assert _events(world.a, "scim.enabled").count() == 1
    assert _events(world.a, "scim.disabled").get().actor_kind == "system"
