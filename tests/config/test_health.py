"""/healthz and /readyz as an orchestrator and a load balancer call them: from any Host, over plain http behind a
TLS proxy, without a session or an audit event, and /readyz answering 503 with the failing check within its bound."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
from django.db import connection
from django.test import Client

from audit.models import AuditEvent
from config import health
from tests.deprov.harness import RedisServer


@pytest.fixture(autouse=True)
def _probe_settings(settings):
    # As in production behind a TLS proxy: https redirect on, only the public host allowed.
    settings.SECURE_SSL_REDIRECT = True
    settings.ALLOWED_HOSTS = ["gatehouse.example.com"]
    settings.REDIS_URL = ""
    settings.READYZ_TIMEOUT = 2.0


def _probe(path: str, method: str = "get") -> tuple[int, dict, object]:
    # A kubelet calls the pod's IP over plain http.
    response = getattr(Client(), method)(path, HTTP_HOST="10.1.2.3:8000")
    return response.status_code, (response.json() if response.content else {}), response


@pytest.fixture
def silent_listener() -> Iterator[int]:
    """A TCP port that accepts connections and never answers: a hung dependency."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class TestLiveness:
    def test_answers_ok_from_any_host_over_http_without_touching_the_database(self, db, django_assert_num_queries):
        with django_assert_num_queries(0):
            status, body, response = _probe("/healthz")
        assert (status, body) == (200, {"status": "ok"})
        assert response["Cache-Control"] == "no-store"
        assert "sessionid" not in response.cookies and "csrftoken" not in response.cookies

    def test_head_is_answered_and_other_methods_are_not(self, db):
        assert _probe("/healthz", "head")[0] == 200
        status, body, response = _probe("/healthz", "post")
        assert status == 405 and response["Allow"] == "GET, HEAD"

    def test_other_paths_still_get_host_validation_and_the_https_redirect(self, db):
        assert Client().get("/login/", HTTP_HOST="10.1.2.3:8000").status_code == 400
        assert Client().get("/login/", HTTP_HOST="gatehouse.example.com").status_code == 301


class TestReadiness:
    def test_ready_when_the_database_answers_and_is_migrated(self, db):
        events = AuditEvent.objects.count()
        status, body, response = _probe("/readyz")
        assert (status, body) == (200, {"status": "ok", "checks": {"database": "ok"}})
        assert "sessionid" not in response.cookies
        assert AuditEvent.objects.count() == events

    def test_a_pending_migration_makes_the_node_unready(self, transactional_db, monkeypatch):
        monkeypatch.setattr(health, "_migrated", False)
        with connection.cursor() as cursor:
            cursor.execute("SELECT app, name, applied FROM django_migrations WHERE app = 'workspaces' ORDER BY id DESC")
            app, name, applied = cursor.fetchone()
            cursor.execute("DELETE FROM django_migrations WHERE app = %s AND name = %s", [app, name])
        try:
            status, body, _ = _probe("/readyz")
        finally:
            with connection.cursor() as cursor:
                cursor.execute("INSERT INTO django_migrations (app, name, applied) VALUES (%s, %s, %s)", [app, name, applied])
        assert status == 503
        assert body["checks"] == {"database": "migrations pending"}
        assert body["status"] == "unavailable" and body["reason"] == "database migrations pending"
        # Applied again: ready again, with nothing cached from the failure.
        assert _probe("/readyz")[0] == 200

    def test_redis_is_checked_when_configured(self, db, settings, tmp_path):
        server = RedisServer(tmp_path)
        server.start()
        try:
            settings.REDIS_URL = server.url
            assert _probe("/readyz")[1]["checks"] == {"database": "ok", "redis": "ok"}
        finally:
            server.stop()
        status, body, _ = _probe("/readyz")
        assert status == 503 and body["checks"]["redis"] == "unreachable"
        # Public answers name the check, never the address.
        assert str(server.url.rsplit(":", 1)[-1].split("/")[0]) not in str(body)

    def test_a_redis_refusing_connections_is_unreachable(self, db, settings):
        settings.REDIS_URL = f"redis://127.0.0.1:{_free_port()}/0"
        status, body, _ = _probe("/readyz")
        assert (status, body["checks"]) == (503, {"database": "ok", "redis": "unreachable"})

    def test_a_hung_dependency_answers_503_within_the_bound(self, db, settings, silent_listener):
        settings.REDIS_URL = f"redis://127.0.0.1:{silent_listener}/0"
        settings.READYZ_TIMEOUT = 0.5
        started = time.monotonic()
        status, body, _ = _probe("/readyz")
        elapsed = time.monotonic() - started
        assert status == 503 and body["checks"]["redis"] in ("timeout", "unreachable")
        assert body["checks"]["database"] == "ok"
        # Bounded by READYZ_TIMEOUT, not by the dependency (which never answers).
        assert elapsed < 5
