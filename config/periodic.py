"""Periodic jobs that run once per interval however many ``celery beat`` processes send them.

Every beat entry sends ``config.tasks.run_periodic(<job>)``. The worker that receives it claims the job's slot
with one conditional UPDATE (``last_started_at`` older than 90% of the interval); only the claimer runs the job,
and the other beats' copies of the same slot are counted as skipped. A row lock serialises two claims of one
row on PostgreSQL (the second re-reads the new time and matches nothing), SQLite serialises every write, and no
session-level lock is held, so this also works behind PgBouncer in transaction mode.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from .models import PeriodicJobRun

logger = logging.getLogger("gatehouse.periodic")

# A run within this share of the interval after the last one is the same slot, sent by another beat. Below 1 so
# that one beat's own runs, which arrive a little early or late, are never taken for duplicates.
SAME_SLOT = 0.9

_NEVER = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class PeriodicJob:
    name: str
    task: str
    every: float
    options: dict[str, object]


def periodic_jobs() -> dict[str, PeriodicJob]:
    """The jobs of ``settings.PERIODIC_JOBS``, by name."""
    return {
        name: PeriodicJob(name=name, task=job["task"], every=float(job["every"]), options=dict(job.get("options", {})))
        for name, job in settings.PERIODIC_JOBS.items()
    }


def periodic_run_claim(name: str, every: float, *, now: datetime | None = None) -> bool:
    """True when this caller may run ``name`` now: no run of it started within 90% of ``every`` seconds."""
    now = now or timezone.now()
    try:
        with transaction.atomic():
            PeriodicJobRun.objects.get_or_create(name=name, defaults={"last_started_at": _NEVER})
    except IntegrityError:
        pass  # another worker created the row first
    claimed = PeriodicJobRun.objects.filter(
        name=name, last_started_at__lte=now - timedelta(seconds=every * SAME_SLOT)
    ).update(last_started_at=now, runs=F("runs") + 1)
    if not claimed:
        PeriodicJobRun.objects.filter(name=name).update(skipped=F("skipped") + 1)
        logger.info("periodic job %s: this slot already ran (another scheduler sent it too); skipped", name)
    return bool(claimed)
