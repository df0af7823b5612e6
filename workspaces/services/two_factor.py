"""Two-factor authentication of a person's account: TOTP enrolment, recovery codes, verification."""

from __future__ import annotations

import base64
import hashlib
import secrets
from typing import Any

from django.db import transaction
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.record import Actor, record_event

from ..exceptions import ServiceError
from ..models import Membership, User

RECOVERY_CODE_COUNT = 10


def user_actor(user: User, auth_method: str) -> Actor:
    """The audit actor for a person acting on their own account (outside any one workspace)."""
    return Actor(kind="user", id=str(user.pk), label=user.email, auth_method=auth_method)


def _record_account_event(*, user: User, actor: Actor, action: str, details: dict[str, Any] | None = None) -> None:
    """Account events land in every workspace the person is an active member of (their admins see them),
    or in the global chain for someone who belongs nowhere. Not in a workspace whose invitation the person has not
    accepted (consent pending): it may not learn the account's 2FA status."""
    workspace_ids: list[int | None] = list(
        Membership.objects.filter(user=user, is_active=True, consent_pending_since__isnull=True)
        .values_list("workspace_id", flat=True)
    ) or [None]
    for workspace_id in workspace_ids:
        record_event(
            actor=actor, action=action, workspace=workspace_id,
            target_type="user", target_id=user.pk, target_label=user.email, details=details,
        )


def normalise_recovery_code(code: str) -> str:
    return "".join(code.split()).replace("-", "").lower()


def hash_recovery_code(code: str) -> str:
    """What django-otp's StaticToken stores for a recovery code (its column holds 16 characters).

    Codes are 80 random bits; the stored value is the first 80 bits of their SHA-256 in base32,
    so a leaked table gives nothing to replay and no dictionary to try.
    """
    digest = hashlib.sha256(normalise_recovery_code(code).encode("ascii", "ignore")).digest()
    return base64.b32encode(digest).decode("ascii")[:16].lower()


def _new_recovery_codes(user: User) -> list[str]:
    StaticDevice.objects.filter(user=user).delete()
    device = StaticDevice.objects.create(user=user, name="Recovery codes", confirmed=True)
    codes = []
    for _ in range(RECOVERY_CODE_COUNT):
        raw = base64.b32encode(secrets.token_bytes(10)).decode("ascii").lower()
        codes.append("-".join(raw[i:i + 4] for i in range(0, 16, 4)))
    StaticToken.objects.bulk_create([StaticToken(device=device, token=hash_recovery_code(c)) for c in codes])
    return codes


def confirmed_totp_device(user: User) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=True).first()


@transaction.atomic
def two_factor_enrol_start(*, user: User) -> TOTPDevice:
    """A pending (unconfirmed) TOTP device whose secret the person copies into an authenticator app.

    Nothing is audited yet: a pending device is not a factor and opens nothing until confirmed.
    """
    device = TOTPDevice.objects.filter(user=user, confirmed=False).first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)
    return device


@transaction.atomic
def two_factor_enrol_confirm(*, user: User, device_id: int, token: str, actor: Actor) -> list[str] | None:
    """Confirm the pending device with a code from the app; returns fresh recovery codes (shown once).

    A wrong code returns None (and is audited): raising would roll back django-otp's throttle count.
    """
    device = TOTPDevice.objects.select_for_update().filter(user=user, pk=device_id, confirmed=False).first()
    if device is None:
        raise ServiceError("Start the set-up again: that authenticator is no longer pending.")
    if not device.verify_token(token.strip()):
        _record_account_event(user=user, actor=actor, action="2fa.verification_failed", details={"step": "enrolment"})
        return None
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    TOTPDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
    codes = _new_recovery_codes(user)
    _record_account_event(user=user, actor=actor, action="2fa.enabled", details={"method": "totp"})
    return codes


@transaction.atomic
def two_factor_disable(*, user: User, actor: Actor) -> None:
    """Remove the authenticator and the recovery codes. Workspaces requiring 2FA ask for a new one at next login."""
    totp, _ = TOTPDevice.objects.filter(user=user).delete()
    static, _ = StaticDevice.objects.filter(user=user).delete()
    if totp or static:
        _record_account_event(user=user, actor=actor, action="2fa.disabled")


@transaction.atomic
def two_factor_recovery_codes_regenerate(*, user: User, actor: Actor) -> list[str]:
    """New recovery codes; the old ones stop working."""
    if confirmed_totp_device(user) is None:
        raise ServiceError("Turn on two-factor authentication first.")
    codes = _new_recovery_codes(user)
    _record_account_event(user=user, actor=actor, action="2fa.recovery_codes_regenerated")
    return codes


@transaction.atomic
def two_factor_verify(*, user: User, token: str, actor: Actor) -> TOTPDevice | StaticDevice | None:
    """The second step of a password login: a TOTP code or a one-time recovery code.

    Returns the device that accepted it, or None (audited as ``2fa.verification_failed``).
    django-otp throttles each device after failures, so guessing gets slower and slower.
    """
    token = token.strip()
    compact = token.replace(" ", "")
    if compact.isdigit() and len(compact) in (6, 8):
        device = confirmed_totp_device(user)
        if device is not None and device.verify_token(compact):
            return device
        _record_account_event(user=user, actor=actor, action="2fa.verification_failed", details={"method": "totp"})
        return None
    static = StaticDevice.objects.filter(user=user, confirmed=True).first()
    if static is not None and normalise_recovery_code(token) and static.verify_token(hash_recovery_code(token)):
        remaining = static.token_set.count()
        _record_account_event(
            user=user, actor=actor, action="2fa.recovery_code_used", details={"remaining": remaining}
        )
        return static
    _record_account_event(user=user, actor=actor, action="2fa.verification_failed", details={"method": "recovery_code"})
    return None
