"""Retention purges through one privileged path and leaves a signed checkpoint: the rest still verifies."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.test import override_settings
from django.utils import timezone

from audit.chain import verify_chain
from audit.models import AuditCheckpoint, AuditEvent, AuditLogIsAppendOnly
from audit.record import Actor
from audit.retention import audit_log_purge
from audit.tasks import purge_expired_audit_events

from .helpers import frozen_now, record


@pytest.fixture
def aged(world):
    """Workspace A: 3 events 400 days old, then 2 recent ones. Workspace B: 2 old events."""
    old = timezone.now() - timedelta(days=400)
    with frozen_now(old):
        olds = [record(world.a, "member.created", target_label=f"old{i}") for i in range(3)]
        record(world.b, "member.created")
        record(world.b, "member.created")
    recent = [record(world.a, "member.role_changed") for _ in range(2)]
    return olds, recent


def test_retention_purge_then_the_remaining_chain_verifies_from_the_checkpoint(world, aged):
    olds, recent = aged
    result = audit_log_purge(workspace=world.a, actor=Actor.system("retention"))
    assert result.purged == 3
    assert not AuditEvent.objects.filter(pk__in=[e.pk for e in olds]).exists()
    assert AuditEvent.objects.filter(pk__in=[e.pk for e in recent]).count() == 2
    checkpoint = AuditCheckpoint.objects.get(workspace_id=world.a.pk)
    assert (checkpoint.seq, checkpoint.hash) == (olds[-1].seq, olds[-1].hash)
    report = verify_chain(world.a.pk)
    assert report.ok, report.reason
    assert report.start_seq == 3 and report.last_seq == 6  # 2 recent + the audit.purged event


def test_the_purge_is_itself_audited_with_its_count_and_checkpoint(world, aged):
    audit_log_purge(workspace=world.a, actor=Actor.system("retention"))
    event = AuditEvent.objects.get(workspace_id=world.a.pk, action="audit.purged")
    checkpoint = AuditCheckpoint.objects.get(workspace_id=world.a.pk)
    assert event.details["count"] == 3
    assert event.details["checkpoint"] == {"id": checkpoint.pk, "seq": 3, "hash": checkpoint.hash}


def test_verify_audit_chain_command_passes_after_a_purge(world, aged, capsys):
    audit_log_purge(workspace=world.a, actor=Actor.system("retention"))
    call_command("verify_audit_chain", "alpha")
    assert "from the retention checkpoint at #3" in capsys.readouterr().out


def test_a_forged_checkpoint_breaks_verification(world, aged):
    audit_log_purge(workspace=world.a, actor=Actor.system("retention"))
    AuditCheckpoint.objects.filter(workspace_id=world.a.pk).update(seq=2)  # hide that #3 existed
    report = verify_chain(world.a.pk)
    assert not report.ok
    assert "invalid signature" in report.reason


def test_a_checkpoint_signed_with_another_key_does_not_verify(world, aged):
    audit_log_purge(workspace=world.a, actor=Actor.system("retention"))
    with override_settings(AUDIT_CHECKPOINT_KEY="another-key-entirely-0123456789"):
        assert "invalid signature" in verify_chain(world.a.pk).reason


def test_deleting_old_events_without_the_purge_path_still_breaks_the_chain(world, aged):
    olds, _ = aged
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL gatehouse.audit_purge = 'on'")  # an attacker who knows the flag...
        cursor.execute("DELETE FROM audit_auditevent WHERE id = %s", [olds[0].pk])
    assert "sequence gap" in verify_chain(world.a.pk).reason  # ...still cannot sign a checkpoint


def test_the_orm_cannot_purge(world, aged):
    with pytest.raises(AuditLogIsAppendOnly):
        AuditEvent.objects.filter(workspace_id=world.a.pk).delete()


def test_events_inside_the_retention_are_kept_and_nothing_is_recorded(world):
    record(world.a, "member.created")
    result = audit_log_purge(workspace=world.a, actor=Actor.system("retention"))
    assert result.purged == 0 and result.checkpoint is None
    assert not AuditEvent.objects.filter(action="audit.purged").exists()


def test_the_beat_job_applies_each_workspaces_own_retention(world, aged):
    world.b.audit_retention_days = 1000
    world.b.save()
    assert purge_expired_audit_events() == {"alpha": 3}
    assert AuditEvent.objects.filter(workspace_id=world.b.pk).count() == 2
    assert verify_chain(world.a.pk).ok and verify_chain(world.b.pk).ok


def test_a_second_purge_starts_from_the_newer_checkpoint(world, aged):
    audit_log_purge(workspace=world.a, actor=Actor.system("retention"))
    audit_log_purge(workspace=world.a, actor=Actor.system("retention"), retention_days=0)
    report = verify_chain(world.a.pk)
    assert report.ok, report.reason
    assert AuditCheckpoint.objects.filter(workspace_id=world.a.pk).count() == 2


def test_a_large_backlog_is_purged_in_batches_each_leaving_a_verifiable_chain(world, aged, settings):
    settings.AUDIT_PURGE_BATCH = 2
    first = audit_log_purge(workspace=world.a, actor=Actor.system("retention"), batch=2)
    assert first.purged == 2 and verify_chain(world.a.pk).ok
    assert purge_expired_audit_events() == {"alpha": 1, "bravo": 2}
    report = verify_chain(world.a.pk)
    assert report.ok and report.start_seq == 3
    assert AuditCheckpoint.objects.filter(workspace_id=world.a.pk).count() == 2
