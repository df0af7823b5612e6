"""The workspace's audit page. (The audit domain imports nothing of ours; its page uses the one access layer.)"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from workspaces.access import workspace_view
from workspaces.roles import Cap

from .selectors import recent_events


@workspace_view(need=Cap.AUDIT_VIEW)
def audit_list(request: HttpRequest, slug: str) -> HttpResponse:
    access = request.access
    return render(request, "audit/list.html", {
        "workspace": access.workspace, "me": access.membership, "can": access.caps,
        "events": recent_events(access.workspace, limit=100),
    })
