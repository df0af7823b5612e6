"""The one writer of audit events.

Called by service functions inside their transaction, with an explicit actor, so a rolled-back
change leaves no event and a committed change never lacks one (Zulip's ``acting_user`` habit).

Hand-written SQL, on PostgreSQL: the append is one prepared statement with data-modifying CTEs
(chain-head lock, link, event and outbox rows). bench/audit_bench.py justifies it: ``record_event``
p50 about 0.5 ms against the 1 ms target with it, 1.41 ms with the ORM head lock and a separate insert,
and 1.005 ms unprepared (docs/benchmarks.md, "Audit log"). SQLite takes the portable ORM path.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from config.db import CompiledQuery, default_connection, is_postgresql
from config.metrics import AUDIT_APPEND_SECONDS

from .chain import chain_key
from .context import get_request_context
from .models import ActorKind, AuditChainHead, AuditEvent, AuditOutbox, AuditSink, chain_link_hash


class AuditOutsideTransaction(RuntimeError):
    """record_event was called outside a transaction: the event could outlive a failed change."""


@dataclass(frozen=True)
class Actor:
    """Who did it and how they proved it."""

    kind: str
    id: str = ""
    label: str = ""
    auth_method: str = ""
    # The acting workspace membership, when a person acts: services check its rights.
    membership: Any = field(default=None, compare=False, repr=False)

    @classmethod
    def system(cls, label: str = "system") -> Actor:
        return cls(kind=ActorKind.SYSTEM, id="", label=label, auth_method="system")


def _jsonable(details: dict[str, Any] | None) -> dict[str, Any]:
    # Normalise once so the stored value and the hashed value are the same thing.
    return json.loads(json.dumps(details or {}, default=str, sort_keys=True))


def record_event(
    *,
    actor: Actor,
    action: str,
    workspace: Any | None = None,
    target_type: str = "",
    target_id: Any = "",
    target_label: str = "",
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event to ``workspace``'s chain (or the global chain) inside the caller's transaction.

    Appends to one chain are serialised by the chain head's row lock (so ``seq`` follows commit
    order); the event's link is ``sha256(prev_hash:seq:content digest)``; the event is queued for
    each active SIEM sink of the workspace (``AuditOutbox``) in the same transaction. On
    PostgreSQL all of that is ONE prepared statement: Python hashes the content, PostgreSQL
    locks the head, links the event, inserts it and its outbox rows.
    """
    if not default_connection().in_atomic_block:
        raise AuditOutsideTransaction(f"record_event({action!r}) must run inside the change's transaction.")
    event = _new_event(actor, action, workspace, target_type, target_id, target_label, details)
    _append(event)
    return event


def record_decision(
    *,
    actor: Actor,
    action: str,
    workspace: Any | None = None,
    target_type: str = "",
    target_id: Any = "",
    target_label: str = "",
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Record an event that accompanies NO change (an access decision): the event is the only write.

    Called outside a transaction on PostgreSQL, the append is one self-committing statement: the
    chain head is locked only while PostgreSQL runs it and its commit, never across a round trip to
    this process (BEGIN ... COMMIT held it while a busy worker waited to be scheduled, and every
    concurrent decision of the workspace queued behind it). The event is committed, and visible to
    every reader, when this returns. Unless ``AUDIT_DECISION_SYNCHRONOUS_COMMIT`` is set, that commit
    does not wait for the WAL flush (PostgreSQL's ``synchronous_commit = off`` for this one
    transaction): waiting for the disk cost 2x the rest of the check; a PostgreSQL crash can lose
    the last ~0.6 s of decisions (3 x ``wal_writer_delay``), never a change, and never a link in the
    middle of the chain (what is lost is a suffix, head included). Inside a transaction (or on
    SQLite) it is an ordinary ``record_event`` in that transaction, flushed with it.
    """
    event = _new_event(actor, action, workspace, target_type, target_id, target_label, details)
    conn = default_connection()
    if conn.in_atomic_block or not is_postgresql(conn):
        with transaction.atomic():
            _append(event)
    else:
        _append(event, flush_later=not settings.AUDIT_DECISION_SYNCHRONOUS_COMMIT)
    return event


def _new_event(
    actor: Actor, action: str, workspace: Any | None, target_type: str, target_id: Any, target_label: str,
    details: dict[str, Any] | None,
) -> AuditEvent:
    ctx = get_request_context()
    values = {
        "workspace_id": getattr(workspace, "pk", workspace),
        "created_at": timezone.now(),
        "actor_kind": actor.kind,
        "actor_id": str(actor.id or "")[:64],
        "actor_label": (actor.label or "")[:255],
        "auth_method": actor.auth_method,
        "action": action,
        "target_type": target_type,
        "target_id": str(target_id or "")[:64],
        "target_label": (target_label or "")[:255],
        "ip": ctx.ip,
        "user_agent": ctx.user_agent,
        "request_id": ctx.request_id,
        "details": _jsonable(details),
    }
    # Positional: Django's fast path (by keyword, building the instance cost a fifth of a decision's CPU).
    return AuditEvent(*(values[f.attname] if f.attname in values else f.get_default() for f in _event_fields()))


@functools.cache
def _event_fields() -> tuple[Any, ...]:
    return tuple(AuditEvent._meta.concrete_fields)


def _append(event: AuditEvent, *, flush_later: bool = False) -> None:
    """``flush_later`` (PostgreSQL, outside a transaction only): the statement's own commit does not
    wait for the WAL flush (``record_decision``)."""
    with AUDIT_APPEND_SECONDS.time():  # /metrics: gatehouse_audit_append_duration_seconds
        digest = event.content_digest()
        key = chain_key(event.workspace_id)
        conn = default_connection()
        # No savepoint: we are inside the caller's transaction already, and a failure here must fail it.
        if is_postgresql(conn):
            _append_postgresql(conn, event, key, digest, flush_later=flush_later)
        else:
            _append_portable(event, key, digest)


# Columns written by the append statement besides seq/prev_hash/hash, which come from the head.
_CONTENT = (
    "workspace_id",
    "created_at",
    "actor_kind",
    "actor_id",
    "actor_label",
    "auth_method",
    "action",
    "target_type",
    "target_id",
    "target_label",
    "ip",
    "user_agent",
    "request_id",
)


def _append_sql(flush_later: bool) -> str:
    event, head = AuditEvent._meta.db_table, AuditChainHead._meta.db_table
    outbox, sink = AuditOutbox._meta.db_table, AuditSink._meta.db_table
    placeholders = ", ".join(["%s"] * len(_CONTENT))
    # The UPDATE takes the head's row lock (held to commit); under READ COMMITTED a writer that
    # waited re-reads the committed head, so two appends can never share a seq or a predecessor.
    # Its SET expressions all see the OLD row: prev_hash keeps the old link, last_hash the new one.
    # A decision's own implicit transaction may commit without waiting for the WAL flush
    # (record_decision); set_config(..., true) ends with that transaction.
    flush = "CROSS JOIN (SELECT set_config('synchronous_commit', 'off', true)) AS flush_later " if flush_later else ""
    return (
        f"WITH h AS (UPDATE {head} SET prev_hash = last_hash, last_seq = last_seq + 1, "
        "last_hash = encode(sha256(convert_to(last_hash || ':' || (last_seq + 1)::text || ':' || %s::text, 'UTF8')), 'hex') "
        "WHERE chain = %s RETURNING last_seq, prev_hash, last_hash), "
        f"e AS (INSERT INTO {event} ({', '.join(_CONTENT)}, details, seq, prev_hash, hash) "
        f"SELECT {placeholders}, %s::jsonb, h.last_seq, h.prev_hash, h.last_hash FROM h {flush}"
        "RETURNING id, seq, prev_hash, hash, workspace_id, created_at), "
        f"o AS (INSERT INTO {outbox} (sink_id, event_id, seq, created_at) "
        f"SELECT s.id, e.id, e.seq, e.created_at FROM {sink} s JOIN e ON s.workspace_id = e.workspace_id "
        "WHERE s.is_active) "
        "SELECT id, seq, prev_hash, hash FROM e"
    )


# Prepared once per connection: see _append_postgresql.
_APPEND = {
    False: CompiledQuery(lambda conn: _append_sql(False), prepare=True),
    True: CompiledQuery(lambda conn: _append_sql(True), prepare=True),
}


def _append_postgresql(conn: Any, event: AuditEvent, key: str, digest: str, *, flush_later: bool = False) -> None:
    """Lock the head, link, insert the event and its outbox rows: one prepared statement.

    A server-side prepared statement (psycopg ``prepare=True``, once per connection) skips
    parsing and planning this CTE on every event; with Django's default client-side binding
    that was a third of the cost (docs/benchmarks.md, "Audit log").
    """
    append = _APPEND[flush_later]
    params = [digest, key, *(getattr(event, name) for name in _CONTENT), json.dumps(event.details)]
    row = append.fetchone(params, conn=conn)
    if row is None:  # the chain's first event: create its head, then append
        AuditChainHead.objects.get_or_create(chain=key)
        row = append.fetchone(params, conn=conn)
    assert row is not None
    event.pk, event.seq, event.prev_hash, event.hash = row
    event._state.adding = False
    event._state.db = conn.alias


def _append_portable(event: AuditEvent, key: str, digest: str) -> None:
    """The same append for SQLite (development and the quick test run): the ORM, several statements."""
    with transaction.atomic(savepoint=False):
        found = list(AuditChainHead.objects.select_for_update().filter(chain=key))
        head = found[0] if found else AuditChainHead.objects.get_or_create(chain=key)[0]
        event.seq = head.last_seq + 1
        event.prev_hash = head.last_hash
        event.hash = chain_link_hash(event.prev_hash, event.seq, digest)
        event.save()
        head.prev_hash, head.last_seq, head.last_hash = head.last_hash, event.seq, event.hash
        head.save(update_fields=["prev_hash", "last_seq", "last_hash"])
        if event.workspace_id is not None:
            _fill_outbox(event)


_OUTBOX = CompiledQuery(
    lambda conn: (
        f"INSERT INTO {AuditOutbox._meta.db_table} (sink_id, event_id, seq, created_at) "
        f"SELECT id, %s, %s, %s FROM {AuditSink._meta.db_table} WHERE workspace_id = %s AND is_active"
    )
)


def _fill_outbox(event: AuditEvent) -> None:
    """One outbox row per active sink of the workspace, in the event's transaction.

    A single INSERT ... SELECT: no round trip to learn the sink list first, and a sink created
    or switched off concurrently is seen consistently with the event's own commit.
    """
    conn = default_connection()
    created_at = conn.ops.adapt_datetimefield_value(event.created_at)
    _OUTBOX.execute([event.pk, event.seq, created_at, event.workspace_id], conn=conn)
