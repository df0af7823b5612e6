"""What a key may call. Roles through ``workspaces.roles.can``; service keys through their scopes."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from workspaces.roles import ApiScope, Cap, can

from .authentication import ApiPrincipal


class KeyAllows(BasePermission):
    """The view declares ``required_scope`` (an ``ApiScope``, or None: any valid key of the workspace)
    and ``required_cap`` (the ``Cap`` a personal key's member needs; visibility is the selectors' job)."""

    message = "This API key does not allow this."

    def has_permission(self, request: Request, view: Any) -> bool:
        principal = request.auth
        if not isinstance(principal, ApiPrincipal):
            return False  # unauthenticated: DRF answers 401 with WWW-Authenticate
        scope = getattr(view, "required_scope", None)
        if scope is not None and not principal.has_scope(scope):
            self.message = f"This API key lacks the '{ApiScope(scope).value}' scope."
            return False
        if principal.membership is not None:
            return can(principal.membership, getattr(view, "required_cap", Cap.WORKSPACE_VIEW))
        return True
