"""``/api/v1/workspaces/<slug>/audit-events/``: the log for SIEM pulls and scripts.

Same filters as the page (one form), two ways to page:
- ``cursor`` (opaque, signed): newest first on (created_at, id), like the page;
- ``after_seq=N``: oldest first by chain position, the gapless order for incremental pulls
  (seq is assigned under the chain lock, so it follows commit order within a workspace).

Authentication is ONE function, ``authenticate_audit_reader``, so it can be swapped for the
REST API's own authentication class when the branches meet: the session (the UI), or an API
key (``Authorization: Bearer gh_...`` or ``X-Api-Key``): a personal key whose member is active
and may read the audit log, or a service key with the ``audit:read`` scope. A key of another
workspace gets 401 and no data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.response import Response
from rest_framework.views import APIView

from workspaces.access import access_workspace
from workspaces.api.authentication import key_from_request, resolve_api_key
from workspaces.models import Workspace
from workspaces.roles import ApiScope, Cap, can

from . import selectors
from .record import Actor

AUDIT_READ_SCOPE = ApiScope.AUDIT_READ


class AuditAuthError(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass(frozen=True)
class AuditReader:
    workspace: Workspace
    actor: Actor


def authenticate_audit_reader(request: HttpRequest, slug: str) -> AuditReader:
    """Who is reading ``slug``'s audit log, or ``AuditAuthError`` (401/403/404).

    API keys are checked by the REST API's one key resolver (``resolve_api_key``: hash, liveness,
    this workspace only, active member); this adds only the audit-specific right.
    """
    plain = key_from_request(request)
    if plain:
        try:
            principal = resolve_api_key(plain, slug)
        except AuthenticationFailed as exc:
            raise AuditAuthError(401, "Invalid, expired or revoked API key.") from exc
        if principal.membership is not None and not can(principal.membership, Cap.AUDIT_VIEW):
            raise AuditAuthError(403, "This key's member may not read the audit log.")
        if not principal.has_scope(AUDIT_READ_SCOPE):
            raise AuditAuthError(403, f"This key lacks the {AUDIT_READ_SCOPE!r} scope.")
        return AuditReader(principal.workspace, principal.actor)
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        raise AuditAuthError(401, "Sign in, or send an API key as 'Authorization: Bearer gh_...'.")
    try:
        access = access_workspace(request, slug, need=Cap.AUDIT_VIEW)
    except Http404 as exc:
        raise AuditAuthError(404, "Not found.") from exc
    except PermissionDenied as exc:
        raise AuditAuthError(403, str(exc) or "Your role in this workspace does not allow this.") from exc
    return AuditReader(access.workspace, access.actor)


class AuditEventList(APIView):
    """GET: a page of events. Query: actor, action (or family ``member.*``), target, auth_method, ip,
    from, to, q, limit (<= 500), and either cursor or after_seq."""

    authentication_classes: list = []  # authenticate_audit_reader decides (session or API key)
    permission_classes: list = []

    def perform_authentication(self, request) -> None:
        # Leave Django's session user on the underlying request: DRF with no authentication
        # classes would otherwise overwrite it with None before authenticate_audit_reader runs.
        pass

    def get(self, request, slug: str) -> Response:
        try:
            reader = authenticate_audit_reader(request._request, slug)
        except AuditAuthError as exc:
            headers = {"WWW-Authenticate": 'Bearer realm="gatehouse"'} if exc.status == 401 else {}
            return Response({"detail": exc.detail}, status=exc.status, headers=headers)
        form = selectors.AuditFilterForm.from_params(request.query_params)
        if not form.is_valid():
            return Response({"detail": "Invalid filters.", "errors": form.errors}, status=400)
        try:
            limit = int(request.query_params.get("limit", selectors.PAGE_SIZE))
        except ValueError:
            return Response({"detail": "limit must be a number."}, status=400)
        qs = selectors.filtered_events(reader.workspace, form.cleaned_data)
        body: dict[str, Any]
        after_seq = request.query_params.get("after_seq")
        if after_seq not in (None, ""):
            if not after_seq.isdigit():
                return Response({"detail": "after_seq must be a whole number."}, status=400)
            events = selectors.events_after_seq(reader.workspace, qs, after_seq=int(after_seq), limit=limit)
            body = {"results": [selectors.event_as_dict(e) for e in events],
                    "next_after_seq": events[-1].seq if events else int(after_seq)}
        else:
            try:
                page = selectors.events_page(reader.workspace, qs, cursor=request.query_params.get("cursor", ""), limit=limit)
            except selectors.BadCursor as exc:
                return Response({"detail": str(exc)}, status=400)
            body = {"results": [selectors.event_as_dict(e) for e in page.events], "next_cursor": page.next_cursor or None}
        response = Response(body)
        response["Cache-Control"] = "no-store"
        return response
