"""Repositories and their grants (team or member -> read/write/admin)."""

from __future__ import annotations

from django.db import transaction

from audit.record import Actor, record_event

from ..exceptions import AlreadyExists, ServiceError
from ..models import Membership, Permission, Repository, RepositoryGrant, Team, Workspace
from ..roles import Cap
from ._common import require_capability


@transaction.atomic
def repository_create(
    *, workspace: Workspace, name: str, actor: Actor, description: str = "", environment: str = ""
) -> Repository:
    require_capability(actor, workspace, Cap.REPOSITORY_MANAGE)
    name = name.strip()
    if not name:
        raise ServiceError("A repository needs a name.", field="name")
    if Repository.objects.filter(workspace=workspace, name__iexact=name).exists():
        raise AlreadyExists(f"A repository named {name!r} already exists.", field="name")
    repo = Repository.objects.create(
        workspace=workspace, name=name, description=description, environment=environment.strip()
    )
    record_event(
        actor=actor, action="repository.created", workspace=workspace,
        target_type="repository", target_id=repo.pk, target_label=name,
        details={"environment": repo.environment},
    )
    return repo


@transaction.atomic
def repository_grant(
    *,
    repository: Repository,
    permission: str,
    actor: Actor,
    team: Team | None = None,
    membership: Membership | None = None,
) -> RepositoryGrant:
    """Give (or change) a team's or a member's permission on a repository."""
    require_capability(actor, repository.workspace, Cap.REPOSITORY_MANAGE)
    if (team is None) == (membership is None):
        raise ServiceError("Grant to exactly one team or one member.")
    if permission not in Permission.values:
        raise ServiceError(f"Unknown permission {permission!r}.", field="permission")
    grantee: Team | Membership | None = team or membership
    if grantee is None or grantee.workspace_id != repository.workspace_id:
        raise ServiceError("That grantee belongs to another workspace.")
    grant, created = RepositoryGrant.objects.get_or_create(
        repository=repository, team=team, membership=membership, defaults={"permission": permission}
    )
    before = None if created else grant.permission
    if not created and grant.permission == permission:
        return grant
    if not created:
        grant.permission = permission
        grant.save(update_fields=["permission"])
    record_event(
        actor=actor, action="repository.grant_changed", workspace=repository.workspace,
        target_type="repository", target_id=repository.pk, target_label=repository.name,
        details={
            "grantee": grant.grantee_label,
            "before": {"permission": before},
            "after": {"permission": permission},
        },
    )
    return grant


@transaction.atomic
def repository_revoke_grant(*, grant: RepositoryGrant, actor: Actor) -> None:
    repository = grant.repository
    require_capability(actor, repository.workspace, Cap.REPOSITORY_MANAGE)
    record_event(
        actor=actor, action="repository.grant_removed", workspace=repository.workspace,
        target_type="repository", target_id=repository.pk, target_label=repository.name,
        details={"grantee": grant.grantee_label, "before": {"permission": grant.permission}},
    )
    grant.delete()
