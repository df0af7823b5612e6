"""The provisioning page (``/w/<slug>/settings/provisioning/``): thin, Owners only.

Switch SCIM on or off, see the base URL, create, rotate and revoke credentials (a secret is
shown once, on the response to the POST that made it, with ``Cache-Control: no-store``), and
read the recent SCIM requests.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.cache import never_cache

from workspaces.access import workspace_view
from workspaces.confirm import unconfirmed
from workspaces.exceptions import ServiceError
from workspaces.forms import posted_id
from workspaces.roles import Cap
from workspaces.services import workspace_update_policy

from . import services
from .credential_selectors import credential_of, credentials_with_state
from .models import CredentialKind
from .oauth import workspace_scope
from .request_log import recent_requests, request_log_page
from .web_forms import CredentialForm, ProvisioningPolicyForm, RequestLogFilterForm


def _credential_or_404(request: HttpRequest) -> Any:
    credential_id = posted_id(request.POST, "credential")
    credential = credential_of(request.access.workspace, credential_id)  # type: ignore[attr-defined]
    if credential is None:
        raise Http404("No such credential")
    return credential


@never_cache  # the page may carry a secret shown once
@workspace_view(need=Cap.SETTINGS_MANAGE)
def provisioning(request: HttpRequest, slug: str) -> HttpResponse:
    access = request.access  # type: ignore[attr-defined]  # set by workspace_view
    workspace = access.workspace
    form = CredentialForm()
    policy_form = ProvisioningPolicyForm(initial={
        "jit_provisioning": workspace.jit_provisioning, "default_role": workspace.default_role,
        "scim_may_grant_owner": workspace.scim_may_grant_owner, "api_may_override_idp": workspace.api_may_override_idp,
    })
    new_secret: dict[str, Any] | None = None
    if request.method == "POST":
        action = request.POST.get("action", "")
        try:
            if action == "policy":
                policy_form = ProvisioningPolicyForm(request.POST)
                if policy_form.is_valid():
                    changes = {k: v for k, v in policy_form.cleaned_data.items() if getattr(workspace, k) != v}
                    if changes:
                        workspace_update_policy(workspace=workspace, actor=access.actor, **changes)
                    messages.success(request, "Provisioning policy saved." if changes else "Nothing changed.")
                    return redirect("scim_provisioning", slug)
            if action == "disable" and (ask := unconfirmed(
                request, title="Turn SCIM provisioning off?", confirm_label="Turn SCIM off",
                cancel_url=reverse("scim_provisioning", args=[slug]),
                consequences=["Your identity provider's requests are refused (403) until it is on again: new people, "
                              "changes and deactivations made there do not reach this workspace meanwhile.",
                              "Credentials and members stay as they are."],
            )):
                return ask
            if action in ("enable", "disable"):
                services.scim_set_enabled(workspace=workspace, enabled=action == "enable", actor=access.actor)
                messages.success(request, "SCIM provisioning is on." if action == "enable" else "SCIM provisioning is off.")
                return redirect("scim_provisioning", slug)
            if action == "revoke":
                doomed = _credential_or_404(request)
                if ask := unconfirmed(
                    request, title=f"Revoke the SCIM credential {doomed.name}?", confirm_label="Revoke credential",
                    cancel_url=reverse("scim_provisioning", args=[slug]),
                    consequences=["The identity provider using it is refused from its next request, until it is given "
                                  "a new credential. To replace a credential without a gap, use Rotate instead."],
                ):
                    return ask
                credential = services.scim_credential_revoke(credential=_credential_or_404(request), actor=access.actor)
                messages.success(request, f"Credential “{credential.name}” revoked. It stops working now.")
                return redirect("scim_provisioning", slug)
            if action == "rotate":
                old = _credential_or_404(request)
                credential, secret = services.scim_credential_rotate(credential=old, actor=access.actor)
                old.refresh_from_db()
                new_secret = {"credential": credential, "secret": secret, "rotated_from": old}
                messages.success(request, "New credential created. Copy it now: it will not be shown again.")
            elif action == "create":
                form = CredentialForm(request.POST)
                if form.is_valid():
                    data = form.cleaned_data
                    if data["kind"] == CredentialKind.OAUTH:
                        credential, secret = services.scim_oauth_client_create(
                            workspace=workspace, name=data["name"], actor=access.actor,
                            grant=data["grant"] or services.OAuthGrant.AUTHORIZATION_CODE,
                            redirect_uris=data["redirect_uris"],
                        )
                    else:
                        credential, secret = services.scim_credential_create(
                            workspace=workspace, kind=data["kind"], name=data["name"], actor=access.actor,
                        )
                    new_secret = {"credential": credential, "secret": secret}
                    form = CredentialForm()
                    messages.success(request, "Credential created. Copy it now: it will not be shown again.")
            elif action != "policy":  # an invalid policy form is shown again below
                raise Http404("Unknown action")
        except ServiceError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
            if action != "create":
                messages.error(request, exc.message)
    if new_secret and new_secret["credential"].kind == CredentialKind.BASIC:
        # Okta asks for Basic credentials as a username and a password: shown apart, each with its copy button.
        new_secret["username"], _, new_secret["password"] = new_secret["secret"].partition(":")
    base = settings.PUBLIC_BASE_URL
    return render(request, "scim/provisioning.html", {
        "workspace": workspace, "me": access.membership, "can": access.caps,
        "form": form, "new_secret": new_secret, "policy_form": policy_form,
        "credentials": credentials_with_state(workspace),
        "requests": recent_requests(workspace, limit=10),
        "scim_base_url": f"{base}/scim/v2/{workspace.slug}/",
        "oauth_authorize_url": base + reverse("oauth2_provider:authorize"),
        "oauth_token_url": base + reverse("oauth2_provider:token"),
        "oauth_scope": workspace_scope(workspace.pk),
    })


@workspace_view(need=Cap.SETTINGS_MANAGE)
def request_log(request: HttpRequest, slug: str) -> HttpResponse:
    """Every SCIM request the log keeps, newest first: filters and keyset pages of 50."""
    access = request.access  # type: ignore[attr-defined]  # set by workspace_view
    form = RequestLogFilterForm(request.GET)
    filters = {k: str(v) for k, v in (form.cleaned_data if form.is_valid() else {}).items() if v not in (None, "")}
    raw = request.GET.get("before", "")
    before = int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 19 else None
    rows, next_before = request_log_page(access.workspace, filters, before=before)
    query = urlencode(filters)
    return render(request, "scim/request_log.html", {
        "workspace": access.workspace, "me": access.membership, "can": access.caps,
        "form": form, "requests": rows, "filtered": bool(filters), "query": query, "paged": before is not None,
        "next_url": f"?{urlencode({**filters, 'before': str(next_before)})}" if next_before else "",
    })
