"""The product's error pages under DEBUG too, unless ``DEBUG_ERROR_PAGES`` asks for Django's technical ones.

With DEBUG on, Django answers an unknown URL, an ``Http404`` and an unhandled exception with its technical pages
(URL patterns, settings, traceback). The demo runs with DEBUG on, so a newcomer would never see the pages people
actually get (``templates/errors/``, the handlers in ``config/urls.py``). This middleware, the innermost, gives the
product's answer instead; the traceback of a 500 still goes to the console through the ``django.request`` logger.
Off DEBUG it does nothing: Django already calls the handlers.

An unknown URL never reaches ``process_exception`` (``Resolver404`` is raised before any view middleware), so
``__call__`` resolves the path first and answers 404 itself; the response still flows out through
``CommonMiddleware``, whose APPEND_SLASH redirect works on the 404 as usual.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import BadRequest, PermissionDenied, SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import Resolver404, get_resolver
from django.utils.log import log_response


def _product_pages_wanted() -> bool:
    return bool(settings.DEBUG) and not getattr(settings, "DEBUG_ERROR_PAGES", False)


def _handler(request: HttpRequest, status: int) -> Callable[..., HttpResponse]:
    """The ``handler404``/``handler500``/... of the URLconf serving this request."""
    return get_resolver(getattr(request, "urlconf", None)).resolve_error_handler(status)


class ProductErrorPagesMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if _product_pages_wanted():
            try:
                get_resolver(getattr(request, "urlconf", None)).resolve(request.path_info)
            except Resolver404 as exc:
                response = _handler(request, 404)(request, exc)
                log_response("Not Found: %s", request.path, response=response, request=request)
                return response
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not _product_pages_wanted() or isinstance(exception, PermissionDenied):
            return None  # Django answers PermissionDenied with handler403 even under DEBUG
        if isinstance(exception, Http404):
            response = _handler(request, 404)(request, exception)
            log_response("Not Found: %s", request.path, response=response, request=request)
        elif isinstance(exception, BadRequest | SuspiciousOperation):
            response = _handler(request, 400)(request, exception)
            log_response("Bad Request: %s", request.path, response=response, request=request, exception=exception)
        else:
            response = _handler(request, 500)(request)
            # The traceback a developer needs, on the console (LOG_FORMAT=text under DEBUG).
            log_response("Internal Server Error: %s", request.path, response=response, request=request,
                         exception=exception)
        return response
