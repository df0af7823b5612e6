"""The one invariant, implemented once.

A workspace-scoped request is allowed only if (1) the session holds a live grant for *that*
workspace and (2) the member is active there. Every web view of tenant data goes through
``workspace_view`` / ``access_workspace``; no view looks tenant rows up by id itself.

A grant lives in the session (database-backed, so every web node sees the same state):
``{"<workspace id>": {"method": "password" | "saml" | "break_glass", "at": epoch, "exp": epoch | None}}``.
It dies when the member is deactivated, when their credentials are revoked after it was
issued (``credentials_valid_after``), when it expires (SAML ``SessionNotOnOrAfter``), and,
for password grants, when the workspace starts enforcing SAML-only.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import urlencode

from audit.record import Actor

from .models import Membership, User, Workspace
from .roles import Cap, can, capabilities
from .services import actor_for_membership

SESSION_KEY = "gatehouse_grants"


class GrantMethod:
    PASSWORD = "password"
    SAML = "saml"
    BREAK_GLASS = "break_glass"


class NoGrant(PermissionDenied):
    """The person belongs to the workspace, but this session was not authenticated for it."""

    def __init__(self, workspace: Workspace, reason: str) -> None:
        super().__init__(reason)
        self.workspace = workspace
        self.reason = reason


@dataclass(frozen=True)
class WorkspaceAccess:
    workspace: Workspace
    membership: Membership
    method: str

    @property
    def actor(self) -> Actor:
        return actor_for_membership(self.membership, self.method)

    def can(self, cap: str) -> bool:
        return can(self.membership, cap)

    @property
    def caps(self) -> dict[str, bool]:
        return capabilities(self.membership)


# ----------------------------------------------------------------------------- grants in the session


class AuthenticatedRequest(HttpRequest):
    """For type checking: the request of a ``@login_required`` view, whose user is signed in."""

    user: User


class WorkspaceRequest(AuthenticatedRequest):
    """For type checking: the request of a ``@workspace_view`` view, with ``request.access`` set."""

    access: WorkspaceAccess


def _grants(request: HttpRequest) -> dict[str, dict[str, Any]]:
    return request.session.get(SESSION_KEY, {})


def grant_workspace(
    request: HttpRequest, workspace: Workspace, method: str, expires_at: float | None = None, mfa: bool = False
) -> None:
    """Record that this session authenticated for ``workspace`` (and for no other).

    ``mfa``: a second factor (TOTP or recovery code) was verified for this password login.
    """
    grants = dict(_grants(request))
    grants[str(workspace.pk)] = {"method": method, "at": time.time(), "exp": expires_at, "mfa": mfa}
    request.session[SESSION_KEY] = grants


def mark_grants_second_factor(request: HttpRequest) -> None:
    """The person just proved a second factor in this session (enrolled one): its password grants count as 2FA."""
    grants = {k: {**g, "mfa": True} for k, g in _grants(request).items()}
    if grants:
        request.session[SESSION_KEY] = grants


def revoke_grant(request: HttpRequest, workspace_id: int) -> None:
    grants = dict(_grants(request))
    if grants.pop(str(workspace_id), None) is not None:
        request.session[SESSION_KEY] = grants


def granted_workspace_ids(request: HttpRequest) -> set[int]:
    return {int(k) for k in _grants(request)}


def grant_problem(grant: dict[str, Any] | None, workspace: Workspace, membership: Membership | None) -> str:
    """Why a grant does not (or no longer) open this workspace; empty when it does."""
    if membership is None:
        return "not a member"
    if not membership.is_active:
        return "Your membership in this workspace is deactivated."
    if not membership.user.is_active:
        return "Your account is disabled."
    if not grant:
        return "This session has not signed in to this workspace."
    if grant.get("exp") is not None and grant["exp"] <= time.time():
        return "Your sign-in for this workspace has expired."
    valid_after = membership.credentials_valid_after
    if valid_after is not None and grant.get("at", 0) < valid_after.timestamp():
        return "Your sign-in for this workspace was revoked."
    if grant.get("at", 0) < membership.created_at.timestamp():
        # A grant from an earlier membership (removed, then added again) does not open the new one.
        return "Your sign-in for this workspace predates your current membership."
    if workspace.saml_only and grant.get("method") == GrantMethod.PASSWORD:
        return "This workspace now requires single sign-on."
    if workspace.require_2fa and grant.get("method") == GrantMethod.PASSWORD and not grant.get("mfa"):
        return "This workspace now requires two-factor authentication. Sign in again to set it up."
    return ""


def access_workspace(request: HttpRequest, slug: str, need: str = Cap.WORKSPACE_VIEW) -> WorkspaceAccess:
    """Resolve ``slug`` for this request, or refuse: 404 for outsiders, 403 for the rest."""
    user = request.user
    if not user.is_authenticated:
        raise Http404("No such workspace")
    membership = (
        Membership.objects.select_related("workspace", "user").filter(workspace__slug=slug, user=user).first()
    )
    if membership is None:
        raise Http404("No such workspace")
    workspace = membership.workspace
    grant = _grants(request).get(str(workspace.pk))
    problem = grant_problem(grant, workspace, membership)
    if problem:
        if grant is not None:
            revoke_grant(request, workspace.pk)
        raise NoGrant(workspace, problem)
    if not can(membership, need):
        raise PermissionDenied("Your role in this workspace does not allow this page.")
    return WorkspaceAccess(workspace=workspace, membership=membership, method=cast(dict[str, Any], grant)["method"])


def workspace_view(need: str = Cap.WORKSPACE_VIEW) -> Callable:
    """Decorator for views taking ``slug``: sets ``request.access`` or refuses the request."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @functools.wraps(view)
        def wrapped(request: HttpRequest, slug: str, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect(f"{reverse('login')}?{urlencode({'next': request.get_full_path()})}")
            request.access = access_workspace(request, slug, need)  # type: ignore[attr-defined]
            return view(request, slug, *args, **kwargs)

        return wrapped

    return decorator
