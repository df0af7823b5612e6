"""Email domains (Owners): claim a domain, see the DNS TXT record that proves it, verify it now, remove it."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from . import selectors, services
from .access import WorkspaceRequest, workspace_view
from .domains import record_name, record_value
from .exceptions import ServiceError
from .forms import DomainClaimForm, posted_id
from .models import DomainClaim
from .roles import Cap


@require_http_methods(["GET", "POST"])
@workspace_view(need=Cap.SETTINGS_MANAGE)
def workspace_domains(request: WorkspaceRequest, slug: str) -> HttpResponse:
    access = request.access
    workspace = access.workspace
    action = request.POST.get("action", "")
    form = DomainClaimForm(request.POST if action == "add" else None)
    if request.method == "POST":
        try:
            if action == "add":
                if form.is_valid():
                    claim = services.domain_claim_add(workspace=workspace, domain=form.cleaned_data["domain"],
                                                      actor=access.actor)
                    messages.success(request, f"Claimed {claim.domain}. Add the TXT record below, then Verify now.")
                    return redirect("workspace_domains", slug)
            elif action in ("verify", "remove"):
                # Scoped to this workspace: another workspace's claim id is "not found", as a missing one.
                found = selectors.domain_claims_of(workspace).select_related("workspace").filter(
                    pk=posted_id(request.POST, "claim")).first()
                if found is None:
                    raise ServiceError("That domain claim no longer exists: it expired or was removed.")
                claim = found
                if action == "verify":
                    claim = services.domain_claim_verify(claim=claim, actor=access.actor)
                    if claim.verified_at is not None and not claim.last_error:
                        messages.success(request, f"{claim.domain} is verified. The record is checked again daily; "
                                                  "keep it in place.")
                    else:
                        messages.error(request, claim.last_error)
                else:
                    services.domain_claim_remove(claim=claim, actor=access.actor)
                    messages.success(request, f"Removed the claim to {claim.domain}.")
                return redirect("workspace_domains", slug)
            else:
                messages.error(request, "Unknown action: use the buttons on this page.")
        except ServiceError as exc:
            if action == "add":
                form.add_error("domain" if exc.field == "domain" else None, exc.message)
            else:
                messages.error(request, exc.message)
    return render(request, "workspaces/domains.html", {
        "workspace": workspace, "me": access.membership, "can": access.caps, "form": form,
        "claims": [_row(claim) for claim in selectors.domain_claims_of(workspace)],
    })


def _row(claim: DomainClaim) -> dict[str, object]:
    return {"claim": claim, "record_name": record_name(claim.domain), "record_value": record_value(claim.token)}
