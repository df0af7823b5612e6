"""Audit core: one event per change in the same transaction, append-only, a hash chain that names tampering."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.db.utils import DatabaseError
from django.test import Client

from audit.models import AuditEvent, AuditLogIsAppendOnly
from audit.record import Actor, AuditOutsideTransaction, record_event
from tests.factories import RepositoryFactory, TeamFactory
from workspaces import services
from workspaces.services import actor_for_membership


def owner(world):
    return actor_for_membership(world.owner_a, "password")


CHANGES = {
    "member.role_changed": lambda w: services.membership_change_role(membership=w.member_a, role="manager", actor=owner(w)),
    "member.visibility_changed": lambda w: services.membership_set_visibility(membership=w.member_a, visibility="private", actor=owner(w)),
    "member.auditor_changed": lambda w: services.membership_set_auditor(membership=w.member_a, is_auditor=True, actor=owner(w)),
    "member.deactivated": lambda w: services.membership_deactivate(membership=w.member_a, actor=owner(w)),
    "member.removed": lambda w: services.membership_remove(membership=w.member_a, actor=owner(w)),
    "member.created": lambda w: services.membership_add(workspace=w.a, email="new@alpha.test", actor=owner(w)),
    "team.created": lambda w: services.team_create(workspace=w.a, name="Ops", actor=owner(w)),
    "team.member_added": lambda w: services.team_add_member(team=TeamFactory(workspace=w.a), membership=w.member_a, actor=owner(w)),
    "repository.created": lambda w: services.repository_create(workspace=w.a, name="libs", actor=owner(w)),
    "repository.grant_changed": lambda w: services.repository_grant(
        repository=RepositoryFactory(workspace=w.a), membership=w.member_a, permission="write", actor=owner(w)
    ),
    "api_key.created": lambda w: services.api_key_create(workspace=w.a, membership=w.owner_a, name="ci", actor=owner(w)),
    "workspace.settings_changed": lambda w: services.workspace_update_policy(workspace=w.a, actor=owner(w), jit_provisioning=True),
}


@pytest.mark.parametrize("action", sorted(CHANGES))
def test_each_service_change_writes_exactly_one_event_attributed_to_its_actor(world, action):
    before = AuditEvent.objects.count()
    CHANGES[action](world)
    events = list(AuditEvent.objects.order_by("-id")[: AuditEvent.objects.count() - before])
    assert [e.action for e in events] == [action]
    assert (events[0].workspace_id, events[0].actor_label, events[0].auth_method) == (world.a.pk, "owner@alpha.test", "password")


def test_a_rolled_back_change_leaves_no_event(world):
    class Boom(Exception):
        pass

    with pytest.raises(Boom), transaction.atomic():
        services.membership_change_role(membership=world.member_a, role="manager", actor=owner(world))
        raise Boom
    world.member_a.refresh_from_db()
    assert world.member_a.role == "member"
    assert not AuditEvent.objects.filter(action="member.role_changed").exists()


@pytest.mark.django_db(transaction=True)
def test_recording_outside_a_transaction_raises():
    with pytest.raises(AuditOutsideTransaction):
        record_event(actor=Actor.system(), action="test.loose")


def test_request_context_is_captured_on_events(world):
    client = Client(HTTP_USER_AGENT="pytest-agent/1.0", HTTP_X_REQUEST_ID="req-12345678", REMOTE_ADDR="203.0.113.7")
    client.force_login(world.owner_a.user)
    from workspaces.access import GrantMethod, grant_workspace

    session = client.session
    holder = type("R", (), {"session": session})()
    grant_workspace(holder, world.a, GrantMethod.PASSWORD)
    session.save()
    client.post(f"/w/alpha/members/{world.member_a.pk}/", {"action": "role", "role": "manager"})
    event = AuditEvent.objects.get(action="member.role_changed")
    assert (event.ip, event.user_agent, event.request_id) == ("203.0.113.7", "pytest-agent/1.0", "req-12345678")
    assert event.details == {"before": {"role": "member"}, "after": {"role": "manager"}}


def test_the_model_refuses_update_and_delete(world):
    CHANGES["team.created"](world)
    event = AuditEvent.objects.get(action="team.created")
    event.action = "team.nothing_to_see"
    with pytest.raises(AuditLogIsAppendOnly):
        event.save()
    with pytest.raises(AuditLogIsAppendOnly):
        event.delete()
    with pytest.raises(AuditLogIsAppendOnly):
        AuditEvent.objects.filter(pk=event.pk).update(action="x")
    with pytest.raises(AuditLogIsAppendOnly):
        AuditEvent.objects.filter(pk=event.pk).delete()


def test_events_are_chained_per_workspace(world):
    CHANGES["team.created"](world)
    CHANGES["repository.created"](world)
    services.team_create(workspace=world.b, name="B team", actor=actor_for_membership(world.outsider_b, "password"))
    a_events = list(AuditEvent.objects.filter(workspace=world.a).order_by("seq"))
    assert [e.seq for e in a_events] == [1, 2]
    assert a_events[1].prev_hash == a_events[0].hash
    assert AuditEvent.objects.get(workspace=world.b).seq == 1


def _verify(*args) -> str:
    out = io.StringIO()
    call_command("verify_audit_chain", *args, stdout=out)
    return out.getvalue()


def _tamper(sql: str, params: list) -> None:
    """An attacker with database access: on PostgreSQL they must first switch the trigger off."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER audit_event_append_only")
        cursor.execute(sql, params)
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER audit_event_append_only")


def test_verify_audit_chain_passes_on_an_untouched_log(world):
    for action in ("team.created", "repository.created", "member.role_changed"):
        CHANGES[action](world)
    assert "3 events verified" in _verify("alpha")


def test_a_tampered_row_makes_verify_fail_and_name_it(world):
    for action in ("team.created", "repository.created", "member.role_changed"):
        CHANGES[action](world)
    victim = AuditEvent.objects.get(workspace=world.a, seq=2)
    _tamper("UPDATE audit_auditevent SET actor_label = %s WHERE id = %s", ["someone-else@alpha.test", victim.pk])
    with pytest.raises(CommandError):
        _verify("alpha")
    out = io.StringIO()
    with pytest.raises(CommandError):
        call_command("verify_audit_chain", "alpha", stdout=out)
    assert f"event id {victim.pk} (#2)" in out.getvalue()
    assert "content altered" in out.getvalue()


def test_a_deleted_row_makes_verify_fail_with_a_gap(world):
    for action in ("team.created", "repository.created", "member.role_changed"):
        CHANGES[action](world)
    victim = AuditEvent.objects.get(workspace=world.a, seq=2)
    _tamper("DELETE FROM audit_auditevent WHERE id = %s", [victim.pk])
    out = io.StringIO()
    with pytest.raises(CommandError):
        call_command("verify_audit_chain", stdout=out)
    assert "sequence gap" in out.getvalue()


def test_a_deleted_last_row_is_detected_by_the_chain_head(world):
    CHANGES["team.created"](world)
    CHANGES["repository.created"](world)
    last = AuditEvent.objects.get(workspace=world.a, seq=2)
    _tamper("DELETE FROM audit_auditevent WHERE id = %s", [last.pk])
    out = io.StringIO()
    with pytest.raises(CommandError):
        call_command("verify_audit_chain", "alpha", stdout=out)
    assert "chain truncated" in out.getvalue()


def test_on_postgresql_the_database_refuses_update_and_delete(world):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (the append-only trigger exists only there); CI runs this on PostgreSQL")
    CHANGES["team.created"](world)
    event = AuditEvent.objects.get(action="team.created")
    for sql in ("UPDATE audit_auditevent SET action = 'x' WHERE id = %s", "DELETE FROM audit_auditevent WHERE id = %s"):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, [event.pk])
    assert AuditEvent.objects.get(pk=event.pk).action == "team.created"


def _append_concurrently(workspace, writers: int, each: int) -> None:
    import threading

    barrier = threading.Barrier(writers)
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            barrier.wait()
            for i in range(each):
                with transaction.atomic():
                    record_event(actor=Actor.system("race"), action="test.raced", workspace=workspace,
                                 target_type="writer", target_id=f"{n}-{i}")
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


@pytest.mark.parametrize("prepared", [True, False], ids=["prepared", "unprepared"])
@pytest.mark.django_db(transaction=True)
def test_concurrent_appends_to_one_workspace_never_fork_or_skip(prepared, settings):
    """Eight writers racing on one chain: every event gets its own seq, 1..N, and the chain verifies."""
    if connection.vendor != "postgresql":
        pytest.skip(f"needs PostgreSQL: concurrent writers on row locks (this run uses {connection.vendor})")
    from audit.chain import verify_chain
    from workspaces.models import Workspace

    settings.DB_PREPARED_STATEMENTS = prepared
    workspace = Workspace.objects.create(slug="race", name="Race")
    _append_concurrently(workspace, writers=8, each=15)
    seqs = list(AuditEvent.objects.filter(workspace=workspace).order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, 121))
    report = verify_chain(workspace.pk)
    assert report.ok, report.reason
    assert report.verified == 120


@pytest.mark.parametrize("synchronous", [False, True], ids=["flush-later", "synchronous"])
@pytest.mark.django_db(transaction=True)
def test_a_decision_commits_on_its_own_and_leaves_the_session_synchronous(synchronous, settings):
    """record_decision may skip waiting for the WAL flush for its own one-statement transaction only:
    the connection's next transaction (a change) must still wait for it."""
    if connection.vendor != "postgresql":
        pytest.skip(f"needs PostgreSQL: synchronous_commit (this run uses {connection.vendor})")
    from audit.record import record_decision
    from workspaces.models import Workspace

    settings.AUDIT_DECISION_SYNCHRONOUS_COMMIT = synchronous
    workspace = Workspace.objects.create(slug="decide", name="Decide")
    seen: list[str] = []

    def watch(execute, sql, params, many, context):
        seen.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(watch):
        event = record_decision(actor=Actor.system("t"), action="package.pulled", workspace=workspace)
    assert not connection.in_atomic_block
    assert ("set_config('synchronous_commit', 'off', true)" in seen[-1]) is not synchronous
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone()[0] == "on"
    assert AuditEvent.objects.get(pk=event.pk).action == "package.pulled"


@pytest.mark.parametrize("prepared", [True, False], ids=["prepared", "unprepared"])
@pytest.mark.django_db(transaction=True)
def test_the_append_is_a_server_side_prepared_statement_unless_turned_off(prepared, settings):
    """psycopg silently ignores prepare=True on Django's connections unless the recorder unlocks it:
    PostgreSQL's own list of the session's prepared statements is the proof."""
    if connection.vendor != "postgresql":
        pytest.skip(f"needs PostgreSQL: server-side prepared statements (this run uses {connection.vendor})")
    from workspaces.models import Workspace

    settings.DB_PREPARED_STATEMENTS = prepared
    workspace = Workspace.objects.create(slug="prep", name="Prep")
    connection.close()  # a new session: no statement prepared by an earlier test
    for _ in range(2):
        with transaction.atomic():
            record_event(actor=Actor.system("t"), action="test.prepared", workspace=workspace)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s", ["%audit_auditchainhead%"])
        assert cursor.fetchone()[0] == (1 if prepared else 0)
    assert AuditEvent.objects.filter(workspace=workspace, action="test.prepared").count() == 2
