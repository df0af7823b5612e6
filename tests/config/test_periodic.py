"""Periodic jobs run once per interval however many schedulers send them: the slot claim, concurrent claims on
PostgreSQL, and two real ``celery beat`` processes with a real worker."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.utils import timezone

from config.models import PeriodicJobRun
from config.periodic import periodic_run_claim
from config.tasks import run_periodic
from tests.deprov.harness import CeleryProcess, RedisServer, celery_publishing_to, wait_until, workdir


def _row(name: str) -> PeriodicJobRun:
    return PeriodicJobRun.objects.get(name=name)


class TestSlotClaim:
    def test_the_first_claim_of_a_slot_wins_and_a_second_within_it_is_skipped(self, db):
        now = timezone.now()
        assert periodic_run_claim("job", 60, now=now) is True
        assert periodic_run_claim("job", 60, now=now + timedelta(seconds=30)) is False
        row = _row("job")
        assert (row.runs, row.skipped, row.last_started_at) == (1, 1, now)

    def test_the_next_slot_runs_even_when_the_scheduler_sends_it_a_little_early(self, db):
        now = timezone.now()
        assert periodic_run_claim("job", 60, now=now)
        # 91% of the interval later: one beat's next run, a little early, is not taken for a duplicate.
        assert periodic_run_claim("job", 60, now=now + timedelta(seconds=54.6)) is True
        assert periodic_run_claim("job", 60, now=now + timedelta(seconds=54.6 + 53)) is False
        assert (_row("job").runs, _row("job").skipped) == (2, 1)

    def test_jobs_are_claimed_independently(self, db):
        now = timezone.now()
        assert periodic_run_claim("a", 60, now=now) and periodic_run_claim("b", 60, now=now)

    def test_the_task_beat_sends_runs_the_job_only_for_the_claimer(self, db, settings, monkeypatch):
        ran = []
        from config.celery import app

        monkeypatch.setitem(app.tasks, "tests.counting_job", lambda: ran.append(1) or len(ran))
        settings.PERIODIC_JOBS = {"counting": {"task": "tests.counting_job", "every": 60}}
        assert run_periodic("counting") == 1
        assert run_periodic("counting") is None
        assert ran == [1]


def test_concurrent_claims_of_one_slot_have_exactly_one_winner(transactional_db):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: the claim's row lock under concurrent writers (run with DATABASE_URL=postgres://...)")
    now = timezone.now()

    def claim(_: int) -> bool:
        try:
            return periodic_run_claim("race", 60, now=now)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(claim, range(16)))
    assert results.count(True) == 1
    assert (_row("race").runs, _row("race").skipped) == (1, 15)


@pytest.mark.django_db(transaction=True)
def test_two_beats_and_a_worker_run_each_slot_once():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: the Celery processes must open the test database (run with DATABASE_URL=postgres://...)")
    with workdir() as wd:
        redis_server = RedisServer(wd)
        redis_server.start()
        procs: list[CeleryProcess] = []
        try:
            with celery_publishing_to(redis_server.url):
                for kind, sub in (("worker", "w"), ("beat", "a"), ("beat", "b")):
                    (wd / sub).mkdir()
                    # The sweeper every second (the harness's setting): enough slots to count in a few seconds.
                    proc = CeleryProcess(kind, redis_server.url, wd / sub)
                    procs.append(proc)
                    proc.start()
                wait_until(lambda: PeriodicJobRun.objects.filter(name="deprovision-sweep", runs__gte=1).exists(),
                           60, "the first sweep")
                first = _row("deprovision-sweep")
                started = time.monotonic()
                wait_until(lambda: _row("deprovision-sweep").runs >= first.runs + 6, 60, "six more sweeps")
                elapsed = time.monotonic() - started
                row = _row("deprovision-sweep")
                beats_sent = sum(
                    proc.output().count("Sending due task deprovision-sweep") for proc in procs if proc.kind == "beat"
                )
        finally:
            for proc in procs:
                proc.kill()
                print(f"----- celery {proc.kind} log (tail) -----\n{proc.output()[-3000:]}")
            redis_server.stop()
    runs = row.runs - first.runs
    # Both beats sent every slot: the second copy of each was skipped, so runs are spaced by at least 90% of
    # the interval (1 s) and never come two per slot.
    assert row.skipped >= runs - 2, (runs, row.skipped)
    assert runs <= elapsed / 0.9 + 1, (runs, elapsed)
    assert beats_sent >= 2 * runs - 2, beats_sent
