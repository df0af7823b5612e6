"""The workspace's sign-ins: how long they last, ending all of them at once, and how long an SSO sign-in authorises
a member's personal API keys in a SAML-only workspace (Owners)."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from . import services
from .access import WorkspaceRequest, workspace_view
from .exceptions import ServiceError
from .forms import ApiKeySsoWindowForm, SessionLifetimeForm
from .grants import grant_workspace, session_grants
from .policy import window_label
from .roles import Cap


@require_http_methods(["GET", "POST"])
@workspace_view(need=Cap.SETTINGS_MANAGE)
def workspace_sessions(request: WorkspaceRequest, slug: str) -> HttpResponse:
    access = request.access
    workspace = access.workspace
    current = workspace.session_max_age
    form = SessionLifetimeForm(
        request.POST if request.POST.get("action") == "lifetime" else None,
        initial={"hours": current // 3600 if current else None},
    )
    key_form = ApiKeySsoWindowForm(
        request.POST if request.POST.get("action") == "api_key_sso" else None,
        initial={"hours": workspace.api_key_sso_window // 3600}, prefix="keys",
    )
    if request.method == "POST":
        if request.POST.get("action") == "api_key_sso":
            if key_form.is_valid():
                try:
                    services.workspace_set_api_key_sso_window(
                        workspace=workspace, window=key_form.cleaned_data["hours"] * 3600, actor=access.actor
                    )
                except ServiceError as exc:
                    key_form.add_error("hours", exc.message)
                else:
                    messages.success(request, "Saved. Personal API keys follow the new window from their next request.")
                    return redirect("workspace_sessions", slug)
        elif request.POST.get("action") == "sign_everyone_out":
            if request.POST.get("confirm") != workspace.slug:
                messages.error(request, f"Type the workspace's slug ({workspace.slug}) to confirm.")
                return redirect("workspace_sessions", slug)
            grant = dict(session_grants(request).get(str(workspace.pk)) or {})
            services.workspace_sign_everyone_out(workspace=workspace, actor=access.actor)
            # Everyone else signs in again; the Owner who asked keeps this session (a new grant, same proof).
            grant_workspace(request, workspace, grant.get("method", access.method), grant.get("exp"),
                            mfa=bool(grant.get("mfa")))
            messages.success(request, "Everyone else was signed out of this workspace; they sign in again at "
                                      "their next request. API keys and SCIM credentials are not affected.")
            return redirect("workspace_sessions", slug)
        elif form.is_valid():
            hours = form.cleaned_data["hours"]
            try:
                services.workspace_set_session_max_age(
                    workspace=workspace, max_age=hours * 3600 if hours else None, actor=access.actor
                )
            except ServiceError as exc:
                form.add_error("hours", exc.message)
            else:
                messages.success(request, "Saved. The new lifetime applies to every sign-in from now on.")
                return redirect("workspace_sessions", slug)
    return render(request, "workspaces/sessions.html", {
        "workspace": workspace, "me": access.membership, "can": access.caps, "form": form, "key_form": key_form,
        "key_window": window_label(workspace.api_key_sso_window),
        "default_hours": settings.SESSION_COOKIE_AGE // 3600,
    })
