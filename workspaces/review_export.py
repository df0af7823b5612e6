"""An access review as evidence: the JSON document (also the API's item shape) and the CSV an auditor opens.

The JSON is deterministic (sorted keys, fixed layout, UTC times): the export of a completed review is the same bytes
every time, so its SHA-256, recorded in ``access_review.completed``, proves a file handed to an auditor is the one
the log vouches for (``sha256sum review.json``).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from datetime import datetime
from typing import Any

from django.http import HttpResponse

from audit.export import _cell as csv_cell  # the one CSV-injection rule of the portal's exports

from . import selectors
from .models import AccessReview, AccessReviewItem

CSV_COLUMNS = (
    "review_id", "review_name", "scope", "entitlement", "label", "principal_type", "principal_id", "principal_label",
    "source", "idp_owned", "decision", "decided_by", "decided_at", "note", "outcome", "outcome_detail",
)


def _when(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def scope_text(review: AccessReview) -> str:
    """``workspace``, or ``team:<id> <name>`` / ``repository:<id> <name>`` (the name as it was at the start)."""
    if review.scope_kind == "team":
        return f"team:{review.scope_team_id or ''} {review.scope_label}".strip()
    if review.scope_kind == "repository":
        return f"repository:{review.scope_repository_id or ''} {review.scope_label}".strip()
    return "workspace"


def item_document(item: AccessReviewItem) -> dict[str, Any]:
    """One item as the API returns it and the JSON export holds it."""
    return {
        "id": item.pk,
        "entitlement": item.entitlement,
        "kind": item.kind,
        "label": item.label,
        "principal": {"type": item.principal_type, "id": item.principal_id, "label": item.principal_label},
        "source": item.source,
        "idp_owned": item.idp_owned or None,
        "decision": item.decision or None,
        "decided_by": item.decided_by_label or None,
        "decided_at": _when(item.decided_at),
        "note": item.note,
        "outcome": item.outcome or None,
        "outcome_detail": item.outcome_detail,
    }


def review_document(review: AccessReview, counts: dict[str, int] | None = None) -> dict[str, Any]:
    """The review without its items: what it covered, who ran it, where it stands. ``counts`` defaults to the
    annotations of ``selectors.access_reviews_of``."""
    if counts is None:
        counts = {name: getattr(review, f"{name}_count", 0) for name in
                  ("item", "keep", "revoke", "undecided", "kept", "revoked", "not_held", "refused")}
    return {
        "id": review.pk,
        "workspace": review.workspace.slug,
        "name": review.name,
        "scope": {
            "kind": review.scope_kind,
            "id": review.scope_team_id if review.scope_kind == "team" else review.scope_repository_id,
            "label": review.scope_label,
        },
        "status": review.status,
        "created_by": review.created_by_label,
        "created_at": _when(review.created_at),
        "completed_by": review.completed_by or None,
        "completed_at": _when(review.completed_at),
        "counts": {
            "items": counts["item"],
            "decisions": {"keep": counts["keep"], "revoke": counts["revoke"], "undecided": counts["undecided"]},
            "outcomes": {"kept": counts["kept"], "revoked": counts["revoked"], "not_held": counts["not_held"],
                         "refused": counts["refused"]},
        },
    }


def _counted(items: list[AccessReviewItem]) -> dict[str, int]:
    """The counts of a list of items (the export counts what it holds, not a second query that could differ)."""
    counts = dict.fromkeys(("item", "keep", "revoke", "undecided", "kept", "revoked", "not_held", "refused"), 0)
    counts["item"] = len(items)
    for item in items:
        counts[item.decision or "undecided"] += 1
        if item.outcome:
            counts[item.outcome] += 1
    return counts


def export_json(review: AccessReview) -> bytes:
    """``{"review": {...}, "items": [...]}`` as UTF-8 bytes, deterministic (see the module's docstring)."""
    items = list(selectors.access_review_items(review))
    doc = {"review": review_document(review, _counted(items)), "items": [item_document(i) for i in items]}
    return (json.dumps(doc, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode()


def export_sha256(review: AccessReview) -> str:
    """The SHA-256 (hex) of ``export_json(review)``."""
    return hashlib.sha256(export_json(review)).hexdigest()


def export_csv(review: AccessReview) -> str:
    """One row per item, the columns of ``CSV_COLUMNS``; cells that a spreadsheet would run as a formula are
    quoted (labels and notes come from people and identity providers)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    scope = scope_text(review)
    for item in selectors.access_review_items(review).iterator(chunk_size=1000):
        row = (
            review.pk, review.name, scope, item.entitlement, item.label, item.principal_type, item.principal_id,
            item.principal_label, item.source, item.idp_owned, item.decision, item.decided_by_label,
            _when(item.decided_at) or "", item.note, item.outcome, item.outcome_detail,
        )
        writer.writerow([csv_cell(value) for value in row])
    return out.getvalue()


def export_response(review: AccessReview, fmt: str) -> HttpResponse:
    """The download of the portal's export links and the API's export: ``fmt`` ``json`` or ``csv``."""
    if fmt == "json":
        response = HttpResponse(export_json(review), content_type="application/json; charset=utf-8")
    else:
        response = HttpResponse(export_csv(review), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="access-review-{review.workspace.slug}-{review.pk}.{fmt}"'
    return response
