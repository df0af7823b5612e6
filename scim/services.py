"""SCIM credential life cycle. Resource changes go through ``workspaces.services``."""

from __future__ import annotations

import secrets

from django.db import transaction
from django.utils import timezone

from audit.record import Actor, record_event
from workspaces.exceptions import ServiceError
from workspaces.models import Workspace
from workspaces.roles import Cap
from workspaces.services import hash_secret, require_capability

from .auth import BEARER_PREFIX
from .models import CredentialKind, ScimCredential


@transaction.atomic
def scim_credential_create(*, workspace: Workspace, kind: str, name: str, actor: Actor) -> tuple[ScimCredential, str]:
    """Create a bearer or Basic credential; returns the secret to show once (token, or ``key:secret``)."""
    require_capability(actor, workspace, Cap.SETTINGS_MANAGE)
    name = name.strip()
    if not name:
        raise ServiceError("Name the credential (for example “Okta production”).", field="name")
    if kind not in (CredentialKind.BEARER, CredentialKind.BASIC):
        raise ServiceError("Choose a bearer token or a Basic key and secret.", field="kind")
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    if kind == CredentialKind.BEARER:
        shown = f"{BEARER_PREFIX}{key_id}_{secret}"
        hashed = hash_secret(shown)
    else:
        shown = f"{key_id}:{secret}"
        hashed = hash_secret(secret)
    credential = ScimCredential.objects.create(
        workspace=workspace, kind=kind, name=name, key_id=key_id, secret_hash=hashed,
        created_by=actor.membership.user if actor.membership is not None else None,
    )
    record_event(
        actor=actor, action="scim.credential_created", workspace=workspace,
        target_type="scim_credential", target_id=credential.pk, target_label=name,
        details={"kind": kind, "key_id": key_id},
    )
    return credential, shown


@transaction.atomic
def scim_credential_revoke(*, credential: ScimCredential, actor: Actor) -> ScimCredential:
    require_capability(actor, credential.workspace, Cap.SETTINGS_MANAGE)
    if credential.revoked_at is None:
        credential.revoked_at = timezone.now()
        credential.save(update_fields=["revoked_at"])
        record_event(
            actor=actor, action="scim.credential_revoked", workspace=credential.workspace,
            target_type="scim_credential", target_id=credential.pk, target_label=credential.name,
            details={"kind": credential.kind, "key_id": credential.key_id},
        )
    return credential


@transaction.atomic
def scim_set_enabled(*, workspace: Workspace, enabled: bool, actor: Actor) -> Workspace:
    require_capability(actor, workspace, Cap.SETTINGS_MANAGE)
    if workspace.scim_enabled != enabled:
        workspace.scim_enabled = enabled
        workspace.save(update_fields=["scim_enabled"])
        record_event(
            actor=actor, action="scim.enabled" if enabled else "scim.disabled", workspace=workspace,
            target_type="workspace", target_id=workspace.pk, target_label=workspace.slug,
            details={"before": {"scim_enabled": not enabled}, "after": {"scim_enabled": enabled}},
        )
    return workspace
