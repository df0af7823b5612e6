"""The portal's URLs plus three views that fail, for tests/config/test_error_pages.py."""

from django.core.exceptions import SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import path

from config.urls import handler400, handler403, handler404, handler500  # noqa: F401 - the product's handlers
from config.urls import urlpatterns as portal_urlpatterns


def missing(request: HttpRequest) -> HttpResponse:
    raise Http404("no such record")


def suspicious(request: HttpRequest) -> HttpResponse:
    raise SuspiciousOperation("a forged header")


def broken(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("the database fell over")


urlpatterns = [
    path("test-errors/missing/", missing),
    path("test-errors/broken/", broken),
    path("test-errors/suspicious/", suspicious),
    path("api/test-errors/broken/", broken),
    *portal_urlpatterns,
]
