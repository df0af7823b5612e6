"""Workspace grants held in the session: what a sign-in proved, and for which workspace.

A grant lives in the (database-backed) session under ``SESSION_KEY``:
``{"<workspace id>": {"method": "password" | "saml" | "break_glass", "at": epoch, "exp": epoch | None,
"mfa": bool, "unrecorded": bool}}``. ``unrecorded``: a password sign-in grants every workspace its policy allows, but
is recorded in a workspace's audit log only when the session first opens that workspace (``access``), so a sign-in
meant for workspace B never shows up in workspace A's log. This module only reads and writes that shape; ``access`` decides whether a grant
opens a workspace, and ``deprovisioning.revoke`` removes grants from stored sessions.
"""

from __future__ import annotations

import time
from typing import Any

from django.http import HttpRequest

from .models import Workspace

SESSION_KEY = "gatehouse_grants"


class GrantMethod:
    PASSWORD = "password"
    SAML = "saml"
    BREAK_GLASS = "break_glass"


Grant = dict[str, Any]


def session_grants(request: HttpRequest) -> dict[str, Grant]:
    """This session's grants, keyed by workspace id (as a string)."""
    grants: dict[str, Grant] = request.session.get(SESSION_KEY, {})
    return grants


def grant_workspace(
    request: HttpRequest, workspace: Workspace, method: str, expires_at: float | None = None, mfa: bool = False,
    record_on_first_use: bool = False,
) -> None:
    """Record that this session authenticated for ``workspace`` (and for no other).

    ``mfa``: a second factor (TOTP or recovery code) was verified for this password login.
    ``record_on_first_use``: the sign-in is not yet in the workspace's audit log; the grant check records it when
    this session first opens the workspace.
    """
    grants = dict(session_grants(request))
    grant: Grant = {"method": method, "at": time.time(), "exp": expires_at, "mfa": mfa}
    if record_on_first_use:
        grant["unrecorded"] = True
    grants[str(workspace.pk)] = grant
    request.session[SESSION_KEY] = grants


def mark_grant_recorded(request: HttpRequest, workspace_id: int) -> None:
    """The sign-in behind this workspace's grant is now in its audit log."""
    grants = dict(session_grants(request))
    grant = grants.get(str(workspace_id))
    if grant is not None and grant.get("unrecorded"):
        grants[str(workspace_id)] = {k: v for k, v in grant.items() if k != "unrecorded"}
        request.session[SESSION_KEY] = grants


def mark_grants_second_factor(request: HttpRequest) -> None:
    """The person just proved a second factor in this session (enrolled one): its password grants count as 2FA."""
    grants = {k: {**g, "mfa": True} for k, g in session_grants(request).items()}
    if grants:
        request.session[SESSION_KEY] = grants


def revoke_grant(request: HttpRequest, workspace_id: int) -> None:
    grants = dict(session_grants(request))
    if grants.pop(str(workspace_id), None) is not None:
        request.session[SESSION_KEY] = grants


def granted_workspace_ids(request: HttpRequest) -> set[int]:
    return {int(k) for k in session_grants(request)}
