"""The workspace's audit pages: browse, one event, exports, SIEM sinks.

Thin: parse the filters (one form shared with the API), call a selector or one service, render.
Access only through ``workspace_view``: Owners, Managers and auditors read (``audit.view``);
sinks are Owners' business (``settings.manage``). Nothing here can change an event.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.http import urlencode

from workspaces.access import WorkspaceRequest, workspace_view
from workspaces.exceptions import ServiceError
from workspaces.roles import Cap

from . import selectors, services
from .chain import event_chain_status, latest_checkpoint
from .delivery import sink_statuses
from .models import AuditSink, AuditVerification


def _ctx(request: WorkspaceRequest, **extra: Any) -> dict[str, Any]:
    access = request.access
    return {"workspace": access.workspace, "me": access.membership, "can": access.caps, **extra}


def latest_verification(workspace: Any) -> AuditVerification | None:
    return AuditVerification.objects.filter(workspace_id=workspace.pk).order_by("-at", "-id").first()


@workspace_view(need=Cap.AUDIT_VIEW)
def audit_list(request: WorkspaceRequest, slug: str) -> HttpResponse:
    workspace = request.access.workspace
    form = selectors.AuditFilterForm.from_params(request.GET)
    page = None
    cursor_error = ""
    filters: dict[str, str] = {}
    if form.is_valid():
        filters = form.active_filters()
        qs = selectors.filtered_events(workspace, form.cleaned_data)
        try:
            page = selectors.events_page(workspace, qs, cursor=request.GET.get("cursor", ""))
        except selectors.BadCursor as exc:
            cursor_error = str(exc)
    query = urlencode(filters)
    return render(request, "audit/list.html", _ctx(
        request, form=form, page=page, events=page.events if page else [], cursor_error=cursor_error,
        query=query, paged=bool(request.GET.get("cursor")),
        next_url=f"?{urlencode({**filters, 'cursor': page.next_cursor})}" if page and page.next_cursor else "",
        verification=latest_verification(workspace), checkpoint=latest_checkpoint(workspace.pk),
        sinks=sink_statuses(workspace) if request.access.can(Cap.SETTINGS_MANAGE) else [],
    ))


@workspace_view(need=Cap.AUDIT_VIEW)
def audit_event(request: WorkspaceRequest, slug: str, event_id: int) -> HttpResponse:
    event = selectors.event_for_workspace(request.access.workspace, event_id)
    if event is None:
        raise Http404("No such event")
    details = dict(event.details or {})
    before, after = details.pop("before", None), details.pop("after", None)
    keys = sorted(set(before or {}) | set(after or {})) if isinstance(before, dict) or isinstance(after, dict) else []
    changes = [(k, (before or {}).get(k, ""), (after or {}).get(k, "")) for k in keys]
    return render(request, "audit/event.html", _ctx(
        request, event=event, changes=changes, other_details=details,
        details_json=json.dumps(event.details, indent=2, sort_keys=True),
        chain=event_chain_status(event),
    ))


# ----------------------------------------------------------------------------- exports


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


def _csv_rows(events: Iterator) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(selectors.CSV_COLUMNS)
    for e in events:
        d = e.__dict__
        yield writer.writerow([
            e.created_at.isoformat() if c == "created_at" else json.dumps(e.details, sort_keys=True) if c == "details"
            else _cell(d.get(c, "")) for c in selectors.CSV_COLUMNS
        ])


def _jsonl_rows(events: Iterator) -> Iterator[str]:
    for e in events:
        yield json.dumps(selectors.event_as_dict(e), sort_keys=True, separators=(",", ":")) + "\n"


def stream_export(workspace: Any, cleaned: dict[str, Any], export_format: str) -> StreamingHttpResponse:
    rows = selectors.iter_export_rows(selectors.filtered_events(workspace, cleaned))
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    if export_format == "csv":
        response = StreamingHttpResponse(_csv_rows(rows), content_type="text/csv; charset=utf-8")
        name = f"audit-{workspace.slug}-{stamp}.csv"
    else:
        response = StreamingHttpResponse(_jsonl_rows(rows), content_type="application/x-ndjson")
        name = f"audit-{workspace.slug}-{stamp}.jsonl"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["Cache-Control"] = "no-store"
    return response


@workspace_view(need=Cap.AUDIT_VIEW)
def audit_export(request: WorkspaceRequest, slug: str, export_format: str) -> HttpResponse | StreamingHttpResponse:
    workspace = request.access.workspace
    if export_format not in services.EXPORT_FORMATS:
        raise Http404("Exports are .csv or .jsonl")
    form = selectors.AuditFilterForm.from_params(request.GET)
    if not form.is_valid():
        messages.error(request, "Fix the filters before exporting: " + "; ".join(
            f"{k}: {' '.join(v)}" for k, v in form.errors.items()))  # type: ignore[arg-type]  # ErrorList yields str messages
        return redirect("audit_list", slug)
    # The export is itself an event, committed before the first byte leaves.
    services.audit_log_export(
        workspace=workspace, actor=request.access.actor, export_format=export_format,
        filters=form.active_filters(),
    )
    return stream_export(workspace, form.cleaned_data, export_format)


# ----------------------------------------------------------------------------- SIEM sinks


@workspace_view(need=Cap.SETTINGS_MANAGE)
def audit_sinks(request: WorkspaceRequest, slug: str) -> HttpResponse:
    workspace = request.access.workspace
    new_secret = ""
    error = ""
    if request.method == "POST":
        action = request.POST.get("action", "")
        try:
            if action == "create":
                _, new_secret = services.audit_sink_create(
                    workspace=workspace, name=request.POST.get("name", ""), url=request.POST.get("url", ""),
                    actor=request.access.actor,
                )
                messages.success(request, "Sink created. Copy its signing secret now: it will not be shown again.")
            else:
                sink = AuditSink.objects.filter(workspace=workspace, pk=int(request.POST.get("sink", 0) or 0)).first()
                if sink is None:
                    raise Http404("No such sink")
                if action in ("pause", "resume"):
                    services.audit_sink_update(sink=sink, is_active=action == "resume", actor=request.access.actor)
                    messages.success(request, f"Sink {sink.name} {'resumed' if action == 'resume' else 'paused'}.")
                elif action == "delete":
                    services.audit_sink_delete(sink=sink, actor=request.access.actor)
                    messages.success(request, f"Sink {sink.name} deleted.")
                else:
                    raise Http404("Unknown action")
                return redirect("audit_sinks", slug)
        except ServiceError as exc:
            error = exc.message
    response = render(request, "audit/sinks.html", _ctx(
        request, statuses=sink_statuses(workspace), new_secret=new_secret, error=error,
        posted=request.POST if error else {},
    ))
    response["Cache-Control"] = "no-store"  # may carry the secret shown once
    return response
