"""Group sync: IdP groups -> teams and org roles, at each login, and the mappings Owners define; the role
attribute (one role value per login, mapped through the workspace's role mapping as SCIM's ``role`` is).

Which roles the IdP may give, and their order, come from ``workspaces.roles`` (``directory_may_grant``,
``ROLE_RANK``); team and role changes go through ``workspaces.services`` and are audited there.
"""

from __future__ import annotations

from django.db import transaction

from audit.record import Actor, record_event
from workspaces import services as ws
from workspaces.exceptions import LastOwnerError, NotAllowed, ServiceError
from workspaces.models import Membership, Team, TeamMembership, TeamSource, Workspace
from workspaces.roles import ROLE_RANK, Cap, Role, directory_may_grant

from ..acs import AcsFailure
from ..models import GroupMapping, SamlMemberState, SamlSettings
from ._audit import saml_actor, workspace_target


@transaction.atomic
def group_sync_apply(
    *, membership: Membership, groups: list[str], state: SamlMemberState, cfg: SamlSettings, roles: bool = True
) -> None:
    """Apply mappings for one login. Touches only teams that have a mapping; never demotes an Owner made
    outside the IdP; makes an Owner only when the workspace allows the IdP to; every change is audited.
    ``roles=False``: teams only (the role attribute decided the role)."""
    workspace = membership.workspace
    actor = saml_actor(f"SAML group sync ({cfg.idp_entity_id})")
    asserted = set(groups)
    mappings = list(GroupMapping.objects.filter(workspace=workspace).select_related("team"))
    managed: dict[int, Team] = {m.team_id: m.team for m in mappings if m.team_id and m.team}
    wanted = {m.team_id for m in mappings if m.team_id and m.idp_group in asserted}
    current = set(
        TeamMembership.objects.filter(membership=membership, team_id__in=managed).values_list("team_id", flat=True)
    )
    for team_id in sorted(wanted - current):
        ws.team_add_members(team=managed[team_id], memberships=[membership], actor=actor, source=TeamSource.SAML)
    for team_id in sorted((current - wanted) & set(managed)):
        ws.team_remove_members(team=managed[team_id], memberships=[membership], actor=actor, source=TeamSource.SAML)
    if not roles:
        return

    role_mappings = [m for m in mappings if m.role and m.idp_group in asserted]
    refused = [m for m in role_mappings if not directory_may_grant(workspace, m.role)]
    if refused:
        _skipped(actor, membership, {"reason": "the IdP may not grant Owner in this workspace",
                                     "group": refused[0].idp_group})
        role_mappings = [m for m in role_mappings if m not in refused]
    # Highest priority wins; on a tie the higher role.
    role_mappings.sort(key=lambda m: (m.priority, ROLE_RANK.get(m.role, 0)), reverse=True)
    idp_role_apply(membership=membership, role=role_mappings[0].role if role_mappings else None, state=state,
                   actor=actor)


@transaction.atomic
def role_attribute_apply(
    *, membership: Membership, role: str, state: SamlMemberState, cfg: SamlSettings, created: bool
) -> None:
    """The role attribute's role (``asserted_role``) for this login's member, with group sync's protections: Owner
    only where the IdP may grant it (else skipped and audited); a member JIT just created with it is marked as
    holding the IdP's role."""
    actor = saml_actor(f"SAML role attribute ({cfg.idp_entity_id})")
    if not directory_may_grant(membership.workspace, role):
        _skipped(actor, membership, {"reason": "the IdP may not grant Owner in this workspace",
                                     "role_attribute": cfg.role_attribute})
    elif created:
        state.role_from_idp = True  # made with that role just now
    else:
        idp_role_apply(membership=membership, role=role, state=state, actor=actor)


def _skipped(actor: Actor, membership: Membership, details: dict[str, object]) -> None:
    record_event(actor=actor, action="sso.group_sync_skipped", workspace=membership.workspace,
                 target_type="member", target_id=membership.pk, target_label=membership.user.email, details=details)


MAX_ROLE_VALUES = 20


def asserted_role(*, workspace: Workspace, cfg: SamlSettings, attributes: dict[str, list[str]]) -> str | None:
    """The role the assertion's role attribute gives, through the workspace's role mapping (the same mapping as
    SCIM's ``role``). None when no role attribute is set or the assertion carries no value for it (the role is
    then left to group mappings). Several values: the highest of their roles.

    Raises ``AcsFailure("unknown_role")``, naming the accepted values in its detail, when a value maps to
    nothing and the workspace refuses unknown values: the login is refused rather than given a guessed role.
    """
    if not cfg.role_attribute:
        return None
    values = [v.strip() for v in attributes.get(cfg.role_attribute) or [] if v and v.strip()]
    roles = []
    for value in values[:MAX_ROLE_VALUES]:
        try:
            roles.append(ws.resolve_idp_role(workspace=workspace, value=value))
        except ServiceError as exc:
            raise AcsFailure("unknown_role", exc.message) from None
    return max(roles, key=lambda r: ROLE_RANK.get(r, 0)) if roles else None


@transaction.atomic
def idp_role_apply(*, membership: Membership, role: str | None, state: SamlMemberState, actor: Actor) -> None:
    """Give the member the role its IdP asserts at this login (group mappings or the role attribute).

    ``None`` (the IdP asserts no role): a role the IdP gave earlier returns to the workspace default; a role a
    person gave stays. An Owner made by a person stays an Owner whatever the IdP says (getsentry/sentry#56331),
    and the last active Owner keeps the role. The caller has checked that the IdP may grant ``role``.
    """
    workspace = membership.workspace
    if membership.role == Role.OWNER and not state.role_from_idp:
        return
    target = role
    if target is None:
        if state.role_from_idp and membership.role != workspace.default_role:
            target = workspace.default_role if workspace.default_role != Role.OWNER else Role.MEMBER
        else:
            return
    if target == membership.role:
        state.role_from_idp = role is not None
        return
    try:
        with transaction.atomic():
            ws.membership_change_role(membership=membership, role=target, actor=actor)
    except LastOwnerError:
        _skipped(actor, membership, {"reason": "last active Owner keeps the role", "wanted_role": target})
        return
    state.role_from_idp = role is not None


@transaction.atomic
def group_mapping_create(
    *, workspace: Workspace, actor: Actor, idp_group: str, team: Team | None = None, new_team_name: str = "",
    role: str = "", priority: int = 0,
) -> GroupMapping:
    """Map an IdP group to a team (existing, or created now) and/or an org role."""
    ws.require_capability(actor, workspace, Cap.SETTINGS_MANAGE)
    idp_group = idp_group.strip()
    if not idp_group:
        raise ServiceError("Give the IdP group name exactly as the IdP sends it.", field="idp_group")
    if role and role not in Role.values:
        raise ServiceError(f"Unknown role {role!r}.", field="role")
    if role and not directory_may_grant(workspace, role):
        raise NotAllowed("This workspace does not let the IdP grant Owner (see workspace policy).", field="role")
    if team is not None and team.workspace_id != workspace.pk:
        raise ServiceError("That team belongs to another workspace.", field="team")
    if new_team_name.strip():
        if team is not None:
            raise ServiceError("Choose an existing team or a new team name, not both.", field="new_team_name")
        existing = Team.objects.filter(workspace=workspace, name__iexact=new_team_name.strip()).first()
        team = existing or ws.team_create(workspace=workspace, name=new_team_name, actor=actor)
    if team is None and not role:
        raise ServiceError("A mapping needs a team, a role, or both.", field="team")
    if GroupMapping.objects.filter(workspace=workspace, idp_group=idp_group, team=team).exists():
        raise ServiceError("That mapping already exists.", field="idp_group")
    mapping = GroupMapping.objects.create(workspace=workspace, idp_group=idp_group, team=team, role=role, priority=priority)
    record_event(actor=actor, action="sso.group_mapping_created", workspace=workspace,
                 target_type="group_mapping", target_id=mapping.pk, target_label=idp_group,
                 details={"team": team.name if team else "", "role": role, "priority": priority})
    return mapping


@transaction.atomic
def group_mapping_delete(*, mapping: GroupMapping, actor: Actor) -> None:
    """Remove one mapping; teams and roles it gave stay until the member's next login."""
    ws.require_capability(actor, mapping.workspace, Cap.SETTINGS_MANAGE)
    record_event(actor=actor, action="sso.group_mapping_deleted", workspace=mapping.workspace,
                 target_type="group_mapping", target_id=mapping.pk, target_label=mapping.idp_group,
                 details={"team": mapping.team.name if mapping.team else "", "role": mapping.role})
    mapping.delete()


@transaction.atomic
def group_sync_set(*, workspace: Workspace, actor: Actor, enabled: bool) -> SamlSettings:
    """Turn group sync on or off for this workspace's SSO logins."""
    ws.require_capability(actor, workspace, Cap.SETTINGS_MANAGE)
    cfg = SamlSettings.objects.select_for_update().filter(workspace=workspace).first()
    if cfg is None:
        raise ServiceError("Set up single sign-on first.")
    if cfg.group_sync_enabled == enabled:
        return cfg
    cfg.group_sync_enabled = enabled
    cfg.save(update_fields=["group_sync_enabled"])
    record_event(actor=actor, action="sso.group_sync_changed", workspace=workspace, **workspace_target(workspace),
                 details={"before": {"enabled": not enabled}, "after": {"enabled": enabled}})
    return cfg
