"""The beat schedule names real tasks, and the delivery beat job delivers what is due."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.db import transaction

from audit.models import AuditOutbox
from audit.services import audit_sink_create
from config.celery import app

from .helpers import as_actor, record
from .test_sinks import Receiver


def test_every_audit_beat_entry_names_a_registered_task():
    app.loader.import_default_modules()
    names = {job["task"] for key, job in settings.PERIODIC_JOBS.items() if key.startswith("audit-")}
    assert names == {"audit.tasks.deliver_due_audit_sinks", "audit.tasks.verify_audit_chains",
                     "audit.tasks.purge_expired_audit_events"}
    assert names <= set(app.tasks)


@pytest.fixture
def eager_celery():
    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


def test_the_delivery_beat_job_sends_queued_events_to_a_listening_receiver(world, eager_celery, outbound_to_loopback):
    from audit.tasks import deliver_due_audit_sinks

    receiver = Receiver()
    receiver.up()
    try:
        with transaction.atomic():
            sink, _ = audit_sink_create(workspace=world.a, name="SIEM", url=receiver.url, actor=as_actor(world.owner_a))
        record(world.a, "member.created")
        assert deliver_due_audit_sinks() == 1
        assert [e["action"] for e in receiver.events()] == ["audit.sink_created", "member.created"]
        assert not AuditOutbox.objects.filter(sink=sink).exists()
        assert deliver_due_audit_sinks() == 0
    finally:
        receiver.down()
