"""``config.db.CompiledQuery``: built once per database, re-run with other parameters, the ORM's answers.

The hot paths (SCIM member reads, the Users list index, the audit append, the package decision) all
go through it, so its contract is tested here once: same instances as the queryset, the SQL built
once, sentinels that must be found, hand-written SQL with sequence and mapping parameters, and
server-side preparation on PostgreSQL only when ``DB_PREPARED_STATEMENTS`` is on.
"""

from __future__ import annotations

import pytest
from django.db import connection

from config.db import CompiledQuery, is_postgresql, queryset_sql
from tests.factories import MembershipFactory, WorkspaceFactory
from workspaces.models import Membership, Workspace

_WS = -900_000_001


def _members_of(ws_id: object) -> object:
    return Membership.objects.filter(workspace_id=ws_id).select_related("user").order_by("pk")


def test_is_postgresql_answers_for_the_default_database(db):
    assert is_postgresql() is (connection.vendor == "postgresql")
    assert is_postgresql(connection) is (connection.vendor == "postgresql")


def test_a_compiled_queryset_returns_the_instances_the_queryset_returns(db):
    a, b = WorkspaceFactory(), WorkspaceFactory()
    MembershipFactory.create_batch(2, workspace=a)
    MembershipFactory(workspace=b)
    query = CompiledQuery(lambda conn: _members_of(_WS), sentinels=[_WS])
    for ws in (a, b):
        got = query.instances([ws.pk])
        expected = list(_members_of(ws.pk))
        assert [(m.pk, m.workspace_id, m.user.email, m.created_at) for m in got] == [
            (m.pk, m.workspace_id, m.user.email, m.created_at) for m in expected
        ]
        assert all(m._state.adding is False and m._state.db == connection.alias for m in got)


def test_the_sql_is_built_once_per_database(db):
    ws = WorkspaceFactory()
    builds = []

    def build(conn):
        builds.append(conn.alias)
        return _members_of(_WS)

    query = CompiledQuery(build, sentinels=[_WS])
    for _ in range(3):
        query.instances([ws.pk])
    query.fetchall([ws.pk])
    assert builds == [connection.alias]


def test_a_sentinel_missing_from_the_compiled_parameters_is_an_error(db):
    query = CompiledQuery(lambda conn: _members_of(_WS), sentinels=[_WS, -900_000_002])
    with pytest.raises(ValueError, match="sentinel"):
        query.fetchall([1, 2])


def test_a_tail_takes_its_parameters_after_the_sentinels(db):
    ws = WorkspaceFactory()
    members = MembershipFactory.create_batch(4, workspace=ws)
    query = CompiledQuery(
        lambda conn: _members_of(_WS).values_list("pk", flat=True), sentinels=[_WS], tail=" LIMIT %s OFFSET %s"
    )
    assert [row[0] for row in query.fetchall([ws.pk, 2, 1])] == sorted(m.pk for m in members)[1:3]
    with pytest.raises(TypeError):
        query.instances([ws.pk, 2, 1])  # values_list: no model instances


def test_hand_written_sql_takes_sequence_or_mapping_parameters(db):
    ws = WorkspaceFactory(slug="handwritten")
    table = Workspace._meta.db_table
    by_position = CompiledQuery(lambda conn: f"SELECT slug FROM {table} WHERE id = %s")
    by_name = CompiledQuery(lambda conn: f"SELECT slug FROM {table} WHERE id = %(id)s")
    assert by_position.fetchone([ws.pk]) == ("handwritten",)
    assert by_name.fetchone({"id": ws.pk}) == ("handwritten",)
    assert by_name.fetchone({"id": -1}) is None
    renamed = CompiledQuery(lambda conn: f"UPDATE {table} SET name = %s WHERE slug = %s")
    assert renamed.execute(["Renamed", "handwritten"]) == 1


def test_a_queryset_wrapped_in_hand_written_sql_substitutes_its_sentinels(db):
    ws = WorkspaceFactory()
    MembershipFactory.create_batch(3, workspace=ws)

    def build(conn):
        inner, params = queryset_sql(Membership.objects.filter(workspace_id=_WS).values("id"), conn)
        return f"SELECT COUNT(*) FROM ({inner}) v", params

    assert CompiledQuery(build, sentinels=[_WS]).fetchone([ws.pk]) == (3,)


@pytest.mark.parametrize("prepared", [True, False])
def test_prepare_makes_a_server_side_prepared_statement_on_postgresql(db, settings, prepared):
    if not is_postgresql():
        pytest.skip(f"needs PostgreSQL: server-side prepared statements (this run uses {connection.vendor})")
    settings.DB_PREPARED_STATEMENTS = prepared
    marker = f"compiled_query_probe_{'on' if prepared else 'off'}"  # nothing else prepares this text
    query = CompiledQuery(lambda conn: f"SELECT %s::text AS {marker}", prepare=True)
    assert [query.fetchone(["x"]) for _ in range(2)] == [("x",), ("x",)]
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        statements = [row[0] for row in cursor.fetchall() if marker in row[0]]
    assert len(statements) == (1 if prepared else 0), statements


# ----------------------------------------------------------------------------- update_returning


def test_update_returning_writes_the_fields_and_returns_the_new_value_in_one_statement(db):
    from django.db.models import F
    from django.test.utils import CaptureQueriesContext

    from config.db import update_returning

    member = MembershipFactory(given_name="Ada", family_name="Lovelace")
    before = Membership.objects.get(pk=member.pk).version
    member.given_name, member.version = "Grace", F("version") + 1
    with CaptureQueriesContext(connection) as queries:
        assert update_returning(member, ["given_name", "version"], "version") == before + 1
    assert member.version == before + 1  # an int on the instance again, not the F() expression
    fresh = Membership.objects.get(pk=member.pk)
    assert (fresh.given_name, fresh.family_name, fresh.version) == ("Grace", "Lovelace", before + 1)
    assert len(queries) == (1 if is_postgresql() else 2)


def test_update_returning_a_row_that_is_gone_is_an_error_as_save_is(db):
    from django.db import DatabaseError

    from config.db import update_returning

    member = MembershipFactory()
    Membership.objects.filter(pk=member.pk).delete()
    with pytest.raises(DatabaseError, match="did not affect any rows"):
        update_returning(member, ["given_name"], "version")
