"""The outbox runner: claims jobs, revokes in batches, records each job's outcome.

Safe to run any number of times with the same ids, concurrently too: a job's revocation, its audit
event and its ``done`` status commit together with the job row locked.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from datetime import timedelta

from django.conf import settings
from django.db import InterfaceError, OperationalError, transaction
from django.db.models import F
from django.utils import timezone

from audit.record import Actor

from ..models import DeprovisionJob, DeprovisionStatus
from . import revoke

logger = logging.getLogger(__name__)


def _retry_delay(attempts: int) -> float:
    """Exponential backoff with jitter: 2, 4, 8... seconds, capped."""
    base = float(settings.DEPROVISION_RETRY_BASE) * 2.0 ** max(attempts - 1, 0)
    return min(float(settings.DEPROVISION_RETRY_MAX_DELAY), base) * random.uniform(0.8, 1.2)  # noqa: S311


def deprovision_jobs_run(*, job_ids: Sequence[int], actor: Actor, fill_to: int = 0) -> dict[int, str]:
    """Run outbox jobs; safe to call any number of times with the same ids, concurrently too.

    Returns each job's outcome: ``done``; ``skipped`` (already finished, or finished meanwhile by a
    twin delivery); ``retry`` (failed, retried later with backoff); ``failed`` (its last attempt
    failed: kept and shown to Owners). Jobs are claimed in one transaction (status ``running``,
    attempt counted), then revoked in transactions of ``DEPROVISION_TXN_SIZE`` jobs. A job's
    revocation, its audit event and its ``done`` status commit together, with the job row locked:
    that is what makes a second delivery a no-op. Database connection errors propagate (the task
    retries the whole batch).

    ``fill_to``: also claim fresh pending jobs (never attempted, not locked by anyone) until that many
    jobs run. The worker passes it: when deactivations arrive one message per job, one message then
    revokes a batch, and the messages of the jobs it took find them done and cost one query each.
    Jobs waiting for a retry (attempted before) are left to their backoff.
    """
    outcomes: dict[int, str] = dict.fromkeys(job_ids, "skipped")
    now = timezone.now()
    open_statuses = (DeprovisionStatus.PENDING, DeprovisionStatus.RUNNING)
    with transaction.atomic():
        claimed = list(
            DeprovisionJob.objects.select_for_update()
            .filter(pk__in=list(job_ids), status__in=open_statuses)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        if fill_to > len(claimed):
            claimed += list(
                DeprovisionJob.objects.select_for_update(skip_locked=True)
                .filter(status=DeprovisionStatus.PENDING, attempts=0)
                .exclude(pk__in=list(job_ids))
                .order_by("pk")
                .values_list("pk", flat=True)[: fill_to - len(claimed)]
            )
        if not claimed:
            return outcomes
        DeprovisionJob.objects.filter(pk__in=claimed).update(
            status=DeprovisionStatus.RUNNING, attempts=F("attempts") + 1, updated_at=now,
            # If this worker dies, the sweeper hands the jobs out again after this.
            due_at=now + timedelta(seconds=settings.DEPROVISION_RETRY_AFTER),
        )
    size = max(1, settings.DEPROVISION_TXN_SIZE)
    for start in range(0, len(claimed), size):
        with transaction.atomic():
            jobs = list(
                DeprovisionJob.objects.select_for_update(of=("self",))
                .filter(pk__in=claimed[start : start + size]).order_by("pk")
            )
            # Audit chain heads are locked per workspace: take them in one order in every worker.
            # A twin delivery may have finished some while we waited for the lock.
            running = sorted((j for j in jobs if j.status == DeprovisionStatus.RUNNING), key=lambda j: (j.workspace_id, j.pk))
            outcomes.update(_deprovision_jobs_revoke(running, actor))
    return outcomes


def _deprovision_jobs_revoke(jobs: list[DeprovisionJob], actor: Actor) -> dict[int, str]:
    """Revoke a batch together (a few statements for all of it); if anything in it fails, run the
    jobs one by one so that one failing job does not hold back, or undo, the others."""
    if len(jobs) > 1:
        try:
            with transaction.atomic():
                counts = revoke.revoke_and_record(jobs, actor)
                _jobs_done(jobs, counts)
            return dict.fromkeys((job.pk for job in jobs), "done")
        except (OperationalError, InterfaceError):
            raise
        except Exception:
            logger.warning("a batch of %d deprovisioning jobs failed; running them one by one", len(jobs), exc_info=True)
    return {job.pk: _deprovision_job_revoke(job, actor) for job in jobs}


def _jobs_done(jobs: list[DeprovisionJob], counts: dict[int, dict[str, int]]) -> None:
    """Mark jobs done with what each revoked: one UPDATE per distinct result (usually one)."""
    finished = timezone.now()
    by_result: dict[tuple[tuple[str, int], ...], list[int]] = {}
    for job in jobs:
        job.status, job.result, job.last_error = DeprovisionStatus.DONE, counts[job.pk], ""
        job.finished_at = job.updated_at = finished
        by_result.setdefault(tuple(sorted(counts[job.pk].items())), []).append(job.pk)
    for result, pks in by_result.items():
        DeprovisionJob.objects.filter(pk__in=pks).update(
            status=DeprovisionStatus.DONE, result=dict(result), last_error="", finished_at=finished, updated_at=finished
        )


def _deprovision_job_revoke(job: DeprovisionJob, actor: Actor) -> str:
    try:
        with transaction.atomic():
            counts = revoke.membership_revoke_credentials(job=job, actor=actor)
    except (OperationalError, InterfaceError):
        raise
    except Exception as exc:
        logger.exception("deprovisioning job %s failed", job.pk)
        final = job.attempts >= settings.DEPROVISION_MAX_ATTEMPTS
        failed_at = timezone.now()
        job.status = DeprovisionStatus.FAILED if final else DeprovisionStatus.PENDING
        job.last_error = f"{type(exc).__name__}: {exc}"[:2000]
        job.updated_at = failed_at
        job.due_at = failed_at + timedelta(seconds=_retry_delay(job.attempts) + settings.DEPROVISION_RETRY_AFTER)
        job.save(update_fields=["status", "last_error", "updated_at", "due_at"])
        return "failed" if final else "retry"
    _jobs_done([job], {job.pk: counts})
    return "done"


@transaction.atomic
def deprovision_jobs_claim_due(*, limit: int) -> list[int]:
    """Jobs that should have finished by now (pending or running past ``due_at``); pushes their ``due_at`` on.

    ``skip_locked``: a job a worker is running right now is not handed out again.
    """
    now = timezone.now()
    ids = list(
        DeprovisionJob.objects.select_for_update(skip_locked=True)
        .filter(status__in=[DeprovisionStatus.PENDING, DeprovisionStatus.RUNNING], due_at__lte=now)
        .order_by("due_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )
    if ids:
        DeprovisionJob.objects.filter(pk__in=ids).update(
            due_at=now + timedelta(seconds=settings.DEPROVISION_RETRY_AFTER), updated_at=now
        )
    return ids
