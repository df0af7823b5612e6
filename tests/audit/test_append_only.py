"""Nobody can change the log: the ORM refuses everywhere, and on PostgreSQL the database itself refuses."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction

from audit.models import AuditEvent, AuditLogIsAppendOnly

from .helpers import record


def _needs_postgresql():
    if connection.vendor != "postgresql":
        pytest.skip(f"needs PostgreSQL: the append-only trigger exists only there (this run uses {connection.vendor})")


def test_the_orm_refuses_to_update_or_delete_events(world):
    event = record(world.a, "member.created")
    with pytest.raises(AuditLogIsAppendOnly):
        AuditEvent.objects.filter(pk=event.pk).update(action="nothing.happened")
    with pytest.raises(AuditLogIsAppendOnly):
        AuditEvent.objects.filter(pk=event.pk).delete()
    with pytest.raises(AuditLogIsAppendOnly):
        event.delete()
    event.action = "nothing.happened"
    with pytest.raises(AuditLogIsAppendOnly):
        event.save()
    assert AuditEvent.objects.get(pk=event.pk).action == "member.created"


def test_postgresql_refuses_a_raw_update_of_an_event(world):
    _needs_postgresql()
    event = record(world.a, "member.created")
    with pytest.raises(DatabaseError, match="append-only: UPDATE refused"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("UPDATE audit_auditevent SET action = 'nothing.happened' WHERE id = %s", [event.pk])
    assert AuditEvent.objects.get(pk=event.pk).action == "member.created"


def test_postgresql_refuses_a_raw_delete_of_an_event(world):
    _needs_postgresql()
    event = record(world.a, "member.created")
    with pytest.raises(DatabaseError, match="append-only: DELETE refused"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM audit_auditevent WHERE id = %s", [event.pk])
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_postgresql_refuses_truncate_outside_the_test_flush(world):
    _needs_postgresql()
    record(world.a, "member.created")
    with pytest.raises(DatabaseError, match="append-only: TRUNCATE refused"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL gatehouse.allow_truncate = 'off'")  # what every production session has
            cursor.execute("TRUNCATE audit_auditevent")
    assert AuditEvent.objects.exists()


def test_the_purge_flag_lets_only_delete_through_never_update(world):
    _needs_postgresql()
    event = record(world.a, "member.created")
    with pytest.raises(DatabaseError, match="UPDATE refused"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL gatehouse.audit_purge = 'on'")
            cursor.execute("UPDATE audit_auditevent SET action = 'x' WHERE id = %s", [event.pk])
