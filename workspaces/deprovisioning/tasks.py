"""Celery shells around the outbox runner: take ids, re-fetch, stay idempotent.

Deprovisioning runs from the outbox (``DeprovisionJob``). Tasks carry lists of job ids so the
sweeper and a support-disabled account publish a few chunks, not thousands of tiny messages
(measured at ~0.8 ms per enqueue and ~2.3 ms per task round trip).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from celery import Task, shared_task
from django.conf import settings
from django.core.cache import cache
from django.db import InterfaceError, OperationalError

from audit.record import Actor
from config.celery import app

from .runner import deprovision_jobs_claim_due, deprovision_jobs_run

logger = logging.getLogger(__name__)

# After a failed publish, this process leaves new jobs to the sweeper for a few seconds instead of
# making every request wait on a dead broker (the outbox row is already committed).
_publish_paused_until = 0.0


def enqueue_deprovision_jobs(job_ids: Sequence[int], *, countdown: float | None = None) -> int:
    """Publish jobs in chunks. Never raises: a job that is not published stays pending for the sweeper.

    Returns how many job ids were published. ``countdown``: seconds before the message may run.
    """
    global _publish_paused_until
    ids = list(job_ids)
    eager = bool(app.conf.task_always_eager)
    if not ids or (not eager and time.monotonic() < _publish_paused_until):
        return 0
    size = max(1, settings.DEPROVISION_BATCH_SIZE)
    sent = 0
    for start in range(0, len(ids), size):
        chunk = ids[start : start + size]
        try:
            # retry=False: fail fast when Redis is down; the sweeper is the retry.
            run_deprovision_jobs.apply_async(args=[chunk], retry=False, countdown=countdown)
        except Exception:
            if not eager:
                _publish_paused_until = time.monotonic() + settings.DEPROVISION_PUBLISH_PAUSE
            logger.warning(
                "could not enqueue %d deprovisioning job(s); they stay pending for the sweeper",
                len(ids) - sent, exc_info=True,
            )
            return sent
        sent += len(chunk)
    return sent


_COALESCE_KEY = "gatehouse:deprovision:kick"
_COALESCE_MARGIN = 0.2  # seconds


def enqueue_new_deprovision_job(job_id: int) -> None:
    """Have a job that was just committed run soon, publishing at most one message per coalescing window.

    The first new job of a window (``DEPROVISION_COALESCE_SECONDS``, a flag in the cache: Redis in
    production) publishes a message delayed by the window; jobs committed while the flag is set
    publish nothing: that message runs after their commit and its worker takes every fresh pending
    job (``deprovision_jobs_run(fill_to=...)``). So a burst of 1,000 deactivations is a few messages
    revoked in batches instead of 1,000 one-job messages, at the cost of up to one window of delay.
    A lost message (broker down, worker killed) leaves its jobs to the sweeper, as before. Never raises.
    """
    window = settings.DEPROVISION_COALESCE_SECONDS
    if window <= 0 or app.conf.task_always_eager:
        enqueue_deprovision_jobs([job_id])
        return
    try:
        covered = not cache.add(_COALESCE_KEY, 1, timeout=window)
    except Exception:  # noqa: BLE001 - no cache: publish this job on its own
        covered = False
    if not covered:
        # The message must not run before the flag expires (then a job that saw the flag would be missed):
        # a little later than the window, for clocks that differ slightly between web and worker nodes.
        enqueue_deprovision_jobs([job_id], countdown=window + _COALESCE_MARGIN)


# Task names are the ones messages already queued and the beat schedule (config/settings.py) carry.
@shared_task(  # type: ignore[untyped-decorator]  # celery ships no type hints
    name="workspaces.tasks.run_deprovision_jobs",
    bind=True, acks_late=True, ignore_result=True,
    autoretry_for=(OperationalError, InterfaceError), retry_backoff=True, retry_backoff_max=300, max_retries=8,
)
def run_deprovision_jobs(self: Task, job_ids: list[int]) -> dict[str, int]:
    """Run outbox jobs; jobs that failed but have attempts left are retried with backoff.

    On a worker the message's jobs are topped up with other fresh pending jobs to a batch of
    ``DEPROVISION_BATCH_SIZE`` (see ``deprovision_jobs_run``): a burst of deactivations, one message
    each, is revoked in batches. Eager (in a web request) runs only its own jobs.
    """
    fill_to = 0 if self.request.is_eager else settings.DEPROVISION_BATCH_SIZE
    actor = Actor.system("deprovisioning")
    outcomes = deprovision_jobs_run(job_ids=job_ids, actor=actor, fill_to=fill_to)
    while fill_to and sum(1 for o in outcomes.values() if o != "skipped") >= fill_to:
        # A full batch: more fresh jobs may be waiting on this message (coalesced); keep draining.
        more = deprovision_jobs_run(job_ids=[], actor=actor, fill_to=fill_to)
        outcomes.update(more)
        if sum(1 for o in more.values() if o != "skipped") < fill_to:
            break
    summary: dict[str, int] = {}
    for outcome in outcomes.values():
        summary[outcome] = summary.get(outcome, 0) + 1
    retry = [job_id for job_id, outcome in outcomes.items() if outcome == "retry"]
    if retry and not self.request.is_eager:
        # Eager (embedded default): no retry loop inside a web request; the job stays pending.
        countdown = settings.DEPROVISION_RETRY_BASE * (2 ** min(self.request.retries, 8))
        raise self.retry(args=[retry], countdown=min(countdown, settings.DEPROVISION_RETRY_MAX_DELAY))
    return summary


@shared_task(name="workspaces.tasks.sweep_deprovision_jobs", ignore_result=True)  # type: ignore[untyped-decorator]  # celery ships no type hints
def sweep_deprovision_jobs() -> int:
    """Beat job: re-enqueue jobs that are not done after their due time (Redis was down, a worker died)."""
    total = 0
    while True:
        ids = deprovision_jobs_claim_due(limit=settings.DEPROVISION_SWEEP_LIMIT)
        if not ids:
            return total
        sent = enqueue_deprovision_jobs(ids)
        total += sent
        if sent < len(ids) or len(ids) < settings.DEPROVISION_SWEEP_LIMIT:
            return total
