"""SCIM authentication: a credential resolves to exactly one workspace, once, up front.

The tenant comes from the credential's own record, never from the caller: a valid
credential of workspace A presented on workspace B's URL is a plain 401.
Secrets are compared as SHA-256 hashes in constant time; empty secrets never match.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from dataclasses import dataclass

from django.http import HttpRequest
from django.utils import timezone

from audit.record import Actor
from workspaces.models import Workspace
from workspaces.services import hash_secret

from .models import CredentialKind, ScimCredential

BEARER_PREFIX = "gs_"
AUTH_METHOD = {
    CredentialKind.BEARER: "scim_bearer",
    CredentialKind.BASIC: "scim_basic",
    CredentialKind.OAUTH: "oauth",
}


class ScimAuthError(Exception):
    """``status`` 401 (no or bad credential) or 403 (SCIM switched off for the workspace)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass(frozen=True)
class ScimPrincipal:
    workspace: Workspace
    credential: ScimCredential
    auth_method: str

    @property
    def actor(self) -> Actor:
        return Actor(
            kind="scim_client",
            id=str(self.credential.pk),
            label=f"SCIM: {self.credential.name}",
            auth_method=self.auth_method,
        )


def split_bearer_token(token: str) -> tuple[str, str]:
    """``gs_<key_id>_<secret>`` -> (key_id, full token). Anything else -> ("", "")."""
    if not token.startswith(BEARER_PREFIX):
        return "", ""
    key_id, sep, secret = token[len(BEARER_PREFIX):].partition("_")
    return (key_id, token) if sep and key_id and secret else ("", "")


def _credentials_from_header(header: str) -> tuple[str, str, tuple[str, ...]]:
    """(key_id, secret to hash, allowed kinds) from an Authorization header."""
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value:
        key_id, token = split_bearer_token(value)
        return key_id, token, (CredentialKind.BEARER,)
    if scheme.lower() == "basic" and value:
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return "", "", ()
        key_id, sep, secret = decoded.partition(":")
        return (key_id, secret, (CredentialKind.BASIC,)) if sep and key_id and secret else ("", "", ())
    return "", "", ()


def authenticate_scim_request(request: HttpRequest, slug: str) -> ScimPrincipal:
    """Resolve the request's credential for workspace ``slug`` or raise ``ScimAuthError``."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    key_id, secret, kinds = _credentials_from_header(header)
    if not key_id or not secret:
        raise ScimAuthError(401, "Missing or malformed credentials. Send 'Authorization: Bearer <token>' or HTTP Basic.")
    credential = (
        ScimCredential.objects.select_related("workspace").filter(key_id=key_id, kind__in=kinds).first()
    )
    # Hash even when nothing was found so timing does not reveal which key ids exist.
    presented = hash_secret(secret)
    expected = credential.secret_hash if credential is not None else hash_secret("")
    if credential is None or not hmac.compare_digest(presented, expected) or not credential.is_live:
        raise ScimAuthError(401, "Invalid, expired or revoked credentials.")
    if credential.workspace.slug != slug:
        raise ScimAuthError(401, "Invalid, expired or revoked credentials.")
    if not credential.workspace.scim_enabled:
        raise ScimAuthError(403, "SCIM provisioning is switched off for this workspace. An Owner can enable it on the provisioning page.")
    now = timezone.now()
    if credential.last_used_at is None or (now - credential.last_used_at).total_seconds() > 60:
        # At most one write a minute per credential: last-used is for humans, not a hot-path write.
        ScimCredential.objects.filter(pk=credential.pk).update(last_used_at=now)
    return ScimPrincipal(workspace=credential.workspace, credential=credential, auth_method=AUTH_METHOD[credential.kind])
