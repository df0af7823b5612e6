"""Discovery endpoints (RFC 7644 §4): ``/ServiceProviderConfig``, ``/ResourceTypes``, ``/Schemas``.

The configuration document comes from django-scim2's SERVICE_PROVIDER_CONFIG_MODEL
(``scim.schemas.GatehouseServiceProviderConfig``); the schemas are the ones request bodies are
validated against (``scim.schemas``).
"""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from django_scim.utils import get_service_provider_config_model

from ..errors import ScimError
from ..schemas import all_schemas, resource_types
from .context import Ctx, json_response, method_not_allowed
from .paging import list_document


def _listed(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return list_document(resources, total=len(resources), start=1)


def service_provider_config(ctx: Ctx, rid: str | None) -> HttpResponse:
    """``GET /ServiceProviderConfig``."""
    if ctx.request.method != "GET" or rid:
        raise method_not_allowed(ctx) if ctx.request.method != "GET" else ScimError(404, "Not found.")
    return json_response(get_service_provider_config_model()(ctx.request, ctx.base_url).to_dict())


def resource_types_view(ctx: Ctx, rid: str | None) -> HttpResponse:
    """``GET /ResourceTypes`` and ``/ResourceTypes/<id>``."""
    if ctx.request.method != "GET":
        raise method_not_allowed(ctx)
    types = resource_types(ctx.base_url)
    if rid:
        found = next((t for t in types if t["id"] == rid), None)
        if found is None:
            raise ScimError(404, f"No resource type {rid!r}.")
        return json_response(found)
    return json_response(_listed(types))


def schemas_view(ctx: Ctx, rid: str | None) -> HttpResponse:
    """``GET /Schemas`` and ``/Schemas/<urn>`` (the URN compared case-insensitively)."""
    if ctx.request.method != "GET":
        raise method_not_allowed(ctx)
    schemas = []
    for schema in all_schemas():
        schema = {**schema, "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"]}
        schema["meta"] = {"resourceType": "Schema", "location": f"{ctx.base_url}Schemas/{schema['id']}"}
        schemas.append(schema)
    if rid:
        found = next((s for s in schemas if s["id"].lower() == rid.lower()), None)
        if found is None:
            raise ScimError(404, f"No schema {rid!r}.")
        return json_response(found)
    return json_response(_listed(schemas))
