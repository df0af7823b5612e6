"""SCIM errors (RFC 7644 §3.12): one exception type, one place that renders it.

django-scim2's ``SCIMException.to_dict`` gives ``status`` as a number and its subclasses carry
no ``scimType``; Okta and Entra both read ``scimType`` (``uniqueness`` above all), and the RFC
says ``status`` is a string. We subclass it and render the RFC shape.
"""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpResponse
from django_scim.exceptions import SCIMException

from workspaces.exceptions import AlreadyExists, LastOwnerError, NotAllowed, ServiceError

from .schemas import ERROR, SCIM_CONTENT_TYPE


class ScimError(SCIMException):
    """A SCIM protocol error; ``detail`` is safe to show to the identity provider's admin."""

    def __init__(self, status: int, detail: str, scim_type: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(detail, status=status, scim_type=scim_type)
        self.headers = headers or {}

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"schemas": [ERROR], "status": str(self.status), "detail": self.detail}
        if self.scim_type:
            doc["scimType"] = self.scim_type
        return doc


def bad_request(detail: str, scim_type: str = "invalidValue") -> ScimError:
    return ScimError(400, detail, scim_type)


def not_found(kind: str, rid: str) -> ScimError:
    return ScimError(404, f"{kind} {rid!s:.64} not found.")


def from_service_error(exc: ServiceError) -> ScimError:
    """Map the typed errors of ``workspaces.services`` to SCIM errors (never with database text)."""
    if isinstance(exc, AlreadyExists):
        return ScimError(409, exc.message, "uniqueness")
    if isinstance(exc, LastOwnerError):
        return ScimError(409, exc.message, "mutability")
    if isinstance(exc, NotAllowed):
        return ScimError(403, exc.message)
    return ScimError(400, exc.message, "invalidValue")


def error_response(exc: ScimError) -> HttpResponse:
    response = HttpResponse(json.dumps(exc.to_dict()), content_type=SCIM_CONTENT_TYPE, status=exc.status)
    for key, value in exc.headers.items():
        response[key] = value
    return response
