"""API keys: personal keys (a member's rights in one workspace) and workspace service keys."""

from __future__ import annotations

import secrets
from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from audit.record import Actor, record_decision, record_event
from config.ratelimit import FixedWindowLimiter

from ..credentials import hash_secret
from ..exceptions import NotAllowed, ServiceError
from ..models import ApiKey, Membership, Workspace
from ..roles import ApiScope, Cap, can
from ._common import acting_membership, actor_for_membership, require_capability

API_KEY_PREFIX = "gh_"

# A script retrying with a refused key must not fill the audit log: one event per key and hour (the limiter reads
# its window from settings by name; this one is not an environment setting, so the default applies).
_sso_refusals = FixedWindowLimiter("apikeysso", window_setting="API_KEY_SSO_REFUSAL_WINDOW", default_window=3600)


@transaction.atomic
def api_key_create(
    *,
    workspace: Workspace,
    name: str,
    actor: Actor,
    membership: Membership | None = None,
    scopes: Iterable[str] = (),
) -> tuple[ApiKey, str]:
    """Create a key and return it with its plain value, which is never stored and never shown again."""
    name = name.strip()
    if not name:
        raise ServiceError("Give the key a name so you can recognise it later.", field="name")
    acting = acting_membership(actor, workspace)
    if membership is None:
        require_capability(actor, workspace, Cap.APIKEY_SERVICE)
    elif actor.kind == "user" and (acting is None or acting.pk != membership.pk or not can(acting, Cap.APIKEY_OWN)):
        raise NotAllowed("You can create personal keys only for yourself.")
    if membership is not None and (membership.workspace_id != workspace.pk or not membership.is_active):
        raise ServiceError("Personal keys need an active member of this workspace.")
    scopes = sorted(set(scopes))
    unknown = set(scopes) - set(ApiScope.values)
    if unknown:
        raise ServiceError(f"Unknown scope(s): {', '.join(sorted(unknown))}. Use: {', '.join(ApiScope.values)}.", field="scopes")
    if membership is None and not scopes:
        raise ServiceError("A service key needs at least one scope.", field="scopes")
    secret = secrets.token_urlsafe(32)
    prefix = secrets.token_hex(4)
    plain = f"{API_KEY_PREFIX}{prefix}_{secret}"
    key = ApiKey.objects.create(
        workspace=workspace, membership=membership, name=name, prefix=prefix,
        key_hash=hash_secret(plain), scopes=scopes,
        created_by=membership.user if membership else (acting.user if acting else None),
    )
    record_event(
        actor=actor, action="api_key.created", workspace=workspace,
        target_type="api_key", target_id=key.pk, target_label=f"{name} ({prefix})",
        details={"kind": "personal" if membership else "service", "owner": membership.email if membership else "", "scopes": key.scopes},
    )
    return key, plain


@transaction.atomic
def api_key_revoke(*, api_key: ApiKey, actor: Actor) -> ApiKey:
    workspace = api_key.workspace
    acting = acting_membership(actor, workspace)
    own = acting is not None and api_key.membership_id == acting.pk
    if not own:
        require_capability(actor, workspace, Cap.APIKEY_SERVICE if api_key.is_service_key else Cap.MEMBER_MANAGE)
    if api_key.revoked_at is not None:
        return api_key
    api_key.revoked_at = timezone.now()
    api_key.save(update_fields=["revoked_at"])
    record_event(
        actor=actor, action="api_key.revoked", workspace=workspace,
        target_type="api_key", target_id=api_key.pk, target_label=f"{api_key.name} ({api_key.prefix})",
    )
    return api_key


def api_key_sso_refusal_record(*, api_key: ApiKey) -> None:
    """``api_key.sso_refused``: a personal key was refused because its member has not signed in through the
    SAML-only workspace's IdP within the workspace's window (``policy.personal_key_sso_problem``).

    Recorded once per key and window (an hour), not once per attempt (the same aggregation as throttled sign-in
    failures): Owners see which keys stopped and for whom, without a retry loop flooding the log. A decision that
    changes nothing: ``record_decision`` appends the event on its own. ``api_key`` carries its member and workspace
    (as the API key check reads them).
    """
    membership = api_key.membership
    assert membership is not None, "service keys are never refused for SSO"
    if not _sso_refusals.first_in_window(f"{api_key.pk}|{api_key.prefix}"):
        return
    workspace = api_key.workspace
    record_decision(
        actor=actor_for_membership(membership, "api_key"), action="api_key.sso_refused", workspace=workspace,
        target_type="api_key", target_id=api_key.pk, target_label=f"{api_key.name} ({api_key.prefix})",
        details={
            "owner": membership.user.email,
            "last_sso_at": membership.last_sso_at.isoformat() if membership.last_sso_at else None,
            "window_seconds": workspace.api_key_sso_window,
        },
    )
