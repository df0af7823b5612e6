"""Server-side prepared statements for the few hand-written hot-path queries, on PostgreSQL.

PostgreSQL plans a statement every time it receives its text. For the statements that run on every
request of the hot paths (the audit append, the API key lookup, the package access decision),
planning cost more than running them: 0.3 ms for the key lookup's four-table join and 0.9 ms for the
decision's three correlated subqueries, against 0.1-0.2 ms of execution (EXPLAIN ANALYZE on the
benchmark's database). A statement prepared once per connection is planned once (PostgreSQL then
settles on a generic plan) and parsed never again.

Django opens psycopg connections with ``prepare_threshold=None`` (automatic preparation off, for the
sake of transaction-pooling proxies), and psycopg then silently ignores even an explicit
``prepare=True``. ``prepared_cursor`` raises the threshold out of reach, which keeps automatic
preparation off for every other query and lets the explicit requests through. Django's own
client-binding cursors never prepare anything either way.

``DB_PREPARED_STATEMENTS=false`` turns it off, for a pooler that cannot keep prepared statements
(PgBouncer in transaction mode before 1.21).
"""

from __future__ import annotations

from typing import Any

import psycopg
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections

_NEVER_AUTOMATICALLY = 2**31 - 1


class _PreparingCursor(psycopg.Cursor):
    """A server-binding psycopg cursor whose statements are prepared on first use per connection."""

    def execute(self, query: Any, params: Any = None, *, prepare: bool | None = None, binary: bool | None = None) -> Any:
        if prepare is None:
            prepare = bool(settings.DB_PREPARED_STATEMENTS)
        return super().execute(query, params, prepare=prepare, binary=binary)


def default_connection() -> Any:
    """The default database connection itself. Each attribute read through Django's ``connection``
    proxy is a thread-local lookup; the hot paths read several per statement (an eighth of an audit
    decision's Python time), so they take the connection once."""
    return connections[DEFAULT_DB_ALIAS]


def prepared_cursor(connection: Any = None) -> Any:
    """A cursor whose statements are server-side prepared, on PostgreSQL; elsewhere Django's plain cursor.

    It is Django's cursor wrapper (error translation, ``execute_wrapper`` hooks, query logging)
    around a preparing psycopg cursor. Placeholders are psycopg's (``%s``, ``%(name)s``), bound on
    the server: write the SQL so that it is also valid for the other backends' client-side binding.
    """
    conn = connection or default_connection()
    if conn.vendor != "postgresql":
        return conn.cursor()
    conn.ensure_connection()
    raw = conn.connection
    if settings.DB_PREPARED_STATEMENTS and raw.prepare_threshold is None:
        raw.prepare_threshold = _NEVER_AUTOMATICALLY
    return conn._prepare_cursor(_PreparingCursor(raw))
