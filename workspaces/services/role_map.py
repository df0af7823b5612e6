"""Role mapping: the role values a workspace's IdP sends -> Gatehouse roles.

Customers' IdPs speak their own vocabulary (Cloudinary's Okta app sends ``admin``, ``media_library_user``...).
Each workspace maps those values to its four roles; several values may map to one role. A value that no
mapping names is Gatehouse's own role name if it is one (``manager``), else refused with the accepted values
listed, or given the workspace's default role, as the workspace chooses. Every change is audited.
"""

from __future__ import annotations

import re

from django.db import transaction

from audit.record import Actor, record_event

from ..exceptions import ServiceError
from ..models import RoleMapping, UnknownIdpRole, Workspace
from ..roles import Cap, Role
from ._common import lock_workspace, require_capability

MAX_VALUE_LENGTH = 100
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

# One-click starting points, named for the IdP set-up whose vocabulary they map.
ROLE_MAP_PRESETS: dict[str, dict[str, str]] = {
    # Cloudinary's seven role values (its Okta SCIM guide). Owner only applies where the workspace lets the
    # directory grant it; everywhere else master_admin is refused as any Owner grant from the IdP is.
    "cloudinary": {
        "master_admin": Role.OWNER,
        "admin": Role.MANAGER,
        "technical_admin": Role.MANAGER,
        "media_library_admin": Role.MEMBER,
        "billing": Role.MEMBER,
        "reports": Role.MEMBER,
        "media_library_user": Role.COLLABORATOR,
    },
}


def role_map_key(value: str) -> str:
    """What a value is matched by: trimmed and case-folded (``Admin``, `` admin `` and ``ADMIN`` are one value)."""
    return value.strip().casefold()


def _clean_value(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ServiceError("A role value from the IdP must be a non-empty text.", field="value")
    value = value.strip()
    if len(value) > MAX_VALUE_LENGTH or _CONTROL.search(value):
        raise ServiceError(
            f"A role value holds at most {MAX_VALUE_LENGTH} characters and no control characters.", field="value"
        )
    return value


def _clean_role(role: object) -> str:
    key = str(role).strip().lower()
    if key not in Role.values:
        raise ServiceError(f"Unknown Gatehouse role {role!r}: use one of {', '.join(Role.values)}.", field="role")
    return key


def role_map(workspace: Workspace) -> dict[str, str]:
    """The workspace's mappings, value as the IdP sends it -> role, in value order."""
    return dict(RoleMapping.objects.filter(workspace=workspace).values_list("value", "role"))


def accepted_role_values(workspace: Workspace) -> list[str]:
    """Every value the workspace accepts: its mapped values, then Gatehouse's role names."""
    mapped = list(RoleMapping.objects.filter(workspace=workspace).values_list("value", flat=True))
    keys = {role_map_key(v) for v in mapped}
    return mapped + [r for r in Role.values if r not in keys]


def resolve_idp_role(*, workspace: Workspace, value: str) -> str:
    """The Gatehouse role for a role value the IdP sent. Refused (ServiceError naming the accepted values) when
    nothing matches and the workspace refuses unknown values; its default role when it accepts them."""
    key = role_map_key(str(value))
    mapped = RoleMapping.objects.filter(workspace=workspace, value_key=key).values_list("role", flat=True).first()
    if mapped is not None:
        return mapped
    if key in Role.values:
        return key
    if workspace.unknown_idp_role == UnknownIdpRole.DEFAULT:
        return workspace.default_role
    accepted = ", ".join(accepted_role_values(workspace))
    raise ServiceError(
        f"Unknown role {str(value)[:100]!r}. This workspace accepts: {accepted}. An Owner can map other values "
        f"(Provisioning -> Role mapping, or manage.py role_map {workspace.slug} --set VALUE=ROLE).",
        field="role",
    )


def _record(workspace: Workspace, actor: Actor, details: dict[str, object]) -> None:
    record_event(
        actor=actor, action="workspace.role_map_changed", workspace=workspace,
        target_type="workspace", target_id=workspace.pk, target_label=workspace.slug, details=details,
    )


@transaction.atomic
def role_map_set(*, workspace: Workspace, mappings: dict[str, str], actor: Actor) -> dict[str, str]:
    """Map each IdP value to a role (adding or changing mappings); returns the whole map. One audit event."""
    require_capability(actor, workspace, Cap.SETTINGS_MANAGE)
    cleaned = {_clean_value(value): _clean_role(role) for value, role in mappings.items()}
    if not cleaned:
        raise ServiceError("Give at least one VALUE=ROLE mapping.", field="value")
    workspace = lock_workspace(workspace)
    existing = {m.value_key: m for m in RoleMapping.objects.filter(workspace=workspace)}
    changes: dict[str, dict[str, str | None]] = {}
    for value, role in cleaned.items():
        key = role_map_key(value)
        current = existing.get(key)
        if current is None:
            existing[key] = RoleMapping.objects.create(workspace=workspace, value=value, value_key=key, role=role)
            changes[value] = {"before": None, "after": role}
        elif current.role != role or current.value != value:
            changes[value] = {"before": current.role, "after": role}
            current.value, current.role = value, role
            current.save(update_fields=["value", "role"])
    if changes:
        _record(workspace, actor, {"set": changes})
    return role_map(workspace)


@transaction.atomic
def role_map_remove(*, workspace: Workspace, values: list[str], actor: Actor) -> dict[str, str]:
    """Remove the mappings of these values (unknown values are named in the error); returns the whole map."""
    require_capability(actor, workspace, Cap.SETTINGS_MANAGE)
    workspace = lock_workspace(workspace)
    keys = {role_map_key(str(v)): str(v) for v in values}
    found = {m.value_key: m for m in RoleMapping.objects.filter(workspace=workspace, value_key__in=keys)}
    missing = [value for key, value in keys.items() if key not in found]
    if missing:
        raise ServiceError(f"No mapping for {', '.join(repr(v) for v in missing)}.", field="value")
    removed = {m.value: m.role for m in found.values()}
    RoleMapping.objects.filter(pk__in=[m.pk for m in found.values()]).delete()
    if removed:
        _record(workspace, actor, {"removed": removed})
    return role_map(workspace)


@transaction.atomic
def role_map_set_unknown(*, workspace: Workspace, policy: str, actor: Actor) -> Workspace:
    """What a value no mapping names does: ``reject`` (refused, the accepted values listed) or ``default``."""
    require_capability(actor, workspace, Cap.SETTINGS_MANAGE)
    if policy not in UnknownIdpRole.values:
        raise ServiceError(f"Unknown values are either {' or '.join(UnknownIdpRole.values)}.", field="unknown")
    workspace = lock_workspace(workspace)
    if workspace.unknown_idp_role != policy:
        before = workspace.unknown_idp_role
        workspace.unknown_idp_role = policy
        workspace.save(update_fields=["unknown_idp_role"])
        _record(workspace, actor, {"unknown": {"before": before, "after": policy}})
    return workspace


@transaction.atomic
def role_map_apply_preset(*, workspace: Workspace, preset: str, actor: Actor) -> dict[str, str]:
    """Add a preset's mappings (existing mappings of other values stay); returns the whole map."""
    mappings = ROLE_MAP_PRESETS.get(preset)
    if mappings is None:
        raise ServiceError(f"Unknown preset {preset!r}: use one of {', '.join(ROLE_MAP_PRESETS)}.", field="preset")
    return role_map_set(workspace=workspace, mappings=dict(mappings), actor=actor)
