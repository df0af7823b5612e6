"""SCIM authentication: a credential resolves to exactly one workspace, once, up front.

The tenant comes from the credential's own record, never from the caller: a valid
credential of workspace A presented on workspace B's URL is a plain 401.
Three modes: ``Authorization: Bearer gs_<key id>_<secret>`` (a named bearer token),
HTTP Basic ``<key id>:<secret>``, and ``Authorization: Bearer <OAuth access token>`` issued by
django-oauth-toolkit to a client bound to the workspace (scope ``scim:<workspace id>``).
Secrets are compared as SHA-256 hashes in constant time; empty secrets never match.
Repeated failures from one address are rate limited (``scim.ratelimit``): 429 with ``retry_after``; a valid
credential is accepted whatever others failed from its address.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import NoReturn

from django.http import HttpRequest

from audit.middleware import client_ip
from audit.record import Actor
from config.ratelimit import Counter
from workspaces.credentials import (
    authorization,
    challenge,
    decode_basic,
    record_use,
    secret_matches,
    split_token,
    www_authenticate,
)
from workspaces.models import Workspace

from . import credential_cache, ratelimit
from .models import CredentialKind, ScimCredential

BEARER_PREFIX = "gs_"
AUTH_METHOD = {
    CredentialKind.BEARER: "scim_bearer",
    CredentialKind.BASIC: "scim_basic",
    CredentialKind.OAUTH: "oauth",
}
# Hashing input is bounded: nobody's credential is longer, and a megabyte header costs nothing to refuse.
_MAX_CREDENTIAL_LENGTH = 4096
_INVALID = "Invalid, expired or revoked credentials."
# What a 401 offers: a bearer token (ours or an OAuth access token, RFC 6750) or HTTP Basic (RFC 7617).
CHALLENGE = www_authenticate(challenge("Bearer", realm="SCIM"), challenge("Basic", realm="SCIM", charset="UTF-8"))

class ScimAuthError(Exception):
    """``status`` 401 (no or bad credential), 403 (SCIM switched off for the workspace) or
    429 (too many failures: ``retry_after`` seconds, for the ``Retry-After`` header).

    ``headers`` lists the HTTP headers the SCIM error response should carry.
    """

    def __init__(self, status: int, detail: str, *, retry_after: int | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.retry_after = retry_after

    @property
    def headers(self) -> dict[str, str]:
        if self.status == 429 and self.retry_after is not None:
            return {"Retry-After": str(int(self.retry_after))}
        if self.status == 401:
            return {"WWW-Authenticate": CHALLENGE}
        return {}


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
    return split_token(token, BEARER_PREFIX)


@dataclass(frozen=True)
class _Presented:
    kind: str  # "bearer", "basic", "oauth" or "" (nothing usable)
    key_id: str = ""
    secret: str = ""


def _parse_header(header: str) -> _Presented:
    scheme, value = authorization(header)
    if not value or len(value) > _MAX_CREDENTIAL_LENGTH:
        return _Presented("")
    if scheme == "bearer":
        if value.startswith(BEARER_PREFIX):
            key_id, token = split_bearer_token(value)
            return _Presented(CredentialKind.BEARER, key_id, token) if key_id else _Presented("")
        return _Presented(CredentialKind.OAUTH, "", value)
    if scheme == "basic":
        key_id, secret = decode_basic(value) or ("", "")
        return _Presented(CredentialKind.BASIC, key_id, secret) if key_id and secret else _Presented("")
    return _Presented("")


def _resolve_key_credential(presented: _Presented, cached: ScimCredential | None = None) -> ScimCredential | None:
    """Bearer and Basic: look up by key id, compare the SHA-256 of the secret in constant time.

    ``cached`` is the row from ``scim.credential_cache`` (cleared on revoke, rotate, SCIM switched off);
    the secret is checked against it exactly as against a fresh row.
    """
    credential = cached
    if credential is None:
        credential = (
            ScimCredential.objects.select_related("workspace")
            .filter(key_id=presented.key_id[:64], kind=presented.kind)
            .first()
        )
        if credential is not None and credential.is_live:
            credential_cache.remember(credential)
    # Hashed and compared even when nothing was found, so timing does not reveal which key ids exist.
    if not secret_matches(presented.secret, credential.secret_hash if credential is not None else None):
        return None
    return credential


def _resolve_oauth_credential(token: str) -> ScimCredential | None:
    """An access token issued by django-oauth-toolkit to a live SCIM client, still valid, with its workspace's scope."""
    from oauth2_provider.models import get_access_token_model

    from .oauth import approver_may_authorize, workspace_scope

    checksum = hashlib.sha256(token.encode("utf-8")).hexdigest()
    access_token = (
        get_access_token_model().objects
        .select_related("application__scim_credential__workspace")
        .filter(token_checksum=checksum)
        .first()
    )
    if access_token is None or access_token.is_expired() or access_token.application is None:
        return None
    credential = getattr(access_token.application, "scim_credential", None)
    if credential is None or credential.kind != CredentialKind.OAUTH:
        return None
    if workspace_scope(credential.workspace_id) not in access_token.scope.split():
        return None
    if not approver_may_authorize(access_token.user_id, credential.workspace_id, access_token.created):
        # The Owner who approved this client left, lost the role, or had their credentials revoked.
        return None
    return credential


def _refuse_failure(counters: list[Counter], retry_after: int | None, detail: str) -> NoReturn:
    """A failed authentication: 429 when its address is already at its limit (not counted again), else 401
    and one more failure counted against the address."""
    if retry_after is not None:
        raise ScimAuthError(429, f"Too many failed authentications. Retry after {retry_after} seconds.",
                            retry_after=retry_after)
    ratelimit.limiter.hit(counters)
    raise ScimAuthError(401, detail)


def authenticate_scim_request(request: HttpRequest, slug: str) -> ScimPrincipal:
    """Resolve the request's credential for workspace ``slug`` or raise ``ScimAuthError``."""
    presented = _parse_header(request.META.get("HTTP_AUTHORIZATION", ""))
    ip = client_ip(request)
    cache_key = credential_cache.cache_key(presented.kind, presented.key_id) if presented.key_id else ""
    counters = ratelimit.counters(ip, slug)
    # One cache round trip: the failure counters and the cached credential together.
    verdict = ratelimit.limiter.check(counters, also=[cache_key] if cache_key else ())
    if not presented.kind:
        _refuse_failure(counters, verdict.retry_after,
                        "Missing or malformed credentials. Send 'Authorization: Bearer <token>' or HTTP Basic.")
    if presented.kind == CredentialKind.OAUTH:
        credential = _resolve_oauth_credential(presented.secret)
    else:
        hit = verdict.values.get(cache_key)
        credential = _resolve_key_credential(presented, hit if isinstance(hit, ScimCredential) else None)
    if credential is None or not credential.is_live or credential.workspace.slug != slug:
        _refuse_failure(counters, verdict.retry_after, _INVALID)
    # A valid credential is accepted even from an address at its limit: the failures counted there may be a
    # stranger's (the counters are per address, and an address can be shared).
    if not credential.workspace.scim_enabled:
        raise ScimAuthError(403, "SCIM provisioning is switched off for this workspace. An Owner can enable it on the provisioning page.")
    if record_use(credential) and credential.kind != CredentialKind.OAUTH:
        credential_cache.remember(credential)
    return ScimPrincipal(workspace=credential.workspace, credential=credential, auth_method=AUTH_METHOD[credential.kind])  # type: ignore[index]  # kind is a CredentialKind value
