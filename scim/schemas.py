"""SCIM schema documents: django-scim2's bundled RFC 7643 schemas plus the Gatehouse extension.

The discovery endpoints (``/Schemas``, ``/ResourceTypes``, ``/ServiceProviderConfig``) serve
these, and the adapters validate request bodies against the same attribute definitions, so
what we advertise is what we accept.
"""

from __future__ import annotations

import copy
from typing import Any

from django.conf import settings
from django_scim.constants import SchemaURI
from django_scim.models import SCIMServiceProviderConfig
from django_scim.schemas import ALL as DJANGO_SCIM_SCHEMAS

CORE_USER = SchemaURI.USER
CORE_GROUP = SchemaURI.GROUP
ENTERPRISE_USER = SchemaURI.ENTERPRISE_USER
GATEHOUSE_USER = "urn:ietf:params:scim:schemas:extension:gatehouse:2.0:User"
LIST_RESPONSE = SchemaURI.LIST_RESPONSE
PATCH_OP = SchemaURI.PATCH_OP
ERROR = SchemaURI.ERROR
SCIM_CONTENT_TYPE = "application/scim+json"

ROLE_VALUES = ["owner", "manager", "member", "collaborator"]


def _attr(name: str, type_: str, description: str, *, multi: bool = False, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "type": type_,
        "multiValued": multi,
        "description": description,
        "required": False,
        "caseExact": False,
        "mutability": "readWrite",
        "returned": "default",
        "uniqueness": "none",
        **extra,
    }


GATEHOUSE_USER_SCHEMA: dict[str, Any] = {
    "id": GATEHOUSE_USER,
    "name": "GatehouseUser",
    "description": "Gatehouse workspace membership attributes.",
    "attributes": [
        _attr(
            "role", "string", "Org role in this workspace. Owner only when the workspace allows SCIM to grant it.",
            canonicalValues=ROLE_VALUES,
        ),
        _attr(
            "allowedEnvironments", "string",
            "Repository or environment names the member may reach; empty means no limit.", multi=True,
        ),
    ],
    "meta": {"resourceType": "Schema", "location": f"/Schemas/{GATEHOUSE_USER}"},
}


def _core_user_schema() -> dict[str, Any]:
    """RFC 7643's User schema plus Cloudinary-style ``role`` and ``product_environments`` in the core namespace."""
    schema = copy.deepcopy(next(s for s in DJANGO_SCIM_SCHEMAS if s["id"] == CORE_USER))
    for attr in schema["attributes"]:
        if attr["name"] == "emails":
            # A Gatehouse account needs an email: required unless userName is one (advertised honestly).
            attr["required"] = True
            for sub in attr.get("subAttributes", []):
                if sub["name"] == "value":
                    sub["required"] = True
    schema["attributes"].append(
        _attr("role", "string", "Gatehouse org role (Cloudinary's Okta attribute name).", canonicalValues=ROLE_VALUES)
    )
    schema["attributes"].append(
        _attr("product_environments", "string", "Allowed environments (Cloudinary's Okta attribute name).", multi=True)
    )
    return schema


def _core_group_schema() -> dict[str, Any]:
    schema = copy.deepcopy(next(s for s in DJANGO_SCIM_SCHEMAS if s["id"] == CORE_GROUP))
    for attr in schema["attributes"]:
        if attr["name"] == "displayName":
            attr["required"] = True  # a team needs a name (unique per workspace, case-insensitively)
        if attr["name"] == "members" and not any(x["name"] == "display" for x in attr["subAttributes"]):
            # RFC 7643 §4.2 describes "display" for members; Okta and Entra send it and read it.
            attr["subAttributes"].append(
                _attr("display", "string", "A human-readable name of the member.", mutability="readOnly")
            )
    return schema


USER_SCHEMA = _core_user_schema()
GROUP_SCHEMA = _core_group_schema()
ENTERPRISE_SCHEMA = copy.deepcopy(next(s for s in DJANGO_SCIM_SCHEMAS if s["id"] == ENTERPRISE_USER))


def all_schemas() -> list[dict[str, Any]]:
    """Every schema /Schemas serves (resource schemas only; discovery schemas are not resources here)."""
    return [USER_SCHEMA, ENTERPRISE_SCHEMA, GATEHOUSE_USER_SCHEMA, GROUP_SCHEMA]


def attributes_by_lower_name(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {a["name"].lower(): a for a in schema["attributes"]}


# externalId is a common attribute (RFC 7643 §3.1): accepted on every resource, not listed in schemas.
EXTERNAL_ID_ATTR = _attr("externalId", "string", "The identity provider's id for this resource.", caseExact=True)
USER_ATTRS = {**attributes_by_lower_name(USER_SCHEMA), "externalid": EXTERNAL_ID_ATTR}
ENTERPRISE_ATTRS = attributes_by_lower_name(ENTERPRISE_SCHEMA)
GATEHOUSE_ATTRS = attributes_by_lower_name(GATEHOUSE_USER_SCHEMA)
GROUP_ATTRS = attributes_by_lower_name(GROUP_SCHEMA)

# Extension schemas a User may carry, by lower-cased URN.
USER_EXTENSIONS = {ENTERPRISE_USER.lower(): (ENTERPRISE_USER, ENTERPRISE_ATTRS), GATEHOUSE_USER.lower(): (GATEHOUSE_USER, GATEHOUSE_ATTRS)}


def max_results() -> int:
    return int(getattr(settings, "SCIM_MAX_RESULTS", 200))


def max_body_bytes() -> int:
    return int(getattr(settings, "SCIM_MAX_BODY_BYTES", 1_048_576))


def max_patch_operations() -> int:
    return int(getattr(settings, "SCIM_MAX_PATCH_OPERATIONS", 1000))


class GatehouseServiceProviderConfig(SCIMServiceProviderConfig):
    """django-scim2's config document, with Gatehouse's true capabilities (it under-promises by default)."""

    def __init__(self, request: Any = None, base_url: str = "") -> None:
        super().__init__(request=request)
        self.base_url = base_url

    @property
    def location(self) -> str:  # django-scim2 reverses a global URL name; ours are per workspace
        return f"{self.base_url}ServiceProviderConfig"

    def to_dict(self) -> dict[str, Any]:
        doc = super().to_dict()
        doc.update(
            {
                "documentationUri": getattr(settings, "SCIM_DOCUMENTATION_URI", None),
                "patch": {"supported": True},
                "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": max_body_bytes()},
                "filter": {"supported": True, "maxResults": max_results()},
                "changePassword": {"supported": False},
                "sort": {"supported": True},
                "etag": {"supported": True},
            }
        )
        return doc


def resource_types(base_url: str) -> list[dict[str, Any]]:
    return [
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
            "id": "User",
            "name": "User",
            "endpoint": "/Users",
            "description": "A member of this workspace",
            "schema": CORE_USER,
            "schemaExtensions": [
                {"schema": ENTERPRISE_USER, "required": False},
                {"schema": GATEHOUSE_USER, "required": False},
            ],
            "meta": {"resourceType": "ResourceType", "location": f"{base_url}ResourceTypes/User"},
        },
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
            "id": "Group",
            "name": "Group",
            "endpoint": "/Groups",
            "description": "A team in this workspace",
            "schema": CORE_GROUP,
            "schemaExtensions": [],
            "meta": {"resourceType": "ResourceType", "location": f"{base_url}ResourceTypes/Group"},
        },
    ]
