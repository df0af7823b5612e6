"""Content-Security-Policy on every response that lacks one.

The portal's pages load scripts, styles and images from this origin only and have no inline script or style,
so the policy is strict. A view that needs another policy (the API's Swagger and Redoc pages, third-party
templates with inline code) sets its own with ``content_security_policy``; this middleware leaves it alone.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse

HEADER = "Content-Security-Policy"


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        policy = getattr(settings, "CONTENT_SECURITY_POLICY", "")
        if policy and HEADER not in response:
            response[HEADER] = policy
        return response


def content_security_policy(policy: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Give one view its own policy (it then replaces the site-wide one)."""

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            response = view(request, *args, **kwargs)
            response[HEADER] = policy
            return response

        return wrapped

    return decorate
