"""django-scim2 adapters for Gatehouse: SCIM User <-> Membership (+ global User), Group <-> Team.

Following Zulip's ``ZulipSCIMUser``: ``from_dict`` / ``handle_operations`` only *record* the
requested state, and ``save()`` applies it by calling ``workspaces.services`` with the SCIM
credential as actor, so SCIM changes follow the same rules and write the same audit events as
changes made in the web UI. Everything ``save()`` does runs in one transaction: a request
that fails half-way leaves nothing written.
"""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone
from django_scim.adapters import SCIMGroup, SCIMUser

from workspaces import services
from workspaces.exceptions import ServiceError
from workspaces.models import Membership, Team, TeamSource, Workspace
from workspaces.roles import Role

from . import list_index, selectors
from .documents import (
    apply_user_operation,
    matches,
    normalize_user,
    parse_path,
    patched_copy,
)
from .errors import ScimError, bad_request, from_service_error
from .schemas import CORE_GROUP, CORE_USER, ENTERPRISE_USER, GATEHOUSE_USER

# Columns of Membership that hold SCIM attributes; everything else the IdP sends lives in ``profile``.
COLUMN_KEYS = {"userName", "externalId", "displayName", "active", "role", "product_environments", "name"}
# A retried POST (Entra retries after 60 s) within this window returns the member it already created.
RETRY_WINDOW = timedelta(minutes=10)


def membership_model() -> type[Membership]:
    """django-scim2's USER_MODEL_GETTER: a SCIM User is a workspace membership."""
    return Membership


def etag(version: int) -> str:
    return f'W/"{version}"'


def _primary_email(doc: dict[str, Any]) -> str:
    emails = [e for e in doc.get("emails", []) if isinstance(e, dict) and e.get("value")]
    for predicate in (lambda e: e.get("primary") is True, lambda e: str(e.get("type", "")).lower() == "work", bool):
        found = next((e for e in emails if predicate(e)), None)
        if found:
            return found["value"].strip()
    username = doc.get("userName", "")
    return username.strip() if "@" in username else ""


def _requested_role(doc: dict[str, Any], original: dict[str, Any] | None) -> str | None:
    """The Gatehouse extension wins over Cloudinary's core ``role`` when both changed."""
    ext_new = (doc.get(GATEHOUSE_USER) or {}).get("role")
    core_new = doc.get("role")
    if original is not None:
        ext_old = (original.get(GATEHOUSE_USER) or {}).get("role")
        if ext_new != ext_old and ext_new is not None:
            return ext_new
        if core_new != original.get("role") and core_new is not None:
            return core_new
        return None
    return ext_new if ext_new is not None else core_new


def _requested_environments(doc: dict[str, Any], original: dict[str, Any] | None) -> list[str] | None:
    ext_new = (doc.get(GATEHOUSE_USER) or {}).get("allowedEnvironments")
    core_new = doc.get("product_environments")
    if original is not None:
        ext_old = (original.get(GATEHOUSE_USER) or {}).get("allowedEnvironments")
        if ext_new != ext_old:
            return ext_new or []
        if core_new != original.get("product_environments"):
            return core_new or []
        return None
    return ext_new if ext_new is not None else core_new



def resource_meta(resource_type: str, obj: Any, location: str) -> dict[str, Any]:
    """RFC 7643 §3.1 ``meta`` for a Membership or Team (both carry created/updated/version)."""
    return {
        "resourceType": resource_type,
        "created": obj.created_at.isoformat(),
        "lastModified": obj.updated_at.isoformat(),
        "location": location,
        "version": etag(obj.version),
    }

class GatehouseSCIMUser(SCIMUser):
    """A workspace membership seen as a SCIM User. ``obj`` is a Membership (None before a create)."""

    id_field = "pk"
    resource_type = "User"

    def __init__(self, obj: Membership | None, request: Any = None, *, workspace: Workspace, actor: Any,
                 base_url: str = "", locked: bool = False) -> None:
        super().__init__(obj, request=request)
        self.workspace = workspace
        self.actor = actor
        self.base_url = base_url
        # True when the caller read ``obj`` select_for_update in its open transaction (scim.views does):
        # save() and delete() then change that row as it is instead of reading and locking it again.
        self.locked = locked
        self.requested: dict[str, Any] | None = None
        self.mode = "replace"  # "replace" (PUT/POST) or "patch"
        self.created = False

    # -------------------------------------------------------------- reading

    @property
    def location(self) -> str:
        return f"{self.base_url}Users/{self.obj.pk}"

    def document(self) -> dict[str, Any]:
        """The member's writable SCIM state (no id/meta/groups): what PATCH operations apply to."""
        m: Membership = self.obj
        profile = copy.deepcopy(m.profile or {})
        doc: dict[str, Any] = {"userName": m.scim_username or m.user.email}
        if m.external_id:
            doc["externalId"] = m.external_id
        name = dict(profile.get("name") or {})
        if m.given_name:
            name["givenName"] = m.given_name
        if m.family_name:
            name["familyName"] = m.family_name
        if name:
            doc["name"] = name
        if m.display_name:
            doc["displayName"] = m.display_name
        doc["emails"] = profile.get("emails") or [{"value": m.user.email, "type": "work", "primary": True}]
        doc["active"] = m.is_active
        doc.update({k: v for k, v in profile.items() if k not in COLUMN_KEYS and k not in doc})
        doc["role"] = m.role
        doc["product_environments"] = list(m.allowed_environments or [])
        doc[GATEHOUSE_USER] = {"role": m.role, "allowedEnvironments": list(m.allowed_environments or [])}
        return doc

    def to_dict(self, groups: list[tuple[int, str]] | None = None) -> dict[str, Any]:
        m: Membership = self.obj
        doc = self.document()
        schemas = [CORE_USER]
        if ENTERPRISE_USER in doc:
            schemas.append(ENTERPRISE_USER)
        schemas.append(GATEHOUSE_USER)
        out: dict[str, Any] = {"schemas": schemas, "id": str(m.pk)}
        out.update(doc)
        if groups is not None:
            out["groups"] = [
                {"value": str(tid), "display": name, "$ref": f"{self.base_url}Groups/{tid}", "type": "direct"}
                for tid, name in groups
            ]
        out["meta"] = resource_meta("User", m, self.location)
        return out

    # -------------------------------------------------------------- recording a change

    def from_dict(self, d: dict[str, Any]) -> None:
        """Record a full replacement (POST or PUT); applied by ``save()``."""
        doc = normalize_user(d)
        if not isinstance(doc.get("userName"), str) or not doc["userName"].strip():
            raise bad_request("userName is required.", "invalidValue")
        if len(doc["userName"]) > 255:
            raise bad_request("userName is longer than 255 characters.")
        self.requested = doc
        self.mode = "replace"

    def handle_operations(self, operations: list[tuple[str, str | None, Any]]) -> None:
        """Record the result of PATCH operations (already normalised) on the current document."""
        self.requested = patched_copy(self.document(), operations)
        self.mode = "patch"

    # django-scim2 dispatches single operations here; we apply them to the whole document instead.
    def handle_add(self, path: Any, value: Any, operation: dict[str, Any]) -> None:
        apply_user_operation(self.requested, "add", operation.get("path"), value)

    def handle_replace(self, path: Any, value: Any, operation: dict[str, Any]) -> None:
        apply_user_operation(self.requested, "replace", operation.get("path"), value)

    def handle_remove(self, path: Any, value: Any, operation: dict[str, Any]) -> None:
        apply_user_operation(self.requested, "remove", operation.get("path"), value)

    # -------------------------------------------------------------- applying it

    def _profile_fields(self, doc: dict[str, Any]) -> dict[str, Any]:
        name = dict(doc.get("name") or {})
        given = name.pop("givenName", "")
        family = name.pop("familyName", "")
        profile = {k: v for k, v in doc.items() if k not in COLUMN_KEYS and k != GATEHOUSE_USER}
        if name:
            profile["name"] = name
        if (
            self.obj is not None and self.obj.pk and "emails" not in (self.obj.profile or {})
            and profile.get("emails") == [{"value": self.obj.user.email, "type": "work", "primary": True}]
        ):
            profile.pop("emails")  # the synthesised login email came back unchanged: nothing to store
        username = doc.get("userName", "")
        if not isinstance(username, str) or not username.strip():
            raise bad_request("userName is required and cannot be removed.", "mutability")
        for key, limit in (("displayName", 255), ("externalId", 255)):
            if len(doc.get(key) or "") > limit:
                raise bad_request(f"{key} is longer than {limit} characters.")
        if len(given) > 150 or len(family) > 150:
            raise bad_request("name.givenName and name.familyName hold at most 150 characters.")
        return {
            "scim_username": username.strip(),
            "external_id": doc.get("externalId") or "",
            "given_name": given,
            "family_name": family,
            "display_name": doc.get("displayName") or "",
            "profile": profile,
        }

    @staticmethod
    def _check_role(role: str | None) -> str | None:
        if role is None:
            return None
        lowered = role.strip().lower()
        if lowered not in Role.values:
            raise bad_request(f"Unknown role {role!r}. Use one of: {', '.join(Role.values)}.")
        return lowered

    def save(self) -> None:
        try:
            # In the caller's transaction (``locked``) no savepoint: any error fails the whole request.
            with transaction.atomic(savepoint=not self.locked):
                if self.obj is None or self.obj.pk is None:
                    self._create()
                else:
                    self._update()
        except ServiceError as exc:
            raise from_service_error(exc) from exc

    def _locked_member(self) -> Membership:
        """The member row, locked until commit: the caller's when it locked it, else read and locked now."""
        if self.locked:
            membership: Membership = self.obj
            membership.workspace = self.workspace  # the same row (the read was scoped to it): no query for it
            return membership
        return Membership.objects.select_for_update().select_related("user", "workspace").get(pk=self.obj.pk)

    def _create(self) -> None:
        doc = self.requested or {}
        fields = self._profile_fields(doc)
        role = self._check_role(_requested_role(doc, None)) or self.workspace.default_role
        services.directory_may_grant_role(workspace=self.workspace, role=role)
        environments = _requested_environments(doc, None) or []
        active = doc.get("active", True)

        existing = selectors.scim_user_by_username(self.workspace, fields["scim_username"])
        if existing is not None:
            if self._is_retry_of(existing, fields):
                self.obj = existing
                return
            raise ScimError(409, "A user with this userName already exists in this workspace.", "uniqueness")
        email = _primary_email(doc)
        if not email:
            raise bad_request("A user needs an email: send emails with a value, or an email as userName.")
        adopt = selectors.membership_by_email(self.workspace, email)
        if adopt is not None:
            if adopt.scim_username:
                # Linked to another directory userName already: a plain uniqueness conflict in this workspace.
                raise ScimError(409, "A user with this email already exists in this workspace.", "uniqueness")
            # A member added in the web UI (or DELETEd by the directory earlier): link it, do not duplicate it.
            self.obj = adopt
            services.membership_update_profile(membership=adopt, actor=self.actor, changes=fields)
            if role != adopt.role and (_requested_role(doc, None) is not None):
                services.membership_change_role(membership=adopt, role=role, actor=self.actor)
            if environments:
                services.membership_update_profile(
                    membership=adopt, actor=self.actor, changes={"allowed_environments": environments}
                )
            self._apply_active(adopt, active)
            self.created = True
            return
        full_name = " ".join(p for p in (fields["given_name"], fields["family_name"]) if p) or fields["display_name"]
        membership = services.membership_add(
            workspace=self.workspace, email=email, actor=self.actor, role=role, full_name=full_name,
            password=None, source="scim", scim_username=fields["scim_username"],
            external_id=fields["external_id"],
        )
        self.obj = membership
        rest = {k: v for k, v in fields.items() if k not in ("scim_username", "external_id")}
        rest["allowed_environments"] = environments
        services.membership_update_profile(membership=membership, actor=self.actor, changes=rest)
        self._apply_active(membership, active)
        self.created = True

    def _is_retry_of(self, existing: Membership, fields: dict[str, Any]) -> bool:
        """Same userName and the same non-empty externalId, created by SCIM moments ago: a retried POST."""
        return bool(
            fields["external_id"]
            and existing.external_id == fields["external_id"]
            and existing.created_at >= timezone.now() - RETRY_WINDOW
        )

    def _update(self) -> None:
        membership = self._locked_member()
        self.obj = membership
        original = self.document()
        doc = self.requested or {}
        if self.mode == "replace":
            # PUT replaces the profile; role, environments and active stay as they are when not sent.
            for key in ("role", "product_environments", GATEHOUSE_USER, "active"):
                if key not in doc and key in original:
                    doc[key] = original[key]
        fields = self._profile_fields(doc)
        role = self._check_role(_requested_role(doc, original))
        environments = _requested_environments(doc, original)
        if role is not None and role != membership.role:
            services.directory_may_grant_role(workspace=self.workspace, role=role)
        if environments is not None:
            fields["allowed_environments"] = environments
        # Only what differs goes to the service (it decides and audits): a deactivating PATCH changes
        # no profile attribute, and then the service is not entered at all.
        changed = {k: v for k, v in fields.items() if getattr(membership, k) != v}
        if changed:
            services.membership_update_profile(membership=membership, actor=self.actor, changes=changed)
        if role is not None and role != membership.role:
            services.membership_change_role(membership=membership, role=role, actor=self.actor)
        if "active" in doc:
            self._apply_active(membership, doc["active"])

    def _apply_active(self, membership: Membership, active: Any) -> None:
        if not isinstance(active, bool):
            raise bad_request("active must be a boolean.")
        if active and not membership.is_active:
            services.membership_reactivate(membership=membership, actor=self.actor)
        elif not active and membership.is_active:
            services.membership_deactivate(membership=membership, actor=self.actor, reason="scim")

    def delete(self) -> None:
        """DELETE: deactivate at commit and unlink from the directory (see docs/scim.md, "DELETE")."""
        try:
            with transaction.atomic(savepoint=not self.locked):
                membership = self._locked_member()
                # Unlinking below bumps the Users list index after the deactivation's audit event: lock
                # the index row first, as every other membership change does (scim/list_index.py).
                list_index.members_changed(membership.workspace_id)
                services.membership_deactivate(membership=membership, actor=self.actor, reason="scim delete")
                services.membership_update_profile(
                    membership=membership, actor=self.actor, changes={"scim_username": "", "external_id": ""}
                )
        except ServiceError as exc:
            raise from_service_error(exc) from exc


class GatehouseSCIMGroup(SCIMGroup):
    """A team seen as a SCIM Group. Member changes go through ``team_add_members``/``team_remove_members``,
    which lock the team row (``select_for_update``) for the read-modify-write."""

    id_field = "pk"
    resource_type = "Group"

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
        team: Team = self.obj
        out: dict[str, Any] = {"schemas": [CORE_GROUP], "id": str(team.pk), "displayName": team.name}
        if team.external_id:
            out["externalId"] = team.external_id
        if members is not None:
            out["members"] = [
                {"value": str(mid), "display": display, "$ref": f"{self.base_url}Users/{mid}", "type": "User"}
                for mid, display in members
            ]
        out["meta"] = resource_meta("Group", team, self.location)
        return out

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


__all__ = ["GatehouseSCIMGroup", "GatehouseSCIMUser", "etag", "matches"]
