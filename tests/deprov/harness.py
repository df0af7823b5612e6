"""Real moving parts for the deprovisioning fault tests: a redis-server and Celery worker/beat processes.

Each is started by the test on its own loopback port (the shared Redis on 6379 is never touched)
and stopped by the test. Waits poll with deadlines; nothing sleeps a fixed time to hope.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import redis
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check: Callable[[], bool], timeout: float, what: str, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


class RedisServer:
    """A throwaway redis-server without persistence: a restart loses every queued message (the worst case)."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _ping(self) -> bool:
        try:
            return bool(redis.Redis(port=self.port, socket_connect_timeout=0.2).ping())
        except redis.RedisError:
            return False

    def start(self) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            raise AssertionError("redis-server not found: run `bash scripts/test`, which installs it")
        self.proc = subprocess.Popen(
            [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir), "--logfile", str(self.workdir / f"redis-{self.port}.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_until(self._ping, 10, f"redis-server on port {self.port}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()  # abrupt, like a crash: nothing is saved
            self.proc.wait(10)
        self.proc = None
        wait_until(lambda: not self._ping(), 5, "redis-server to stop")


def database_url_of_tests() -> str:
    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s.get("PASSWORD") else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


class CeleryProcess:
    """``celery -A config worker`` or ``beat`` in its own process group, on the test database."""

    def __init__(self, kind: str, broker_url: str, workdir: Path, extra_env: dict[str, str] | None = None,
                 concurrency: int = 2) -> None:
        self.kind = kind
        self.log = workdir / f"{kind}-{time.monotonic_ns()}.log"
        self.proc: subprocess.Popen | None = None
        self.env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": os.environ.get("HOME", str(workdir)),
            "PYTHONPATH": str(ROOT),
            # Production settings (settings_test forces eager tasks: beat would then run jobs itself).
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DEBUG": "false",
            "SECRET_KEY": settings.SECRET_KEY,  # every node signs sessions with the same key
            "DATABASE_URL": database_url_of_tests(),
            "CELERY_BROKER_URL": broker_url,
            "DEPROVISION_RETRY_AFTER": "2",
            "DEPROVISION_SWEEP_INTERVAL": "1",
            "DEPROVISION_RETRY_BASE": "1",
            "LOG_LEVEL": "INFO",
            **(extra_env or {}),
        }
        if kind == "worker":
            self.args = ["worker", "--concurrency", str(concurrency), "--pool", "prefork", "--loglevel", "INFO",
                         "--without-mingle", "--without-gossip", "-n", f"deprov-test-{os.getpid()}@%h"]
        else:
            self.args = ["beat", "--loglevel", "INFO", "-s", str(workdir / "beat-schedule")]

    def start(self) -> None:
        offset = len(self.output())
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "config", *self.args],
                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        marker = "ready." if self.kind == "worker" else "beat: Starting"
        wait_until(lambda: marker in self.output()[offset:] or self.proc.poll() is not None, 60,
                   f"celery {self.kind} to start")
        if self.proc.poll() is not None:
            raise AssertionError(f"celery {self.kind} exited:\n{self.output()[-3000:]}")

    def restart_if_exited(self) -> bool:
        """What a process supervisor (systemd ``Restart=always``, Kubernetes) does for a crashed worker."""
        if self.proc is not None and self.proc.poll() is not None:
            self.start()
            return True
        return False

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def kill(self) -> None:
        """SIGKILL the whole process group (main process and prefork children): no clean shutdown, no acks."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.proc = None


@contextlib.contextmanager
def celery_publishing_to(broker_url: str) -> Iterator[None]:
    """Point this process's Celery app (used by the services and the live server) at ``broker_url``."""
    from config.celery import app
    from workspaces.deprovisioning import tasks

    def reset_pools() -> None:
        # Forget (do not close: kombu shares pools per URL) the connections to the previous broker.
        app._pool = None
        with contextlib.suppress(AttributeError, KeyError):
            app.__dict__["amqp"]._producer_pool = None

    saved = {"broker_url": app.conf.broker_url, "task_always_eager": app.conf.task_always_eager}
    reset_pools()
    app.conf.update(broker_url=broker_url, task_always_eager=False)
    tasks._publish_paused_until = 0.0
    try:
        yield
    finally:
        reset_pools()
        app.conf.update(**saved)
        tasks._publish_paused_until = 0.0


@contextlib.contextmanager
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="gatehouse-deprov-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def make_leavers(workspace, n: int, prefix: str = "leaver") -> list[int]:
    """``n`` active members of ``workspace``, each signed in (one database session holding a grant for
    the workspace, indexed like a real login) and holding one personal API key. Returns membership ids."""
    import hashlib
    import secrets

    from django.contrib.sessions.backends.db import SessionStore
    from django.contrib.sessions.models import Session
    from django.utils import timezone

    from workspaces.access import SESSION_KEY
    from workspaces.models import ApiKey, Membership, User, UserSession

    users = User.objects.bulk_create(
        [User(email=f"{prefix}{i}@leavers.test", password="!unusable") for i in range(n)]
    )
    members = Membership.objects.bulk_create([Membership(workspace=workspace, user=u) for u in users])
    ApiKey.objects.bulk_create([
        ApiKey(workspace=workspace, membership=m, name="ci", prefix=secrets.token_hex(6),
               key_hash=hashlib.sha256(secrets.token_bytes(32)).hexdigest())
        for m in members
    ])
    store, now, signed_in_at = SessionStore(), timezone.now(), time.time() - 60
    sessions, index = [], []
    for u in users:
        key = secrets.token_hex(16)
        data = {
            "_auth_user_id": str(u.pk), "_auth_user_backend": "workspaces.auth_backends.EmailBackend",
            "_auth_user_hash": u.get_session_auth_hash(),
            SESSION_KEY: {str(workspace.pk): {"method": "saml", "at": signed_in_at, "exp": None}},
        }
        sessions.append(Session(session_key=key, session_data=store.encode(data), expire_date=now + timedelta(hours=1)))
        index.append(UserSession(user=u, session_key=key))
    Session.objects.bulk_create(sessions)
    UserSession.objects.bulk_create(index)
    return [m.pk for m in members]


def assert_every_revocation_done_once(workspace, membership_ids: list[int]) -> None:
    """Every job done with one session and one key revoked; one audit event per member; nothing live is left."""
    from django.contrib.sessions.models import Session
    from django.db.models import Count

    from audit.models import AuditEvent
    from workspaces.access import SESSION_KEY
    from workspaces.models import ApiKey, DeprovisionJob, UserSession

    jobs = DeprovisionJob.objects.filter(membership_id__in=membership_ids)
    assert jobs.count() == len(membership_ids), "one outbox row per deactivated member"
    assert set(jobs.values_list("status", flat=True)) == {"done"}
    results = {tuple(sorted(r.items())) for r in jobs.values_list("result", flat=True)}
    assert results == {(("api_keys", 1), ("oauth_tokens", 0), ("sessions", 1))}, results
    per_member = (
        AuditEvent.objects.filter(workspace=workspace, action="member.credentials_revoked")
        .values("target_id").annotate(n=Count("id")).order_by()
    )
    counts = {row["target_id"]: row["n"] for row in per_member}
    assert counts == {str(pk): 1 for pk in membership_ids}, "exactly one credentials_revoked event per member"
    assert not ApiKey.objects.filter(membership_id__in=membership_ids, revoked_at__isnull=True).exists()
    keys = UserSession.objects.filter(user__memberships__id__in=membership_ids).values_list("session_key", flat=True)
    still_granted = [
        s.session_key for s in Session.objects.filter(session_key__in=list(keys))
        if str(workspace.pk) in s.get_decoded().get(SESSION_KEY, {})
    ]
    assert still_granted == []


def run_job(job_id: int) -> str:
    """Deliver one job the way the worker does (the ``run_deprovision_jobs`` task), and return its outcome."""
    from workspaces.deprovisioning.tasks import run_deprovision_jobs

    summary = run_deprovision_jobs.apply(args=[[job_id]]).get()
    assert sum(summary.values()) == 1, summary
    return next(iter(summary))
