"""Reads for the provisioning page, always scoped by workspace."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import QuerySet
from django.utils import timezone
from oauth2_provider.models import refresh_token_expire_timedelta

from workspaces.models import Workspace

from .models import CredentialKind, ScimCredential


def credentials_of(workspace: Workspace) -> QuerySet[ScimCredential]:
    """Every SCIM credential of the workspace, newest first, with OAuth client details (one query)."""
    return (
        ScimCredential.objects.filter(workspace=workspace)
        .select_related("oauth_application", "created_by")
        .order_by("-created_at", "-id")
    )


def credential_of(workspace: Workspace, credential_id: int) -> ScimCredential | None:
    """One credential by id, only if it belongs to this workspace (404 otherwise, at the view)."""
    return credentials_of(workspace).filter(pk=credential_id).first()


@dataclass(frozen=True)
class OAuthAuthorisation:
    """Where an authorization-code client's approval stands, for the credentials list.

    ``state``: ``awaiting`` (no Owner has approved it yet), ``authorised`` (a live refresh token from an Owner
    who still may approve), ``owner_inactive`` (its tokens died with the approving Owner's membership, role or
    a credential revocation), ``lapsed`` (every token expired or was revoked). All but ``authorised`` need an
    active Owner to authorise the IdP again.
    """

    state: str
    approver: str = ""


def oauth_authorisation(credential: ScimCredential) -> OAuthAuthorisation | None:
    """The approval state of an authorization-code OAuth credential (None for every other credential)."""
    from oauth2_provider.models import RefreshToken

    from .oauth import approver_may_authorize

    app = credential.oauth_application
    if credential.kind != CredentialKind.OAUTH or app is None or app.authorization_grant_type != "authorization-code":
        return None
    tokens = RefreshToken.objects.filter(application=app)
    live = (
        tokens.filter(revoked__isnull=True, access_token__isnull=False).select_related("user", "access_token")
        .order_by("-created").first()
    )
    expire = refresh_token_expire_timedelta()
    if live is not None and expire is not None and live.access_token.expires + expire <= timezone.now():
        live = None
    if live is None:
        return OAuthAuthorisation("lapsed" if tokens.exists() else "awaiting")
    if not approver_may_authorize(live.user_id, credential.workspace_id, live.created):
        return OAuthAuthorisation("owner_inactive", live.user.email)
    return OAuthAuthorisation("authorised", live.user.email)


def credentials_with_state(workspace: Workspace) -> list[ScimCredential]:
    """``credentials_of``, each with ``oauth_state`` (``oauth_authorisation``; None for non-OAuth credentials)."""
    credentials = list(credentials_of(workspace))
    for credential in credentials:
        credential.oauth_state = oauth_authorisation(credential)  # type: ignore[attr-defined]
    return credentials
