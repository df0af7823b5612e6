"""The development IdP's pages. Each answers 404 unless DEBUG is on (besides being mounted only then)."""

from __future__ import annotations

import base64
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from workspaces.models import Membership, Workspace

from .. import selectors
from ..models import SamlSettings
from . import idp


def development_only(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """404 unless DEBUG: this IdP signs any email it is given, so it must never answer in production."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not settings.DEBUG:
            raise Http404("The development IdP runs only with DEBUG on")
        return view(request, *args, **kwargs)

    return wrapped


def _workspace(slug: str) -> tuple[Workspace, SamlSettings | None]:
    workspace, cfg = selectors.saml_settings_by_slug(slug)
    if workspace is None:
        raise Http404("No such workspace")
    return workspace, cfg


def _people(workspace: Workspace) -> list[Membership]:
    return list(Membership.objects.filter(workspace=workspace, is_active=True).select_related("user")
                .order_by("user__email"))


@development_only
@require_GET
def metadata(request: HttpRequest, slug: str) -> HttpResponse:
    _workspace(slug)
    return HttpResponse(idp.metadata_xml(slug), content_type="application/samlmetadata+xml")


@development_only
@never_cache
@require_http_methods(["GET", "POST"])
def sso(request: HttpRequest, slug: str) -> HttpResponse:
    """GET: Gatehouse's AuthnRequest arrives (Redirect binding); ask whom to sign in as.
    POST: the choice; answer with a signed Response in a form the browser posts to Gatehouse's ACS."""
    workspace, cfg = _workspace(slug)
    data = request.POST if request.method == "POST" else request.GET
    saml_request, relay_state = data.get("SAMLRequest", ""), data.get("RelayState", "")
    try:
        pending = idp.read_request(slug, cfg, saml_request)
    except idp.DevIdpRefused as exc:
        return render(request, "saml/dev_idp_signin.html", {"slug": slug, "refused": str(exc)}, status=400)
    people = _people(workspace)
    email = data.get("email", "").strip() if request.method == "POST" else ""
    if not email:
        return render(request, "saml/dev_idp_signin.html", {
            "slug": slug, "workspace_name": workspace.name, "people": people, "saml_request": saml_request,
            "relay_state": relay_state, "sp_entity_id": pending.sp_entity_id,
            "missing_email": request.method == "POST",
        })
    member = next((m for m in people if m.user.email.lower() == email.lower()), None)
    first, last = (member.given_name, member.family_name) if member else ("", "")
    if member and not (first or last) and member.user.full_name:
        first, _, last = member.user.full_name.partition(" ")
    xml = idp.signed_response(slug, cfg, pending, email=email, first_name=first, last_name=last)
    return render(request, "saml/dev_idp_post.html", {
        "slug": slug, "acs_url": pending.acs_url, "email": email, "relay_state": relay_state,
        "saml_response": base64.b64encode(xml.encode()).decode(),
    })
