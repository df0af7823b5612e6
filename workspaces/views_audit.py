"""The workspace's audit pages: browse, one event, exports, SIEM sinks.

Thin: parse the filters (one form shared with the API), call an ``audit`` selector or service, render.
The rights live here, on the workspaces side (``audit`` knows no roles): access only through
``workspace_view``; Owners, Managers and auditors read (``audit.view``); sinks are Owners'
business (``settings.manage``). Nothing here can change an event.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.cache import never_cache

from audit import selectors, services
from audit.catalogue import ACTIONS, FAMILIES
from audit.chain import event_chain_status, latest_checkpoint
from audit.delivery import sink_statuses
from audit.exceptions import AuditSettingRefused
from audit.export import stream_export
from audit.models import AuditSink

from .access import WorkspaceAccess, workspace_view
from .confirm import unconfirmed
from .forms import posted_id
from .roles import Cap


def _access(request: HttpRequest) -> WorkspaceAccess:
    access: WorkspaceAccess = request.access  # type: ignore[attr-defined]  # set by workspace_view
    return access


def _ctx(request: HttpRequest, **extra: Any) -> dict[str, Any]:
    access = _access(request)
    return {"workspace": access.workspace, "me": access.membership, "can": access.caps, **extra}


@workspace_view(need=Cap.AUDIT_VIEW)
def audit_list(request: HttpRequest, slug: str) -> HttpResponse:
    access = _access(request)
    workspace = access.workspace
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
        verification=selectors.latest_verification(workspace), checkpoint=latest_checkpoint(workspace.pk),
        sinks=sink_statuses(workspace) if access.can(Cap.SETTINGS_MANAGE) else [],
        known_actions=ACTIONS, action_families=FAMILIES, known_actors=selectors.recent_actor_labels(workspace),
    ))


@workspace_view(need=Cap.AUDIT_VIEW)
def audit_event(request: HttpRequest, slug: str, event_id: int) -> HttpResponse:
    event = selectors.event_for_workspace(_access(request).workspace, event_id)
    if event is None:
        raise Http404("No such event")
    details = dict(event.details or {})
    details.pop("before", None), details.pop("after", None)
    changes = selectors.event_changes(event)
    return render(request, "audit/event.html", _ctx(
        request, event=event, changes=changes, other_details=details,
        details_json=json.dumps(event.details, indent=2, sort_keys=True),
        chain=event_chain_status(event),
    ))


@workspace_view(need=Cap.AUDIT_VIEW)
def audit_export(request: HttpRequest, slug: str, export_format: str) -> HttpResponseBase:
    access = _access(request)
    if export_format not in services.EXPORT_FORMATS:
        raise Http404("Exports are .csv or .jsonl")
    form = selectors.AuditFilterForm.from_params(request.GET)
    if not form.is_valid():
        messages.error(request, "Fix the filters before exporting: " + "; ".join(
            f"{k}: {' '.join(str(m) for m in v)}" for k, v in form.errors.items()))
        return redirect("audit_list", slug)
    # The export is itself an event, committed before the first byte leaves.
    services.audit_log_export(
        workspace=access.workspace, actor=access.actor, export_format=export_format,
        filters=form.active_filters(),
    )
    return stream_export(access.workspace, form.cleaned_data, export_format)


@never_cache  # the page may carry a sink's secret, shown once
@workspace_view(need=Cap.SETTINGS_MANAGE)
def audit_sinks(request: HttpRequest, slug: str) -> HttpResponse:
    access = _access(request)
    workspace = access.workspace
    new_secret = ""
    error = ""
    if request.method == "POST":
        action = request.POST.get("action", "")
        try:
            if action == "create":
                _, new_secret = services.audit_sink_create(
                    workspace=workspace, name=request.POST.get("name", ""), url=request.POST.get("url", ""),
                    actor=access.actor,
                )
                messages.success(request, "Sink created. Copy its signing secret now: it will not be shown again.")
            else:
                sink = AuditSink.objects.filter(workspace=workspace, pk=posted_id(request.POST, "sink")).first()
                if sink is None:
                    raise Http404("No such sink")
                if action in ("pause", "resume"):
                    services.audit_sink_update(sink=sink, is_active=action == "resume", actor=access.actor)
                    messages.success(request, f"Sink {sink.name} {'resumed' if action == 'resume' else 'paused'}.")
                elif action == "delete":
                    if ask := unconfirmed(
                        request, title=f"Delete the SIEM sink {sink.name}?", confirm_label="Delete sink",
                        cancel_url=reverse("audit_sinks", args=[slug]),
                        consequences=["Events not yet delivered to it are dropped from its queue (the audit log keeps "
                                      "them; a new sink starts at the end of the chain and back-fills through the API)."],
                    ):
                        return ask
                    services.audit_sink_delete(sink=sink, actor=access.actor)
                    messages.success(request, f"Sink {sink.name} deleted.")
                else:
                    raise Http404("Unknown action")
                return redirect("audit_sinks", slug)
        except AuditSettingRefused as exc:
            error = exc.message
    return render(request, "audit/sinks.html", _ctx(
        request, statuses=sink_statuses(workspace), new_secret=new_secret, error=error,
        posted=request.POST if error else {},
    ))
