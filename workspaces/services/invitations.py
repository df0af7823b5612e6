"""Invitations: the emailed link through which a person joins a workspace (issue 14) or consents to it (issue 15).

Two kinds, one model:

- **Consent**: the workspace attached an account that existed before (``workspaces.consent``); the membership is
  pending until the person signs in *as that account* (their normal login, second factor included) and accepts.
- **New account**: a person added in the portal gets a fresh account without a password; the link lets them choose
  one (Django's password validators) and accept.

A token is 256 random bits, sent once by email (after commit) and stored only as its SHA-256
(``workspaces.credentials.hash_secret``, as API keys and SCIM credentials). It works once, until
``INVITATION_TTL_HOURS`` have passed, and not after it is revoked or replaced by a resend.
"""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from audit.record import Actor, record_event

from ..credentials import hash_secret
from ..exceptions import NotAllowed, ServiceError
from ..models import Invitation, Membership, User
from ..roles import Cap
from ..selectors import invitation_problem, invitation_sets_password
from ._common import member_target, require_capability, touch

logger = logging.getLogger(__name__)


class InvitationUnusable(ServiceError):
    """The link was used, revoked, replaced or has expired; the message says to ask an Owner to resend it."""

    status = 410
    code = "invitation_unusable"


def invitation_url(token: str) -> str:
    """The link a person follows to accept."""
    return f"{settings.PUBLIC_BASE_URL}{reverse('invitation_accept', args=[token])}"


def _send(invitation_id: int, token: str) -> None:
    """Send the email (after commit). A mail relay that fails is logged, never turned into a failed request: SCIM
    and SSO answers do not depend on it, and an Owner can resend.

    Sent in the process that made the token, not through Celery: only its hash is stored, so a task would have to
    carry the token itself through the broker (a secret at rest in Redis). ``EMAIL_TIMEOUT`` bounds the wait.
    """
    invitation = Invitation.objects.select_related("workspace", "membership").filter(pk=invitation_id).first()
    if invitation is None or not invitation.is_open:
        return
    name = invitation.workspace.name
    expires = invitation.expires_at.strftime("%Y-%m-%d %H:%M UTC")
    if invitation.membership.consent_pending:
        how = (f"To accept, open the link and sign in as {invitation.email} the way you usually do (your password "
               f"and second factor, or your organisation's single sign-on).\n\n"
               f"Until you accept, {name} sees nothing of your account: not your two-factor status, not your "
               f"sign-ins, not your other workspaces. If you did not expect this, ignore this email.")
    else:
        how = "Open the link to choose your password and join."
    body = (f"{invitation.invited_by or 'An administrator'} invited {invitation.email} to the workspace {name} "
            f"on Gatehouse.\n\n{how}\n\n{invitation_url(token)}\n\n"
            f"The link works once, until {expires}. After that, ask an Owner of {name} to send it again.\n")
    try:
        send_mail(f"Invitation to {name} on Gatehouse", body, None, [invitation.email])
    except Exception:  # any relay or header failure: logged, the invitation stays open for a resend
        logger.exception("invitation %s: sending the email failed", invitation_id)


@transaction.atomic
def invitation_issue(*, membership: Membership, actor: Actor, action: str = "member.invited",
                     details: dict[str, object] | None = None) -> Invitation:
    """A new link for ``membership``: stored hashed, emailed after commit, recorded as ``action``.

    Called inside the transaction of ``membership_add`` or ``invitation_resend`` (which check the actor's rights).
    """
    token = secrets.token_urlsafe(32)
    now = timezone.now()
    invitation = Invitation.objects.create(
        workspace=membership.workspace, membership=membership, email=membership.user.email,
        token_hash=hash_secret(token), invited_by=actor.label[:255], created_at=now,
        expires_at=now + timedelta(hours=settings.INVITATION_TTL_HOURS),
    )
    record_event(
        actor=actor, action=action, workspace=membership.workspace, **member_target(membership),
        details={"invitation": invitation.pk, "consent": membership.consent_pending,
                 "expires_at": invitation.expires_at.isoformat(), **(details or {})},
    )
    transaction.on_commit(lambda: _send(invitation.pk, token))
    return invitation


@transaction.atomic
def invitation_resend(*, invitation: Invitation, actor: Actor) -> Invitation:
    """A fresh link for the same pending member; every earlier open link of that member stops working."""
    require_capability(actor, invitation.workspace, Cap.MEMBER_MANAGE)
    membership = Membership.objects.select_related("user", "workspace").get(pk=invitation.membership_id)
    if not (membership.consent_pending or invitation_sets_password(invitation)):
        raise ServiceError(f"{membership.user.email} has already accepted; there is nothing to resend.")
    now = timezone.now()
    replaced = list(
        Invitation.objects.filter(membership=membership, accepted_at__isnull=True, revoked_at__isnull=True)
        .values_list("pk", flat=True)
    )
    Invitation.objects.filter(pk__in=replaced).update(revoked_at=now)
    return invitation_issue(membership=membership, actor=actor, action="member.invitation_resent",
                            details={"replaced": replaced})


@transaction.atomic
def invitation_revoke(*, invitation: Invitation, actor: Actor) -> Invitation:
    """The link stops working. A pending member stays pending (it opens nothing); remove it to undo the invitation."""
    require_capability(actor, invitation.workspace, Cap.MEMBER_MANAGE)
    invitation = Invitation.objects.select_for_update().select_related("membership__user").get(pk=invitation.pk)
    if not invitation.is_open:
        raise ServiceError("This invitation was already accepted or revoked.")
    invitation.revoked_at = timezone.now()
    invitation.save(update_fields=["revoked_at"])
    record_event(
        actor=actor, action="member.invitation_revoked", workspace=invitation.workspace,
        **member_target(invitation.membership), details={"invitation": invitation.pk},
    )
    return invitation


@transaction.atomic
def invitation_accept(*, invitation: Invitation, user: User | None, password: str | None = None) -> Membership:
    """The person accepts: the membership stops being pending and the workspace may see the account.

    Either ``user`` is the signed-in account the invitation is for (an existing account: its own login, second
    factor included, proved who it is), or ``password`` is the new password of an account created by this
    invitation's workspace that has none yet. Any other account is refused, whoever holds the link.
    """
    invitation = (
        Invitation.objects.select_for_update().select_related("membership__user", "workspace").get(pk=invitation.pk)
    )
    problem = invitation_problem(invitation)
    if problem:
        raise InvitationUnusable(problem)
    membership = invitation.membership
    account = membership.user
    if not account.is_active:
        raise NotAllowed("This account is disabled. Ask Gatehouse support.")
    if password is not None:
        if not invitation_sets_password(invitation):
            raise NotAllowed(f"This invitation is for an existing account: sign in as {invitation.email} to accept.")
        try:
            validate_password(password, account)
        except ValidationError as exc:
            raise ServiceError(" ".join(exc.messages), field="password") from None
        account.set_password(password)
        account.save(update_fields=["password"])
        method = "password"
    elif user is None or user.pk != account.pk:
        raise NotAllowed(f"This invitation is for {invitation.email}. Sign out, then sign in as that account "
                         "to accept it.")
    else:
        method = "session"
    now = timezone.now()
    invitation.accepted_at = now
    invitation.save(update_fields=["accepted_at"])
    # Older links of the same member are spent too: one acceptance, whichever link it came through.
    Invitation.objects.filter(membership=membership, accepted_at__isnull=True, revoked_at__isnull=True).update(
        revoked_at=now
    )
    was_pending = membership.consent_pending
    if was_pending:
        membership.consent_pending_since = None
        touch(membership, "consent_pending_since")
    record_event(
        actor=Actor(kind="user", id=str(account.pk), label=account.email, auth_method=method, membership=membership),
        action="member.invitation_accepted", workspace=invitation.workspace, **member_target(membership),
        details={"invitation": invitation.pk, "consent": was_pending, "password_set": password is not None},
    )
    return membership
