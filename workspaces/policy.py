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
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

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
