"""Typed errors raised by services; the edges (views, DRF, SCIM) map them to responses in one place."""

from __future__ import annotations


class ServiceError(Exception):
    """A change was refused; ``message`` is safe to show to the person who asked."""

    status = 400
    code = "invalid"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class NotAllowed(ServiceError):
    """The actor's role does not permit this change."""

    status = 403
    code = "forbidden"


class NotFound(ServiceError):
    """The named object is not in this workspace (or not visible to the actor)."""

    status = 404
    code = "not_found"


class IdpOwned(NotAllowed):
    """The member's identity provider owns what was to change (``workspaces.ownership``); ``owner`` names it."""

    code = "idp_owned"

    def __init__(self, message: str, *, field: str | None = None, owner: str = "") -> None:
        super().__init__(message, field=field)
        self.owner = owner


class LastOwnerError(ServiceError):
    """The change would leave the workspace without an active Owner."""

    status = 409
    code = "last_owner"


class AlreadyExists(ServiceError):
    """A unique name (email, team name, repository name) is taken in this workspace."""

    status = 409
    code = "uniqueness"
