"""The log as a download: CSV (spreadsheet-safe) or JSON Lines, streamed row by row.

Knows nothing of who may export: the caller (the workspace's export page) has checked ``audit.view``
and recorded the export (``services.audit_log_export``) before the first byte.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from typing import Any

from django.http import StreamingHttpResponse
from django.utils import timezone

from . import selectors
from .models import AuditEvent


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


def csv_rows(events: Iterator[AuditEvent]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(selectors.CSV_COLUMNS)
    for e in events:
        d = e.__dict__
        yield writer.writerow([
            e.created_at.isoformat() if c == "created_at" else json.dumps(e.details, sort_keys=True) if c == "details"
            else _cell(d.get(c, "")) for c in selectors.CSV_COLUMNS
        ])


def jsonl_rows(events: Iterator[AuditEvent]) -> Iterator[str]:
    for e in events:
        yield json.dumps(selectors.event_as_dict(e), sort_keys=True, separators=(",", ":")) + "\n"


def stream_export(workspace: Any, cleaned: dict[str, Any], export_format: str) -> StreamingHttpResponse:
    """``workspace``'s events matching the filter form's ``cleaned`` data, as a file download."""
    rows = selectors.iter_export_rows(selectors.filtered_events(workspace, cleaned))
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    if export_format == "csv":
        response = StreamingHttpResponse(csv_rows(rows), content_type="text/csv; charset=utf-8")
        name = f"audit-{workspace.slug}-{stamp}.csv"
    else:
        response = StreamingHttpResponse(jsonl_rows(rows), content_type="application/x-ndjson")
        name = f"audit-{workspace.slug}-{stamp}.jsonl"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["Cache-Control"] = "no-store"
    return response
