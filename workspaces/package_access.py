"""May this member pull, push or delete a package in this repository? Decided here, and only here.

The connector API's access check calls ``services.package_access_check``, which asks
``package_access_decision`` and writes the audit event. The rules, in order:

1. The repository is looked up by name (case-insensitively) inside the member's workspace only.
2. The member's allowed environments (a SCIM custom attribute): an empty list means no limit;
   otherwise the repository's name or its environment must be in the list (compared
   case-insensitively). This limits every role, Owners included.
3. The effective permission is the best of: the role (Owners and Managers, who manage
   repositories, hold ``admin`` everywhere), the member's direct grant, and the grants of the
   teams the member belongs to.
4. ``pull`` needs ``read``, ``push`` needs ``write``, ``delete`` needs ``admin``.

The whole decision is one SELECT (the repository with its best direct and team grant as
subqueries), so the check stays cheap on the artifact service's hot path.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Case, IntegerField, OuterRef, Subquery, Value, When
from django.db.models.functions import Lower

from .models import PERMISSION_RANK, Membership, Permission, Repository, RepositoryGrant
from .roles import Cap, can


class PackageAction:
    PULL = "pull"
    PUSH = "push"
    DELETE = "delete"
    CHOICES = (PULL, PUSH, DELETE)


NEEDED_PERMISSION = {
    PackageAction.PULL: Permission.READ,
    PackageAction.PUSH: Permission.WRITE,
    PackageAction.DELETE: Permission.ADMIN,
}
# The audit action written when the answer is yes; every "no" is ``package.denied``.
ALLOWED_EVENT = {
    PackageAction.PULL: "package.pulled",
    PackageAction.PUSH: "package.pushed",
    PackageAction.DELETE: "package.deleted",
}
DENIED_EVENT = "package.denied"

_RANK_TO_PERMISSION = {rank: perm.value for perm, rank in PERMISSION_RANK.items()}


def _rank_expr() -> Case:
    return Case(
        *(When(permission=perm.value, then=Value(rank)) for perm, rank in PERMISSION_RANK.items()),
        default=Value(0),
        output_field=IntegerField(),
    )


@dataclass(frozen=True)
class PackageDecision:
    allowed: bool
    reason: str
    repository: Repository | None
    # The member's effective permission on the repository ("" when none).
    permission: str = ""
    # Where that permission comes from: "role", "direct grant", "team <name>" ("" when none).
    source: str = ""


def package_access_decision(*, membership: Membership, repository_name: str, action: str) -> PackageDecision:
    """The one decision. ``membership`` must be active (the caller's authentication checked it)."""
    if action not in NEEDED_PERMISSION:
        raise ValueError(f"unknown package action {action!r}")
    needed = NEEDED_PERMISSION[action].value
    team_grants = RepositoryGrant.objects.filter(
        repository=OuterRef("pk"), team__team_memberships__membership=membership
    ).annotate(rank=_rank_expr()).order_by("-rank")
    direct_grant = RepositoryGrant.objects.filter(repository=OuterRef("pk"), membership=membership).annotate(
        rank=_rank_expr()
    )
    # Lower(name) matches the functional unique index repository_name_ci_unique_per_workspace
    # (``name__iexact`` compiles to UPPER() on PostgreSQL, which that index cannot serve).
    repository = (
        Repository.objects.annotate(
            lname=Lower("name"),
            direct_rank=Subquery(direct_grant.values("rank")[:1]),
            team_rank=Subquery(team_grants.values("rank")[:1]),
            team_name=Subquery(team_grants.values("team__name")[:1]),
        )
        .filter(workspace_id=membership.workspace_id, lname=repository_name.lower())
        .first()
    )
    if repository is None:
        # A Collaborator cannot list repositories: do not confirm which names exist.
        if can(membership, Cap.REPOSITORIES_LIST):
            return PackageDecision(False, f"No repository named {repository_name!r} in this workspace.", None)
        return PackageDecision(False, f"No grant on repository {repository_name!r}.", None)

    limits = [str(e).lower() for e in (membership.allowed_environments or [])]
    if limits and repository.name.lower() not in limits and (
        not repository.environment or repository.environment.lower() not in limits
    ):
        where = f" (environment {repository.environment!r})" if repository.environment else ""
        return PackageDecision(
            False, f"Repository {repository.name!r}{where} is outside the member's allowed environments.", repository
        )

    candidates: list[tuple[int, str]] = []
    if can(membership, Cap.REPOSITORY_MANAGE):
        candidates.append((PERMISSION_RANK[Permission.ADMIN], f"role {membership.role}"))
    if repository.direct_rank:
        candidates.append((repository.direct_rank, "direct grant"))
    if repository.team_rank:
        candidates.append((repository.team_rank, f"team {repository.team_name!r}"))
    if not candidates:
        return PackageDecision(False, f"No grant on repository {repository.name!r}.", repository)
    rank, source = max(candidates, key=lambda c: c[0])
    permission = _RANK_TO_PERMISSION[rank]
    if rank >= PERMISSION_RANK[needed]:
        return PackageDecision(True, f"{action} allowed: {permission} via {source}.", repository, permission, source)
    return PackageDecision(
        False, f"{action} needs {needed}; the member has {permission} via {source}.", repository, permission, source
    )
