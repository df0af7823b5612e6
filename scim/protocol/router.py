"""SCIM 2.0 under ``/scim/v2/<slug>/``: one entry point that authenticates, routes and maps errors.

Every request goes through ``scim_endpoint``: authenticate once (``scim.auth``), route to the
resource's handler (``users``, ``groups``, ``discovery``), map errors to RFC 7644 §3.12 documents
(``scim.errors``), then call ``scim.hooks.after_scim_request`` with the response (the
provisioning log hooks in there). Handlers parse, call an adapter (which calls
``workspaces.services``), and render; the write path Users and Groups share is ``writes``.

django-scim2's own views are not used: they authenticate through a global middleware and a
Django user (we need a per-workspace credential), their list path counts by iterating every row
and post-filters tenants in Python (15five/django-scim2#97), and their errors lack ``scimType``.
Its adapters, schemas, constants and exception class are used (see docs/scim.md).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from .. import hooks
from ..auth import ScimAuthError, ScimPrincipal, authenticate_scim_request
from ..errors import ScimError, error_response
from .context import Ctx
from .discovery import resource_types_view, schemas_view, service_provider_config
from .documents import collecting_ignored
from .groups import groups
from .users import users

logger = logging.getLogger("gatehouse.scim")

_ROUTE = re.compile(r"^(?P<resource>[A-Za-z]+)(?:/(?P<rid>[^/]+))?/?$")

Handler = Callable[[Ctx, str | None], HttpResponse]

_HANDLERS: dict[str, Handler] = {
    "users": users,
    "groups": groups,
    "serviceproviderconfig": service_provider_config,
    "resourcetypes": resource_types_view,
    "schemas": schemas_view,
}


@csrf_exempt
def scim_endpoint(request: HttpRequest, slug: str, path: str = "") -> HttpResponse:
    """The one entry point for every SCIM request of workspace ``slug``."""
    request.scim_started_at = time.monotonic()  # type: ignore[attr-defined]  # for the provisioning log
    principal: ScimPrincipal | None = None
    with collecting_ignored():  # what the documents ignore is named in the provisioning log
        try:
            try:
                principal = authenticate_scim_request(request, slug)
            except ScimAuthError as exc:
                raise _auth_error(exc) from exc
            response = _route(request, principal, path)
        except ScimError as exc:
            response = error_response(exc)
        except Exception:
            logger.exception("SCIM request failed: %s %s", request.method, request.path)
            response = error_response(ScimError(500, "The request could not be completed. It has been logged."))
        try:
            hooks.after_scim_request(request, slug, principal, response)
        except Exception:  # the log must never turn a good answer into an error
            logger.exception("after_scim_request hook failed")
    return response


def _auth_error(exc: ScimAuthError) -> ScimError:
    """An authentication refusal as a SCIM error, with the headers the auth side attached.

    ``WWW-Authenticate`` on a 401 and ``Retry-After`` on a 429 come from ``ScimAuthError.headers``.
    """
    headers = {str(k): str(v) for k, v in (getattr(exc, "headers", None) or {}).items()}
    if getattr(exc, "retry_after", None) is not None:
        headers.setdefault("Retry-After", str(exc.retry_after))
    return ScimError(exc.status, exc.detail, headers=headers)


def _route(request: HttpRequest, principal: ScimPrincipal, path: str) -> HttpResponse:
    if "\x00" in path:
        raise ScimError(404, "No such SCIM endpoint.")
    if any("\x00" in value for _, values in request.GET.lists() for value in values):
        # PostgreSQL text cannot hold U+0000, and no filter or attribute name contains it.
        raise ScimError(400, "A query parameter contains a NUL character (%00); remove it.", scim_type="invalidFilter")
    if path.strip("/") == ".search":
        # RFC 7644 §3.4.3 lets a server decline root searches across resource types: 501.
        raise ScimError(501, "Searching several resource types at once is not supported. Use /Users/.search or /Groups/.search.")
    match = _ROUTE.match(path)
    if not match:
        raise ScimError(404, "No such SCIM endpoint.")
    resource, rid = match.group("resource"), match.group("rid")
    handler = _HANDLERS.get(resource.lower())
    if handler is None:
        raise ScimError(404, f"No SCIM endpoint {resource!r}. Use Users, Groups, ServiceProviderConfig, ResourceTypes or Schemas.")
    return handler(Ctx(request, principal), rid)
