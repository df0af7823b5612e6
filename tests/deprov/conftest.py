"""Fixtures for deprovisioning tests."""

from __future__ import annotations

import os
import shutil

import pytest
from django.db import connection
from django.db.models import Count

from tests.conftest import login_client
from workspaces.models import DeprovisionJob
from workspaces.services import actor_for_membership

from .harness import CeleryProcess, RedisServer, celery_publishing_to, free_port, workdir


@pytest.fixture
def dead_broker():
    """Celery in this process publishes to a Redis port where nothing listens (Redis is down)."""
    url = f"redis://127.0.0.1:{free_port()}/0"
    with celery_publishing_to(url):
        yield url


@pytest.fixture
def owner_actor(world):
    return actor_for_membership(world.owner_a, "password")


@pytest.fixture
def owner_client(world):
    return login_client(world.owner_a)


@pytest.fixture
def rig():
    """A redis-server of our own, and a factory for worker/beat processes on it; all stopped afterwards."""
    if connection.vendor != "postgresql":
        pytest.skip(
            "needs PostgreSQL: the Celery worker runs in another process and must open the test database "
            "(run with DATABASE_URL=postgres://...)"
        )
    with workdir() as wd:
        redis_server = RedisServer(wd)
        redis_server.start()
        procs: list[CeleryProcess] = []

        class Rig:
            redis = redis_server

            @staticmethod
            def start(kind: str) -> CeleryProcess:
                proc = CeleryProcess(kind, redis_server.url, wd)
                procs.append(proc)
                proc.start()
                return proc

        try:
            with celery_publishing_to(redis_server.url):
                yield Rig
        finally:
            for proc in procs:
                proc.kill()
                # Shown by pytest only when the test fails.
                print(f"----- celery {proc.kind} log (tail) -----\n{proc.output()[-4000:]}")
                keep = os.environ.get("DEPROV_FAULT_LOGS")  # a directory: keep whole logs for diagnosis
                if keep:
                    shutil.copy(proc.log, keep)
            print("jobs by status:", dict(
                DeprovisionJob.objects.values_list("status").annotate(n=Count("pk")).order_by()
            ))
            redis_server.stop()
