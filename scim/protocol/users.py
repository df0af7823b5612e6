"""The SCIM Users endpoint and its django-scim2 adapter: SCIM User <-> Membership (+ global User).

Following Zulip's ``ZulipSCIMUser``: ``from_dict`` / ``handle_operations`` only *record* the
requested state, and ``save()`` applies it by calling ``workspaces.services`` with the SCIM
credential as actor, so SCIM changes follow the same rules and write the same audit events as
changes made in the web UI. Everything ``save()`` does runs in one transaction: a request
that fails half-way leaves nothing written.

The handlers below parse, call the adapter, and render through ``projection``. The adapter
class is the one django-scim2's settings name (``SCIM_SERVICE_PROVIDER["USER_ADAPTER"]``).

Somewhat over 400 lines: the adapter and the endpoint that drives it (its locking contract,
``locked``) are read together; the document code they share is in ``projection`` and ``documents``.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any, cast

from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator
from django.db import IntegrityError, transaction
from django.http import HttpResponse
from django.utils import timezone
from django_scim.adapters import SCIMUser
from django_scim.utils import get_user_adapter

from workspaces import services
from workspaces.exceptions import ServiceError
from workspaces.models import Membership, Workspace

from .. import list_index, selectors
from ..errors import ScimError, bad_request, from_service_error, not_found
from ..filters import MAX_FILTER_LENGTH, USER_SORT_FIELDS, sort_field, user_filter
from ..schemas import CORE_USER, GATEHOUSE_USER
from .context import Ctx, json_response, method_not_allowed, params
from .documents import ignore_attribute, normalize_user, patched_copy
from .paging import list_document, list_page, paging, search
from .projection import COLUMN_KEYS, etag, project, projection, user_document, user_resource, wants
from .writes import apply_write, check_if_match

# A retried POST (Entra retries after 60 s) within this window returns the member it already created.
RETRY_WINDOW = timedelta(minutes=10)


def membership_model() -> type[Membership]:
    """django-scim2's USER_MODEL_GETTER: a SCIM User is a workspace membership."""
    return Membership


def _primary_email(doc: dict[str, Any]) -> str:
    emails = [e for e in doc.get("emails", []) if isinstance(e, dict) and e.get("value")]
    for predicate in (lambda e: e.get("primary") is True, lambda e: str(e.get("type", "")).lower() == "work", bool):
        found = next((e for e in emails if predicate(e)), None)
        if found:
            value: str = found["value"]
            return value.strip()
    username: str = doc.get("userName", "")
    return username.strip() if "@" in username else ""


def _check_login_email(email: str) -> None:
    """The address that becomes the person's login must be one: Django's email syntax check and RFC 5321's
    254-character limit. Syntax only (no DNS), and reserved domains pass: Okta's own test users are
    ``@okta.local``. Other email values are kept as the IdP sent them."""
    problem = ""
    if len(email) > 254:
        problem = "it is longer than 254 characters"
    else:
        try:
            _EMAIL_SYNTAX(email)
        except ValidationError:
            problem = "it is not of the form name@domain"
    if problem:
        raise bad_request(
            f"{email[:80]!r} (the primary email, or the userName when no email is sent) is not an email address: "
            f"{problem}.", "invalidValue",
        )


_EMAIL_SYNTAX = EmailValidator()


def _requested_role(doc: dict[str, Any], original: dict[str, Any] | None) -> str | None:
    """The Gatehouse extension wins over Cloudinary's core ``role`` when both changed."""
    ext_new: str | None = (doc.get(GATEHOUSE_USER) or {}).get("role")
    core_new: str | None = doc.get("role")
    if original is not None:
        ext_old = (original.get(GATEHOUSE_USER) or {}).get("role")
        if ext_new != ext_old and ext_new is not None:
            return ext_new
        if core_new != original.get("role") and core_new is not None:
            return core_new
        return None
    return ext_new if ext_new is not None else core_new


def _role_removed(doc: dict[str, Any], original: dict[str, Any]) -> bool:
    """A PATCH removed the role: the core ``role`` or the extension's, either of which the member had (both carry
    the one role the member has, so removing either removes it)."""
    core = original.get("role") is not None and doc.get("role") is None
    ext = (original.get(GATEHOUSE_USER) or {}).get("role") is not None and (doc.get(GATEHOUSE_USER) or {}).get(
        "role") is None
    return core or ext


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



class GatehouseSCIMUser(SCIMUser):
    """A workspace membership seen as a SCIM User. ``obj`` is a Membership (None before a create)."""

    id_field = "pk"
    resource_type = "User"
    obj: Membership  # None only until save() creates it

    def __init__(self, obj: Membership | None, request: Any = None, *, workspace: Workspace, actor: Any,
                 base_url: str = "", locked: bool = False) -> None:
        super().__init__(obj, request=request)
        self.workspace = workspace
        self.actor = actor
        self.base_url = base_url
        # True when the caller read ``obj`` select_for_update in its open transaction (the Users endpoint below does):
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
        return user_document(self.obj)

    def to_dict(self, groups: list[tuple[int, str]] | None = None) -> dict[str, Any]:
        """The User resource (django-scim2's hook); ``groups`` is left out when None (not asked for)."""
        return user_resource(self.obj, base_url=self.base_url, location=self.location, groups=groups)

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

    def _check_role(self, role: str | None) -> str | None:
        """The Gatehouse role for the IdP's value, through the workspace's role mapping (400 when refused)."""
        if role is None:
            return None
        try:
            return services.resolve_idp_role(workspace=self.workspace, value=role)
        except ServiceError as exc:
            raise bad_request(exc.message, "invalidValue") from exc

    def save(self) -> None:
        creating = self.obj is None or self.obj.pk is None
        try:
            try:
                self._save_once(creating)
            except IntegrityError:
                if not creating:
                    raise
                # A concurrent POST of the same person committed between our lookup and our insert (Okta
                # retrying a create whose answer it lost). Its row is visible now: look again, so this request
                # answers as a retry (200) or a conflict (409), never 500.
                self.obj, self.created = None, False  # type: ignore[assignment]  # None until _create sets it, as at __init__
                try:
                    self._save_once(creating)
                except IntegrityError as exc:
                    raise ScimError(409, "A concurrent request created this user; read it, then retry.",
                                    "uniqueness") from exc
        except ServiceError as exc:
            raise from_service_error(exc) from exc

    def _save_once(self, creating: bool) -> None:
        # In the caller's transaction (``locked``) no savepoint: any error fails the whole request.
        with transaction.atomic(savepoint=not self.locked):
            if creating:
                self._create()
            else:
                self._update()

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
        _check_login_email(email)
        adopt = selectors.membership_by_email(self.workspace, email)
        if adopt is not None:
            if adopt.scim_username:
                # Linked to another directory userName already: a plain uniqueness conflict in this workspace.
                raise ScimError(409, "A user with this email already exists in this workspace.", "uniqueness")
            # A member added in the web UI (or DELETEd by the directory earlier): link it, do not duplicate it.
            self.obj = adopt
            services.membership_update_profile(membership=adopt, actor=self.actor,
                                               changes={**fields, "directory_email": email})
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
            external_id=fields["external_id"], directory_email=email,
            role_from_idp=_requested_role(doc, None) is not None,
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
        if membership.detached_at is not None:
            # An Owner detached this member from the IdP: the portal owns it. Removing access still applies
            # (never refused); every other change is left unapplied and named in the provisioning log.
            ignore_attribute("changes to a member detached from the IdP (only active=false applies)")
            if doc.get("active") is False:
                self._apply_active(membership, False)
            return
        if self.mode == "replace":
            # PUT replaces the profile; role, environments and active stay as they are when not sent.
            for key in ("role", "product_environments", GATEHOUSE_USER, "active"):
                if key not in doc and key in original:
                    doc[key] = original[key]
        elif "active" not in doc:
            doc["active"] = True  # PATCH remove of active: back to its default (docs/scim.md, "PATCH remove")
        fields = self._profile_fields(doc)
        role = self._check_role(_requested_role(doc, original))
        if role is None and _role_removed(doc, original):
            role = self.workspace.default_role  # PATCH remove of role: back to the documented default
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
        email = _primary_email(doc)
        if email and email != membership.directory_email:
            # A rename in the IdP: the same member under its new email (docs/architecture.md, "Directory link").
            _check_login_email(email)
            services.membership_rename(membership=membership, email=email, actor=self.actor)
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



# ----------------------------------------------------------------------------- the endpoint


def user_adapter(ctx: Ctx, obj: Membership | None, *, locked: bool = False) -> GatehouseSCIMUser:
    """The configured adapter (django-scim2's USER_ADAPTER) for ``obj`` in this request's workspace.

    ``locked``: ``obj`` was read ``select_for_update`` in the caller's open transaction.
    """
    adapter: GatehouseSCIMUser = get_user_adapter()(obj, ctx.request, workspace=ctx.workspace, actor=ctx.actor,
                                                    base_url=ctx.base_url, locked=locked)
    return adapter


def users(ctx: Ctx, rid: str | None) -> HttpResponse:
    """``/Users``, ``/Users/<id>`` and ``/Users/.search``."""
    method = ctx.request.method
    if rid == ".search":
        return search(ctx, _users_list)
    if rid is None:
        if method == "GET":
            return _users_list(ctx)
        if method == "POST":
            return _users_create(ctx)
        raise method_not_allowed(ctx)
    if method == "GET":
        attributes, excluded = projection(ctx.request, CORE_USER)
        member = selectors.scim_user(ctx.workspace, rid, groups=wants("groups", attributes, excluded))
        if member is None:
            raise not_found("User", rid)
        return _render_user(ctx, user_adapter(ctx, member))
    if method in ("PUT", "PATCH", "DELETE"):
        return _users_write(ctx, rid, method)
    raise method_not_allowed(ctx)


def _render_user(ctx: Ctx, adapter: GatehouseSCIMUser, status: int = 200) -> HttpResponse:
    attributes, excluded = projection(ctx.request, CORE_USER)
    groups = None
    if wants("groups", attributes, excluded):
        groups = selectors.groups_from_row(adapter.obj)
        if groups is None:
            groups = selectors.groups_of_members([adapter.obj.pk]).get(adapter.obj.pk, [])
    doc = project(adapter.to_dict(groups=groups), attributes, excluded)
    return json_response(doc, status, location=adapter.location, version=etag(adapter.obj.version))


# Okta's lookup before every create, exactly: userName eq "<value without quotes or escapes>".
_USERNAME_EQ = re.compile(r'^\s*(?:urn:ietf:params:scim:schemas:core:2\.0:User:)?userName\s+eq\s+"([^"\\]+)"\s*$',
                          re.IGNORECASE)


def _users_list(ctx: Ctx) -> HttpResponse:
    text = params(ctx.request).get("filter")
    attributes, excluded = projection(ctx.request, CORE_USER)
    wants_groups = wants("groups", attributes, excluded)

    def render(rows: list[Any]) -> list[dict[str, Any]]:
        groups: dict[int, list[tuple[int, str]]] | None = None
        if rows and wants_groups:
            on_rows = [selectors.groups_from_row(m) for m in rows]
            if all(g is not None for g in on_rows):
                groups = {m.pk: g for m, g in zip(rows, on_rows, strict=True) if g is not None}
            else:
                groups = selectors.groups_of_members([m.pk for m in rows])
        return [
            project(user_adapter(ctx, m).to_dict(groups=groups.get(m.pk, []) if groups is not None else None),
                    attributes, excluded)
            for m in rows
        ]

    lookup = _USERNAME_EQ.match(text) if text is not None and len(text) <= MAX_FILTER_LENGTH else None
    if lookup is not None:
        start, count = paging(ctx.request)
        sort_by = params(ctx.request).get("sortBy")
        if sort_by:
            sort_field(sort_by, USER_SORT_FIELDS, CORE_USER)  # an unknown sortBy is still a 400
        if start == 1 and count >= 1:
            # userName is unique (case-insensitive) in a workspace: at most one row, read by one prepared
            # statement; the same document the general path below builds after compiling the filter.
            found = selectors.members_by_username(ctx.workspace, lookup.group(1), groups=wants_groups)
            return json_response(list_document(render(found), total=len(found), start=1))
    # Built only here: the userName lookup above never needs it (building it was a quarter of that lookup's CPU).
    qs = selectors.scim_users(ctx.workspace)
    if text is not None:
        qs = qs.filter(user_filter(text))

    # Default order: user id, which the (workspace_id, user_id) unique index returns in order.
    # The page's rows are read by id with the member query compiled once (selectors.members_by_pks).
    return list_page(ctx, qs, USER_SORT_FIELDS, CORE_USER, render, default_order="user_id",
                     fetch=lambda ids: selectors.members_by_pks(ctx.workspace, ids, groups=wants_groups),
                     indexed=text is None)


def _users_create(ctx: Ctx) -> HttpResponse:
    body = ctx.body()
    adapter = user_adapter(ctx, None)
    adapter.from_dict(body)
    adapter.save()
    member = selectors.scim_user(ctx.workspace, str(adapter.obj.pk))
    adapter.obj = cast(Membership, member)  # the row save() just wrote (or found, for a retried POST)
    return _render_user(ctx, adapter, status=201 if adapter.created else 200)


def _users_write(ctx: Ctx, rid: str, method: str) -> HttpResponse:
    """PUT, PATCH or DELETE one User: the member is read once, locked, in the change's transaction.

    The lock is taken before If-Match is compared, so the version checked is the version changed
    (no write can slip in between). The response is built from that row as the services left it
    (they update the instance they change, version included): no second read after the write.
    """
    attributes, excluded = projection(ctx.request, CORE_USER)
    wants_groups = method != "DELETE" and wants("groups", attributes, excluded)
    with transaction.atomic():
        member = selectors.scim_user_for_write(ctx.workspace, rid, groups=wants_groups)
        if member is None:
            raise not_found("User", rid)
        check_if_match(ctx.request, member.version)
        adapter = user_adapter(ctx, member, locked=True)
        if apply_write(ctx, adapter, method):
            return HttpResponse(status=204)
    return _render_user(ctx, adapter)
