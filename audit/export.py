"""The log as a download: CSV (spreadsheet-safe) or JSON Lines, streamed row by row.

Knows nothing of who may export: the caller (the workspace's export page) has checked ``audit.view``
and recorded the export (``services.audit_log_export``) before the first byte.

Rows are read in keyset batches, newest first, by the index the audit pages use ((workspace, created_at, id),
and its siblings per filter): each batch is one short query with a LIMIT, so the first row leaves after one
batch whatever the log's size (a server-side cursor outside a transaction would be opened WITH HOLD, and
PostgreSQL would first materialise the whole result), memory holds one batch, and no transaction stays open
for the length of a download. Rows are plain tuples, never model instances. An event recorded during the export
is newer than the first batch and is not in the file; the file is the log as of its first row.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any, NamedTuple

from django.db import connections
from django.db.models import Q, QuerySet
from django.http import StreamingHttpResponse
from django.utils import timezone

from config.db import is_postgresql

from . import selectors
from .models import AuditEvent

# Rows per query: large enough that the per-query cost vanishes; the first query is smaller, so the first row
# leaves quickly.
EXPORT_BATCH = 5000
FIRST_BATCH = 200


class ExportedEvent(NamedTuple):
    """One event as the export reads it: the columns only (``selectors.event_as_dict`` takes it as it takes a model)."""

    id: int
    seq: int
    created_at: datetime
    workspace_id: int | None
    action: str
    actor_kind: str
    actor_id: str
    actor_label: str
    auth_method: str
    target_type: str
    target_id: str
    target_label: str
    ip: str
    user_agent: str
    request_id: str
    details: Any
    prev_hash: str
    hash: str

    @property
    def pk(self) -> int:
        return self.id


_FIELDS = ExportedEvent._fields
_ID = _FIELDS.index("id")
_CREATED_AT = _FIELDS.index("created_at")


def export_rows(qs: QuerySet[AuditEvent], batch: int = EXPORT_BATCH) -> Iterator[ExportedEvent]:
    """The events of ``qs``, newest first, in keyset batches of ``batch`` rows (the first one smaller, so the
    first row leaves at once). ``details`` is the stored JSON text on PostgreSQL, a decoded value elsewhere."""
    ordered = qs.order_by("-created_at", "-id")
    raw = is_postgresql(connections[qs.db])
    after: tuple[datetime, int] | None = None
    size = min(batch, FIRST_BATCH)
    while True:
        # As the audit pages' keyset: ``created_at <= t`` is the index range; the OR only settles ties on ``t``.
        page = ordered if after is None else ordered.filter(created_at__lte=after[0]).filter(
            Q(created_at__lt=after[0]) | Q(id__lt=after[1])
        )
        rows = page.values_list(*_FIELDS)[:size]
        fetched = _fetch_raw(rows) if raw else list(rows)
        yield from map(ExportedEvent._make, fetched)
        if len(fetched) < size:
            return
        last = fetched[-1]
        after = (last[_CREATED_AT], last[_ID])
        size = batch


def _fetch_raw(rows: QuerySet[Any]) -> list[tuple[Any, ...]]:
    """The rows as psycopg returns them, without Django's per-value converters (the JSON column stays text,
    timestamps are already aware datetimes): the converters were most of an export's CPU."""
    connection = connections[rows.db]
    sql, params = rows.query.get_compiler(connection=connection).as_sql()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


class _Echo:
    """csv.writer target that hands each row back instead of buffering it."""

    def write(self, value: str) -> str:
        return value


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> Any:
    # Labels come from outside (a failed login's email, an IdP's names): a leading = or @ would run
    # as a formula in a spreadsheet (OWASP "CSV injection"); quote it. JSON Lines keeps exact values.
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


_CSV_INDEX = [_FIELDS.index(c) for c in selectors.CSV_COLUMNS]
_CSV_CREATED_AT = selectors.CSV_COLUMNS.index("created_at")
_CSV_DETAILS = selectors.CSV_COLUMNS.index("details")


def _details_text(details: Any) -> str:
    """The details as JSON text: as stored on PostgreSQL (one jsonb text), else dumped with sorted keys."""
    return details if isinstance(details, str) else json.dumps(details, sort_keys=True)


def _details_value(details: Any) -> Any:
    return json.loads(details) if isinstance(details, str) else details


def csv_rows(events: Iterator[ExportedEvent]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(selectors.CSV_COLUMNS)
    for e in events:
        row = [_cell(e[i]) for i in _CSV_INDEX]
        row[_CSV_CREATED_AT] = e.created_at.isoformat()
        row[_CSV_DETAILS] = _details_text(e.details)
        yield writer.writerow(row)


# One encoder for every line (json.dumps with options builds a new one per call): a tenth of a line's cost.
_JSONL = json.JSONEncoder(sort_keys=True, separators=(",", ":"))


def jsonl_rows(events: Iterator[ExportedEvent]) -> Iterator[str]:
    encode, as_dict = _JSONL.encode, selectors.event_as_dict
    for e in events:
        yield encode(as_dict(e, _details_value(e.details))) + "\n"  # type: ignore[arg-type]  # an ExportedEvent reads as the model does


BLOCK_BYTES = 64 * 1024


def in_blocks(chunks: Iterator[str], size: int = BLOCK_BYTES) -> Iterator[str]:
    """Rows joined into blocks of about ``size`` characters: one write per block instead of one per row (the server
    writes each yielded piece to the socket on its own). The first piece goes at once, so the first byte is quick."""
    buffer: list[str] = []
    length = 0
    first = True
    for chunk in chunks:
        buffer.append(chunk)
        length += len(chunk)
        if length >= size or (first and len(buffer) > 1):
            yield "".join(buffer)
            buffer, length, first = [], 0, False
    if buffer:
        yield "".join(buffer)


def stream_export(workspace: Any, cleaned: dict[str, Any], export_format: str) -> StreamingHttpResponse:
    """``workspace``'s events matching the filter form's ``cleaned`` data, as a file download."""
    rows = export_rows(selectors.filtered_events(workspace, cleaned))
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    if export_format == "csv":
        response = StreamingHttpResponse(in_blocks(csv_rows(rows)), content_type="text/csv; charset=utf-8")
        name = f"audit-{workspace.slug}-{stamp}.csv"
    else:
        response = StreamingHttpResponse(in_blocks(jsonl_rows(rows)), content_type="application/x-ndjson")
        name = f"audit-{workspace.slug}-{stamp}.jsonl"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["Cache-Control"] = "no-store"
    return response
