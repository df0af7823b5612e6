"""SAML-only enforcement and its break-glass recovery codes.

Whether a password (or a break-glass grant) opens a workspace is decided at each request by
``workspaces.access``; this module only switches enforcement and issues, spends and audits the codes.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.utils import timezone

from audit.record import Actor, record_event
from config.ratelimit import Counter, FixedWindowLimiter
from workspaces import services as ws
from workspaces.exceptions import NotAllowed, ServiceError
from workspaces.models import Membership, User, Workspace
from workspaces.roles import Cap

from .. import selectors
from ..models import BreakGlassCode
from ._audit import workspace_target

logger = logging.getLogger(__name__)


def _hash_code(code: str) -> str:
    return hashlib.sha256(code.strip().replace("-", "").lower().encode()).hexdigest()


def _revoke_unused_codes(workspace: Workspace) -> None:
    BreakGlassCode.objects.filter(workspace=workspace, used_at__isnull=True, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )


_CODE_SHAPE = re.compile(r"^[0-9a-f]{5}(?:-[0-9a-f]{5}){3}$")
# How long recovery codes shown before enforcement stay usable for it (the admin stores them, then confirms).
PREPARED_CODES_MAX_AGE = 30 * 60


def _fresh_codes() -> list[str]:
    codes = []
    for _ in range(settings.SAML_BREAK_GLASS_CODES):
        raw = secrets.token_hex(10)  # 80 random bits, shown once
        codes.append("-".join(raw[i : i + 5] for i in range(0, 20, 5)))
    return codes


def _signer(workspace: Workspace) -> signing.TimestampSigner:
    return signing.TimestampSigner(salt=f"gatehouse.saml.prepared-codes.{workspace.pk}")


def break_glass_codes_prepare(*, workspace: Workspace) -> tuple[list[str], str]:
    """Recovery codes to show *before* SAML-only is enforced, so the Owner stores them first; nothing is stored
    yet. Returns the codes and a token, signed for this workspace and valid PREPARED_CODES_MAX_AGE, that
    ``saml_only_set(prepared=...)`` turns back into exactly these codes (a client cannot choose its own)."""
    codes = _fresh_codes()
    return codes, _signer(workspace).sign_object(codes)


def break_glass_codes_prepared(*, workspace: Workspace, token: str) -> list[str]:
    """The codes a prepare token carries (to show them again on the same step), or ServiceError."""
    return _prepared_codes(workspace, token)


def _prepared_codes(workspace: Workspace, token: str) -> list[str]:
    try:
        codes = _signer(workspace).unsign_object(token, max_age=PREPARED_CODES_MAX_AGE)
    except signing.SignatureExpired:
        raise ServiceError("The recovery codes shown were not confirmed within 30 minutes: start again.") from None
    except signing.BadSignature:
        raise ServiceError("These recovery codes were not issued here: start again.") from None
    if (not isinstance(codes, list) or len(codes) != settings.SAML_BREAK_GLASS_CODES
            or not all(isinstance(c, str) and _CODE_SHAPE.match(c) for c in codes)):
        raise ServiceError("These recovery codes were not issued here: start again.")
    return codes


def _new_codes(workspace: Workspace, actor: Actor, codes: list[str] | None = None) -> list[str]:
    """Revoke the unused codes and store a set (fresh, or the prepared ones the Owner already holds), hashed."""
    user = actor.membership.user if actor.membership else None
    _revoke_unused_codes(workspace)
    codes = codes if codes is not None else _fresh_codes()
    for code in codes:
        BreakGlassCode.objects.create(workspace=workspace, code_hash=_hash_code(code), created_by=user)
    return codes


@transaction.atomic
def saml_only_set(*, workspace: Workspace, actor: Actor, enabled: bool, prepared: str = "") -> list[str]:
    """Switch SAML-only on (only after a successful Test SSO in the last 24 h) or off.

    Turning it on stores one-time break-glass codes for Owners (hashed) and returns them: the ones shown
    beforehand by ``break_glass_codes_prepare`` when ``prepared`` carries its token (the web page's flow: the
    Owner has stored them before confirming), else a fresh set to show once (the management command).
    Existing password sessions die at their next request (``workspaces.access.grant_problem``).
    """
    ws.require_capability(actor, workspace, Cap.SETTINGS_MANAGE)
    workspace = Workspace.objects.select_for_update().get(pk=workspace.pk)
    cfg = selectors.saml_settings_for(workspace)
    if workspace.saml_only == enabled:
        return []
    codes: list[str] = []
    if enabled:
        if not selectors.test_is_fresh(cfg):
            raise ServiceError("Run Test SSO successfully first (within the last 24 hours), then enforce SAML-only.")
        codes = _new_codes(workspace, actor, _prepared_codes(workspace, prepared) if prepared else None)
    else:
        _revoke_unused_codes(workspace)
    workspace.saml_only = enabled
    workspace.save(update_fields=["saml_only"])
    record_event(actor=actor, action="sso.enforcement_changed", workspace=workspace, **workspace_target(workspace),
                 details={"before": {"saml_only": not enabled}, "after": {"saml_only": enabled},
                          "break_glass_codes_issued": len(codes)})
    return codes


@transaction.atomic
def break_glass_codes_regenerate(*, workspace: Workspace, actor: Actor) -> list[str]:
    """New recovery codes while SAML-only is enforced; the old unused ones stop working."""
    ws.require_capability(actor, workspace, Cap.SETTINGS_MANAGE)
    if not workspace.saml_only:
        raise ServiceError("Break-glass codes exist only while SAML-only is enforced.")
    codes = _new_codes(workspace, actor)
    record_event(actor=actor, action="sso.break_glass_codes_regenerated", workspace=workspace,
                 **workspace_target(workspace), details={"codes": len(codes)})
    return codes


@transaction.atomic
def break_glass_use(*, workspace: Workspace, user: User, code: str) -> Membership:
    """Spend one recovery code: only an active Owner of this workspace, only once, loudly audited."""
    owner = selectors.active_owner_for_email(workspace, user.email)
    row = (
        BreakGlassCode.objects.select_for_update()
        .filter(workspace=workspace, code_hash=_hash_code(code), used_at__isnull=True, revoked_at__isnull=True)
        .first()
    )
    if owner is None or row is None or not workspace.saml_only:
        raise NotAllowed("That recovery code is not valid for you in this workspace.")
    row.used_at = timezone.now()
    row.used_by = user
    row.save(update_fields=["used_at", "used_by"])
    left = selectors.break_glass_codes_left(workspace)
    record_event(
        actor=ws.actor_for_membership(owner, "break_glass"), action="sso.break_glass_used", workspace=workspace,
        target_type="member", target_id=owner.pk, target_label=user.email,
        details={"codes_left": left, "warning": "SAML-only was bypassed with a recovery code"},
    )
    slug, email = workspace.slug, user.email
    transaction.on_commit(lambda: logger.warning("BREAK-GLASS: %s used a recovery code for workspace %s (%d left)",
                                                 email, slug, left))
    return owner


# Failed break-glass attempts per (workspace, client address) and per address across workspaces. Never per
# workspace alone: a stranger's failures must not lock the real Owner out of their way back in.
_break_glass_failures = FixedWindowLimiter(
    "breakglass", window_setting="BREAK_GLASS_FAILURE_WINDOW", default_window=900
)


def _break_glass_counters(workspace: Workspace, ip: str) -> list[Counter]:
    limit = int(getattr(settings, "BREAK_GLASS_FAILURE_LIMIT", 5))
    return [Counter(f"ws-ip:{workspace.pk}|{ip}", limit), Counter(f"ip:{ip}", limit * 4)]


def break_glass_retry_after(*, workspace: Workspace, ip: str) -> int | None:
    """Seconds this address must wait before trying break-glass on this workspace again; None: it may try.

    Asked before the password is hashed, so a refused attempt costs no hashing."""
    return _break_glass_failures.retry_after(_break_glass_counters(workspace, ip))


@transaction.atomic
def break_glass_failed_record(
    *, workspace: Workspace, email: str, reason: str, ip: str = "", throttled: bool = False
) -> None:
    """``sso.break_glass_failed``: a refused attempt, with why (never the code tried). A failure counts against
    its address; a throttled attempt is recorded once per address and window, not once per attempt."""
    if throttled:
        if not _break_glass_failures.first_in_window(f"throttled:{workspace.pk}|{ip}"):
            return
    elif ip:
        _break_glass_failures.hit(_break_glass_counters(workspace, ip))
    record_event(actor=Actor(kind="user", id="", label=email[:255], auth_method="break_glass"),
                 action="sso.break_glass_failed", workspace=workspace, **workspace_target(workspace),
                 details={"reason": reason})
