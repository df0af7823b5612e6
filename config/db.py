"""The one seam for hand-tuned database access: which backend this is, and queries compiled once.

Two costs dominate Gatehouse's hot paths once the round trip is paid, and both are paid again for the
same SQL on every request unless something keeps the result:

* **Compiling** an ORM queryset to SQL (``select_related``, subqueries, annotations) cost more CPU
  than running it for the SCIM member reads and the API key lookup (bench/scim_bench.py,
  bench/api_bench.py: "worker cpu").
* **Planning** on PostgreSQL: for the audit append, the key lookup and the package decision,
  planning cost more than running them (0.3 ms for the key lookup's join, 0.9 ms for the decision's
  three correlated subqueries, against 0.1-0.2 ms of execution; EXPLAIN ANALYZE on the benchmark's
  database). A statement prepared once per connection is planned once and parsed never again.

``CompiledQuery`` answers both: its SQL is built once per process and database (alias and vendor),
from a queryset (compiled by Django, then re-run with other parameter values) or from hand-written
SQL, and with ``prepare=True`` it is a server-side prepared statement on PostgreSQL. Everything that
reaches into the ORM's private compiler API lives in this module (and says why), so a Django upgrade
has one place to check. ``is_postgresql`` is the one test for the backend.

Django opens psycopg connections with ``prepare_threshold=None`` (automatic preparation off, for the
sake of transaction-pooling proxies), and psycopg then silently ignores even an explicit
``prepare=True``. A preparing cursor raises the threshold out of reach, which keeps automatic
preparation off for every other query and lets the explicit requests through. Django's own
client-binding cursors never prepare anything either way. ``DB_PREPARED_STATEMENTS=false`` turns
preparation off, for a pooler that cannot keep prepared statements (PgBouncer in transaction mode
before 1.21).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import psycopg
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Model, QuerySet
from django.db.models.query import ModelIterable

_NEVER_AUTOMATICALLY = 2**31 - 1

# What a ``CompiledQuery`` builder returns: a queryset (compiled here), hand-written SQL whose
# parameters callers pass as they are, or SQL with a parameter template holding the sentinels.
Built: TypeAlias = "QuerySet[Any] | str | tuple[str, Sequence[Any]]"
Params: TypeAlias = "Sequence[Any] | Mapping[str, Any]"


def default_connection() -> BaseDatabaseWrapper:
    """The default database connection itself. Each attribute read through Django's ``connection``
    proxy is a thread-local lookup; the hot paths read several per statement (an eighth of an audit
    decision's Python time), so they take the connection once."""
    return connections[DEFAULT_DB_ALIAS]


def is_postgresql(conn: BaseDatabaseWrapper | None = None) -> bool:
    """Whether ``conn`` (default: the default database) is PostgreSQL: the one backend test.

    PostgreSQL gets the hand-tuned statements (data-modifying CTEs, ``array_agg``, ``LATERAL``,
    JSONB aggregates, prepared statements); SQLite (development, the quick test run) the portable ones.
    """
    return (conn or default_connection()).vendor == "postgresql"


class _PreparingCursor(psycopg.Cursor):
    """A server-binding psycopg cursor whose statements are prepared on first use per connection."""

    def execute(
        self, query: Any, params: Any = None, *, prepare: bool | None = None, binary: bool | None = None
    ) -> Any:
        if prepare is None:
            prepare = bool(settings.DB_PREPARED_STATEMENTS)
        return super().execute(query, params, prepare=prepare, binary=binary)


def _prepared_cursor(conn: BaseDatabaseWrapper | None = None) -> Any:
    """A cursor whose statements are server-side prepared, on PostgreSQL; elsewhere Django's plain cursor.

    It is Django's cursor wrapper (error translation, ``execute_wrapper`` hooks, query logging)
    around a preparing psycopg cursor. Placeholders are psycopg's (``%s``, ``%(name)s``), bound on
    the server: write the SQL so that it is also valid for the other backends' client-side binding.
    Only ``CompiledQuery(..., prepare=True)`` uses it: the one way to prepare a statement.
    """
    conn = conn or default_connection()
    if not is_postgresql(conn):
        return conn.cursor()
    conn.ensure_connection()
    raw = conn.connection
    if settings.DB_PREPARED_STATEMENTS and raw.prepare_threshold is None:
        raw.prepare_threshold = _NEVER_AUTOMATICALLY
    # Private: Django's wrapper (execute_wrapper hooks, error translation) around a cursor we chose.
    return conn._prepare_cursor(_PreparingCursor(raw))  # type: ignore[attr-defined]


def queryset_sql(qs: QuerySet[Any], conn: BaseDatabaseWrapper) -> tuple[str, list[Any]]:
    """The SQL and parameters Django would send for ``qs`` on ``conn``, for a ``CompiledQuery`` builder
    that wraps a queryset in hand-written SQL. (Private API: ``Query.get_compiler`` / ``as_sql``.)"""
    sql, params = qs.query.get_compiler(connection=conn).as_sql()
    return sql, list(params)


def update_returning(obj: Model, fields: Sequence[str], returning: str) -> Any:
    """``UPDATE`` the columns ``fields`` of ``obj``'s row to ``obj``'s values (F() expressions allowed) and
    return the new value of ``returning``: one statement on PostgreSQL (``RETURNING``), an UPDATE and a
    SELECT elsewhere. What ``save(update_fields=...)`` then ``refresh_from_db(fields=[returning])`` did in two
    statements and twice the Python; no model signals are sent (Gatehouse connects none to the models it
    is used for). Raises ``DatabaseError`` when the row is gone, as ``save(update_fields=...)`` does.
    (Private API: ``UpdateQuery.add_update_fields`` and its compiler.)"""
    from django.db import DatabaseError, router
    from django.db.models import Field, Q
    from django.db.models.sql import UpdateQuery

    model = type(obj)
    conn = connections[router.db_for_write(model, instance=obj)]
    meta = model._meta

    def concrete(name: str) -> Field[Any, Any]:
        field = meta.get_field(name)
        if not isinstance(field, Field) or not field.concrete:
            raise TypeError(f"{model.__name__}.{name} is not a column")
        return field

    query = UpdateQuery(model)
    query.add_update_fields([(field, None, getattr(obj, field.attname)) for field in map(concrete, fields)])
    query.add_q(Q(pk=obj.pk))
    compiler = query.get_compiler(connection=conn)
    column = concrete(returning)
    if is_postgresql(conn):
        sql, params = compiler.as_sql()
        with conn.cursor() as cursor:
            cursor.execute(f"{sql} RETURNING {conn.ops.quote_name(str(column.column))}", params)
            row = cursor.fetchone()
        if row is None:
            raise DatabaseError("Save with update_fields did not affect any rows.")
        value = row[0]
        for _, (converters, expression) in column_converters(conn, [column.get_col(meta.db_table)]):
            for convert in converters:
                value = convert(value, expression, conn)
    else:
        from django.db.models.sql.constants import CURSOR

        with compiler.execute_sql(CURSOR) as cursor:
            changed = cursor.rowcount if cursor else 0
        if not changed:
            raise DatabaseError("Save with update_fields did not affect any rows.")
        value = model._base_manager.using(conn.alias).filter(pk=obj.pk).values_list(returning, flat=True).get()
    setattr(obj, column.attname, value)
    return value


def column_converters(conn: BaseDatabaseWrapper, expressions: Sequence[Any]) -> list[tuple[int, Any]]:
    """``(position, (converters, expression))`` for the columns ``expressions`` (e.g. ``field.get_col(alias)``)
    of hand-written SQL: the backend's and the fields' converters, as the ORM's compiler finds them (JSON,
    datetimes on SQLite...). Apply as ``convert(value, expression, conn)``. (Private API:
    ``SQLCompiler.get_converters``.)"""
    from django.db.models.sql import Query

    compiler = Query(None).get_compiler(connection=conn)
    return list(compiler.get_converters(list(expressions)).items())


@dataclass
class _Plan:
    """One ``CompiledQuery`` built for one database: its SQL and how to fill its parameters."""

    sql: str
    template: list[Any] | None  # None: hand-written SQL, the caller's parameters go as they are
    slots: list[list[int]]  # per sentinel, its positions in ``template``
    rows_to_models: Callable[[BaseDatabaseWrapper, list[Any]], list[Any]] | None = None

    def params(self, values: Params) -> Params:
        if self.template is None:
            return values
        values = list(values)
        n = len(self.slots)
        if len(values) < n:
            raise TypeError(f"expected at least {n} parameter values (one per sentinel), got {len(values)}")
        out = list(self.template)
        for slots, value in zip(self.slots, values[:n], strict=True):
            for slot in slots:
                out[slot] = value
        return [*out, *values[n:]]


_ALL_COMPILED: weakref.WeakSet[CompiledQuery] = weakref.WeakSet()
_PROCESS_CACHES: list[dict[Any, Any]] = []


def process_cache() -> dict[Any, Any]:
    """An empty dict for state derived once per process beside compiled statements (statements per size, column
    converters per database alias), which ``forget_compiled_plans`` empties too."""
    cache: dict[Any, Any] = {}
    _PROCESS_CACHES.append(cache)
    return cache


def forget_compiled_plans() -> None:
    """Drop every built plan and every ``process_cache``, so each is built again on its next use.

    Never needed in serving (a plan depends only on the code and the database alias); the mutation check calls
    it before each test, because mutmut runs each mutant in a process forked after the plans were built, where
    a mutated builder would otherwise never run.
    """
    for query in list(_ALL_COMPILED):
        query._plans.clear()
    for cache in _PROCESS_CACHES:
        cache.clear()


class CompiledQuery:
    """A statement built once per process and database, executed again and again with parameters.

    ``build(conn)`` returns the statement for that connection's backend (branch on
    ``is_postgresql(conn)`` there, not at every call):

    * a **queryset**: Django compiles it once; give it ``sentinels``, values that stand for the
      parameters (e.g. ``Workspace(pk=-700_000_001)``: never a real id) and are replaced, wherever
      they occur in the compiled parameters, by the values passed to each call, in order. ``tail``
      adds SQL after the compiled statement (``LIMIT %s OFFSET %s``, which the ORM writes as
      literals); its parameters follow the sentinels' values. ``instances()`` turns its rows into
      model instances exactly as the queryset would (converters, ``select_related``, annotations).
    * ``(sql, template)``: SQL with a parameter list holding the sentinels (a queryset wrapped in
      hand-written SQL, through ``queryset_sql``).
    * ``sql``: hand-written SQL; each call's parameters (a sequence or a mapping) go as they are.

    ``prepare=True``: a server-side prepared statement on PostgreSQL (once per connection) when
    ``DB_PREPARED_STATEMENTS`` is on. The SQL must then be valid with server-side binding.

    The built plan is shared by the threads of a process: it holds SQL text, a parameter template
    and the compiler's converters, which read only settings of the database alias.
    """

    def __init__(
        self,
        build: Callable[[BaseDatabaseWrapper], Built],
        *,
        sentinels: Sequence[object] = (),
        tail: str = "",
        prepare: bool = False,
    ) -> None:
        self._build = build
        self._sentinels = list(sentinels)
        self._tail = tail
        self._prepare = prepare
        self._plans: dict[tuple[str, str], _Plan] = {}
        _ALL_COMPILED.add(self)

    # -- building

    def _plan(self, conn: BaseDatabaseWrapper) -> _Plan:
        key = (conn.alias, conn.vendor)
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = self._make_plan(conn)
        return plan

    def _make_plan(self, conn: BaseDatabaseWrapper) -> _Plan:
        built = self._build(conn)
        if isinstance(built, str):
            return _Plan(f"{built}{self._tail}", None, [])
        if isinstance(built, QuerySet):
            # Private API (Query.get_compiler, SQLCompiler.as_sql): the only way to reuse Django's SQL.
            compiler = built.query.get_compiler(connection=conn)
            sql, params = compiler.as_sql()
            plan = self._template(f"{sql}{self._tail}", list(params))
            if built._iterable_class is ModelIterable:  # not values()/values_list()
                plan.rows_to_models = _model_builder(compiler, conn)
            return plan
        sql, template = built
        return self._template(f"{sql}{self._tail}", list(template))

    def _template(self, sql: str, template: list[Any]) -> _Plan:
        slots = [[i for i, p in enumerate(template) if type(p) is type(s) and p == s] for s in self._sentinels]
        if not all(slots):
            raise ValueError("a sentinel is missing from the compiled query's parameters")
        return _Plan(sql, template, slots)

    def sql(self, conn: BaseDatabaseWrapper | None = None) -> str:
        """The statement's SQL on ``conn`` (default: the default database)."""
        return self._plan(conn or default_connection()).sql

    # -- running

    def _cursor(self, conn: BaseDatabaseWrapper) -> Any:
        return _prepared_cursor(conn) if self._prepare else conn.cursor()

    def fetchall(self, params: Params = (), *, conn: BaseDatabaseWrapper | None = None) -> list[tuple[Any, ...]]:
        conn = conn or default_connection()
        plan = self._plan(conn)
        with self._cursor(conn) as cursor:
            cursor.execute(plan.sql, plan.params(params))
            return list(cursor.fetchall())

    def fetchone(self, params: Params = (), *, conn: BaseDatabaseWrapper | None = None) -> tuple[Any, ...] | None:
        conn = conn or default_connection()
        plan = self._plan(conn)
        with self._cursor(conn) as cursor:
            cursor.execute(plan.sql, plan.params(params))
            row = cursor.fetchone()
            return None if row is None else tuple(row)

    def execute(self, params: Params = (), *, conn: BaseDatabaseWrapper | None = None) -> int:
        """Run a statement that returns no rows; the number of rows it changed."""
        conn = conn or default_connection()
        plan = self._plan(conn)
        with self._cursor(conn) as cursor:
            cursor.execute(plan.sql, plan.params(params))
            return int(cursor.rowcount)

    def instances(self, params: Params = (), *, conn: BaseDatabaseWrapper | None = None) -> list[Any]:
        """The rows as the model instances the queryset would have returned (queryset builders only)."""
        conn = conn or default_connection()
        plan = self._plan(conn)
        if plan.rows_to_models is None:
            raise TypeError("instances() needs a CompiledQuery built from a model queryset")
        with self._cursor(conn) as cursor:
            cursor.execute(plan.sql, plan.params(params))
            rows = cursor.fetchall()
        return plan.rows_to_models(conn, rows)


def _model_builder(compiler: Any, conn: BaseDatabaseWrapper) -> Callable[[BaseDatabaseWrapper, list[Any]], list[Any]]:
    """Rows -> model instances, the way ``ModelIterable`` does it, without compiling again.

    Private API (compiler.klass_info, select, annotation_col_map, get_converters, apply_converters,
    ``get_related_populators``): what ``django.db.models.query.ModelIterable`` itself uses.
    """
    from django.db.models.query import get_related_populators  # type: ignore[attr-defined]

    klass_info = compiler.klass_info
    select_fields = klass_info["select_fields"]
    model: type[Model] = klass_info["model"]
    start, end = select_fields[0], select_fields[-1] + 1
    init_list = [f[0].target.attname for f in compiler.select[start:end]]
    populators = get_related_populators(klass_info, compiler.select, conn.alias)
    annotations = dict(compiler.annotation_col_map or {})
    converters = compiler.get_converters([c[0] for c in compiler.select[0:compiler.col_count]])
    has_extra_select, col_count = compiler.has_extra_select, compiler.col_count

    def build(conn: BaseDatabaseWrapper, rows: list[Any]) -> list[Any]:
        if has_extra_select:
            rows = [r[:col_count] for r in rows]
        if converters:
            rows = list(compiler.apply_converters(rows, converters))
        out = []
        for row in rows:
            obj = model.from_db(conn.alias, init_list, row[start:end])
            for populator in populators:
                populator.populate(row, obj)
            for name, position in annotations.items():
                setattr(obj, name, row[position])
            out.append(obj)
        return out

    return build
