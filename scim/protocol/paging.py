"""List responses: ``startIndex``/``count`` (RFC 7644 §3.4.2.4), sorting, SearchRequest bodies.

``list_page`` counts and slices in SQL: the page is found by id first, then only its rows are
read in full. The unfiltered Users list in its default order takes its page and total from the
database index in ``scim.list_index`` instead (no COUNT(*), an OFFSET below one stride).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse

from .. import list_index
from ..errors import bad_request
from ..filters import sort_field
from ..schemas import LIST_RESPONSE, max_results
from .context import Ctx, json_response, method_not_allowed, params


def paging(request: HttpRequest) -> tuple[int, int]:
    """``(startIndex, count)``: startIndex at least 1, count between 0 and ``SCIM_MAX_RESULTS``."""
    def integer(name: str, default: int) -> int:
        raw = params(request).get(name)
        if raw is None or raw == "":
            return default
        try:
            return int(raw)
        except ValueError:
            raise bad_request(f"{name} must be an integer.", "invalidValue") from None

    start = max(integer("startIndex", 1), 1)  # RFC 7644 §3.4.2.4: below 1 means 1
    count = min(max(integer("count", max_results()), 0), max_results())
    return start, count


def list_document(resources: list[dict[str, Any]], *, total: int, start: int) -> dict[str, Any]:
    """A ListResponse (RFC 7644 §3.4.2) holding ``resources``."""
    return {
        "schemas": [LIST_RESPONSE],
        "totalResults": total,
        "itemsPerPage": len(resources),
        "startIndex": start,
        "Resources": resources,
    }


def list_page(ctx: Ctx, qs: QuerySet[Any], sort_fields: dict[str, str], core_uri: str,
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
    start, count = paging(request)
    sort_by = params(request).get("sortBy")
    order = sort_field(sort_by, sort_fields, core_uri) if sort_by else default_order
    descending = (params(request).get("sortOrder") or "ascending").lower() == "descending"
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
    return json_response(list_document(render(rows), total=total, start=start))


def search(ctx: Ctx, list_view: Callable[[Ctx], HttpResponse]) -> HttpResponse:
    """POST /Users/.search or /Groups/.search: a SearchRequest body instead of query parameters."""
    if ctx.request.method != "POST":
        raise method_not_allowed(ctx)
    body = ctx.body()
    if not isinstance(body, dict):
        raise bad_request("A SearchRequest must be a JSON object.", "invalidSyntax")
    found: dict[str, str] = {}
    for key in ("filter", "startIndex", "count", "sortBy", "sortOrder", "attributes", "excludedAttributes"):
        value = next((v for k, v in body.items() if str(k).lower() == key.lower()), None)
        if value is None:
            continue
        if isinstance(value, list):
            value = ",".join(str(v) for v in value)
        found[key] = str(value)
    ctx.request.scim_params = found  # type: ignore[attr-defined]
    return list_view(ctx)
