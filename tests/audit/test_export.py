"""Exports of any filtered view, CSV and JSON Lines, streamed, and themselves audited."""

from __future__ import annotations

import csv
import io
import json

from django.http import StreamingHttpResponse

from audit.models import AuditEvent
from tests.conftest import login_client

from .helpers import as_actor, record


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


def test_the_export_reads_with_an_iterator_not_a_list(world, monkeypatch):
    """Constant memory: rows come from QuerySet.iterator() (a server-side cursor on PostgreSQL)."""
    from django.db.models.query import QuerySet

    calls = []
    original = QuerySet.iterator

    def spy(self, chunk_size=None):
        calls.append(chunk_size)
        return original(self, chunk_size=chunk_size)

    monkeypatch.setattr(QuerySet, "iterator", spy)
    _seed(world)
    _body(login_client(world.owner_a).get("/w/alpha/audit/export.csv"))
    assert calls == [2000]
