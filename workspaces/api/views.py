"""The connector API: thin views over selectors and one service (the access check).

Every view is under ``/api/v1/workspaces/<slug>/``; ``ApiKeyAuthentication`` has already refused
any key of another workspace, so ``request.auth.workspace`` *is* the URL's workspace.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from django.db.models import QuerySet
from django.db.models.functions import Lower
from django.http import JsonResponse
from django.http.request import RawPostDataException
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, generics, status
from rest_framework.authentication import BaseAuthentication
from rest_framework.pagination import CursorPagination
from rest_framework.parsers import BaseParser, JSONParser
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from workspaces import selectors, services
from workspaces.exceptions import ServiceError
from workspaces.models import Membership, TeamMembership
from workspaces.package_access import UNREAD, PackageAction
from workspaces.policy import personal_key_sso_until
from workspaces.roles import ApiScope, Cap

from . import schema as _schema  # noqa: F401  (registers the OpenAPI auth extension)
from .authentication import ApiKeyAuthentication, ApiPrincipal, resolve_api_key
from .permissions import KeyAllows
from .serializers import (
    AccessCheckRequestSerializer,
    AccessCheckResponseSerializer,
    ErrorSerializer,
    MemberFilterSerializer,
    MemberSerializer,
    RepositoryFilterSerializer,
    RepositorySerializer,
    TeamFilterSerializer,
    TeamSerializer,
    WorkspaceSerializer,
)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Every API error in one shape: ``{"detail": "...", "errors": {field: [messages]}}`` (``errors`` only for 400s).

    Service refusals become DRF errors here, in one place.
    """
    if isinstance(exc, ServiceError):
        body: dict[str, Any] = {"detail": exc.message, "code": exc.code}
        owner = getattr(exc, "owner", "")
        if owner:
            body["owner"] = owner
        if exc.field and exc.status == 400:
            body["errors"] = {exc.field: [exc.message]}
        return Response(body, status=exc.status)
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(exc, exceptions.ValidationError):
        errors = response.data if isinstance(response.data, dict) else {"non_field_errors": response.data}
        response.data = {"detail": "Invalid request: see errors.", "errors": errors}
    return response


def not_found(request: Any, *args: Any, **kwargs: Any) -> JsonResponse:
    """Any other path under /api/: a JSON 404 (not the portal's HTML page)."""
    return JsonResponse({"detail": "Not found."}, status=404)


_ERRORS = {
    400: OpenApiResponse(ErrorSerializer, description="Invalid filter, cursor or body."),
    401: OpenApiResponse(ErrorSerializer, description="Missing, invalid, revoked or other-workspace key."),
    403: OpenApiResponse(ErrorSerializer, description="The key's role or scopes do not allow this, or (a personal key in "
                         "a SAML-only workspace) its member must sign in through SSO again to authorise it."),
}
_ERRORS_404 = {**_ERRORS, 404: OpenApiResponse(ErrorSerializer, description="No such object visible to this key.")}
# No pattern: any slug but the key's own workspace's is refused the same way (401), whatever its shape.
_SLUG = OpenApiParameter(
    "slug", OpenApiTypes.STR, OpenApiParameter.PATH,
    description="Workspace slug (the key's own; any other answers 401).",
)


class StableCursorPagination(CursorPagination):
    """Cursor pagination on the primary key: stable while members are added or removed mid-sync,
    and as fast on the last page as on the first (no OFFSET). Follow ``next`` until it is null."""

    ordering = "id"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 500

    def decode_cursor(self, request: Request) -> Any:
        try:
            return super().decode_cursor(request)
        except exceptions.NotFound as exc:
            # A garbled cursor is the caller's mistake (400), not a missing page.
            raise exceptions.ValidationError({"cursor": ["Invalid cursor."]}) from exc

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        params = super().get_schema_operation_parameters(view)
        for param in params:
            if param["name"] == self.page_size_query_param:
                param["schema"] = {"type": "integer", "minimum": 1, "maximum": self.max_page_size, "default": self.page_size}
        return params

    def get_page_size(self, request: Request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is not None:
            try:
                size = int(raw)
            except ValueError:
                size = 0
            if not 1 <= size <= self.max_page_size:
                raise exceptions.ValidationError({"page_size": [f"Use an integer from 1 to {self.max_page_size}."]})
            return size
        return self.page_size


if TYPE_CHECKING:
    from rest_framework.permissions import _PermissionClass

    _ApiViewBase = APIView  # the mixin is always combined with an APIView; its attributes have their types
else:
    _ApiViewBase = object


class ApiView(_ApiViewBase):
    """Mixin for every /api/v1/ view: API keys only, JSON in and out, one error shape; the key's principal
    and the viewer membership (None for a service key). Set here, not in REST_FRAMEWORK defaults, so other
    DRF views (SCIM) keep their own."""

    authentication_classes: Sequence[type[BaseAuthentication]] = [ApiKeyAuthentication]
    permission_classes: Sequence[_PermissionClass] = [KeyAllows]
    renderer_classes: Sequence[type[BaseRenderer]] = [JSONRenderer]
    parser_classes: Sequence[type[BaseParser]] = [JSONParser]

    def get_exception_handler(self) -> Any:
        return exception_handler
    required_scope: str | None = None
    required_cap: str = Cap.WORKSPACE_VIEW

    request: Request

    @property
    def principal(self) -> ApiPrincipal:
        return self.request.auth  # type: ignore[return-value]

    @property
    def viewer(self) -> Membership | None:
        return self.principal.membership


_PAGING_PARAMS = ("cursor", "page_size")


def _filters(serializer_class: type, request: Request) -> dict[str, Any]:
    """The list's filters, validated. A filter or paging parameter given twice (``?team=1&team=2``) is a
    400: the schema describes one value each, and silently using the last would answer another question."""
    fields = serializer_class().fields
    repeated = [name for name in (*fields, *_PAGING_PARAMS) if len(request.query_params.getlist(name)) > 1]
    if repeated:
        raise exceptions.ValidationError({name: ["Give this parameter once."] for name in repeated})
    # Empty means "no filter" only for text filters (their schema allows ""); ``?active=`` or ``?team=`` is
    # neither a boolean nor an id, so it is refused rather than quietly ignored.
    empty = [
        name for name, field in fields.items()
        if request.query_params.get(name) == "" and not getattr(field, "allow_blank", False)
    ]
    if empty:
        raise exceptions.ValidationError({name: ["Give a value or leave the parameter out."] for name in empty})
    serializer = serializer_class(data=request.query_params)
    serializer.is_valid(raise_exception=True)
    # An empty filter (``?name=``) is no filter, as the schema says (no minLength).
    return {k: v for k, v in serializer.validated_data.items() if v is not None and v != ""}


@extend_schema(tags=["workspace"], parameters=[_SLUG], responses={200: WorkspaceSerializer, **_ERRORS})
class WorkspaceDetail(ApiView, APIView):
    """The key's workspace: slug, name and policy flags, and the key itself: personal (acting as whom) or service,
    and for a personal key in a SAML-only workspace until when its member's SSO sign-in authorises it. Any live key
    of the workspace may read it."""

    def get(self, request: Request, slug: str) -> Response:
        principal = self.principal
        workspace, member = principal.workspace, principal.membership
        key = {
            "kind": "service" if member is None else "personal",
            "prefix": principal.api_key.prefix,
            "acts_as": member.user.email if member is not None else None,
            "sso_authorised_until": (
                personal_key_sso_until(workspace, member) if member is not None and workspace.saml_only else None
            ),
        }
        return Response(WorkspaceSerializer(workspace, context={"key": key}).data)


@extend_schema(tags=["members"], parameters=[_SLUG, MemberFilterSerializer], responses={200: MemberSerializer(many=True), **_ERRORS})
class MemberList(ApiView, generics.ListAPIView):
    """The roster this key may see (Owner/Manager and service keys with members:read: everyone, private
    members included; Member: public members and itself; Collaborator: itself). Inactive members are listed
    with ``active: false``."""

    serializer_class = MemberSerializer
    pagination_class = StableCursorPagination
    required_scope = ApiScope.MEMBERS_READ

    def get_queryset(self) -> QuerySet[Membership]:
        qs = selectors.api_members(workspace=self.principal.workspace, viewer=self.viewer)
        f = _filters(MemberFilterSerializer, self.request)
        if "role" in f:
            qs = qs.filter(role=f["role"])
        if "active" in f:
            qs = qs.filter(is_active=f["active"])
        if "email" in f:
            qs = qs.alias(lemail=Lower("user__email")).filter(lemail=f["email"].lower())
        if "visibility" in f:
            qs = qs.filter(visibility=f["visibility"])
        if "team" in f:
            visible = selectors.api_teams(workspace=self.principal.workspace, viewer=self.viewer).filter(pk=f["team"])
            qs = qs.filter(team_memberships__team__in=visible.values("pk"))
        return qs


@extend_schema(tags=["members"], parameters=[_SLUG], responses={200: MemberSerializer, **_ERRORS_404})
class MemberDetail(ApiView, generics.RetrieveAPIView):
    serializer_class = MemberSerializer
    required_scope = ApiScope.MEMBERS_READ
    lookup_url_kwarg = "member_id"

    def get_queryset(self) -> QuerySet[Membership]:
        return selectors.api_members(workspace=self.principal.workspace, viewer=self.viewer)


@extend_schema(tags=["teams"], parameters=[_SLUG, TeamFilterSerializer], responses={200: TeamSerializer(many=True), **_ERRORS})
class TeamList(ApiView, generics.ListAPIView):
    """Teams with their members (Owner/Manager and service keys with teams:read: all teams; Member: the
    teams it belongs to, listing the members it may see; Collaborator: none)."""

    serializer_class = TeamSerializer
    pagination_class = StableCursorPagination
    required_scope = ApiScope.TEAMS_READ

    def get_queryset(self) -> QuerySet:
        qs = selectors.api_teams(workspace=self.principal.workspace, viewer=self.viewer)
        f = _filters(TeamFilterSerializer, self.request)
        if "name" in f:
            qs = qs.alias(lname=Lower("name")).filter(lname=f["name"].lower())
        if "member" in f:
            visible = selectors.api_members(workspace=self.principal.workspace, viewer=self.viewer).filter(pk=f["member"])
            qs = qs.filter(pk__in=TeamMembership.objects.filter(membership__in=visible.values("pk")).values("team_id"))
        return qs


@extend_schema(tags=["teams"], parameters=[_SLUG], responses={200: TeamSerializer, **_ERRORS_404})
class TeamDetail(ApiView, generics.RetrieveAPIView):
    serializer_class = TeamSerializer
    required_scope = ApiScope.TEAMS_READ
    lookup_url_kwarg = "team_id"

    def get_queryset(self) -> QuerySet:
        return selectors.api_teams(workspace=self.principal.workspace, viewer=self.viewer)


@extend_schema(tags=["repositories"], parameters=[_SLUG, RepositoryFilterSerializer], responses={200: RepositorySerializer(many=True), **_ERRORS})
class RepositoryList(ApiView, generics.ListAPIView):
    """Repositories with the grants whose grantee this key may see (Collaborator: only repositories granted
    to it directly)."""

    serializer_class = RepositorySerializer
    pagination_class = StableCursorPagination
    required_scope = ApiScope.REPOSITORIES_READ

    def get_queryset(self) -> QuerySet:
        qs = selectors.api_repositories(workspace=self.principal.workspace, viewer=self.viewer)
        f = _filters(RepositoryFilterSerializer, self.request)
        if "name" in f:
            qs = qs.alias(lname=Lower("name")).filter(lname=f["name"].lower())
        if "environment" in f:
            qs = qs.filter(environment=f["environment"])
        return qs


@extend_schema(tags=["repositories"], parameters=[_SLUG], responses={200: RepositorySerializer, **_ERRORS_404})
class RepositoryDetail(ApiView, generics.RetrieveAPIView):
    serializer_class = RepositorySerializer
    required_scope = ApiScope.REPOSITORIES_READ
    lookup_url_kwarg = "repo_id"

    def get_queryset(self) -> QuerySet:
        return selectors.api_repositories(workspace=self.principal.workspace, viewer=self.viewer)


def _plain_access_check_body(data: Any) -> dict[str, str] | None:
    """The body artifact services send on every pull, accepted without building a serializer (a sixth of
    the check's own CPU): exactly a clean repository name and a known action. Anything else is None."""
    if not isinstance(data, dict) or data.keys() != {"repository", "action"}:
        return None
    repository, action = data["repository"], data["action"]
    if not (isinstance(repository, str) and isinstance(action, str)) or action not in PackageAction.CHOICES:
        return None
    if not repository or len(repository) > 100 or repository != repository.strip() or "\x00" in repository:
        return None
    try:
        repository.encode("utf-8")  # lone surrogates: the serializer refuses them
    except UnicodeEncodeError:
        return None
    return {"repository": repository, "action": action}


class _KeyAndDecisionAuthentication(ApiKeyAuthentication):
    """The access check's authentication: with a plain body, the key lookup also reads the decision's
    row for the named repository (one statement instead of two; ``resolve_api_key(repository=)``).

    The body is only peeked at (at most 2 KiB, JSON): anything else authenticates as usual and the view
    parses, validates and words its 400 as before, after authentication.
    """

    def resolve(self, request: Request, raw: str, slug: str | None) -> ApiPrincipal:
        body = None
        try:
            if 0 < int(request.META.get("CONTENT_LENGTH") or 0) <= 2048:
                body = _plain_access_check_body(json.loads(request._request.body))
        except (ValueError, UnicodeDecodeError, RawPostDataException):
            body = None
        return resolve_api_key(raw, slug, repository=body["repository"] if body else None)


@extend_schema(
    tags=["access"],
    parameters=[_SLUG],
    request=AccessCheckRequestSerializer,
    responses={200: AccessCheckResponseSerializer, **_ERRORS_404},
    # The same API keys as every endpoint (its authentication is a subclass that also reads the decision).
    auth=[{"bearerApiKey": []}, {"headerApiKey": []}],  # type: ignore[list-item]
)
class AccessCheck(ApiView, APIView):
    """May this member pull, push or delete in this repository? Every answer, yes or no, is written to the
    audit log (``package.pulled`` / ``package.pushed`` / ``package.deleted`` / ``package.denied``) with the
    member, the key and the repository. A personal key checks its own member; a service key with
    ``access:check`` names the member by email."""

    required_scope = ApiScope.ACCESS_CHECK
    authentication_classes = [_KeyAndDecisionAuthentication]

    def post(self, request: Request, slug: str) -> Response:
        data = _plain_access_check_body(request.data)
        if data is None:  # anything unusual: the serializer validates it and words the 400
            body = AccessCheckRequestSerializer(data=request.data)
            body.is_valid(raise_exception=True)
            data = body.validated_data
        principal = self.principal
        membership = principal.membership
        if membership is None:
            email = data.get("member")
            if not email:
                raise exceptions.ValidationError({"member": ["A service key must name the member to check."]})
            membership = (
                Membership.objects.select_related("user")
                .filter(workspace=principal.workspace, user__email__iexact=email, is_active=True,
                        consent_pending_since__isnull=True)
                .first()
            )
            if membership is None:
                raise exceptions.NotFound("No active member with that email in this workspace.")
            membership.workspace = principal.workspace
        elif data.get("member") and data["member"].lower() != membership.user.email.lower():
            # Well-formed but not allowed for this kind of key: a permission matter (403), not a malformed body.
            raise exceptions.PermissionDenied("A personal key checks its own member only; omit 'member' or use a service key with access:check.")
        read_with_key = principal.membership is not None and principal.decision_repository == data["repository"]
        decision = services.package_access_check(
            membership=membership, repository_name=data["repository"], action=data["action"],
            actor=principal.actor, api_key=principal.api_key,
            decision_row=principal.decision_row if read_with_key else UNREAD,
        )
        return Response(
            {
                "allowed": decision.allowed,
                "reason": decision.reason,
                "repository": decision.repository.name if decision.repository else None,
                "action": data["action"],
                "permission": decision.permission,
            },
            status=status.HTTP_200_OK,
        )
