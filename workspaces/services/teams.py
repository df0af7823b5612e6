"""Teams (the SCIM Group resource): create, rename, delete, and their member lists."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction
from django.db.models import QuerySet

from audit.record import Actor, record_event

from ..exceptions import AlreadyExists, IdpOwned, NotFound, ServiceError
from ..models import Membership, Team, TeamMembership, TeamSource, Workspace
from ..ownership import (
    is_directory,
    may_override_idp,
    require_portal_may_add_to_team,
    team_membership_owned,
    with_saml_mapped,
)
from ..roles import Cap
from ._common import require_capability, touch


@transaction.atomic
def team_create(
    *, workspace: Workspace, name: str, actor: Actor, description: str = "", external_id: str = ""
) -> Team:
    require_capability(actor, workspace, Cap.TEAM_MANAGE)
    name = name.strip()
    if not name:
        raise ServiceError("A team needs a name.", field="name")
    if Team.objects.filter(workspace=workspace, name__iexact=name).exists():
        raise AlreadyExists(f"A team named {name!r} already exists.", field="name")
    team = Team.objects.create(
        workspace=workspace, name=name, description=description, external_id=external_id,
        scim_managed=actor.kind == "scim_client",  # a SCIM group push: the IdP owns its member list
    )
    record_event(
        actor=actor, action="team.created", workspace=workspace,
        target_type="team", target_id=team.pk, target_label=name, details={"name": name},
    )
    return team


@transaction.atomic
def team_rename(*, team: Team, name: str, actor: Actor) -> Team:
    require_capability(actor, team.workspace, Cap.TEAM_MANAGE)
    name = name.strip()
    if not name:
        raise ServiceError("A team needs a name.", field="name")
    if name == team.name:
        return team
    if Team.objects.filter(workspace_id=team.workspace_id, name__iexact=name).exclude(pk=team.pk).exists():
        raise AlreadyExists(f"A team named {name!r} already exists.", field="name")
    before = team.name
    team.name = name
    touch(team, "name")
    record_event(
        actor=actor, action="team.renamed", workspace=team.workspace,
        target_type="team", target_id=team.pk, target_label=name,
        details={"before": {"name": before}, "after": {"name": name}},
    )
    return team


@transaction.atomic
def team_delete(*, team: Team, actor: Actor) -> None:
    require_capability(actor, team.workspace, Cap.TEAM_MANAGE)
    record_event(
        actor=actor, action="team.deleted", workspace=team.workspace,
        target_type="team", target_id=team.pk, target_label=team.name,
        details={"members": team.team_memberships.count()},
    )
    team.delete()


def _team_member_event(actor: Actor, team: Team, membership: Membership, action: str, source: str) -> None:
    record_event(
        actor=actor, action=action, workspace=team.workspace,
        target_type="team", target_id=team.pk, target_label=team.name,
        details={"member": membership.user.email, "member_id": membership.pk, "source": source},
    )


def _locked_team(teams: QuerySet[Team], team: Team) -> Team:
    """``team``'s row from ``teams`` (locked), if it is still a team of ``team.workspace``: callers may pass
    ``Team(pk=<id>, workspace=<workspace>)`` for a team named by id, and a team that is gone, or another
    workspace's, is ``NotFound``."""
    workspace = team.workspace
    found = teams.filter(pk=team.pk, workspace_id=workspace.pk).first()
    if found is None:
        raise NotFound(f"No team {team.pk} in this workspace.", field="team")
    found.workspace = workspace  # the caller's instance: no query for it
    return found


@transaction.atomic
def team_add_members(
    *, team: Team, memberships: Iterable[Membership], actor: Actor, source: str = TeamSource.MANUAL
) -> int:
    """Add several members in one transaction (a SCIM group PATCH with thousands of members is one call)."""
    require_capability(actor, team.workspace, Cap.TEAM_MANAGE)
    # Locked (read-modify-write on membership lists), with whether a SAML group maps to it (the ownership check).
    team = _locked_team(with_saml_mapped(Team.objects.select_for_update()), team)
    memberships = list(memberships)
    if memberships:
        require_portal_may_add_to_team(actor, team)
    # Only the named members' rows: a team of thousands is not read to add one.
    existing = set(team.team_memberships.filter(membership_id__in=[m.pk for m in memberships])
                   .values_list("membership_id", flat=True)) if memberships else set()
    added = 0
    for membership in memberships:
        if membership.workspace_id != team.workspace_id:
            raise ServiceError("That member belongs to another workspace.")
        if membership.pk in existing or (membership.detached_at is not None and is_directory(actor)):
            continue  # a member an Owner detached from the IdP: its teams are the portal's now
        TeamMembership.objects.create(team=team, membership=membership, source=source)
        existing.add(membership.pk)
        _team_member_event(actor, team, membership, "team.member_added", source)
        added += 1
    if added:
        touch(team)
    return added


def team_add_member(*, team: Team, membership: Membership, actor: Actor, source: str = TeamSource.MANUAL) -> bool:
    return team_add_members(team=team, memberships=[membership], actor=actor, source=source) == 1


@transaction.atomic
def team_remove_members(*, team: Team, memberships: Iterable[Membership], actor: Actor, source: str = "manual") -> int:
    require_capability(actor, team.workspace, Cap.TEAM_MANAGE)
    team = _locked_team(Team.objects.select_for_update(), team)
    removed = 0
    portal = not is_directory(actor)
    overrides = portal and may_override_idp(actor, team.workspace)
    for membership in memberships:
        if not portal and membership.detached_at is not None:
            continue
        row = TeamMembership.objects.filter(team=team, membership=membership)
        existing = row.first() if portal else None
        if existing is not None:
            existing.membership = membership  # the caller's instance: no query for it
            reason = "" if overrides else team_membership_owned(existing)
            if reason:
                raise IdpOwned(reason, field="member", owner="SCIM" if existing.source == TeamSource.SCIM else "SAML")
        deleted, _ = row.delete()
        if deleted:
            _team_member_event(actor, team, membership, "team.member_removed", source)
            removed += 1
    if removed:
        touch(team)
    return removed


def team_remove_member(*, team: Team, membership: Membership, actor: Actor, source: str = "manual") -> bool:
    return team_remove_members(team=team, memberships=[membership], actor=actor, source=source) == 1
