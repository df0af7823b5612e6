"""Identity governance over the connector API: entitlements, who holds them, and provisioning (grant, revoke,
deactivate, reactivate).

Thin views: the rights of a personal key are its member's role, checked by the same services the portal calls
(one rule); a service key is authorised by its scopes here, and the services then apply the same last-Owner,
field-ownership and audit rules. Writes are idempotent: granting what is held answers 200 with ``changed: false``
and records nothing.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    inline_serializer,
)
from rest_framework import exceptions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param
from rest_framework.views import APIView

from workspaces import selectors, services
from workspaces.entitlements import (
    EntitlementKind,
    EntitlementRef,
    decode_cursor,
    encode_cursor,
    parse_entitlement,
)
from workspaces.exceptions import ServiceError
from workspaces.models import Membership, Team
from workspaces.roles import ApiScope, Role

from .serializers import (
    MAX_ID,
    EntitlementFilterSerializer,
    EntitlementGrantSerializer,
    EntitlementIdField,
    EntitlementSerializer,
    ErrorSerializer,
    GrantFilterSerializer,
    GrantRequestSerializer,
    GrantResultSerializer,
    MemberSerializer,
    MemberStatusRequestSerializer,
    MemberStatusResultSerializer,
    StrictIntegerField,
)
from .views import _ERRORS, _ERRORS_404, _SLUG, ApiView, _filters

PAGE_SIZE, MAX_PAGE_SIZE = 100, 500

# The body's schema: an entitlement and exactly one principal (oneOf, so naming both is schema-invalid too).
_GRANT_BODY = PolymorphicProxySerializer(
    component_name="GrantRequest",
    serializers=[
        inline_serializer("GrantToMember", {
            "entitlement": EntitlementIdField(),
            "member": StrictIntegerField(min_value=1, max_value=MAX_ID, help_text="The member's id."),
        }),
        inline_serializer("GrantToTeam", {
            "entitlement": EntitlementIdField(help_text="repository:<id>:<read|write|admin> (a team holds only these)."),
            "team": StrictIntegerField(min_value=1, max_value=MAX_ID, help_text="The team's id."),
        }),
    ],
    resource_type_field_name=None,
)

# The scope a key needs to change each kind of entitlement; "owner": also anything that touches an Owner.
WRITE_SCOPE: dict[str, ApiScope] = {
    EntitlementKind.ROLE: ApiScope.ROLES_WRITE,
    EntitlementKind.TEAM: ApiScope.TEAMS_WRITE,
    EntitlementKind.REPOSITORY: ApiScope.REPOSITORIES_WRITE,
    "owner": ApiScope.OWNERS_WRITE,
}
_WRITE_ERRORS = {
    **_ERRORS_404,
    403: OpenApiResponse(ErrorSerializer, description=(
        "The key's scopes or its member's role do not allow this; or (code idp_owned) the identity provider owns "
        "the grant (a role it set, a team it pushes or syncs) and the workspace does not let the API override it: "
        "`owner` names it.")),
    409: OpenApiResponse(ErrorSerializer, description="code last_owner: the change would leave no active Owner."),
}


def _page_params(request: Request, length: int) -> tuple[tuple[int, ...] | None, int]:
    raw_size = request.query_params.get("page_size")
    size = PAGE_SIZE
    if raw_size is not None:
        size = int(raw_size) if raw_size.isascii() and raw_size.isdigit() and len(raw_size) < 6 else 0
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise exceptions.ValidationError({"page_size": [f"Use an integer from 1 to {MAX_PAGE_SIZE}."]})
    raw = request.query_params.get("cursor")
    if raw is None:
        return None, size
    try:
        return decode_cursor(raw, length), size
    except ValueError as exc:
        raise exceptions.ValidationError({"cursor": ["Invalid cursor."]}) from exc


def _paged(request: Request, results: list[dict[str, Any]], last: tuple[int, ...] | None, more: bool) -> Response:
    """The same page shape as every list of this API (``next``, ``previous``, ``results``); ``next`` carries an
    opaque keyset cursor: stable while grants change mid-walk."""
    nxt = replace_query_param(request.build_absolute_uri(), "cursor", encode_cursor(last)) if more and last else None
    return Response({"next": nxt, "previous": None, "results": results})


def entitlement_doc(row: selectors.EntitlementRow) -> dict[str, Any]:
    return {
        "id": row.id, "kind": row.kind, "value": row.value, "label": row.label,
        "resource": {"type": row.resource_type, "id": row.resource_id, "name": row.resource_name},
        "idp_owned": row.idp_owned or None,
    }


def grant_doc(row: selectors.GrantRow) -> dict[str, Any]:
    return {
        "id": row.id, "entitlement": row.entitlement, "kind": row.kind, "label": row.label,
        "principal": {"type": row.principal_type, "id": row.principal_id, "label": row.principal_label,
                      "active": row.principal_active},
        "source": row.source, "idp_owned": row.idp_owned or None,
        "granted_at": row.granted_at.isoformat().replace("+00:00", "Z") if row.granted_at else None,
    }


_PAGING = [
    OpenApiParameter("cursor", OpenApiTypes.STR, OpenApiParameter.QUERY,
                     description="The cursor from a `next` link (opaque; leave out for the first page)."),
    OpenApiParameter("page_size", OpenApiTypes.INT, OpenApiParameter.QUERY,
                     description=f"Results per page, 1 to {MAX_PAGE_SIZE} (default {PAGE_SIZE})."),
]


def _paginated(item: Any, name: str) -> Any:
    """The page document: ``next`` (a link, or null on the last page), ``previous`` (always null), ``results``."""
    return inline_serializer(
        name=name,
        fields={"next": serializers.URLField(allow_null=True), "previous": serializers.URLField(allow_null=True),
                "results": item},
    )


@extend_schema(
    tags=["governance"],
    parameters=[_SLUG, EntitlementFilterSerializer, *_PAGING],
    responses={200: _paginated(EntitlementSerializer(many=True), "PaginatedEntitlementList"), **_ERRORS},
)
class EntitlementList(ApiView, APIView):
    """What may be granted in this workspace: the four org roles, membership in each team, and each repository
    permission (read, write, admin), by stable id. Teams and repositories are those the key may see. Scope:
    grants:read."""

    required_scope = ApiScope.GRANTS_READ

    def get(self, request: Request, slug: str) -> Response:
        f = _filters(EntitlementFilterSerializer, request)
        after, size = _page_params(request, 3)
        rows, more = selectors.entitlements_page(
            workspace=self.principal.workspace, viewer=self.viewer, after=after, limit=size, kind=f.get("kind"),
        )
        return _paged(request, [entitlement_doc(r) for r in rows], rows[-1].position if rows else None, more)


def _resolve_principal(view: ApiView, member_id: int | None, team_id: int | None) -> tuple[Membership | None, Team | None]:
    """The member or team named in the body, as the key may see it (404 otherwise, as for any other object)."""
    workspace = view.principal.workspace
    if member_id is not None:
        member = selectors.visible_members(workspace, view.viewer).filter(pk=member_id).first()
        if member is not None:
            member.workspace = workspace  # the key's own (authentication checked it): no query for it
        if member is None:
            raise exceptions.NotFound("No such member visible to this key.")
        return member, None
    assert team_id is not None  # the body names a member or a team (GrantRequestSerializer)
    team = selectors.api_teams(workspace=workspace, viewer=view.viewer).prefetch_related(None).filter(pk=team_id).first()
    if team is None:
        raise exceptions.NotFound("No such team visible to this key.")
    team.workspace = workspace
    return None, team


def _require_write_scope(view: ApiView, ref: EntitlementRef, member: Membership | None) -> None:
    """A key needs the write scope of the entitlement's kind, and owners:write for anything touching an Owner."""
    principal = view.principal
    needed = [WRITE_SCOPE[ref.kind]]
    if ref.kind == EntitlementKind.ROLE and (ref.value == Role.OWNER or (member is not None and member.role == Role.OWNER)):
        needed.append(WRITE_SCOPE["owner"])
    missing = [s for s in needed if not principal.has_scope(s)]
    if missing:
        raise exceptions.PermissionDenied(f"This API key lacks the '{ApiScope(missing[0]).value}' scope.")


class _RequiredBody(AutoSchema):
    """The body is required: drf-spectacular cannot tell for a oneOf body (``_GRANT_BODY``) and leaves it optional."""

    def _get_request_body(self, direction: str = "request") -> Any:
        body = super()._get_request_body(direction)
        if body and self.method == "POST":
            body["required"] = True
        return body


class _GrantWrite(ApiView, APIView):
    required_scope = None  # per entitlement kind: ``_require_write_scope``
    schema = _RequiredBody()

    def _change(self, request: Request, grant: bool) -> Response:
        body = GrantRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        try:
            ref = parse_entitlement(data["entitlement"])
        except ServiceError as exc:
            raise exceptions.ValidationError({"entitlement": [exc.message]}) from exc
        member, team = _resolve_principal(self, data.get("member"), data.get("team"))
        _require_write_scope(self, ref, member)
        workspace = self.principal.workspace
        change = services.entitlement_grant if grant else services.entitlement_revoke
        changed = change(workspace=workspace, entitlement=ref, actor=self.principal.actor, member=member, team=team)
        doc = None
        if grant:
            row = selectors.grant_row_for(entitlement=ref, member=member, team=team)
            doc = grant_doc(row) if row is not None else None
        code = status.HTTP_201_CREATED if grant and changed else status.HTTP_200_OK
        return Response({"changed": changed, "grant": doc}, status=code)


@extend_schema(tags=["governance"], parameters=[_SLUG])
class GrantList(_GrantWrite):
    """Grants: who holds which entitlement, and from which source (``manual``, ``scim_group``, ``saml_group_sync``,
    ``idp_role``). Paged with keyset cursors: a walk never repeats a grant, and one that exists for the whole walk
    is listed exactly once, however the grants change meanwhile. Reading needs grants:read; a personal key sees the
    grants of the members and teams its member may see."""

    @property
    def required_scope(self) -> str | None:  # type: ignore[override]
        return ApiScope.GRANTS_READ if self.request.method in ("GET", "HEAD") else None

    @extend_schema(parameters=[GrantFilterSerializer, *_PAGING], responses={200: _paginated(EntitlementGrantSerializer(many=True), "PaginatedEntitlementGrantList"), **_ERRORS})
    def get(self, request: Request, slug: str) -> Response:
        f = _filters(GrantFilterSerializer, request)
        ref = None
        if f.get("entitlement"):
            try:
                ref = parse_entitlement(f["entitlement"])
            except ServiceError as exc:
                raise exceptions.ValidationError({"entitlement": [exc.message]}) from exc
        after, size = _page_params(request, 2)
        rows, more = selectors.grants_page(
            workspace=self.principal.workspace, viewer=self.viewer, after=after, limit=size, kind=f.get("kind"),
            member_id=f.get("member"), team_id=f.get("team"), entitlement=ref,
        )
        return _paged(request, [grant_doc(r) for r in rows], rows[-1].position if rows else None, more)

    @extend_schema(
        request=_GRANT_BODY,
        responses={201: GrantResultSerializer, 200: OpenApiResponse(GrantResultSerializer, description=(
            "Already held: nothing changed, nothing recorded.")), **_WRITE_ERRORS},
        description="Grant an entitlement to a member (or a repository permission to a team). Needs roles:write, "
                    "teams:write or repositories:write for the entitlement's kind (and owners:write for the Owner "
                    "role or an Owner); a personal key also needs its member's role to allow it, as in the portal.",
    )
    def post(self, request: Request, slug: str) -> Response:
        return self._change(request, grant=True)


@extend_schema(
    tags=["governance"], parameters=[_SLUG], request=_GRANT_BODY,
    responses={200: GrantResultSerializer, **_WRITE_ERRORS},
)
class GrantRevoke(_GrantWrite):
    """Revoke an entitlement. Idempotent: revoking what is not held answers 200 with ``changed: false``. Revoking a
    role leaves the role below it (Owner or Manager -> Member, Member -> Collaborator); Collaborator cannot be
    revoked (deactivate the member instead)."""

    def post(self, request: Request, slug: str) -> Response:
        return self._change(request, grant=False)


class _MemberStatus(ApiView, APIView):
    required_scope = ApiScope.MEMBERS_WRITE
    activate = False

    def post(self, request: Request, slug: str, member_id: int) -> Response:
        body = MemberStatusRequestSerializer(data=request.data if request.data else {})
        body.is_valid(raise_exception=True)
        member, _ = _resolve_principal(self, member_id, None)
        assert member is not None
        if member.role == Role.OWNER and not self.principal.has_scope(ApiScope.OWNERS_WRITE):
            raise exceptions.PermissionDenied("This API key lacks the 'owners:write' scope.")
        actor = self.principal.actor
        before = member.is_active
        if self.activate:
            services.membership_reactivate(membership=member, actor=actor)
        else:
            services.membership_deactivate(membership=member, actor=actor, reason=body.validated_data.get("reason", ""))
        fresh = selectors.api_members(workspace=self.principal.workspace, viewer=self.viewer).get(pk=member.pk)
        return Response({"changed": before != self.activate, "member": MemberSerializer(fresh).data})


@extend_schema(
    tags=["governance"], parameters=[_SLUG], request=MemberStatusRequestSerializer,
    responses={200: MemberStatusResultSerializer, **_WRITE_ERRORS},
)
class MemberDeactivate(_MemberStatus):
    """Deactivate a member (members:write; owners:write for an Owner). Takes effect at once: the member's next
    request is refused, and sessions and API keys are revoked in the background. Removing access is never blocked by
    the identity provider; the last active Owner is kept."""


@extend_schema(
    tags=["governance"], parameters=[_SLUG], request=MemberStatusRequestSerializer,
    responses={200: MemberStatusResultSerializer, **_WRITE_ERRORS},
)
class MemberReactivate(_MemberStatus):
    """Reactivate a member (members:write). A member whose active state the identity provider owns (SCIM) is
    refused with code idp_owned unless the workspace lets the API override it. Revoked credentials stay revoked."""

    activate = True
