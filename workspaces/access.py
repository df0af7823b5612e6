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

from .grants import (
    SESSION_KEY,
    GrantMethod,
    grant_workspace,
    granted_workspace_ids,
    mark_grant_recorded,
    mark_grants_second_factor,
    revoke_grant,
    session_grants,
)
from .models import Membership, User, Workspace
from .policy import grant_policy_problem
from .roles import Cap, can, capabilities
from .services import actor_for_membership, membership_record_login

# The grant codec lives in ``grants``; these names stay importable from here for the login paths.
__all__ = [
    "SESSION_KEY",
    "GrantMethod",
    "NoGrant",
    "WorkspaceAccess",
    "access_workspace",
    "grant_problem",
    "grant_workspace",
    "granted_workspace_ids",
    "mark_grants_second_factor",
    "revoke_grant",
    "workspace_view",
]

class NoGrant(PermissionDenied):
    """The person belongs to the workspace, but this session was not authenticated for it."""

    def __init__(self, workspace: Workspace, reason: str, *, consent_pending: bool = False) -> None:
        super().__init__(reason)
        self.workspace = workspace
        self.reason = reason
        # The person has not accepted the workspace's invitation: signing in again would not help.
        self.consent_pending = consent_pending


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


class AuthenticatedRequest(HttpRequest):
    """For type checking: the request of a ``@login_required`` view, whose user is signed in."""

    user: User


class WorkspaceRequest(AuthenticatedRequest):
    """For type checking: the request of a ``@workspace_view`` view, with ``request.access`` set."""

    access: WorkspaceAccess


# ----------------------------------------------------------------------------- the check


def grant_problem(grant: dict[str, Any] | None, workspace: Workspace, membership: Membership | None) -> str:
    """Why a grant does not (or no longer) open this workspace; empty when it does."""
    if membership is None:
        return "not a member"
    if membership.consent_pending:
        # Consent (workspaces/consent.py): the workspace attached an existing account; it opens nothing until the
        # person accepts.
        return (f"You have not joined this workspace yet. Accept the invitation sent to {membership.user.email} "
                "(an Owner can resend it).")
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
    if workspace.sessions_valid_after is not None and grant.get("at", 0) < workspace.sessions_valid_after.timestamp():
        return "An Owner signed everyone out of this workspace. Sign in again."
    if workspace.session_max_age is not None and grant.get("at", 0) + workspace.session_max_age <= time.time():
        return "Your sign-in for this workspace has expired (its Owners limit how long a sign-in lasts)."
    if grant.get("at", 0) < membership.created_at.timestamp():
        # A grant from an earlier membership (removed, then added again) does not open the new one.
        return "Your sign-in for this workspace predates your current membership."
    return grant_policy_problem(grant, workspace)


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
    grant = session_grants(request).get(str(workspace.pk))
    problem = grant_problem(grant, workspace, membership)
    if problem:
        if grant is not None:
            revoke_grant(request, workspace.pk)
        raise NoGrant(workspace, problem, consent_pending=membership.consent_pending)
    granted = cast(dict[str, Any], grant)
    if granted.get("unrecorded"):
        # A password sign-in is recorded in a workspace when the session first opens it, and only then: signing in
        # to use workspace B leaves nothing in workspace A's log (see ``grants``).
        membership_record_login(membership=membership, actor=actor_for_membership(membership, granted["method"]))
        mark_grant_recorded(request, workspace.pk)
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
