"""The one privileged path that removes audit events: retention purges.

In ONE transaction it (1) lifts the database's append-only guard for this transaction only
(``SET LOCAL gatehouse.audit_purge = 'on'`` on PostgreSQL; the trigger of migration 0003 lets
DELETE through only then), (2) deletes a *prefix* of the workspace's chain (every event up to
the newest one older than the retention), (3) stores a signed checkpoint with the seq and hash
of the last purged event, so ``verify_chain`` still verifies what remains, and (4) records
``audit.purged``. If any step fails, nothing is purged.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from config.db import is_postgresql

from .keys import sign_checkpoint
from .models import AuditCheckpoint, AuditEvent, AuditOutbox, AuditVerification
from .record import Actor, record_event


@dataclass(frozen=True)
class PurgeResult:
    purged: int
    checkpoint: AuditCheckpoint | None


@transaction.atomic
def audit_log_purge(
    *, workspace: Any, actor: Actor, retention_days: int | None = None, batch: int | None = None
) -> PurgeResult:
    """Purge ``workspace``'s events older than its retention (``audit_retention_days``, default 365).

    At most ``batch`` events (AUDIT_PURGE_BATCH) per call, each call its own transaction with its
    own checkpoint, so a large backlog never holds a long transaction; the beat job calls again
    while a full batch was purged. Appends to the chain are not blocked: the purge only removes the
    oldest prefix, and takes the chain head lock only for its own ``audit.purged`` event at the end.
    """
    days = retention_days if retention_days is not None else workspace.audit_retention_days
    batch = batch or getattr(settings, "AUDIT_PURGE_BATCH", 100_000)
    cutoff = timezone.now() - timedelta(days=days)
    events = AuditEvent.objects.filter(workspace_id=workspace.pk)
    # Newest expired event, found on the (workspace, created_at, id) index; seq follows time in a chain.
    newest_old = events.filter(created_at__lt=cutoff).order_by("-created_at", "-id").values_list("seq", flat=True).first()
    if newest_old is None:
        return PurgeResult(0, None)
    oldest = events.order_by("seq").values_list("seq", flat=True).first()
    if oldest is None:  # the events were purged since the line above (another purge run)
        return PurgeResult(0, None)
    last = events.filter(seq=min(newest_old, oldest + batch - 1)).only("pk", "seq", "hash").get()
    if is_postgresql(connection):
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL gatehouse.audit_purge = 'on'")
    table = AuditEvent._meta.db_table
    with connection.cursor() as cursor:
        # Raw DELETE: AuditEventQuerySet.delete() refuses by design; this is the one exception.
        # By seq, not by time: the purge always removes a prefix, so the rest stays contiguous.
        cursor.execute(f"DELETE FROM {table} WHERE workspace_id = %s AND seq <= %s", [workspace.pk, last.seq])
        purged = cursor.rowcount
    if is_postgresql(connection):
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL gatehouse.audit_purge = 'off'")
    # Undelivered outbox rows of purged events can no longer be delivered; they are dropped
    # (and counted) rather than left to block the sink.
    dropped, _ = AuditOutbox.objects.filter(sink__workspace_id=workspace.pk, seq__lte=last.seq).delete()
    now = timezone.now()
    checkpoint = AuditCheckpoint(
        workspace_id=workspace.pk, seq=last.seq, hash=last.hash, purged_count=purged,
        purged_before=cutoff, created_at=now,
    )
    checkpoint.signature = sign_checkpoint(checkpoint.signed_payload())
    checkpoint.save()
    # Old verification runs go with the events they described (the newest always stays).
    keep = AuditVerification.objects.filter(workspace_id=workspace.pk).order_by("-at").values_list("pk", flat=True)[:1]
    AuditVerification.objects.filter(workspace_id=workspace.pk, at__lt=cutoff).exclude(pk__in=list(keep)).delete()
    record_event(
        actor=actor, action="audit.purged", workspace=workspace,
        target_type="workspace", target_id=workspace.pk, target_label=getattr(workspace, "slug", ""),
        details={
            "count": purged, "retention_days": days, "purged_before": cutoff.isoformat(),
            "checkpoint": {"id": checkpoint.pk, "seq": checkpoint.seq, "hash": checkpoint.hash},
            "undelivered_dropped": dropped,
        },
    )
    return PurgeResult(purged, checkpoint)
