"""``/api/v1/workspaces/<slug>/audit-events/``: the log for SIEM pulls and scripts.

Same filters as the page (one form), two ways to page:
- ``cursor`` (opaque, signed): newest first on (created_at, id), like the page;
- ``after_seq=N``: oldest first by chain position, the gapless order for incremental pulls
  (seq is assigned under the chain lock, so it follows commit order within a workspace).

Who may read: an API key through the connector API's own authentication and ``KeyAllows`` (a
personal key whose member is active and may read the audit log, ``audit.view``, auditors included;
a service key with the ``audit:read`` scope; a key of another workspace gets 401 and no data), or
the portal's session through ``access_workspace(need=audit.view)``: 404 for outsiders, 403 for the rest.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from audit import selectors
from workspaces.access import WorkspaceAccess, access_workspace
from workspaces.roles import ApiScope, Cap

from .authentication import ApiKeyAuthentication, ApiPrincipal
from .permissions import KeyAllows
from .serializers import AuditEventPageSerializer, ErrorSerializer


class PortalSession(BaseAuthentication):
    """The person signed in to the portal (Django's session), for the UI's own calls.

    No CSRF check: the endpoint only reads (GET); every other method is refused with 405.
    """

    def authenticate(self, request: Request) -> tuple[Any, None] | None:
        user = getattr(request._request, "user", None)
        if user is None or not user.is_authenticated:
            return None
        return user, None


class PortalSessionScheme(OpenApiAuthenticationExtension):
    """The session is the portal's, not the connector API's: the schema documents the keys only."""

    target_class = PortalSession
    name: list[str] = []

    def get_security_definition(self, auto_schema: Any) -> list[dict[str, Any]]:
        return []

    def get_security_requirement(self, auto_schema: Any) -> list[dict[str, list[Any]]]:
        return []


class AuditReadAllowed(KeyAllows):
    """Keys: exactly ``KeyAllows`` (the view's ``required_scope`` and ``required_cap``).
    The session: the portal's access check, which also checks the session's grant for the workspace."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if isinstance(request.auth, ApiPrincipal):
            return super().has_permission(request, view)
        if request.user is None or not request.user.is_authenticated:
            self.message = "Sign in, or send an API key as 'Authorization: Bearer gh_...'."
            return False  # DRF answers 401 with the key authentication's WWW-Authenticate
        try:
            view.access = access_workspace(request._request, view.kwargs["slug"], need=view.required_cap)
        except Http404 as exc:
            raise exceptions.NotFound() from exc
        except PermissionDenied as exc:
            raise exceptions.PermissionDenied(str(exc) or "Your role in this workspace does not allow this.") from exc
        return True


class AuditEventList(APIView):
    """GET: a page of events. Query: actor, action (or family ``member.*``), target, auth_method, ip,
    from, to, q, limit (<= 500), and either cursor or after_seq."""

    authentication_classes = [ApiKeyAuthentication, PortalSession]  # a key, when one is sent, wins
    permission_classes = [AuditReadAllowed]
    required_scope = ApiScope.AUDIT_READ
    required_cap = Cap.AUDIT_VIEW
    access: WorkspaceAccess  # set by AuditReadAllowed for the session

    @extend_schema(
        tags=["audit"],
        summary="Audit events, newest first (cursor) or in chain order (after_seq)",
        parameters=[
            OpenApiParameter("slug", OpenApiTypes.STR, OpenApiParameter.PATH, description="Workspace slug (the key's own)."),
            OpenApiParameter("actor", OpenApiTypes.STR, description="Email or label of who acted, or their id."),
            OpenApiParameter("action", OpenApiTypes.STR, description="An action (member.role_changed) or a family (member.*)."),
            OpenApiParameter("target", OpenApiTypes.STR, description="type:id (member:42) or a label."),
            OpenApiParameter("auth_method", OpenApiTypes.STR),
            OpenApiParameter("ip", OpenApiTypes.STR),
            OpenApiParameter("from", OpenApiTypes.STR, description="Date or date-time (UTC when no offset)."),
            OpenApiParameter("to", OpenApiTypes.STR, description="Date (inclusive) or date-time."),
            OpenApiParameter("q", OpenApiTypes.STR, description="Text in labels, action or details."),
            OpenApiParameter("limit", OpenApiTypes.INT, description=f"Events per page, 1 to {selectors.MAX_PAGE_SIZE}.",
                             default=selectors.PAGE_SIZE),
            OpenApiParameter("cursor", OpenApiTypes.STR, description="next_cursor of the previous page."),
            OpenApiParameter("after_seq", {"type": "integer", "minimum": 0, "maximum": 10**18 - 1},
                             description="Events after this chain position, oldest first."),
        ],
        responses={
            200: AuditEventPageSerializer,
            400: OpenApiResponse(ErrorSerializer, description="Invalid filter, limit, cursor or after_seq."),
            401: OpenApiResponse(ErrorSerializer, description="Missing, invalid, revoked or other-workspace key."),
            403: OpenApiResponse(ErrorSerializer, description="The key's scopes or role do not allow reading the audit log."),
            404: OpenApiResponse(ErrorSerializer, description="No such workspace for this session."),
        },
    )
    def get(self, request: Request, slug: str) -> Response:
        workspace = request.auth.workspace if isinstance(request.auth, ApiPrincipal) else self.access.workspace
        params = request.query_params
        repeated = sorted(name for name in params if len(params.getlist(name)) > 1)
        if repeated:
            return Response({"detail": "Give each parameter once.", "errors": {n: ["Given more than once."] for n in repeated}},
                            status=400)
        # A number left empty (?after_seq=) is neither a position nor "none": refused, not read as absent.
        empty = [name for name in ("limit", "after_seq") if params.get(name) == ""]
        if empty:
            return Response({"detail": "Give a value or leave the parameter out.", "errors": {n: ["Empty."] for n in empty}},
                            status=400)
        form = selectors.AuditFilterForm.from_params(request.query_params)
        if not form.is_valid():
            return Response({"detail": "Invalid filters.", "errors": form.errors}, status=400)
        try:
            limit = int(request.query_params.get("limit", selectors.PAGE_SIZE))
        except ValueError:
            return Response({"detail": "limit must be a number."}, status=400)
        qs = selectors.filtered_events(workspace, form.cleaned_data)
        body: dict[str, Any]
        after_seq = params.get("after_seq", "")
        if after_seq:
            if not (after_seq.isascii() and after_seq.isdigit()) or len(after_seq) > 18:
                return Response({"detail": "after_seq must be a whole number."}, status=400)
            events = selectors.events_after_seq(workspace, qs, after_seq=int(after_seq), limit=limit)
            body = {"results": [selectors.event_as_dict(e) for e in events],
                    "next_after_seq": events[-1].seq if events else int(after_seq)}
        else:
            try:
                page = selectors.events_page(workspace, qs, cursor=request.query_params.get("cursor", ""), limit=limit)
            except selectors.BadCursor as exc:
                return Response({"detail": str(exc)}, status=400)
            body = {"results": [selectors.event_as_dict(e) for e in page.events], "next_cursor": page.next_cursor or None}
        response = Response(body)
        response["Cache-Control"] = "no-store"
        return response
