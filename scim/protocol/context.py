"""What every SCIM handler works with: the request, the credential's workspace and actor, the body.

``Ctx`` is built once per request by ``scim.protocol.router`` after authentication. It parses
the body (size-limited, JSON) and answers the query parameters, which a POSTed SearchRequest
(RFC 7644 §3.4.3) replaces. ``json_response`` renders every SCIM document this package returns.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from django.http.request import RawPostDataException

from workspaces.models import Workspace

from ..auth import ScimPrincipal
from ..errors import ScimError, bad_request
from ..schemas import SCIM_CONTENT_TYPE, max_body_bytes


class Ctx:
    """What a handler needs: the request, the credential's workspace and actor, and the base URL."""

    def __init__(self, request: HttpRequest, principal: ScimPrincipal) -> None:
        self.request = request
        self.workspace: Workspace = principal.workspace
        self.actor = principal.actor
        self.base_url = request.build_absolute_uri(f"/scim/v2/{principal.workspace.slug}/")

    def body(self) -> Any:
        """The JSON body; 413 above ``SCIM_MAX_BODY_BYTES``, 400 when empty or not JSON."""
        length = self.request.META.get("CONTENT_LENGTH") or "0"
        try:
            if int(length) > max_body_bytes():
                raise ScimError(413, f"The request body is larger than {max_body_bytes()} bytes.")
        except ValueError:
            raise bad_request("Invalid Content-Length.", "invalidSyntax") from None
        try:
            raw = self.request.body
        except (RequestDataTooBig, RawPostDataException) as exc:
            raise ScimError(413, f"The request body is larger than {max_body_bytes()} bytes.") from exc
        if len(raw) > max_body_bytes():
            raise ScimError(413, f"The request body is larger than {max_body_bytes()} bytes.")
        if not raw.strip():
            raise bad_request("The request body is empty.", "invalidSyntax")
        try:
            doc = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise bad_request(f"The body is not valid JSON: {str(exc)[:120]}", "invalidSyntax") from exc
        except ValueError as exc:  # an integer of more digits than Python converts (sys.set_int_max_str_digits)
            raise bad_request(f"The body holds a number too large to read: {str(exc)[:120]}", "invalidValue") from exc
        if _holds_nul(doc):
            # No identity attribute ever contains U+0000, and PostgreSQL text cannot store it.
            raise bad_request("The body contains a NUL character (\\u0000); remove it.", "invalidValue")
        return doc


def _holds_nul(value: Any, depth: int = 0) -> bool:
    """Whether any string (value or key) in a parsed JSON document contains U+0000."""
    if isinstance(value, str):
        return "\x00" in value
    if depth > 64:
        return False  # json.loads already bounds nesting by recursion; this only bounds the walk
    if isinstance(value, dict):
        return any(_holds_nul(k, depth + 1) or _holds_nul(v, depth + 1) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_nul(v, depth + 1) for v in value)
    return False


def params(request: HttpRequest) -> Any:
    """Query parameters: the URL's, or a POSTed SearchRequest's (RFC 7644 §3.4.3) set by ``paging.search``."""
    return getattr(request, "scim_params", None) or request.GET


def json_response(doc: Any, status: int = 200, *, location: str = "", version: str = "") -> HttpResponse:
    """A SCIM JSON document, with ``Location`` and ``ETag`` when given."""
    response = HttpResponse(json.dumps(doc), content_type=SCIM_CONTENT_TYPE, status=status)
    if location:
        response["Location"] = location
    if version:
        response["ETag"] = version
    return response


def method_not_allowed(ctx: Ctx) -> ScimError:
    return ScimError(405, f"{ctx.request.method} is not supported here.")
