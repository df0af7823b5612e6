"""Entitlements as an identity-governance tool sees them: what may be granted in a workspace, and who holds it.

A workspace's grantable entitlements are its four org roles, membership in each team, and each repository
permission (read, write, admin). They are named by stable ids a tool can store and send back:

- ``role:owner``, ``role:manager``, ``role:member``, ``role:collaborator``
- ``team:<team id>``
- ``repository:<repository id>:<read|write|admin>``

Ids use database ids, never names: a team or repository may be renamed, and a governance tool must not lose
track of (or mistake) what it reviewed. A grant is an entitlement held by a principal (a member; for a repository
permission, also a team), with its source: who put it there, which says who may take it away.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from django.db import models

from .exceptions import ServiceError
from .models import Permission, TeamSource
from .roles import Role


class EntitlementKind(models.TextChoices):
    ROLE = "role", "Org role"
    TEAM = "team", "Team membership"
    REPOSITORY = "repository", "Repository permission"


# The order of kinds in listings and cursors.
KIND_RANK: dict[str, int] = {EntitlementKind.ROLE: 0, EntitlementKind.TEAM: 1, EntitlementKind.REPOSITORY: 2}
# Roles listed highest first.
ROLE_ORDER = [Role.OWNER, Role.MANAGER, Role.MEMBER, Role.COLLABORATOR]
PERMISSION_ORDER = [Permission.READ, Permission.WRITE, Permission.ADMIN]


class GrantSource(models.TextChoices):
    """Who put a grant there. Everything but ``manual`` is the identity provider's (``workspaces.ownership``)."""

    MANUAL = "manual", "Granted in Gatehouse (portal, API or manage.py)"
    SCIM_GROUP = "scim_group", "Pushed by a SCIM group"
    SAML_GROUP_SYNC = "saml_group_sync", "SAML group sync"
    IDP_ROLE = "idp_role", "Role from the identity provider (SCIM role, SAML role attribute or group)"


TEAM_SOURCE: dict[str, str] = {TeamSource.MANUAL: GrantSource.MANUAL, TeamSource.SCIM: GrantSource.SCIM_GROUP,
               TeamSource.SAML: GrantSource.SAML_GROUP_SYNC}

# Revoking a role leaves the member the role below it: an org member always holds exactly one role. Collaborator
# is the lowest: to take all access away, deactivate the member.
ROLE_AFTER_REVOKE: dict[str, str] = {Role.OWNER: Role.MEMBER, Role.MANAGER: Role.MEMBER, Role.MEMBER: Role.COLLABORATOR}


@dataclass(frozen=True)
class EntitlementRef:
    """A parsed entitlement id."""

    kind: str
    object_id: int = 0  # team or repository id (0 for a role)
    value: str = ""  # the role, or the repository permission

    @property
    def id(self) -> str:
        if self.kind == EntitlementKind.ROLE:
            return f"role:{self.value}"
        if self.kind == EntitlementKind.TEAM:
            return f"team:{self.object_id}"
        return f"repository:{self.object_id}:{self.value}"


def parse_entitlement(raw: Any) -> EntitlementRef:
    """``role:manager``, ``team:12`` or ``repository:7:write``; anything else is a ``ServiceError`` naming the forms."""
    hint = "Use role:<owner|manager|member|collaborator>, team:<team id> or repository:<repository id>:<read|write|admin>."
    if not isinstance(raw, str):
        raise ServiceError(f"An entitlement id is a string. {hint}", field="entitlement")
    parts = raw.split(":")
    kind = parts[0]
    if kind == EntitlementKind.ROLE and len(parts) == 2 and parts[1] in Role.values:
        return EntitlementRef(kind=kind, value=parts[1])
    if kind == EntitlementKind.TEAM and len(parts) == 2 and _is_id(parts[1]):
        return EntitlementRef(kind=kind, object_id=int(parts[1]))
    if kind == EntitlementKind.REPOSITORY and len(parts) == 3 and _is_id(parts[1]) and parts[2] in Permission.values:
        return EntitlementRef(kind=kind, object_id=int(parts[1]), value=parts[2])
    raise ServiceError(f"Unknown entitlement {raw[:80]!r}. {hint}", field="entitlement")


def _is_id(text: str) -> bool:
    return text.isascii() and text.isdigit() and len(text) <= 18 and int(text) > 0


# ----------------------------------------------------------------------------- cursors

def encode_cursor(position: tuple[int, ...]) -> str:
    """An opaque cursor for a keyset position (the last row's sort key)."""
    return base64.urlsafe_b64encode(json.dumps(list(position)).encode()).decode().rstrip("=")


def decode_cursor(raw: str, length: int) -> tuple[int, ...]:
    """The keyset position in a cursor from ``encode_cursor``; ``ValueError`` for anything else."""
    try:
        data = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except Exception as exc:  # binascii.Error, UnicodeDecodeError, JSONDecodeError: all "not our cursor"
        raise ValueError("not a cursor") from exc
    if (not isinstance(data, list) or len(data) != length
            or not all(type(v) is int and 0 <= v < 2**63 for v in data)):
        raise ValueError("not a cursor")
    return tuple(data)
