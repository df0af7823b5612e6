"""Bench-only: reports the worker's CPU time for each request (``X-Bench-Cpu-Us``).

Wall-clock figures on a shared 2-core machine swing with everyone else's load; the CPU time the
gunicorn worker itself spent on a request is steadier (it excludes PostgreSQL's own work and waits).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse


class CpuTimeMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        start = time.thread_time_ns()
        response = self.get_response(request)
        response["X-Bench-Cpu-Us"] = str((time.thread_time_ns() - start) // 1000)
        return response
