"""Celery shells for the audit log's background work (beat schedule in config/settings.py)."""

from __future__ import annotations

from celery import shared_task
from django.apps import apps
from django.conf import settings

from .chain import chain_workspace_ids, verify_chain
from .delivery import deliver_sink, due_sink_ids
from .record import Actor
from .retention import audit_log_purge
from .services import audit_verification_record


@shared_task(acks_late=True)
def verify_audit_chains() -> dict[str, int]:
    """Verify every workspace's chain and store the result shown on its audit page."""
    Workspace = apps.get_model("workspaces", "Workspace")
    ok = broken = 0
    for workspace_id in chain_workspace_ids():
        if workspace_id is None:
            continue
        workspace = Workspace.objects.filter(pk=workspace_id).first()
        if workspace is None:
            continue
        report = verify_chain(workspace_id)  # a long read: outside any write transaction
        audit_verification_record(workspace=workspace, report=report, actor=Actor.system("chain verifier"))
        ok, broken = (ok + 1, broken) if report.ok else (ok, broken + 1)
    return {"ok": ok, "broken": broken}


@shared_task(acks_late=True)
def purge_expired_audit_events() -> dict[str, int]:
    """Apply each workspace's retention through the one privileged purge path."""
    Workspace = apps.get_model("workspaces", "Workspace")
    purged = {}
    batch = getattr(settings, "AUDIT_PURGE_BATCH", 100_000)
    for workspace in Workspace.objects.all().iterator():
        total = 0
        while True:  # one short transaction per batch
            result = audit_log_purge(workspace=workspace, actor=Actor.system("retention"), batch=batch)
            total += result.purged
            if result.purged < batch:
                break
        if total:
            purged[workspace.slug] = total
    return purged


@shared_task(acks_late=True)
def deliver_audit_sink(sink_id: int) -> int:
    return deliver_sink(sink_id).delivered


@shared_task(acks_late=True)
def deliver_due_audit_sinks() -> int:
    """Beat: one delivery task per sink that has events queued and is not backing off."""
    ids = due_sink_ids()
    for sink_id in ids:
        deliver_audit_sink.delay(sink_id)
    return len(ids)
