"""Exports of any filtered view, CSV and JSON Lines, streamed, and themselves audited."""

from __future__ import annotations

import csv
import io
import json

from django.http import StreamingHttpResponse

from audit.models import AuditEvent
from tests.conftest import login_client

from .helpers import as_actor, frozen_now, record


def _body(response) -> str:
    assert isinstance(response, StreamingHttpResponse)
    return b"".join(response.streaming_content).decode()


def _seed(world):
    record(world.a, "member.role_changed", actor=as_actor(world.owner_a), target_label="member@alpha.test")
    record(world.a, "team.created", actor=as_actor(world.manager_a), target_label="=HYPERLINK(\"http://evil\")")
    record(world.b, "member.role_changed", actor=as_actor(world.outsider_b))


def test_csv_export_streams_the_filtered_view(world):
    _seed(world)
    response = login_client(world.manager_a).get("/w/alpha/audit/export.csv", {"action": "member.*"})
    assert response["Content-Type"].startswith("text/csv")
    assert 'attachment; filename="audit-alpha-' in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(_body(response))))
    assert [r["action"] for r in rows] == ["member.role_changed"]
    assert rows[0]["actor_label"] == "owner@alpha.test"


def test_jsonl_export_has_one_event_per_line_with_its_hash(world):
    _seed(world)
    response = login_client(world.owner_a).get("/w/alpha/audit/export.jsonl")
    lines = [json.loads(line) for line in _body(response).splitlines()]
    events = AuditEvent.objects.filter(workspace_id=world.a.pk).order_by("-created_at", "-id")
    assert [line["id"] for line in lines] == [e.pk for e in events]
    assert all(line["hash"] == e.hash for line, e in zip(lines, events, strict=True))


def test_the_export_is_itself_audited_with_its_filters_and_format(world):
    _seed(world)
    _body(login_client(world.manager_a).get("/w/alpha/audit/export.csv", {"actor": "owner@alpha.test", "from": "2026-01-01"}))
    event = AuditEvent.objects.get(action="audit.exported")
    assert event.actor_label == "manager@alpha.test"
    assert event.details == {"format": "csv", "filters": {"actor": "owner@alpha.test", "from": "2026-01-01"}}


def test_a_spreadsheet_formula_in_a_label_is_neutralised_in_csv(world):
    _seed(world)
    body = _body(login_client(world.owner_a).get("/w/alpha/audit/export.csv", {"action": "team.created"}))
    row = next(csv.DictReader(io.StringIO(body)))
    assert row["target_label"].startswith("'=HYPERLINK")


def test_exports_never_include_another_workspaces_events(world):
    _seed(world)
    lines = _body(login_client(world.owner_a).get("/w/alpha/audit/export.jsonl")).splitlines()
    assert {json.loads(line)["workspace_id"] for line in lines} == {world.a.pk}


def test_a_member_without_the_permission_cannot_export_and_nothing_is_recorded(world):
    _seed(world)
    assert login_client(world.member_a).get("/w/alpha/audit/export.csv").status_code == 403
    assert login_client(world.outsider_b).get("/w/alpha/audit/export.csv").status_code == 404
    assert not AuditEvent.objects.filter(action="audit.exported").exists()


def test_an_unknown_export_format_is_404(world):
    assert login_client(world.owner_a).get("/w/alpha/audit/export.xlsx").status_code == 404


def test_the_export_reads_in_keyset_batches_of_plain_rows(world, monkeypatch, django_assert_num_queries):
    """Constant memory and a quick first row at any size: short LIMIT queries, newest first, no model instances,
    every event exactly once across batch boundaries (ties on created_at included)."""
    from django.utils import timezone

    from audit import export

    monkeypatch.setattr(export, "EXPORT_BATCH", 3)
    same_instant = timezone.now()
    for n in range(7):
        # Four events share one timestamp: the keyset's tie-break on id must neither skip nor repeat them.
        if 1 <= n <= 4:
            with frozen_now(same_instant):
                record(world.a, "member.role_changed", actor=as_actor(world.owner_a), target_id=str(n))
        else:
            record(world.a, "member.role_changed", actor=as_actor(world.owner_a), target_id=str(n))
    assert AuditEvent.objects.filter(workspace=world.a, created_at=same_instant).count() == 4
    rows = list(export.export_rows(AuditEvent.objects.filter(workspace=world.a), batch=3))
    expected = list(AuditEvent.objects.filter(workspace=world.a).order_by("-created_at", "-id").values_list("id", flat=True))
    assert [r.id for r in rows] == expected and len(expected) == 7
    assert all(isinstance(r, export.ExportedEvent) for r in rows)
    with django_assert_num_queries(3):  # 3 + 3 + 1 rows: three batches
        list(export.export_rows(AuditEvent.objects.filter(workspace=world.a), batch=3))
    # Through the page, the same events in the same order.
    body = _body(login_client(world.owner_a).get("/w/alpha/audit/export.jsonl")).splitlines()
    exported = [json.loads(line)["id"] for line in body if json.loads(line)["action"] == "member.role_changed"]
    assert exported == expected


def test_rows_leave_in_blocks_and_the_first_row_at_once():
    """One socket write per block, not per row; the header and first row are not held back for a full block."""
    from audit.export import in_blocks

    rows = ["header\n"] + [f"row {n}\n" for n in range(1000)]
    blocks = list(in_blocks(iter(rows), size=1000))
    assert blocks[0] == "header\nrow 0\n"
    assert "".join(blocks) == "".join(rows)
    assert all(len(b) >= 1000 for b in blocks[1:-1]) and len(blocks) < 20
