"""The write path Users and Groups share: If-Match, then DELETE, PUT (replace) or PATCH via the adapter.

The adapters (``users.GatehouseSCIMUser``, ``groups.GatehouseSCIMGroup``) record the requested
change in ``from_dict`` / ``handle_operations`` and apply it in ``save()`` through
``workspaces.services``; ``delete()`` goes through the same services.
"""

from __future__ import annotations

from typing import Any, Protocol

from django.http import HttpRequest

from ..errors import ScimError
from ..schemas import max_patch_operations
from .context import Ctx
from .documents import patch_operations
from .projection import etag


class WritableAdapter(Protocol):
    """What ``apply_write`` needs of a django-scim2 adapter."""

    def from_dict(self, d: dict[str, Any]) -> None: ...

    def handle_operations(self, operations: list[tuple[str, str | None, Any]]) -> None: ...

    def save(self) -> None: ...

    def delete(self) -> None: ...


def check_if_match(request: HttpRequest, version: int) -> None:
    """RFC 7644 §3.14: a stale If-Match is 412 Precondition Failed."""
    header = request.META.get("HTTP_IF_MATCH")
    if not header:
        return
    tags = [t.strip() for t in header.split(",")]
    current = etag(version)
    if "*" in tags or current in tags or current.removeprefix("W/") in tags:
        return
    raise ScimError(412, "The resource changed since you read it (ETag mismatch). Read it again and retry.")


def apply_write(ctx: Ctx, adapter: WritableAdapter, method: str) -> bool:
    """DELETE, PUT (replace) or PATCH one resource through its adapter. True: it was deleted."""
    if method == "DELETE":
        adapter.delete()
        return True
    body = ctx.body()
    if method == "PUT":
        adapter.from_dict(body)
    else:
        adapter.handle_operations(patch_operations(body, max_patch_operations()))
    adapter.save()
    return False
