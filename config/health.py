"""Liveness and readiness probes for orchestrators and load balancers (docs/deploy.md).

``/healthz`` says the process answers; ``/readyz`` says this node can serve: the database answers and has every
migration this code needs, and Redis answers when one is configured. The middleware answering them runs first, so
a probe never reaches host validation (probes call a pod's IP), the https redirect, the session store or the
audit log. Each check runs in its own thread, bounded by ``READYZ_TIMEOUT`` seconds in all: a database that hangs
makes the node unready, not the probe stuck. Answers name the failing check, never a host, port or error text
(they are public); the details go to the server log.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse

logger = logging.getLogger("gatehouse.health")

LIVENESS_PATH = "/healthz"
READINESS_PATH = "/readyz"

# Once every migration is applied it stays so for this code: the graph is read once per process, not per probe.
_migrated = False


def _database() -> str:
    """``ok``, or why the database cannot serve this node."""
    global _migrated
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        if not _migrated:
            from django.db.migrations.executor import MigrationExecutor

            executor = MigrationExecutor(connection)
            if executor.migration_plan(executor.loader.graph.leaf_nodes()):
                return "migrations pending"
            _migrated = True
        return "ok"
    except Exception:
        logger.warning("readiness: database check failed", exc_info=True)
        return "unreachable"
    finally:
        # The check's thread ends here: its connection must not outlive it.
        connection.close()


def _redis() -> str:
    """``ok``, or ``unreachable``; only run when REDIS_URL is set."""
    import redis

    timeout = settings.READYZ_TIMEOUT
    try:
        client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=timeout, socket_timeout=timeout)
        try:
            client.ping()
        finally:
            client.close()
        return "ok"
    except Exception:
        logger.warning("readiness: redis check failed", exc_info=True)
        return "unreachable"


def readiness_checks() -> dict[str, Callable[[], str]]:
    """The checks ``/readyz`` runs, by name."""
    checks: dict[str, Callable[[], str]] = {"database": _database}
    if settings.REDIS_URL:
        checks["redis"] = _redis
    return checks


def readiness() -> tuple[bool, dict[str, str]]:
    """Run every check in parallel, at most READYZ_TIMEOUT seconds in all; a check still running is ``timeout``."""
    results: dict[str, str] = {}
    threads = []
    for name, check in readiness_checks().items():
        def run(name: str = name, check: Callable[[], str] = check) -> None:
            results[name] = check()

        thread = threading.Thread(target=run, name=f"readyz-{name}", daemon=True)
        thread.start()
        threads.append((name, thread))
    deadline = time.monotonic() + settings.READYZ_TIMEOUT
    for _, thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    checks = {name: results.get(name, "timeout") for name, _ in threads}
    return all(value == "ok" for value in checks.values()), checks


def _json(status: int, body: dict[str, object]) -> HttpResponse:
    response = HttpResponse(json.dumps(body), status=status, content_type="application/json")
    response["Cache-Control"] = "no-store"
    return response


class HealthMiddleware:
    """Answers the two probes before anything else runs (first in MIDDLEWARE)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        path = request.path_info
        if path not in (LIVENESS_PATH, READINESS_PATH):
            return self.get_response(request)
        if request.method not in ("GET", "HEAD"):
            response = _json(405, {"status": "error", "detail": "Use GET or HEAD."})
            response["Allow"] = "GET, HEAD"
            return response
        if path == LIVENESS_PATH:
            return _json(200, {"status": "ok"})
        ready, checks = readiness()
        if ready:
            return _json(200, {"status": "ok", "checks": checks})
        failing = ", ".join(f"{name} {value}" for name, value in checks.items() if value != "ok")
        return _json(503, {"status": "unavailable", "reason": failing, "checks": checks})
