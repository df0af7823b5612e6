"""May a password, or this session grant, open this workspace? Answered here and nowhere else.

Asked by the password login (``authn``: which workspaces a password session gets, and whether it
needs a second factor first) and by the per-request grant check (``access.grant_problem``: does a
grant issued earlier still satisfy the workspace's policy now).

The rules:
- A workspace that enforces SAML-only is opened by an IdP login (``saml``) or a break-glass code,
  never by a password.
- A workspace that requires 2FA is opened by a password only together with a verified second factor.
- A grant whose method is not one of the IdP methods is held to the password rules, whatever it
  claims to be: only what is known to have come through the IdP is exempt (the stricter reading).
- In a workspace that enforces SAML-only, a personal API key acts for its member only while the member's last
  sign-in through the workspace's IdP is younger than the workspace's window (``api_key_sso_window``), asked by
  the API key check (``api.authentication``). Service keys belong to the workspace, not to a person, and are
  not bound to anyone's sign-in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.urls import reverse

from .grants import GrantMethod
from .models import Membership, User, Workspace

# Sign-ins the workspace's IdP stands behind (break-glass codes exist only for SAML-only workspaces).
IDP_METHODS = frozenset({GrantMethod.SAML, GrantMethod.BREAK_GLASS})

SSO_REQUIRED = "This workspace now requires single sign-on."
SECOND_FACTOR_REQUIRED = "This workspace now requires two-factor authentication. Sign in again to set it up."


def password_may_open(workspace: Workspace) -> bool:
    """A password login may open this workspace (it does not enforce SAML-only)."""
    return not workspace.saml_only


def password_needs_second_factor(workspace: Workspace) -> bool:
    """A password login into this workspace must also prove a second factor."""
    return bool(workspace.require_2fa)


def split_for_password(memberships: Iterable[Membership]) -> tuple[list[Membership], list[Workspace]]:
    """The memberships a password session may open, and the workspaces that require SSO instead."""
    allowed: list[Membership] = []
    sso_only: list[Workspace] = []
    for membership in memberships:
        if password_may_open(membership.workspace):
            allowed.append(membership)
        else:
            sso_only.append(membership.workspace)
    return allowed, sso_only


def second_factor_due(user: User, allowed: Iterable[Membership]) -> bool:
    """A password login must stop at the second-factor step: the person has 2FA, or a workspace requires it."""
    return bool(user.two_factor_enabled) or any(password_needs_second_factor(m.workspace) for m in allowed)


def grant_policy_problem(grant: Mapping[str, Any], workspace: Workspace) -> str:
    """Why the workspace's sign-in policy refuses this grant now; empty when it allows it."""
    if grant.get("method") in IDP_METHODS:
        return ""
    if not password_may_open(workspace):
        return SSO_REQUIRED
    if password_needs_second_factor(workspace) and not grant.get("mfa"):
        return SECOND_FACTOR_REQUIRED
    return ""


def personal_key_sso_until(workspace: Workspace, membership: Membership) -> datetime | None:
    """Until when the member's personal API keys act in this workspace while it enforces SAML-only: the member's
    last sign-in through the workspace's IdP plus the workspace's window. None: no such sign-in yet."""
    if membership.last_sso_at is None:
        return None
    return membership.last_sso_at + timedelta(seconds=workspace.api_key_sso_window)


def personal_key_sso_problem(workspace: Workspace, membership: Membership, now: datetime) -> str:
    """Why a personal API key of ``membership`` may not act in ``workspace`` at ``now``; empty when it may.

    GitHub's SSO credential authorisation is the model: in an organisation that enforces SAML, a person's token
    acts there only once that person has signed in through the organisation's IdP. Here the authorisation also
    lapses: a key works until ``personal_key_sso_until``, so someone the IdP stops letting in (a leaver in a
    workspace without SCIM) loses their keys within the window, and a password or break-glass sign-in, which
    the IdP did not vouch for, never renews it.
    """
    if not workspace.saml_only:
        return ""
    until = personal_key_sso_until(workspace, membership)
    if until is not None and now < until:
        return ""
    # The member is not named: whoever holds the key learns what to do, not whose key it is (the API keys page and
    # the api_key.sso_refused event say that to the member and the Owners).
    login_url = settings.PUBLIC_BASE_URL + reverse("saml_login", args=[workspace.slug])
    return (
        f"{workspace.name} requires single sign-on, and the member this personal API key acts for has not signed in "
        f"through SSO in the last {window_label(workspace.api_key_sso_window)}. Sign in to {workspace.name} through "
        f"SSO at {login_url} to authorise this key again."
    )


def window_label(seconds: int) -> str:
    """``7 days``, ``1 day``, ``36 hours``, ``1 hour``: how the window is named to people."""
    if seconds % 86400 == 0:
        days = seconds // 86400
        return f"{days} day{'s' if days != 1 else ''}"
    hours = seconds // 3600
    return f"{hours} hour{'s' if hours != 1 else ''}"
