"""Error pages that say what happened and what to do next; JSON under ``/api/`` (API clients parse the body)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.template import loader

from .access import NoGrant


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def _scim_error(request: HttpRequest, status: int, detail: str) -> HttpResponse | None:
    """Under /scim/ (a URL no SCIM route matched, such as an id with a line break): the SCIM error document."""
    if not request.path.startswith("/scim/"):
        return None
    return JsonResponse(
        {"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": str(status), "detail": detail},
        status=status, content_type="application/scim+json",
    )


def forbidden(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _is_api(request):
        return JsonResponse({"detail": "You do not have permission to perform this action."}, status=403)
    if isinstance(exception, NoGrant):
        return render(request, "errors/no_grant.html", {
            "workspace": exception.workspace, "reason": exception.reason,
            "consent_pending": exception.consent_pending,
        }, status=403)
    return render(request, "errors/403.html", {"reason": str(exception or "")}, status=403)


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    scim = _scim_error(request, 404, "No such SCIM endpoint or resource.")
    if scim is not None:
        return scim
    if _is_api(request):
        return JsonResponse({"detail": "Not found."}, status=404)
    return render(request, "errors/404.html", status=404)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    scim = _scim_error(request, 400, "Bad request.")
    if scim is not None:
        return scim
    if _is_api(request):
        return JsonResponse({"detail": "Bad request."}, status=400)
    return HttpResponse(loader.render_to_string("errors/400.html", request=request), status=400)


def server_error(request: HttpRequest) -> HttpResponse:
    """No template context processors or database here: whatever failed may fail again."""
    scim = _scim_error(request, 500, "The request could not be completed. It has been logged.")
    if scim is not None:
        return scim
    if _is_api(request):
        return JsonResponse({"detail": "Server error. The request was not completed; try again later."}, status=500)
    return HttpResponse(loader.render_to_string("errors/500.html"), status=500)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """A refused form post: JSON under /api/, otherwise the page that says to reload and try again."""
    if _is_api(request):
        return JsonResponse({"detail": f"CSRF check failed: {reason}"}, status=403)
    return render(request, "errors/403.html", {"reason": "The form expired or came from another site. "
                                                          "Reload the page and try again."}, status=403)
