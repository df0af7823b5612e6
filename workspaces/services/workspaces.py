"""Workspaces: creating one, its policy flags, its 2FA requirement and its sign-ins' lifetime; the global account
behind a member."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from audit.record import Actor, record_event

from ..exceptions import AlreadyExists, NotAllowed, ServiceError
from ..models import Membership, User, Workspace
from ..roles import Cap, Role
from ._common import lock_workspace, member_target, require_capability

# Bounds of a workspace's sign-in lifetime: long enough to finish a task, short of a month.
MIN_SESSION_MAX_AGE = 15 * 60
MAX_SESSION_MAX_AGE = 30 * 86400
# Bounds of how long an SSO sign-in authorises a member's personal API keys in a SAML-only workspace: at least an
# hour (a key that lapses mid-task helps nobody), at most 90 days (beyond that the IdP's say-so is stale).
MIN_API_KEY_SSO_WINDOW = 3600
MAX_API_KEY_SSO_WINDOW = 90 * 86400


def user_get_or_create(*, email: str, full_name: str = "", password: str | None = None) -> tuple[User, bool]:
    """The global account for an email (matched case-insensitively). Never changes an existing one."""
    email = User.objects.normalize_email(email)
    existing = User.objects.filter(email__iexact=email).first()
    if existing is not None:
        return existing, False
    return User.objects.create_user(email=email, password=password, full_name=full_name), True


@transaction.atomic
def workspace_create(*, slug: str, name: str, owner: User, actor: Actor) -> Workspace:
    """Create a workspace; its creator becomes its first Owner."""
    slug = slug.strip().lower()
    if Workspace.objects.filter(slug=slug).exists():
        raise AlreadyExists(f"The workspace slug {slug!r} is taken. Choose another.", field="slug")
    workspace = Workspace(slug=slug, name=name.strip() or slug)
    workspace.full_clean()
    workspace.save()
    record_event(
        actor=actor, action="workspace.created", workspace=workspace,
        target_type="workspace", target_id=workspace.pk, target_label=slug,
        details={"name": workspace.name, "owner": owner.email},
    )
    membership = Membership.objects.create(workspace=workspace, user=owner, role=Role.OWNER)
    record_event(
        actor=actor, action="member.created", workspace=workspace, **member_target(membership),
        details={"role": Role.OWNER, "source": "workspace_create"},
    )
    return workspace


@transaction.atomic
def workspace_update_policy(*, workspace: Workspace, actor: Actor, **changes: Any) -> Workspace:
    """Change policy flags (name, JIT, default role...). SAML-only has its own guarded path in ``saml``."""
    require_capability(actor, workspace, Cap.SETTINGS_MANAGE)
    allowed = {"name", "jit_provisioning", "default_role", "require_2fa", "audit_retention_days", "scim_may_grant_owner",
               "api_may_override_idp"}
    unknown = set(changes) - allowed
    if unknown:
        raise ServiceError(f"Unknown setting(s): {', '.join(sorted(unknown))}")
    before = {k: getattr(workspace, k) for k in changes}
    for key, value in changes.items():
        setattr(workspace, key, value)
    workspace.full_clean()
    workspace.save(update_fields=list(changes))
    record_event(
        actor=actor, action="workspace.settings_changed", workspace=workspace,
        target_type="workspace", target_id=workspace.pk, target_label=workspace.slug,
        details={"before": before, "after": changes},
    )
    return workspace


@transaction.atomic
def workspace_set_require_2fa(*, workspace: Workspace, required: bool, actor: Actor) -> Workspace:
    """Owners require (or stop requiring) a second factor for password logins into their workspace.

    The Owner who switches it on must have 2FA themselves (no one locks themselves out by surprise).
    Password sessions without a second factor lose this workspace on their next request (``access``).
    """
    require_capability(actor, workspace, Cap.SETTINGS_MANAGE)
    workspace = lock_workspace(workspace)
    if workspace.require_2fa == required:
        return workspace
    if required and actor.kind == "user" and actor.membership is not None and not actor.membership.user.two_factor_enabled:
        raise NotAllowed("Turn on two-factor authentication for your own account before requiring it.")
    workspace.require_2fa = required
    workspace.save(update_fields=["require_2fa"])
    record_event(
        actor=actor, action="workspace.2fa_requirement_changed", workspace=workspace,
        target_type="workspace", target_id=workspace.pk, target_label=workspace.slug,
        details={"before": {"require_2fa": not required}, "after": {"require_2fa": required}},
    )
    return workspace


@transaction.atomic
def workspace_set_session_max_age(*, workspace: Workspace, max_age: int | None, actor: Actor) -> Workspace:
    """How long a sign-in into this workspace lasts (seconds; None: the portal's default, SESSION_COOKIE_AGE).

    Applies at once to every session, including those already signed in: a shorter lifetime ends older
    sign-ins on their next request."""
    require_capability(actor, workspace, Cap.SETTINGS_MANAGE)
    if max_age is not None and not MIN_SESSION_MAX_AGE <= max_age <= MAX_SESSION_MAX_AGE:
        raise ServiceError(
            f"A sign-in must last between {MIN_SESSION_MAX_AGE // 60} minutes and {MAX_SESSION_MAX_AGE // 86400} days.",
            field="max_age",
        )
    workspace = lock_workspace(workspace)
    if workspace.session_max_age == max_age:
        return workspace
    before = workspace.session_max_age
    workspace.session_max_age = max_age
    workspace.save(update_fields=["session_max_age"])
    record_event(
        actor=actor, action="workspace.session_lifetime_changed", workspace=workspace,
        target_type="workspace", target_id=workspace.pk, target_label=workspace.slug,
        details={"before_seconds": before, "after_seconds": max_age},
    )
    return workspace


@transaction.atomic
def workspace_sign_everyone_out(*, workspace: Workspace, actor: Actor) -> Workspace:
    """End every sign-in into this workspace (web sessions; API keys and SCIM credentials are not sessions and
    keep working). Everyone, the acting Owner included, signs in again; other workspaces' sign-ins are untouched."""
    require_capability(actor, workspace, Cap.SETTINGS_MANAGE)
    workspace = lock_workspace(workspace)
    workspace.sessions_valid_after = timezone.now()
    workspace.save(update_fields=["sessions_valid_after"])
    record_event(
        actor=actor, action="workspace.signed_everyone_out", workspace=workspace,
        target_type="workspace", target_id=workspace.pk, target_label=workspace.slug,
        details={"at": workspace.sessions_valid_after.isoformat()},
    )
    return workspace


@transaction.atomic
def workspace_set_api_key_sso_window(*, workspace: Workspace, window: int, actor: Actor) -> Workspace:
    """How long (seconds) a member's sign-in through the workspace's IdP authorises their personal API keys while
    the workspace enforces SAML-only (``workspaces.policy.personal_key_sso_problem``).

    Applies at once: a shorter window refuses, at their next request, keys whose member signed in longer ago."""
    require_capability(actor, workspace, Cap.SETTINGS_MANAGE)
    if not MIN_API_KEY_SSO_WINDOW <= window <= MAX_API_KEY_SSO_WINDOW:
        raise ServiceError(
            f"An SSO sign-in must authorise API keys for between {MIN_API_KEY_SSO_WINDOW // 3600} hour and "
            f"{MAX_API_KEY_SSO_WINDOW // 86400} days.",
            field="window",
        )
    workspace = lock_workspace(workspace)
    if workspace.api_key_sso_window == window:
        return workspace
    before = workspace.api_key_sso_window
    workspace.api_key_sso_window = window
    workspace.save(update_fields=["api_key_sso_window"])
    record_event(
        actor=actor, action="workspace.api_key_sso_window_changed", workspace=workspace,
        target_type="workspace", target_id=workspace.pk, target_label=workspace.slug,
        details={"before_seconds": before, "after_seconds": window},
    )
    return workspace
