"""Shared set-up of the consent tests (issue 15, item 4): an account that exists before workspace A attaches it, and
the link in the invitation email."""

from __future__ import annotations

import re

from django.core import mail

from workspaces.models import Membership
from workspaces.services import two_factor_enrol_confirm, two_factor_enrol_start, user_actor

from .factories import MembershipFactory

DANA = "dana@bravo.test"
_LINK = re.compile(r"https?://[^\s]+/invitations/([A-Za-z0-9_\-]+)/")


def dana_in_b(world, *, two_factor: bool = True) -> Membership:
    """Dana: a member of workspace B with her own password and, by default, a confirmed TOTP device."""
    dana = MembershipFactory(workspace=world.b, role="member", user__email=DANA)
    if two_factor:
        from django_otp.oath import TOTP

        device = two_factor_enrol_start(user=dana.user)
        token = f"{TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift).token():06d}"
        two_factor_enrol_confirm(user=dana.user, device_id=device.pk, token=token,
                                 actor=user_actor(dana.user, "password"))
    return dana


def sent_tokens(to: str) -> list[str]:
    """The invitation tokens emailed to ``to`` (django.core.mail.outbox), oldest first."""
    return [m for msg in mail.outbox if to in msg.to for m in _LINK.findall(msg.body)]


def sent_token(to: str) -> str:
    tokens = sent_tokens(to)
    assert len(tokens) == 1, f"expected one invitation to {to}, found {len(tokens)}"
    return tokens[0]
