"""One rule for confirming destructive actions in the web UI (docs/architecture.md, "One place per rule").

The first POST of a destructive action answers a page that names its consequences and posts the same fields
again with ``confirmed=yes``; nothing changes until then. No script is involved (the CSP allows none inline), and
a scripted client states its intent with the extra field. The management commands and the API need no such step.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def unconfirmed(
    request: HttpRequest, *, title: str, consequences: list[str], confirm_label: str, cancel_url: str
) -> HttpResponse | None:
    """The confirmation page for this POST, or None once it carries ``confirmed=yes``. For ``workspace_view``
    pages (``request.access`` set)."""
    if request.POST.get("confirmed") == "yes":
        return None
    access = request.access  # type: ignore[attr-defined]  # set by workspace_view
    fields = [(k, v) for k, values in request.POST.lists() if k not in ("csrfmiddlewaretoken", "confirmed") for v in values]
    return render(request, "workspaces/confirm.html", {
        "workspace": access.workspace, "me": access.membership, "can": access.caps,
        "title": title, "consequences": consequences, "confirm_label": confirm_label, "cancel_url": cancel_url,
        "fields": fields, "action_url": request.get_full_path(),
    })
