"""Granting and revoking entitlements (``workspaces.entitlements``): what a governance tool and an access review ask.

Each call is one existing use case (``membership_change_role``, ``team_add_member``, ``repository_grant``...), so
the caller's rights, the last Owner, what the IdP owns and the audit event are checked and written exactly as when
a person does it in the portal. Both are idempotent: granting what is held, or revoking what is not, changes
nothing, records nothing and returns False.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import transaction

from audit.record import Actor

from ..entitlements import ROLE_AFTER_REVOKE, EntitlementKind, EntitlementRef, parse_entitlement
from ..exceptions import NotFound, ServiceError
from ..models import Membership, Repository, RepositoryGrant, Team, Workspace
from .memberships import membership_change_role
from .repositories import repository_grant, repository_revoke_grant
from .teams import team_add_member, team_remove_member


def _principal(workspace: Workspace, ref: EntitlementRef, member: Membership | None, team: Team | None) -> None:
    if (member is None) == (team is None):
        raise ServiceError("Name exactly one principal: a member, or (repository permissions only) a team.",
                           field="member")
    if team is not None and ref.kind != EntitlementKind.REPOSITORY:
        raise ServiceError(f"Only members hold {EntitlementKind(ref.kind).label.lower()}s; name a member.", field="team")
    holder = member or team
    if holder is None or holder.workspace_id != workspace.pk:
        raise NotFound("No such member or team in this workspace.", field="member" if member else "team")


def _team_change(change: Callable[..., bool], workspace: Workspace, team_id: int, **kwargs: Any) -> bool:
    """``team_add_member`` or ``team_remove_member`` on the team ``team_id``: the service reads (and locks) the
    row once; an id that names no team of this workspace is the entitlement's ``NotFound``."""
    try:
        return change(team=Team(pk=team_id, workspace=workspace), **kwargs)
    except NotFound as exc:
        raise NotFound(exc.message, field="entitlement") from exc


def _repository(workspace: Workspace, repo_id: int) -> Repository:
    repo = Repository.objects.filter(workspace=workspace, pk=repo_id).first()
    if repo is None:
        raise NotFound(f"No repository {repo_id} in this workspace.", field="entitlement")
    repo.workspace = workspace
    return repo


def _held_grant(repo: Repository, member: Membership | None, team: Team | None) -> RepositoryGrant | None:
    grants = RepositoryGrant.objects.filter(repository=repo)
    grants = grants.filter(team=team) if team is not None else grants.filter(membership=member)
    return grants.select_for_update().first()


@transaction.atomic
def entitlement_grant(
    *, workspace: Workspace, entitlement: str | EntitlementRef, actor: Actor,
    member: Membership | None = None, team: Team | None = None,
) -> bool:
    """Give ``member`` (or, for a repository permission, ``team``) the entitlement; False when already held.

    A role replaces the member's role (a member holds one); a repository permission replaces the holder's other
    permission on that repository (a holder has one per repository)."""
    ref = entitlement if isinstance(entitlement, EntitlementRef) else parse_entitlement(entitlement)
    _principal(workspace, ref, member, team)
    if ref.kind == EntitlementKind.TEAM:
        assert member is not None
        return _team_change(team_add_member, workspace, ref.object_id, membership=member, actor=actor)
    if ref.kind == EntitlementKind.ROLE:
        assert member is not None
        member = Membership.objects.select_for_update().select_related("user", "workspace").get(pk=member.pk)
        if member.role == ref.value:
            return False
        membership_change_role(membership=member, role=ref.value, actor=actor)
        return True
    repo = _repository(workspace, ref.object_id)
    held = _held_grant(repo, member, team)
    if held is not None and held.permission == ref.value:
        return False
    repository_grant(repository=repo, permission=ref.value, actor=actor, team=team, membership=member)
    return True


@transaction.atomic
def entitlement_revoke(
    *, workspace: Workspace, entitlement: str | EntitlementRef, actor: Actor,
    member: Membership | None = None, team: Team | None = None,
) -> bool:
    """Take the entitlement from ``member`` (or ``team``); False when it was not held.

    Revoking a role leaves the role below it (Owner or Manager -> Member, Member -> Collaborator); Collaborator is
    the lowest role and cannot be revoked: deactivate the member to take all access away."""
    ref = entitlement if isinstance(entitlement, EntitlementRef) else parse_entitlement(entitlement)
    _principal(workspace, ref, member, team)
    if ref.kind == EntitlementKind.TEAM:
        assert member is not None
        return _team_change(team_remove_member, workspace, ref.object_id, membership=member, actor=actor)
    if ref.kind == EntitlementKind.ROLE:
        assert member is not None
        member = Membership.objects.select_for_update().select_related("user", "workspace").get(pk=member.pk)
        if member.role != ref.value:
            return False
        after = ROLE_AFTER_REVOKE.get(ref.value)
        if after is None:
            raise ServiceError("Collaborator is the lowest role and cannot be revoked: deactivate the member to "
                               "take their access away.", field="entitlement")
        membership_change_role(membership=member, role=after, actor=actor)
        return True
    repo = _repository(workspace, ref.object_id)
    held = _held_grant(repo, member, team)
    if held is None or held.permission != ref.value:
        return False
    held.repository = repo
    repository_revoke_grant(grant=held, actor=actor)
    return True
