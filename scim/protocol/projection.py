"""Model -> SCIM document, and the ``attributes`` / ``excludedAttributes`` projection of it.

``user_document`` is a member's writable SCIM state (what PATCH operations apply to);
``user_resource`` and ``group_resource`` add ``schemas``, ``id``, ``groups``/``members`` and
``meta`` (RFC 7643 §3.1). ``projection``/``project`` apply RFC 7644 §3.4.2.5 to a rendered
document; ``wants`` tells a handler whether to read ``groups``/``members`` at all.
"""

from __future__ import annotations

import copy
from typing import Any

from django.http import HttpRequest

from workspaces.models import Membership, Team

from ..schemas import CORE_GROUP, CORE_USER, ENTERPRISE_USER, GATEHOUSE_USER
from .context import params

# Columns of Membership that hold SCIM attributes; everything else the IdP sends lives in ``profile``.
COLUMN_KEYS = {"userName", "externalId", "displayName", "active", "role", "product_environments", "name"}


def etag(version: int) -> str:
    """The weak ETag of a resource version (RFC 7644 §3.14)."""
    return f'W/"{version}"'


def resource_meta(resource_type: str, obj: Membership | Team, location: str) -> dict[str, Any]:
    """RFC 7643 §3.1 ``meta`` for a Membership or Team (both carry created/updated/version)."""
    return {
        "resourceType": resource_type,
        "created": obj.created_at.isoformat(),
        "lastModified": obj.updated_at.isoformat(),
        "location": location,
        "version": etag(obj.version),
    }


# ----------------------------------------------------------------------------- Users


def user_document(m: Membership) -> dict[str, Any]:
    """The member's writable SCIM state (no id/meta/groups): what PATCH operations apply to."""
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


def user_resource(m: Membership, *, base_url: str, location: str,
                  groups: list[tuple[int, str]] | None = None) -> dict[str, Any]:
    """The whole User resource; ``groups`` (team id, name) is left out when None (not asked for)."""
    doc = user_document(m)
    schemas = [CORE_USER]
    if ENTERPRISE_USER in doc:
        schemas.append(ENTERPRISE_USER)
    schemas.append(GATEHOUSE_USER)
    out: dict[str, Any] = {"schemas": schemas, "id": str(m.pk)}
    out.update(doc)
    if groups is not None:
        out["groups"] = _references(groups, f"{base_url}Groups/", "direct")
    out["meta"] = resource_meta("User", m, location)
    return out


def _references(items: list[tuple[int, str]], ref_base: str, kind: str) -> list[dict[str, str]]:
    """Multi-valued references (a User's ``groups``, a Group's ``members``): value, display, $ref, type."""
    return [{"value": str(pk), "display": display, "$ref": f"{ref_base}{pk}", "type": kind} for pk, display in items]


# ----------------------------------------------------------------------------- Groups


def group_resource(team: Team, *, base_url: str, location: str,
                   members: list[tuple[int, str]] | None = None) -> dict[str, Any]:
    """The whole Group resource; ``members`` (member id, display) is left out when None (not asked for)."""
    out: dict[str, Any] = {"schemas": [CORE_GROUP], "id": str(team.pk), "displayName": team.name}
    if team.external_id:
        out["externalId"] = team.external_id
    if members is not None:
        out["members"] = _references(members, f"{base_url}Users/", "User")
    out["meta"] = resource_meta("Group", team, location)
    return out


# ----------------------------------------------------------------------------- attributes / excludedAttributes


def projection(request: HttpRequest, core_uri: str) -> tuple[set[str] | None, set[str]]:
    """The requested ``attributes`` (None: all) and ``excludedAttributes``, lower-cased, core URN stripped."""
    def split(name: str) -> set[str]:
        raw = params(request).get(name, "") or ""
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


def wants(name: str, attributes: set[str] | None, excluded: set[str]) -> bool:
    """Whether the projection keeps attribute ``name`` (or part of it)."""
    name = name.lower()
    if name in excluded:
        return False
    return attributes is None or any(a == name or a.startswith(name + ".") for a in attributes)


def project(doc: dict[str, Any], attributes: set[str] | None, excluded: set[str]) -> dict[str, Any]:
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
