"""The one writer of audit events.

Called by service functions inside their transaction, with an explicit actor, so a rolled-back
change leaves no event and a committed change never lacks one (Zulip's ``acting_user`` habit).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from .chain import chain_key
from .context import get_request_context
from .models import ActorKind, AuditChainHead, AuditEvent, AuditOutbox, AuditSink


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

    Locks the chain head (appends to one chain are serialised, so ``seq`` follows commit order),
    hashes the event onto the previous one, and queues it for each active SIEM sink of the
    workspace (``AuditOutbox``) in the same transaction. On PostgreSQL that is two statements.
    """
    if not connection.in_atomic_block:
        raise AuditOutsideTransaction(f"record_event({action!r}) must run inside the change's transaction.")
    workspace_id = getattr(workspace, "pk", workspace)
    ctx = get_request_context()
    # No savepoint: we are inside the caller's transaction already, and a failure here must fail it.
    with transaction.atomic(savepoint=False):
        head = _locked_head(chain_key(workspace_id))
        event = AuditEvent(
            workspace_id=workspace_id,
            seq=head.last_seq + 1,
            created_at=timezone.now(),
            actor_kind=actor.kind,
            actor_id=str(actor.id or "")[:64],
            actor_label=(actor.label or "")[:255],
            auth_method=actor.auth_method,
            action=action,
            target_type=target_type,
            target_id=str(target_id or "")[:64],
            target_label=(target_label or "")[:255],
            ip=ctx.ip,
            user_agent=ctx.user_agent,
            request_id=ctx.request_id,
            details=_jsonable(details),
            prev_hash=head.last_hash,
        )
        event.hash = event.compute_hash()
        if connection.vendor == "postgresql":
            _append_postgresql(event, head)
        else:
            event.save()
            head.last_seq = event.seq
            head.last_hash = event.hash
            head.save(update_fields=["last_seq", "last_hash"])
            if workspace_id is not None:
                _fill_outbox(event)
    return event


def _append_postgresql(event: AuditEvent, head: AuditChainHead) -> None:
    """Event row, chain head and outbox rows in ONE statement (data-modifying CTEs): one round trip
    instead of three, which is most of the cost of recording an event (see docs/benchmarks.md)."""
    fields = [f for f in AuditEvent._meta.concrete_fields if not f.primary_key]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    values = [f.get_db_prep_save(getattr(event, f.attname), connection) for f in fields]
    sql = (
        f"WITH e AS (INSERT INTO {AuditEvent._meta.db_table} ({columns}) VALUES ({', '.join(['%s'] * len(fields))}) "
        "RETURNING id, seq, created_at, workspace_id), "
        f"h AS (UPDATE {AuditChainHead._meta.db_table} SET last_seq = %s, last_hash = %s WHERE id = %s), "
        f"o AS (INSERT INTO {AuditOutbox._meta.db_table} (sink_id, event_id, seq, created_at) "
        f"SELECT s.id, e.id, e.seq, e.created_at FROM {AuditSink._meta.db_table} s JOIN e ON s.workspace_id = e.workspace_id "
        "WHERE s.is_active) "
        "SELECT id FROM e"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*values, event.seq, event.hash, head.pk])
        event.pk = cursor.fetchone()[0]
    event._state.adding = False
    event._state.db = connection.alias
    head.last_seq = event.seq
    head.last_hash = event.hash


def _locked_head(key: str) -> AuditChainHead:
    """The chain head, row-locked until the caller commits: appends to one chain are serialised."""
    if connection.vendor == "postgresql":
        # Raw on the hot path: the ORM's query building cost 4x the round trip itself (docs/benchmarks.md).
        sql = f"SELECT id, last_seq, last_hash FROM {AuditChainHead._meta.db_table} WHERE chain = %s FOR UPDATE"
        with connection.cursor() as cursor:
            cursor.execute(sql, [key])
            row = cursor.fetchone()
        if row is not None:
            head = AuditChainHead(id=row[0], chain=key, last_seq=row[1], last_hash=row[2])
            head._state.adding = False
            return head
    found = list(AuditChainHead.objects.select_for_update().filter(chain=key))
    if not found:
        AuditChainHead.objects.get_or_create(chain=key)
        found = list(AuditChainHead.objects.select_for_update().filter(chain=key))
    return found[0]


_OUTBOX_SQL = (
    "INSERT INTO {outbox} (sink_id, event_id, seq, created_at) "
    "SELECT id, %s, %s, %s FROM {sink} WHERE workspace_id = %s AND is_active"
)


def _fill_outbox(event: AuditEvent) -> None:
    """One outbox row per active sink of the workspace, in the event's transaction.

    A single INSERT ... SELECT: no round trip to learn the sink list first, and a sink created
    or switched off concurrently is seen consistently with the event's own commit.
    """
    sql = _OUTBOX_SQL.format(outbox=AuditOutbox._meta.db_table, sink=AuditSink._meta.db_table)
    with connection.cursor() as cursor:
        created_at = connection.ops.adapt_datetimefield_value(event.created_at)
        cursor.execute(sql, [event.pk, event.seq, created_at, event.workspace_id])
