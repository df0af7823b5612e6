"""Global accounts: support disables and re-enables them; the login session index used for revocation."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from audit.record import Actor, record_event

from ..deprovisioning.outbox import deprovision_job_add
from ..models import DeprovisionCause, DeprovisionJob, Membership, User, UserSession
from ._common import member_target


@transaction.atomic
def user_disable(*, user: User, actor: Actor, reason: str = "") -> list[DeprovisionJob]:
    """Support disables a global account: it can no longer sign in anywhere, and every workspace it
    belongs to revokes its credentials (one outbox job each, audited in that workspace).

    Memberships keep their state (the workspaces own it); ``credentials_valid_after`` kills every
    existing session grant at once, so re-enabling the account does not revive them. Callers
    (the Django admin action, ``manage.py disable_user``) are restricted to support staff.
    """
    user = User.objects.select_for_update().get(pk=user.pk)
    if not user.is_active:
        return []
    now = timezone.now()
    user.is_active = False
    user.save(update_fields=["is_active"])
    record_event(
        actor=actor, action="user.disabled", workspace=None,
        target_type="user", target_id=user.pk, target_label=user.email, details={"reason": reason},
    )
    memberships = list(Membership.objects.select_related("workspace", "user").filter(user=user).order_by("pk"))
    Membership.objects.filter(pk__in=[m.pk for m in memberships]).update(credentials_valid_after=now)
    jobs = []
    for membership in memberships:
        record_event(
            actor=actor, action="member.account_disabled", workspace=membership.workspace,
            **member_target(membership), details={"reason": reason},
        )
        jobs.append(deprovision_job_add(membership=membership, cause=DeprovisionCause.ACCOUNT_DISABLED))
    return jobs


@transaction.atomic
def user_enable(*, user: User, actor: Actor, reason: str = "") -> User:
    """Re-enable a disabled account. Revoked credentials stay revoked; the person signs in again."""
    user = User.objects.select_for_update().get(pk=user.pk)
    if user.is_active:
        return user
    user.is_active = True
    user.save(update_fields=["is_active"])
    record_event(
        actor=actor, action="user.enabled", workspace=None,
        target_type="user", target_id=user.pk, target_label=user.email, details={"reason": reason},
    )
    return user


def user_session_record(*, user: User, session_key: str | None) -> None:
    """Index a new login session so revocation can find it (called by the ``user_logged_in`` receiver)."""
    if session_key:
        UserSession.objects.get_or_create(user=user, session_key=session_key)


def user_session_forget(*, session_key: str | None) -> None:
    if session_key:
        UserSession.objects.filter(session_key=session_key).delete()
