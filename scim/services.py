"""SCIM credential life cycle. Resource changes go through ``workspaces.services``.

Every function checks the actor's right (``settings.manage``) in the credential's workspace
and writes its audit event in the same transaction. Secrets are returned once, never stored.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit.record import Actor, record_event
from workspaces.credentials import hash_secret
from workspaces.exceptions import ServiceError
from workspaces.models import User, Workspace
from workspaces.roles import Cap
from workspaces.services import require_capability

from .auth import BEARER_PREFIX
from .models import CredentialKind, ScimCredential


class OAuthGrant:
    """Which OAuth 2 grant a SCIM client uses (django-oauth-toolkit allows one per client)."""

    AUTHORIZATION_CODE = "authorization-code"  # Okta's "OAuth 2" mode: an Owner approves
    CLIENT_CREDENTIALS = "client-credentials"  # Entra ID's OAuth client-credentials mode
    CHOICES = [
        (AUTHORIZATION_CODE, "Authorization code (an Owner approves; Okta)"),
        (CLIENT_CREDENTIALS, "Client credentials (Microsoft Entra ID)"),
    ]


def _credential_target(credential: ScimCredential) -> dict[str, Any]:
    return {"target_type": "scim_credential", "target_id": credential.pk, "target_label": credential.name}


def _creator(actor: Actor) -> User | None:
    return actor.membership.user if actor.kind == "user" and actor.membership is not None else None


def _clean_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise ServiceError("Name the credential (for example “Okta production”).", field="name")
    if len(name) > 100:
        raise ServiceError("Keep the name under 100 characters.", field="name")
    return name


def _new_key_credential(*, workspace: Workspace, kind: str, name: str, actor: Actor,
                        rotated_from: ScimCredential | None = None) -> tuple[ScimCredential, str]:
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
        created_by=_creator(actor), rotated_from=rotated_from,
    )
    return credential, shown


def _clean_redirect_uris(redirect_uris: str, grant: str) -> str:
    uris = " ".join((redirect_uris or "").split())
    if grant == OAuthGrant.AUTHORIZATION_CODE and not uris:
        raise ServiceError(
            "Enter the redirect URI your identity provider shows for OAuth (Okta's callback URL).",
            field="redirect_uris",
        )
    return uris


def _new_oauth_credential(*, workspace: Workspace, name: str, actor: Actor, grant: str, redirect_uris: str,
                          rotated_from: ScimCredential | None = None) -> tuple[ScimCredential, str]:
    from django.core.exceptions import ValidationError
    from oauth2_provider.models import get_application_model

    if grant not in (OAuthGrant.AUTHORIZATION_CODE, OAuthGrant.CLIENT_CREDENTIALS):
        raise ServiceError("Choose the authorization-code or the client-credentials grant.", field="grant")
    uris = _clean_redirect_uris(redirect_uris, grant)
    Application = get_application_model()  # noqa: N806
    client_secret = secrets.token_urlsafe(48)
    application = Application(
        name=f"SCIM {workspace.slug}: {name}"[:255],
        client_id=secrets.token_urlsafe(24),
        client_secret=client_secret,  # DOT hashes it on save (hash_client_secret=True)
        hash_client_secret=True,
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=grant,
        redirect_uris=uris,
        skip_authorization=False,
        user=None,
    )
    try:
        application.full_clean(exclude=["client_secret"])
    except ValidationError as exc:
        messages = "; ".join(m for msgs in exc.message_dict.values() for m in msgs)
        raise ServiceError(f"Check the redirect URIs: {messages}", field="redirect_uris") from exc
    application.save()
    credential = ScimCredential.objects.create(
        workspace=workspace, kind=CredentialKind.OAUTH, name=name, key_id=application.client_id,
        secret_hash="", oauth_application=application, created_by=_creator(actor), rotated_from=rotated_from,
    )
    return credential, client_secret


@transaction.atomic
def scim_credential_create(*, workspace: Workspace, kind: str, name: str, actor: Actor) -> tuple[ScimCredential, str]:
    """Create a bearer or Basic credential; returns the secret to show once (token, or ``key:secret``)."""
    require_capability(actor, workspace, Cap.SETTINGS_MANAGE)
    name = _clean_name(name)
    if kind not in (CredentialKind.BEARER, CredentialKind.BASIC):
        raise ServiceError("Choose a bearer token or a Basic key and secret.", field="kind")
    credential, shown = _new_key_credential(workspace=workspace, kind=kind, name=name, actor=actor)
    record_event(
        actor=actor, action="scim.credential_created", workspace=workspace, **_credential_target(credential),
        details={"kind": kind, "key_id": credential.key_id},
    )
    return credential, shown


@transaction.atomic
def scim_oauth_client_create(
    *, workspace: Workspace, name: str, actor: Actor, grant: str = OAuthGrant.AUTHORIZATION_CODE,
    redirect_uris: str = "",
) -> tuple[ScimCredential, str]:
    """Create an OAuth 2 client bound to ``workspace``; returns it and its client secret (shown once).

    The client id is ``credential.key_id``. Its tokens carry only the scope ``scim:<workspace id>``.
    """
    require_capability(actor, workspace, Cap.SETTINGS_MANAGE)
    name = _clean_name(name)
    credential, client_secret = _new_oauth_credential(
        workspace=workspace, name=name, actor=actor, grant=grant, redirect_uris=redirect_uris,
    )
    record_event(
        actor=actor, action="scim.credential_created", workspace=workspace, **_credential_target(credential),
        details={"kind": CredentialKind.OAUTH, "key_id": credential.key_id, "grant": grant,
                 "redirect_uris": credential.oauth_application.redirect_uris},  # type: ignore[union-attr]  # an OAuth credential has its application
    )
    return credential, client_secret


def _revoke_oauth_tokens(credential: ScimCredential) -> int:
    """Delete the client's live access tokens and revoke its refresh tokens (DOT's own revoke)."""
    from oauth2_provider.models import get_access_token_model, get_refresh_token_model

    if credential.oauth_application_id is None:
        return 0
    count = 0
    for refresh in get_refresh_token_model().objects.filter(
        application_id=credential.oauth_application_id, revoked__isnull=True
    ):
        refresh.revoke()
        count += 1
    count += get_access_token_model().objects.filter(application_id=credential.oauth_application_id).delete()[0]
    return count


@transaction.atomic
def scim_credential_revoke(*, credential: ScimCredential, actor: Actor) -> ScimCredential:
    """Stop a credential at once (OAuth: its client gets no more tokens and its tokens die)."""
    require_capability(actor, credential.workspace, Cap.SETTINGS_MANAGE)
    credential = ScimCredential.objects.select_for_update(of=("self",)).select_related("workspace").get(pk=credential.pk)
    if credential.revoked_at is None:
        credential.revoked_at = timezone.now()
        credential.save(update_fields=["revoked_at"])
        details: dict[str, Any] = {"kind": credential.kind, "key_id": credential.key_id}
        if credential.kind == CredentialKind.OAUTH:
            details["oauth_tokens_revoked"] = _revoke_oauth_tokens(credential)
        record_event(
            actor=actor, action="scim.credential_revoked", workspace=credential.workspace,
            **_credential_target(credential), details=details,
        )
    return credential


@transaction.atomic
def scim_credential_rotate(
    *, credential: ScimCredential, actor: Actor, overlap: timedelta | None = None,
) -> tuple[ScimCredential, str]:
    """Replace a credential: a new one (same kind and name) now, the old one expires after ``overlap``.

    ``overlap`` defaults to ``SCIM_CREDENTIAL_ROTATION_OVERLAP_HOURS``; zero stops the old one at once.
    Returns the new credential and its secret (shown once). An OAuth client gets a new client id and
    secret (the identity provider must authenticate again); the old client's tokens keep working until
    the old credential expires.
    """
    require_capability(actor, credential.workspace, Cap.SETTINGS_MANAGE)
    # Lock only the credential row (FOR UPDATE cannot cover the nullable side of the OAuth join).
    old = (
        ScimCredential.objects.select_for_update(of=("self",))
        .select_related("workspace", "oauth_application").get(pk=credential.pk)
    )
    if not old.is_live:
        raise ServiceError("Only a live credential can be rotated. Create a new one instead.")
    if overlap is None:
        overlap = timedelta(hours=settings.SCIM_CREDENTIAL_ROTATION_OVERLAP_HOURS)
    if overlap < timedelta(0):
        raise ServiceError("The overlap cannot be negative.")
    workspace = old.workspace
    if old.kind == CredentialKind.OAUTH:
        application = old.oauth_application
        new, shown = _new_oauth_credential(
            workspace=workspace, name=old.name, actor=actor, rotated_from=old,
            grant=application.authorization_grant_type if application else OAuthGrant.CLIENT_CREDENTIALS,
            redirect_uris=application.redirect_uris if application else "",
        )
    else:
        new, shown = _new_key_credential(workspace=workspace, kind=old.kind, name=old.name, actor=actor, rotated_from=old)
    now = timezone.now()
    expires = now + overlap
    if old.expires_at is None or old.expires_at > expires:
        old.expires_at = expires
        old.save(update_fields=["expires_at"])
    record_event(
        actor=actor, action="scim.credential_rotated", workspace=workspace, **_credential_target(old),
        details={"kind": old.kind, "old_key_id": old.key_id, "new_key_id": new.key_id,
                 "new_credential_id": new.pk, "old_expires_at": old.expires_at.isoformat()},
    )
    return new, shown


@transaction.atomic
def scim_set_enabled(*, workspace: Workspace, enabled: bool, actor: Actor) -> Workspace:
    require_capability(actor, workspace, Cap.SETTINGS_MANAGE)
    current = Workspace.objects.select_for_update().values_list("scim_enabled", flat=True).get(pk=workspace.pk)
    workspace.scim_enabled = current
    if current != enabled:
        workspace.scim_enabled = enabled
        workspace.save(update_fields=["scim_enabled"])
        record_event(
            actor=actor, action="scim.enabled" if enabled else "scim.disabled", workspace=workspace,
            target_type="workspace", target_id=workspace.pk, target_label=workspace.slug,
            details={"before": {"scim_enabled": not enabled}, "after": {"scim_enabled": enabled}},
        )
    return workspace
