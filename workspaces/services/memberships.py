"""Memberships: adding a person to a workspace, their role, visibility, auditor flag, deactivation and removal."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.record import Actor, record_event

from ..consent import consent_required
from ..deprovisioning.outbox import deprovision_job_add
from ..exceptions import AlreadyExists, NotAllowed, ServiceError
from ..grants import GrantMethod
from ..models import DeprovisionCause, Membership, Visibility, Workspace
from ..ownership import is_directory, require_portal_may_change
from ..roles import Cap, Role, can, may_change_role, may_manage_member
from ._common import (
    acting_membership,
    ensure_other_active_owner,
    member_target,
    require_capability,
    touch,
)
from .invitations import invitation_issue
from .workspaces import user_get_or_create


@transaction.atomic
def membership_add(
    *,
    workspace: Workspace,
    email: str,
    actor: Actor,
    role: str = Role.MEMBER,
    full_name: str = "",
    password: str | None = None,
    visibility: str = Visibility.PUBLIC,
    source: str = "ui",
    invite: bool = False,
    **fields: Any,
) -> Membership:
    """Add a person to a workspace, creating their global account if needed.

    An existing account gains a membership here and nothing else: no authority elsewhere,
    and its email and password are left as they are. When ``workspaces.consent`` says the account
    is someone's already, the membership is created pending consent and an invitation goes to the
    account's address: until the person accepts, it opens nothing and shows nothing of the account.
    ``invite``: a new account without a password gets an invitation to choose one (the member page).
    """
    require_capability(actor, workspace, Cap.MEMBER_MANAGE)
    if role not in Role.values:
        raise ServiceError(f"Unknown role {role!r}. Use one of: {', '.join(Role.values)}.", field="role")
    acting = acting_membership(actor, workspace)
    if role == Role.OWNER and actor.kind == "user" and not can(acting, Cap.MEMBER_MAKE_OWNER):
        raise NotAllowed("Only Owners can make Owners.", field="role")
    user, created = user_get_or_create(email=email, full_name=full_name, password=password)
    if Membership.objects.filter(workspace=workspace, user=user).exists():
        raise AlreadyExists(f"{user.email} is already a member of this workspace.", field="email")
    pending = consent_required(workspace=workspace, user=user, created=created)
    try:
        with transaction.atomic():
            membership = Membership.objects.create(
                workspace=workspace, user=user, role=role, visibility=visibility,
                consent_pending_since=timezone.now() if pending else None, **fields
            )
    except IntegrityError as exc:
        raise AlreadyExists("A member with this userName already exists in this workspace.", field="email") from exc
    record_event(
        actor=actor, action="member.created", workspace=workspace, **member_target(membership),
        details={"role": role, "visibility": visibility, "source": source, "new_account": created,
                 "consent_pending": pending},
    )
    if pending or (invite and not user.has_usable_password()):
        invitation_issue(membership=membership, actor=actor)
    return membership


@transaction.atomic
def membership_change_role(*, membership: Membership, role: str, actor: Actor) -> Membership:
    """Change an org role. Only Owners make or unmake Owners; the last active Owner keeps the role."""
    workspace = membership.workspace
    require_capability(actor, workspace, Cap.MEMBER_MANAGE)
    if role not in Role.values:
        raise ServiceError(f"Unknown role {role!r}. Use one of: {', '.join(Role.values)}.", field="role")
    acting = acting_membership(actor, workspace)
    if actor.kind == "user" and not may_change_role(acting, membership, role):
        raise NotAllowed("Only Owners can make Owners or change an Owner's role.", field="role")
    if membership.role == role:
        return membership
    require_portal_may_change(actor, membership, "role")
    if membership.role == Role.OWNER and membership.is_active:
        ensure_other_active_owner(membership)
    before = membership.role
    membership.role = role
    membership.role_from_idp = is_directory(actor)
    touch(membership, "role", "role_from_idp")
    record_event(
        actor=actor, action="member.role_changed", workspace=workspace, **member_target(membership),
        details={"before": {"role": before}, "after": {"role": role}},
    )
    return membership


@transaction.atomic
def membership_set_visibility(*, membership: Membership, visibility: str, actor: Actor) -> Membership:
    workspace = membership.workspace
    acting = acting_membership(actor, workspace)
    if not (acting is not None and acting.pk == membership.pk):
        require_capability(actor, workspace, Cap.MEMBER_MANAGE)
    if visibility not in Visibility.values:
        raise ServiceError(f"Unknown visibility {visibility!r}.", field="visibility")
    if membership.visibility == visibility:
        return membership
    before = membership.visibility
    membership.visibility = visibility
    touch(membership, "visibility")
    record_event(
        actor=actor, action="member.visibility_changed", workspace=workspace, **member_target(membership),
        details={"before": {"visibility": before}, "after": {"visibility": visibility}},
    )
    return membership


@transaction.atomic
def membership_set_auditor(*, membership: Membership, is_auditor: bool, actor: Actor) -> Membership:
    """Give or take the read-only auditor permission (Owners only)."""
    require_capability(actor, membership.workspace, Cap.MEMBER_SET_AUDITOR)
    if membership.is_auditor == is_auditor:
        return membership
    membership.is_auditor = is_auditor
    touch(membership, "is_auditor")
    record_event(
        actor=actor, action="member.auditor_changed", workspace=membership.workspace,
        **member_target(membership),
        details={"before": {"is_auditor": not is_auditor}, "after": {"is_auditor": is_auditor}},
    )
    return membership


def _check_may_manage(actor: Actor, membership: Membership) -> None:
    require_capability(actor, membership.workspace, Cap.MEMBER_MANAGE)
    acting = acting_membership(actor, membership.workspace)
    if actor.kind == "user" and not may_manage_member(acting, membership):
        raise NotAllowed("Only Owners can deactivate or remove an Owner.")


@transaction.atomic
def membership_deactivate(*, membership: Membership, actor: Actor, reason: str = "") -> Membership:
    """Deactivate at commit: the grant check refuses the member's very next request.

    Credentials are revoked afterwards from the outbox (``DeprovisionJob``, written in this
    transaction) by a Celery task queued on commit and, if that is lost, by the beat sweeper.
    """
    _check_may_manage(actor, membership)
    if not membership.is_active:
        return membership
    if membership.role == Role.OWNER:
        ensure_other_active_owner(membership)
    now = timezone.now()
    membership.is_active = False
    membership.deactivated_at = now
    membership.credentials_valid_after = now
    touch(membership, "is_active", "deactivated_at", "credentials_valid_after")
    record_event(
        actor=actor, action="member.deactivated", workspace=membership.workspace, **member_target(membership),
        details={"before": {"active": True}, "after": {"active": False}, "reason": reason},
    )
    # Outbox row in this transaction; the task is enqueued on commit (see deprovisioning.outbox).
    deprovision_job_add(membership=membership, cause=DeprovisionCause.DEACTIVATED)
    return membership


@transaction.atomic
def membership_reactivate(*, membership: Membership, actor: Actor) -> Membership:
    """Restore the membership. Credentials revoked at deactivation stay revoked."""
    _check_may_manage(actor, membership)
    if membership.is_active:
        return membership
    require_portal_may_change(actor, membership, "reactivate")
    membership.is_active = True
    membership.deactivated_at = None
    touch(membership, "is_active", "deactivated_at")
    record_event(
        actor=actor, action="member.reactivated", workspace=membership.workspace, **member_target(membership),
        details={"before": {"active": False}, "after": {"active": True}},
    )
    return membership


@transaction.atomic
def membership_remove(*, membership: Membership, actor: Actor) -> None:
    """Remove a person from the workspace (their global account stays)."""
    _check_may_manage(actor, membership)
    if membership.role == Role.OWNER and membership.is_active:
        ensure_other_active_owner(membership)
    target = member_target(membership)  # before delete(), which clears the pk
    # The person's session grants for this workspace outlive the row: revoke them through the outbox too.
    deprovision_job_add(membership=membership, cause=DeprovisionCause.REMOVED)
    # The row goes before the event is recorded, as in every membership change: the SCIM list index
    # row (bumped on delete) is then always locked before the audit chain head (scim/list_index.py).
    membership.delete()
    record_event(
        actor=actor, action="member.removed", workspace=membership.workspace, **target,
        details={"role": membership.role},
    )


@transaction.atomic
def membership_record_login(*, membership: Membership, actor: Actor, action: str = "auth.login_succeeded") -> None:
    """Record a successful login into one workspace.

    A login the workspace's IdP vouched for (a verified SAML assertion: ``actor.auth_method`` ``saml``; never a
    password or a break-glass code) also stamps ``last_sso_at``, which authorises the member's personal API keys
    while the workspace enforces SAML-only (``workspaces.policy.personal_key_sso_problem``)."""
    now = timezone.now()
    fields = {"last_login_at": now}
    if actor.auth_method == GrantMethod.SAML:
        fields["last_sso_at"] = membership.last_sso_at = now
    Membership.objects.filter(pk=membership.pk).update(**fields)
    record_event(actor=actor, action=action, workspace=membership.workspace, **member_target(membership))
