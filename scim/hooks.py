"""Extension point called once after every SCIM request, whatever its outcome.

``scim.protocol.router.scim_endpoint`` (the single SCIM entry point) calls
``after_scim_request`` with the request, the workspace slug from the URL, the authenticated
principal (``None`` when authentication failed) and the finished response. The provisioning
request log fills this in; it must not raise (exceptions are logged and swallowed by the
caller) and must never record secrets (the Authorization header).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.http import HttpRequest, HttpResponse

if TYPE_CHECKING:
    from .auth import ScimPrincipal


def after_scim_request(
    request: HttpRequest, slug: str, principal: ScimPrincipal | None, response: HttpResponse
) -> None:
    """Write the provisioning request log (secrets redacted there)."""
    from .request_log import log_scim_request

    log_scim_request(request, slug, principal, response)
