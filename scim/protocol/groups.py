"""The SCIM Groups endpoint and its django-scim2 adapter: SCIM Group <-> Team.

The adapter records the requested change (``from_dict`` for POST/PUT, ``handle_operations``
for PATCH: attribute changes and member additions/removals, in order) and applies it in
``save()`` through ``workspaces.services`` with the SCIM credential as actor. The adapter class
is the one django-scim2's settings name (``SCIM_SERVICE_PROVIDER["GROUP_ADAPTER"]``).
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.http import HttpResponse
from django_scim.adapters import SCIMGroup
from django_scim.utils import get_group_adapter

from workspaces import services
from workspaces.exceptions import ServiceError
from workspaces.models import Membership, Team, TeamSource, Workspace

from .. import selectors
from ..errors import ScimError, bad_request, from_service_error, not_found
from ..filters import GROUP_SORT_FIELDS, group_filter
from ..schemas import CORE_GROUP
from .context import Ctx, json_response, method_not_allowed, params
from .documents import parse_path
from .paging import list_page, search
from .projection import etag, group_resource, project, projection, wants
from .writes import apply_write, check_if_match


class GatehouseSCIMGroup(SCIMGroup):
    """A team seen as a SCIM Group. Member changes go through ``team_add_members``/``team_remove_members``,
    which lock the team row (``select_for_update``) for the read-modify-write."""

    id_field = "pk"
    resource_type = "Group"
    obj: Team  # None only until save() creates it

    def __init__(self, obj: Team | None, request: Any = None, *, workspace: Workspace, actor: Any,
                 base_url: str = "") -> None:
        super().__init__(obj, request=request)
        self.workspace = workspace
        self.actor = actor
        self.base_url = base_url
        self.requested: dict[str, Any] = {}
        self.member_ops: list[tuple[str, list[str] | None]] = []
        self.created = False

    @property
    def location(self) -> str:
        return f"{self.base_url}Groups/{self.obj.pk}"

    def to_dict(self, members: list[tuple[int, str]] | None = None) -> dict[str, Any]:
        """The Group resource (django-scim2's hook); ``members`` is left out when None (not asked for)."""
        return group_resource(self.obj, base_url=self.base_url, location=self.location, members=members)

    # -------------------------------------------------------------- recording

    def from_dict(self, d: dict[str, Any]) -> None:
        if not isinstance(d, dict):
            raise bad_request("The request body must be a JSON object.", "invalidSyntax")
        requested: dict[str, Any] = {}
        for key, value in d.items():
            lower = str(key).lower()
            if lower.startswith(CORE_GROUP.lower() + ":"):
                lower = lower[len(CORE_GROUP) + 1:]
            if lower in ("schemas", "id", "meta"):
                continue
            if lower == "displayname":
                if not isinstance(value, str) or not value.strip():
                    raise bad_request("displayName must be a non-empty string.")
                if len(value) > 200:
                    raise bad_request("displayName holds at most 200 characters.")
                requested["displayName"] = value.strip()
            elif lower == "externalid":
                if value is not None and not isinstance(value, str):
                    raise bad_request("externalId must be a string.")
                requested["externalId"] = (value or "")[:255]
            elif lower == "members":
                requested["members"] = self._member_ids(value)
            else:
                raise bad_request(f"Unknown Group attribute {key!r}.")
        if "displayName" not in requested:
            raise bad_request("displayName is required.")
        self.requested = requested
        self.member_ops = [("set", requested["members"])] if "members" in requested else []

    @staticmethod
    def _member_ids(value: Any) -> list[str]:
        if value is None:
            return []
        if isinstance(value, dict):
            value = [value]
        if not isinstance(value, list):
            raise bad_request("members must be a list of {\"value\": \"<user id>\"}.")
        ids = []
        for item in value:
            if not isinstance(item, dict) or not isinstance(item.get("value"), str | int) or isinstance(item.get("value"), bool):
                raise bad_request("Each member must be an object with a \"value\" holding a user id.")
            ids.append(str(item["value"]))
        return ids

    def handle_operations(self, operations: list[tuple[str, str | None, Any]]) -> None:
        """Record PATCH operations in order: attribute changes and member additions/removals."""
        self.requested = {}
        self.member_ops = []
        for op, path, value in operations:
            if not path:
                if op == "remove":
                    raise bad_request("A remove operation needs a path.", "noTarget")
                if not isinstance(value, dict):
                    raise bad_request("An operation without a path needs an object value.", "invalidSyntax")
                for key, sub_value in value.items():
                    if str(key).lower() == "id":
                        continue  # Okta echoes the id in path-less replaces
                    self._record(op, str(key), sub_value)
                continue
            self._record(op, path, value)

    def _record(self, op: str, raw_path: str, value: Any) -> None:
        path = parse_path(raw_path) if "[" in raw_path or "." in raw_path or ":" in raw_path else None
        name = (path.attr if path else raw_path).lower()
        if name.startswith(CORE_GROUP.lower() + ":"):
            name = name[len(CORE_GROUP) + 1:]
        if name == "displayname" and (path is None or (path.sub is None and path.value_filter is None)):
            if op == "remove":
                raise bad_request("displayName is required and cannot be removed.", "mutability")
            if not isinstance(value, str) or not value.strip():
                raise bad_request("displayName must be a non-empty string.")
            self.requested["displayName"] = value.strip()[:200]
        elif name == "externalid" and (path is None or (path.sub is None and path.value_filter is None)):
            if value is not None and not isinstance(value, str):
                raise bad_request("externalId must be a string.")
            self.requested["externalId"] = "" if op == "remove" else (value or "")[:255]
        elif name == "members":
            if path is not None and path.value_filter is not None:
                # Okta/RFC: {"op":"remove","path":"members[value eq \"id\"]"}
                if op != "remove" or path.sub is not None:
                    raise bad_request(f"{raw_path!r}: only remove is supported with a member filter.", "invalidPath")
                self.member_ops.append(("remove", _ids_from_filter(path.value_filter)))
            elif op == "remove":
                # Entra: {"op":"Remove","path":"members","value":[{"value":"id"}]} removes only those listed;
                # without a value every member is removed (RFC 7644 §3.5.2.2).
                ids = self._member_ids(value)
                self.member_ops.append(("remove", ids) if value not in (None, []) else ("clear", None))
            elif op == "add":
                self.member_ops.append(("add", self._member_ids(value)))
            else:
                self.member_ops.append(("set", self._member_ids(value)))
        else:
            raise bad_request(f"The path {raw_path!r} names no writable Group attribute.", "invalidPath")

    # -------------------------------------------------------------- applying

    def save(self) -> None:
        try:
            with transaction.atomic():
                if self.obj is None or self.obj.pk is None:
                    self._create()
                else:
                    self.obj = Team.objects.select_for_update().select_related("workspace").get(pk=self.obj.pk)
                    self._apply_attributes()
                self._apply_members()
        except ServiceError as exc:
            raise from_service_error(exc) from exc

    def _create(self) -> None:
        name = self.requested["displayName"]
        existing = selectors.scim_group_by_name(self.workspace, name)
        if existing is not None:
            if self.requested.get("externalId") and existing.external_id == self.requested["externalId"]:
                self.obj = existing  # a retried POST
                return
            raise ScimError(409, "A group with this displayName already exists in this workspace.", "uniqueness")
        self.obj = services.team_create(
            workspace=self.workspace, name=name, actor=self.actor, external_id=self.requested.get("externalId", "")
        )
        self.created = True

    def _apply_attributes(self) -> None:
        if "displayName" in self.requested and self.requested["displayName"] != self.obj.name:
            clash = selectors.scim_group_by_name(self.workspace, self.requested["displayName"])
            if clash is not None and clash.pk != self.obj.pk:
                raise ScimError(409, "A group with this displayName already exists in this workspace.", "uniqueness")
            services.team_rename(team=self.obj, name=self.requested["displayName"], actor=self.actor)
        if "externalId" in self.requested:
            services.team_update_external_id(team=self.obj, external_id=self.requested["externalId"], actor=self.actor)

    def _apply_members(self) -> None:
        team = self.obj
        for kind, ids in self.member_ops:
            if kind == "clear":
                current = list(Membership.objects.filter(team_memberships__team=team).select_related("user"))
                services.team_remove_members(team=team, memberships=current, actor=self.actor, source=TeamSource.SCIM)
                continue
            found, unknown = selectors.members_by_ids(self.workspace, ids or [])
            if unknown:
                shown = ", ".join(u[:40] for u in unknown[:10])
                raise ScimError(400, f"No user with id {shown} in this workspace.", "invalidValue")
            if kind == "add":
                services.team_add_members(team=team, memberships=found, actor=self.actor, source=TeamSource.SCIM)
            elif kind == "remove":
                services.team_remove_members(team=team, memberships=found, actor=self.actor, source=TeamSource.SCIM)
            else:  # set
                wanted = {m.pk for m in found}
                current = list(Membership.objects.filter(team_memberships__team=team).select_related("user"))
                current_ids = {m.pk for m in current}
                services.team_remove_members(
                    team=team, memberships=[m for m in current if m.pk not in wanted], actor=self.actor,
                    source=TeamSource.SCIM,
                )
                services.team_add_members(
                    team=team, memberships=[m for m in found if m.pk not in current_ids], actor=self.actor,
                    source=TeamSource.SCIM,
                )
        team.refresh_from_db()

    def delete(self) -> None:
        try:
            with transaction.atomic():
                services.team_delete(team=self.obj, actor=self.actor)
        except ServiceError as exc:
            raise from_service_error(exc) from exc


def _ids_from_filter(expr: Any) -> list[str]:
    """``value eq "a" or value eq "b"`` -> ["a", "b"]; anything else is an invalid member filter."""
    from scim2_filter_parser import ast as scim2ast

    if isinstance(expr, scim2ast.Filter) and not expr.negated:
        return _ids_from_filter(expr.expr)
    if isinstance(expr, scim2ast.LogExpr) and expr.op.lower() == "or":
        return _ids_from_filter(expr.expr1) + _ids_from_filter(expr.expr2)
    if (
        isinstance(expr, scim2ast.AttrExpr)
        and str(expr.attr_path.attr_name).lower() == "value"
        and expr.value.lower() == "eq"
        and expr.comp_value is not None
    ):
        return [str(expr.comp_value.value)]
    raise bad_request("Member filters must compare value with eq, joined by or.", "invalidFilter")


# ----------------------------------------------------------------------------- the endpoint


def group_adapter(ctx: Ctx, obj: Team | None) -> GatehouseSCIMGroup:
    """The configured adapter (django-scim2's GROUP_ADAPTER) for ``obj`` in this request's workspace."""
    adapter: GatehouseSCIMGroup = get_group_adapter()(obj, ctx.request, workspace=ctx.workspace, actor=ctx.actor,
                                                      base_url=ctx.base_url)
    return adapter


def groups(ctx: Ctx, rid: str | None) -> HttpResponse:
    """``/Groups``, ``/Groups/<id>`` and ``/Groups/.search``."""
    method = ctx.request.method
    if rid == ".search":
        return search(ctx, _groups_list)
    if rid is None:
        if method == "GET":
            return _groups_list(ctx)
        if method == "POST":
            body = ctx.body()
            adapter = group_adapter(ctx, None)
            adapter.from_dict(body)
            adapter.save()
            return _render_group(ctx, adapter, status=201 if adapter.created else 200)
        raise method_not_allowed(ctx)
    team = selectors.scim_group(ctx.workspace, rid)
    if team is None:
        raise not_found("Group", rid)
    adapter = group_adapter(ctx, team)
    if method == "GET":
        return _render_group(ctx, adapter)
    if method not in ("PUT", "PATCH", "DELETE"):
        raise method_not_allowed(ctx)
    check_if_match(ctx.request, team.version)
    if apply_write(ctx, adapter, method):
        return HttpResponse(status=204)
    if method == "PATCH" and not params(ctx.request).get("attributes"):
        # Okta and Entra ignore the body of a group PATCH; RFC 7644 §3.5.2 allows 204 when none is asked for.
        response = HttpResponse(status=204)
        response["ETag"] = etag(adapter.obj.version)
        return response
    return _render_group(ctx, adapter)


def _render_group(ctx: Ctx, adapter: GatehouseSCIMGroup, status: int = 200) -> HttpResponse:
    attributes, excluded = projection(ctx.request, CORE_GROUP)
    members = None
    if wants("members", attributes, excluded):
        members = selectors.members_of_groups([adapter.obj.pk]).get(adapter.obj.pk, [])
    doc = project(adapter.to_dict(members=members), attributes, excluded)
    return json_response(doc, status, location=adapter.location, version=etag(adapter.obj.version))


def _groups_list(ctx: Ctx) -> HttpResponse:
    qs = selectors.scim_groups(ctx.workspace)
    text = params(ctx.request).get("filter")
    if text is not None:
        qs = qs.filter(group_filter(text))
    attributes, excluded = projection(ctx.request, CORE_GROUP)

    def render(rows: list[Any]) -> list[dict[str, Any]]:
        members = selectors.members_of_groups([t.pk for t in rows]) if rows and wants("members", attributes, excluded) else None
        return [
            project(group_adapter(ctx, t).to_dict(members=members.get(t.pk, []) if members is not None else None),
                    attributes, excluded)
            for t in rows
        ]

    return list_page(ctx, qs, GROUP_SORT_FIELDS, CORE_GROUP, render)
