"""Local password login: which workspaces a password session may open, its second factor, and its audit trail."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth import authenticate, login
from django.db import transaction
from django.http import HttpRequest
from django.utils.crypto import constant_time_compare
from django_otp import login as otp_login
from django_otp.models import Device

from audit.middleware import client_ip
from audit.record import Actor, record_event
from config.ratelimit import Counter, FixedWindowLimiter

from .grants import GrantMethod, grant_workspace
from .models import Membership, User, Workspace
from .policy import second_factor_due, split_for_password


@dataclass
class LoginResult:
    ok: bool
    message: str = ""
    granted: list[Workspace] = field(default_factory=list)
    sso_required: list[Workspace] = field(default_factory=list)
    # Password accepted; the login continues at the second-factor step (``/login/2fa/``).
    second_factor: bool = False


def _record_failure(email: str, reason: str) -> None:
    """A failed password login goes into each workspace the email belongs to (or the global chain)."""
    actor = Actor(kind="user", id="", label=email[:255], auth_method="password")
    # Only workspaces the person has joined: a membership pending consent must not learn of the account's sign-ins.
    memberships = Membership.objects.filter(
        user__email__iexact=email, consent_pending_since__isnull=True
    ).select_related("workspace")
    with transaction.atomic():
        workspaces: list[Workspace | None] = [m.workspace for m in memberships] or [None]
        for workspace in workspaces:
            record_event(
                actor=actor, action="auth.login_failed", workspace=workspace,
                target_type="user", target_label=email[:255], details={"reason": reason},
            )


# Failed password logins per (email, client IP) and per client IP, in fixed windows of LOGIN_FAILURE_WINDOW
# seconds. Never per email alone: a stranger hammering someone's email from elsewhere must not block that person
# signing in from their own address (their failures count against their own source only).
_login_failures = FixedWindowLimiter("loginfail", window_setting="LOGIN_FAILURE_WINDOW", default_window=900)


def _login_counters(request: HttpRequest, email: str) -> list[Counter]:
    limit = settings.LOGIN_FAILURE_LIMIT
    ip = client_ip(request)
    return [Counter(f"email-ip:{email.strip().lower()}|{ip}", limit), Counter(f"ip:{ip}", limit * 4)]


def password_login(request: HttpRequest, email: str, password: str) -> LoginResult:
    """Authenticate with a password and grant the user's workspaces that do not enforce SAML-only."""
    retry_after = _login_failures.retry_after(_login_counters(request, email))
    if retry_after is not None:
        # Refused before any hashing. One audit event per source and email per window, not one per attempt:
        # a hammering stranger must not flood the workspaces' audit logs.
        if _login_failures.first_in_window(f"throttled:{email.strip().lower()}|{client_ip(request)}"):
            _record_failure(email, "throttled: too many failed attempts (further attempts from this address "
                                   "in this window are refused without a record)")
        minutes = max(1, math.ceil(retry_after / 60))
        return LoginResult(False, f"Too many failed sign-in attempts. Wait {minutes} minutes and try again, or ask an Owner.")
    user: User | None = authenticate(request, email=email, password=password)
    if user is None:
        _login_failures.hit(_login_counters(request, email))
        _record_failure(email, "bad email or password")
        return LoginResult(False, "That email and password do not match. Check both and try again.")
    memberships = _joined_memberships(user)
    allowed, sso_only = split_for_password(memberships)
    if memberships and not allowed and not user.is_staff:
        _record_failure(user.email, "password login refused: workspace enforces SAML-only")
        names = ", ".join(w.name for w in sso_only)
        return LoginResult(
            False, f"{names} requires single sign-on. Use “Log in with SSO” for your workspace.", sso_required=sso_only
        )
    if second_factor_due(user, allowed):
        # Second step (TOTP or recovery code, or enrolment when a workspace requires 2FA): no session yet.
        _start_second_factor(request, user)
        return LoginResult(False, sso_required=sso_only, second_factor=True)
    return _complete_login(request, user, allowed, sso_only)


def _joined_memberships(user: User) -> list[Membership]:
    """The active memberships a password may open: not those pending consent (the person has not joined them)."""
    return list(
        Membership.objects.filter(user=user, is_active=True, consent_pending_since__isnull=True)
        .select_related("workspace", "user")
    )


def _complete_login(
    request: HttpRequest, user: User, allowed: list[Membership], sso_only: list[Workspace], mfa: bool = False
) -> LoginResult:
    login(request, user, backend="workspaces.auth_backends.EmailBackend")
    for membership in allowed:
        # Recorded in a workspace's audit log when the session first opens it (``access``), not here: a sign-in to
        # use one workspace is nobody else's business.
        grant_workspace(request, membership.workspace, GrantMethod.PASSWORD, mfa=mfa, record_on_first_use=True)
    return LoginResult(True, granted=[m.workspace for m in allowed], sso_required=sso_only)


# ----------------------------------------------------------------------------- second factor (django-otp)

PENDING_KEY = "gatehouse_2fa_pending"


def _start_second_factor(request: HttpRequest, user: User) -> None:
    """Remember, in the (still anonymous) session, whose password was right, for a few minutes.

    The session auth hash ties it to the current password: a password change kills the pending login.
    """
    request.session.cycle_key()
    request.session[PENDING_KEY] = {"uid": user.pk, "at": time.time(), "auth": user.get_session_auth_hash()}


def pending_second_factor_user(request: HttpRequest) -> User | None:
    """The user whose password login waits for its second factor, or None (none, expired or stale)."""
    pending = request.session.get(PENDING_KEY)
    if not pending or time.time() - pending.get("at", 0) > settings.TWO_FACTOR_PENDING_SECONDS:
        return None
    user = User.objects.filter(pk=pending.get("uid"), is_active=True).first()
    if user is None or not constant_time_compare(user.get_session_auth_hash(), pending.get("auth", "")):
        return None
    return user


def complete_second_factor(request: HttpRequest, user: User, device: Device) -> LoginResult:
    """The second factor was verified: sign in and grant the same workspaces a password login would."""
    request.session.pop(PENDING_KEY, None)
    allowed, sso_only = split_for_password(_joined_memberships(user))
    result = _complete_login(request, user, allowed, sso_only, mfa=True)
    otp_login(request, device)
    return result
