"""SCIM 2.0 endpoints under ``/scim/v2/<slug>/``: one entry point, thin handlers.

Every request goes through ``scim_endpoint``: authenticate once (``scim.auth``), route, map
errors to RFC 7644 §3.12 documents, then call ``scim.hooks.after_scim_request`` with the
response (the provisioning log hooks in there). Handlers parse, call an adapter (which calls
``workspaces.services``), and render.

django-scim2's own views are not used: they authenticate through a global middleware and a
Django user (we need a per-workspace credential), their list path counts by iterating every row
and post-filters tenants in Python (15five/django-scim2#97), and their errors lack ``scimType``.
Its adapters, schemas, constants and exception class are used (see docs/scim.md).
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.http.request import RawPostDataException
from django.views.decorators.csrf import csrf_exempt
from django_scim.utils import get_group_adapter, get_service_provider_config_model, get_user_adapter

from . import hooks, list_index, selectors
from .adapters import GatehouseSCIMGroup, GatehouseSCIMUser, etag
from .auth import ScimAuthError, ScimPrincipal, authenticate_scim_request
from .documents import patch_operations
from .errors import ScimError, bad_request, error_response, not_found
from .filters import (
    GROUP_SORT_FIELDS,
    MAX_FILTER_LENGTH,
    USER_SORT_FIELDS,
    group_filter,
    sort_field,
    user_filter,
)
from .schemas import (
    CORE_GROUP,
    CORE_USER,
    LIST_RESPONSE,
    SCIM_CONTENT_TYPE,
    all_schemas,
    max_body_bytes,
    max_patch_operations,
    max_results,
    resource_types,
)

logger = logging.getLogger("gatehouse.scim")

_ROUTE = re.compile(r"^(?P<resource>[A-Za-z]+)(?:/(?P<rid>[^/]+))?/?$")
WWW_AUTHENTICATE = 'Bearer realm="gatehouse-scim", Basic realm="gatehouse-scim"'


@csrf_exempt
def scim_endpoint(request: HttpRequest, slug: str, path: str = "") -> HttpResponse:
    """The one entry point for every SCIM request of workspace ``slug``."""
    request.scim_started_at = time.monotonic()  # type: ignore[attr-defined]  # for the provisioning log
    principal: ScimPrincipal | None = None
    try:
        try:
            principal = authenticate_scim_request(request, slug)
        except ScimAuthError as exc:
            # The auth side may attach headers (a 429 with Retry-After from its failure rate limit).
            headers = {str(k): str(v) for k, v in (getattr(exc, "headers", None) or {}).items()}
            if getattr(exc, "retry_after", None) is not None:
                headers.setdefault("Retry-After", str(exc.retry_after))
            if exc.status == 401:
                headers.setdefault("WWW-Authenticate", WWW_AUTHENTICATE)
            raise ScimError(exc.status, exc.detail, headers=headers) from exc
        response = _route(request, principal, path)
    except ScimError as exc:
        response = error_response(exc)
    except Exception:
        logger.exception("SCIM request failed: %s %s", request.method, request.path)
        response = error_response(ScimError(500, "The request could not be completed. It has been logged."))
    try:
        hooks.after_scim_request(request, slug, principal, response)
    except Exception:  # the log must never turn a good answer into an error
        logger.exception("after_scim_request hook failed")
    return response


# ----------------------------------------------------------------------------- routing


def _route(request: HttpRequest, principal: ScimPrincipal, path: str) -> HttpResponse:
    if path.strip("/") == ".search":
        # RFC 7644 §3.4.3 lets a server decline root searches across resource types: 501.
        raise ScimError(501, "Searching several resource types at once is not supported. Use /Users/.search or /Groups/.search.")
    match = _ROUTE.match(path)
    if not match:
        raise ScimError(404, "No such SCIM endpoint.")
    resource, rid = match.group("resource"), match.group("rid")
    handler = _HANDLERS.get(resource.lower())
    if handler is None:
        raise ScimError(404, f"No SCIM endpoint {resource!r}. Use Users, Groups, ServiceProviderConfig, ResourceTypes or Schemas.")
    ctx = Ctx(request, principal)
    return handler(ctx, rid)


class Ctx:
    """What a handler needs: the request, the credential's workspace and actor, and the base URL."""

    def __init__(self, request: HttpRequest, principal: ScimPrincipal) -> None:
        self.request = request
        self.principal = principal
        self.workspace = principal.workspace
        self.actor = principal.actor
        self.base_url = request.build_absolute_uri(f"/scim/v2/{principal.workspace.slug}/")

    def body(self) -> Any:
        length = self.request.META.get("CONTENT_LENGTH") or "0"
        try:
            if int(length) > max_body_bytes():
                raise ScimError(413, f"The request body is larger than {max_body_bytes()} bytes.")
        except ValueError:
            raise bad_request("Invalid Content-Length.", "invalidSyntax") from None
        try:
            raw = self.request.body
        except (RequestDataTooBig, RawPostDataException) as exc:
            raise ScimError(413, f"The request body is larger than {max_body_bytes()} bytes.") from exc
        if len(raw) > max_body_bytes():
            raise ScimError(413, f"The request body is larger than {max_body_bytes()} bytes.")
        if not raw.strip():
            raise bad_request("The request body is empty.", "invalidSyntax")
        try:
            return json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise bad_request(f"The body is not valid JSON: {str(exc)[:120]}", "invalidSyntax") from exc

    # The adapter classes come from django-scim2's settings (SCIM_SERVICE_PROVIDER USER_ADAPTER/GROUP_ADAPTER).
    def user_adapter(self, obj: Any, *, locked: bool = False) -> GatehouseSCIMUser:
        """``locked``: ``obj`` was read ``select_for_update`` in the caller's open transaction."""
        return get_user_adapter()(obj, self.request, workspace=self.workspace, actor=self.actor, base_url=self.base_url,
                                  locked=locked)

    def group_adapter(self, obj: Any) -> GatehouseSCIMGroup:
        return get_group_adapter()(obj, self.request, workspace=self.workspace, actor=self.actor, base_url=self.base_url)


def _json(doc: Any, status: int = 200, *, location: str = "", version: str = "") -> HttpResponse:
    response = HttpResponse(json.dumps(doc), content_type=SCIM_CONTENT_TYPE, status=status)
    if location:
        response["Location"] = location
    if version:
        response["ETag"] = version
    return response


def _method_not_allowed(ctx: Ctx) -> ScimError:
    return ScimError(405, f"{ctx.request.method} is not supported here.")


def _check_if_match(request: HttpRequest, version: int) -> None:
    """RFC 7644 §3.14: a stale If-Match is 412 Precondition Failed."""
    header = request.META.get("HTTP_IF_MATCH")
    if not header:
        return
    tags = [t.strip() for t in header.split(",")]
    current = etag(version)
    if "*" in tags or current in tags or current.removeprefix("W/") in tags:
        return
    raise ScimError(412, "The resource changed since you read it (ETag mismatch). Read it again and retry.")


# ----------------------------------------------------------------------------- attributes / excludedAttributes


def _params(request: HttpRequest) -> Any:
    """Query parameters: the URL's, or a POSTed SearchRequest's (RFC 7644 §3.4.3) set by ``_search``."""
    return getattr(request, "scim_params", None) or request.GET


def _projection(request: HttpRequest, core_uri: str) -> tuple[set[str] | None, set[str]]:
    def split(name: str) -> set[str]:
        raw = _params(request).get(name, "") or ""
        out = set()
        for part in raw.split(","):
            part = part.strip()
            if not part:
                continue
            if part.lower().startswith(core_uri.lower() + ":"):
                part = part[len(core_uri) + 1:]
            out.add(part.lower())
        return out

    attributes = split("attributes")
    return (attributes or None), split("excludedAttributes")


def _wants(name: str, attributes: set[str] | None, excluded: set[str]) -> bool:
    name = name.lower()
    if name in excluded:
        return False
    return attributes is None or any(a == name or a.startswith(name + ".") for a in attributes)


def _project(doc: dict[str, Any], attributes: set[str] | None, excluded: set[str]) -> dict[str, Any]:
    """Apply attributes/excludedAttributes (RFC 7644 §3.4.2.5); id and schemas are always returned."""
    if attributes is None and not excluded:
        return doc  # nothing asked for: the whole document (most requests; saves a copy per listed row)
    out: dict[str, Any] = {}
    for key, value in doc.items():
        lower = key.lower()
        if lower in ("id", "schemas"):
            out[key] = value
            continue
        if lower in excluded:
            continue
        if attributes is None:
            if isinstance(value, dict):
                value = {k: v for k, v in value.items() if f"{lower}.{k.lower()}" not in excluded}
            out[key] = value
            continue
        if lower in attributes:
            out[key] = value
            continue
        subs = {a.split(".", 1)[1] for a in attributes if a.startswith(lower + ".")}
        if subs and isinstance(value, dict):
            out[key] = {k: v for k, v in value.items() if k.lower() in subs}
        elif subs and isinstance(value, list):
            out[key] = [{k: v for k, v in item.items() if k.lower() in subs} for item in value if isinstance(item, dict)]
        # extension attributes: "urn:...:User:role"
        ext = {a[len(lower) + 1:] for a in attributes if a.startswith(lower + ":")}
        if ext and isinstance(value, dict):
            out[key] = {k: v for k, v in value.items() if k.lower() in ext}
    return out


# ----------------------------------------------------------------------------- paging


def _paging(request: HttpRequest) -> tuple[int, int]:
    def integer(name: str, default: int) -> int:
        raw = _params(request).get(name)
        if raw is None or raw == "":
            return default
        try:
            return int(raw)
        except ValueError:
            raise bad_request(f"{name} must be an integer.", "invalidValue") from None

    start = max(integer("startIndex", 1), 1)  # RFC 7644 §3.4.2.4: below 1 means 1
    count = min(max(integer("count", max_results()), 0), max_results())
    return start, count


def _list(ctx: Ctx, qs: Any, sort_fields: dict[str, str], core_uri: str,
          render: Callable[[list[Any]], list[dict[str, Any]]], *, default_order: str = "pk",
          fetch: Callable[[list[int]], list[Any]] | None = None,
          indexed: bool = False) -> HttpResponse:
    """One page of ``qs`` (already scoped to the workspace and filtered), counted and sliced in SQL.

    The page is found by id first (``LIMIT/OFFSET`` over an index, no joins, no per-row subqueries),
    then only those rows are read in full (``fetch``): a deep page does not build every skipped row.
    ``indexed``: ``qs`` is the unfiltered Users list (``selectors.scim_users``); in its default order
    the total and the page come from its database index (``scim.list_index``), without COUNT(*) and
    with an OFFSET of less than one stride.
    """
    request = ctx.request
    start, count = _paging(request)
    sort_by = _params(request).get("sortBy")
    order = sort_field(sort_by, sort_fields, core_uri) if sort_by else default_order
    descending = (_params(request).get("sortOrder") or "ascending").lower() == "descending"
    if indexed and order == default_order and not descending and list_index.enabled():
        page_ids, total = list_index.page(ctx.workspace, start, count)
    else:
        ordering = [f"-{order}" if descending else order]
        if order != "pk":
            ordering.append("-pk" if descending else "pk")
        keys = qs.order_by(*ordering).values_list("pk", flat=True)
        page_ids = list(keys[start - 1: start - 1 + count]) if count else []
        if start == 1 and len(page_ids) < count:
            total = len(page_ids)  # the whole result fits on this page: no COUNT(*) needed (Okta's lookups)
        else:
            total = qs.count()
    if fetch is not None:
        found = fetch(page_ids)
    else:
        found = list(qs.filter(pk__in=page_ids)) if page_ids else []
    by_id = {row.pk: row for row in found}
    rows = [by_id[pk] for pk in page_ids if pk in by_id]
    doc = {
        "schemas": [LIST_RESPONSE],
        "totalResults": total,
        "itemsPerPage": len(rows),
        "startIndex": start,
        "Resources": render(rows),
    }
    return _json(doc)


def _search(ctx: Ctx, list_view: Callable[[Ctx], HttpResponse]) -> HttpResponse:
    """POST /Users/.search or /Groups/.search: a SearchRequest body instead of query parameters."""
    if ctx.request.method != "POST":
        raise _method_not_allowed(ctx)
    body = ctx.body()
    if not isinstance(body, dict):
        raise bad_request("A SearchRequest must be a JSON object.", "invalidSyntax")
    params: dict[str, str] = {}
    for key in ("filter", "startIndex", "count", "sortBy", "sortOrder", "attributes", "excludedAttributes"):
        value = next((v for k, v in body.items() if str(k).lower() == key.lower()), None)
        if value is None:
            continue
        if isinstance(value, list):
            value = ",".join(str(v) for v in value)
        params[key] = str(value)
    ctx.request.scim_params = params  # type: ignore[attr-defined]
    return list_view(ctx)


# ----------------------------------------------------------------------------- Users


def users(ctx: Ctx, rid: str | None) -> HttpResponse:
    method = ctx.request.method
    if rid == ".search":
        return _search(ctx, _users_list)
    if rid is None:
        if method == "GET":
            return _users_list(ctx)
        if method == "POST":
            return _users_create(ctx)
        raise _method_not_allowed(ctx)
    if method == "GET":
        attributes, excluded = _projection(ctx.request, CORE_USER)
        member = selectors.scim_user(ctx.workspace, rid, groups=_wants("groups", attributes, excluded))
        if member is None:
            raise not_found("User", rid)
        adapter = ctx.user_adapter(member)
        return _render_user(ctx, adapter)
    if method in ("PUT", "PATCH", "DELETE"):
        return _users_write(ctx, rid, method)
    raise _method_not_allowed(ctx)


def _render_user(ctx: Ctx, adapter: GatehouseSCIMUser, status: int = 200) -> HttpResponse:
    attributes, excluded = _projection(ctx.request, CORE_USER)
    groups = None
    if _wants("groups", attributes, excluded):
        groups = selectors.groups_from_row(adapter.obj)
        if groups is None:
            groups = selectors.groups_of_members([adapter.obj.pk]).get(adapter.obj.pk, [])
    doc = _project(adapter.to_dict(groups=groups), attributes, excluded)
    return _json(doc, status, location=adapter.location, version=etag(adapter.obj.version))


# Okta's lookup before every create, exactly: userName eq "<value without quotes or escapes>".
_USERNAME_EQ = re.compile(r'^\s*(?:urn:ietf:params:scim:schemas:core:2\.0:User:)?userName\s+eq\s+"([^"\\]+)"\s*$',
                          re.IGNORECASE)


def _users_list(ctx: Ctx) -> HttpResponse:
    text = _params(ctx.request).get("filter")
    attributes, excluded = _projection(ctx.request, CORE_USER)
    wants_groups = _wants("groups", attributes, excluded)

    def render(rows: list[Any]) -> list[dict[str, Any]]:
        groups = None
        if rows and wants_groups:
            on_rows = [selectors.groups_from_row(m) for m in rows]
            if all(g is not None for g in on_rows):
                groups = {m.pk: g for m, g in zip(rows, on_rows, strict=True)}
            else:
                groups = selectors.groups_of_members([m.pk for m in rows])
        return [
            _project(ctx.user_adapter(m).to_dict(groups=groups.get(m.pk, []) if groups is not None else None),
                     attributes, excluded)
            for m in rows
        ]

    lookup = _USERNAME_EQ.match(text) if text is not None and len(text) <= MAX_FILTER_LENGTH else None
    if lookup is not None:
        start, count = _paging(ctx.request)
        sort_by = _params(ctx.request).get("sortBy")
        if sort_by:
            sort_field(sort_by, USER_SORT_FIELDS, CORE_USER)  # an unknown sortBy is still a 400
        if start == 1 and count >= 1:
            # userName is unique (case-insensitive) in a workspace: at most one row, read by one prepared
            # statement; the same document the general path below builds after compiling the filter.
            found = selectors.members_by_username(ctx.workspace, lookup.group(1), groups=wants_groups)
            return _json({"schemas": [LIST_RESPONSE], "totalResults": len(found), "itemsPerPage": len(found),
                          "startIndex": 1, "Resources": render(found)})
    # Built only here: the userName lookup above never needs it (building it was a quarter of that lookup's CPU).
    qs = selectors.scim_users(ctx.workspace)
    if text is not None:
        qs = qs.filter(user_filter(text))

    # Default order: user id, which the (workspace_id, user_id) unique index returns in order.
    # The page's rows are read by id with the member query compiled once (selectors.members_by_pks).
    return _list(ctx, qs, USER_SORT_FIELDS, CORE_USER, render, default_order="user_id",
                 fetch=lambda ids: selectors.members_by_pks(ctx.workspace, ids, groups=wants_groups),
                 indexed=text is None)


def _users_create(ctx: Ctx) -> HttpResponse:
    body = ctx.body()
    adapter = ctx.user_adapter(None)
    adapter.from_dict(body)
    adapter.save()
    member = selectors.scim_user(ctx.workspace, str(adapter.obj.pk))
    adapter.obj = member
    return _render_user(ctx, adapter, status=201 if adapter.created else 200)


def _users_write(ctx: Ctx, rid: str, method: str) -> HttpResponse:
    """PUT, PATCH or DELETE one User: the member is read once, locked, in the change's transaction.

    The lock is taken before If-Match is compared, so the version checked is the version changed
    (no write can slip in between). The response is built from that row as the services left it
    (they update the instance they change, version included): no second read after the write.
    """
    attributes, excluded = _projection(ctx.request, CORE_USER)
    wants_groups = method != "DELETE" and _wants("groups", attributes, excluded)
    with transaction.atomic():
        member = selectors.scim_user_for_write(ctx.workspace, rid, groups=wants_groups)
        if member is None:
            raise not_found("User", rid)
        _check_if_match(ctx.request, member.version)
        adapter = ctx.user_adapter(member, locked=True)
        if _apply_write(ctx, adapter, method):
            return HttpResponse(status=204)
    return _render_user(ctx, adapter)


def _apply_write(ctx: Ctx, adapter: GatehouseSCIMUser | GatehouseSCIMGroup, method: str) -> bool:
    """DELETE, PUT (replace) or PATCH one resource through its adapter. True: it was deleted."""
    if method == "DELETE":
        adapter.delete()
        return True
    body = ctx.body()
    if method == "PUT":
        adapter.from_dict(body)
    else:
        adapter.handle_operations(patch_operations(body, max_patch_operations()))
    adapter.save()
    return False


# ----------------------------------------------------------------------------- Groups


def groups(ctx: Ctx, rid: str | None) -> HttpResponse:
    method = ctx.request.method
    if rid == ".search":
        return _search(ctx, _groups_list)
    if rid is None:
        if method == "GET":
            return _groups_list(ctx)
        if method == "POST":
            body = ctx.body()
            adapter = ctx.group_adapter(None)
            adapter.from_dict(body)
            adapter.save()
            return _render_group(ctx, adapter, status=201 if adapter.created else 200)
        raise _method_not_allowed(ctx)
    team = selectors.scim_group(ctx.workspace, rid)
    if team is None:
        raise not_found("Group", rid)
    adapter = ctx.group_adapter(team)
    if method == "GET":
        return _render_group(ctx, adapter)
    if method not in ("PUT", "PATCH", "DELETE"):
        raise _method_not_allowed(ctx)
    _check_if_match(ctx.request, team.version)
    if _apply_write(ctx, adapter, method):
        return HttpResponse(status=204)
    if method == "PATCH" and not _params(ctx.request).get("attributes"):
        # Okta and Entra ignore the body of a group PATCH; RFC 7644 §3.5.2 allows 204 when none is asked for.
        response = HttpResponse(status=204)
        response["ETag"] = etag(adapter.obj.version)
        return response
    return _render_group(ctx, adapter)


def _render_group(ctx: Ctx, adapter: GatehouseSCIMGroup, status: int = 200) -> HttpResponse:
    attributes, excluded = _projection(ctx.request, CORE_GROUP)
    members = None
    if _wants("members", attributes, excluded):
        members = selectors.members_of_groups([adapter.obj.pk]).get(adapter.obj.pk, [])
    doc = _project(adapter.to_dict(members=members), attributes, excluded)
    return _json(doc, status, location=adapter.location, version=etag(adapter.obj.version))


def _groups_list(ctx: Ctx) -> HttpResponse:
    qs = selectors.scim_groups(ctx.workspace)
    text = _params(ctx.request).get("filter")
    if text is not None:
        qs = qs.filter(group_filter(text))
    attributes, excluded = _projection(ctx.request, CORE_GROUP)

    def render(rows: list[Any]) -> list[dict[str, Any]]:
        members = selectors.members_of_groups([t.pk for t in rows]) if rows and _wants("members", attributes, excluded) else None
        return [
            _project(ctx.group_adapter(t).to_dict(members=members.get(t.pk, []) if members is not None else None),
                     attributes, excluded)
            for t in rows
        ]

    return _list(ctx, qs, GROUP_SORT_FIELDS, CORE_GROUP, render)


# ----------------------------------------------------------------------------- discovery


def service_provider_config(ctx: Ctx, rid: str | None) -> HttpResponse:
    if ctx.request.method != "GET" or rid:
        raise _method_not_allowed(ctx) if ctx.request.method != "GET" else ScimError(404, "Not found.")
    return _json(get_service_provider_config_model()(ctx.request, ctx.base_url).to_dict())


def _listed(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "schemas": [LIST_RESPONSE],
        "totalResults": len(resources),
        "itemsPerPage": len(resources),
        "startIndex": 1,
        "Resources": resources,
    }


def resource_types_view(ctx: Ctx, rid: str | None) -> HttpResponse:
    if ctx.request.method != "GET":
        raise _method_not_allowed(ctx)
    types = resource_types(ctx.base_url)
    if rid:
        found = next((t for t in types if t["id"] == rid), None)
        if found is None:
            raise ScimError(404, f"No resource type {rid!r}.")
        return _json(found)
    return _json(_listed(types))


def schemas_view(ctx: Ctx, rid: str | None) -> HttpResponse:
    if ctx.request.method != "GET":
        raise _method_not_allowed(ctx)
    schemas = []
    for schema in all_schemas():
        schema = {**schema, "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"]}
        schema["meta"] = {"resourceType": "Schema", "location": f"{ctx.base_url}Schemas/{schema['id']}"}
        schemas.append(schema)
    if rid:
        found = next((s for s in schemas if s["id"].lower() == rid.lower()), None)
        if found is None:
            raise ScimError(404, f"No schema {rid!r}.")
        return _json(found)
    return _json(_listed(schemas))


_HANDLERS: dict[str, Callable[[Ctx, str | None], HttpResponse]] = {
    "users": users,
    "groups": groups,
    "serviceproviderconfig": service_provider_config,
    "resourcetypes": resource_types_view,
    "schemas": schemas_view,
}
