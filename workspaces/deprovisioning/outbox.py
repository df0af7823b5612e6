"""The outbox: every deactivation, removal or account disable writes a ``DeprovisionJob``.

The row is written in the caller's transaction, next to its audit event. After commit the job is
enqueued (Celery, best effort); the beat sweeper re-enqueues any job that is not done when its
``due_at`` passes (Redis was down, a worker died). Running a job twice has no second effect (see
``runner``).

Hand-written SQL: on PostgreSQL the outbox INSERT is one prebuilt ``INSERT ... RETURNING id``; the
ORM's insert compilation cost more than the round trip on the SCIM deactivate path
(``bench/deprovision_bench.py``).
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone

from audit.record import Actor, record_event
from config.db import CompiledQuery, is_postgresql

from ..models import DeprovisionJob, DeprovisionStatus, Membership
from . import tasks


def deprovision_job_add(*, membership: Membership, cause: str) -> DeprovisionJob:
    """Write the outbox row inside the caller's transaction and enqueue it once that commits."""
    now = timezone.now()
    job = DeprovisionJob(
        workspace_id=membership.workspace_id,
        user_id=membership.user_id,
        membership=membership,
        member_label=membership.user.email[:254],
        cause=cause,
        created_at=now,
        updated_at=now,
        due_at=now + timedelta(seconds=settings.DEPROVISION_RETRY_AFTER),
    )
    _insert_job(job)
    job_id = job.pk
    transaction.on_commit(lambda: tasks.enqueue_new_deprovision_job(job_id))
    return job


_JOB_FIELDS = [f for f in DeprovisionJob._meta.concrete_fields if not f.primary_key]


def _build_job_insert(conn: BaseDatabaseWrapper) -> str:
    qn = conn.ops.quote_name
    return (
        f"INSERT INTO {qn(DeprovisionJob._meta.db_table)} ({', '.join(qn(f.column) for f in _JOB_FIELDS)}) "
        f"VALUES ({', '.join(['%s'] * len(_JOB_FIELDS))}) RETURNING {qn(DeprovisionJob._meta.pk.column)}"
    )


_JOB_INSERT = CompiledQuery(_build_job_insert)


def _insert_job(job: DeprovisionJob) -> None:
    """INSERT the outbox row. On PostgreSQL one prebuilt ``INSERT ... RETURNING id`` (built once per
    process from the model's columns): the ORM's insert compilation cost more than the round trip
    (``bench/deprovision_bench.py``, web-worker CPU per deactivating PATCH)."""
    if not is_postgresql(connection):
        job.save(force_insert=True)
        return
    row = _JOB_INSERT.fetchone([f.get_db_prep_save(f.pre_save(job, True), connection) for f in _JOB_FIELDS])
    assert row is not None  # INSERT ... RETURNING returns its row
    job.pk = row[0]
    job._state.adding = False
    job._state.db = connection.alias


@transaction.atomic
def deprovision_job_requeue(*, job: DeprovisionJob, actor: Actor) -> DeprovisionJob:
    """Give a failed job a fresh set of attempts (support, after fixing the cause)."""
    job = DeprovisionJob.objects.select_for_update().get(pk=job.pk)
    if job.status != DeprovisionStatus.FAILED:
        return job
    now = timezone.now()
    job.status, job.attempts, job.due_at, job.updated_at = DeprovisionStatus.PENDING, 0, now, now
    job.save(update_fields=["status", "attempts", "due_at", "updated_at"])
    record_event(
        actor=actor, action="member.deprovisioning_requeued", workspace=job.workspace_id,
        target_type="member", target_id=job.membership_id or "", target_label=job.member_label,
        details={"job": job.pk, "last_error": job.last_error[:200]},
    )
    job_id = job.pk
    transaction.on_commit(lambda: tasks.enqueue_deprovision_jobs([job_id]))
    return job
