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
subqueries, written once in SQL), so the check stays cheap on the artifact service's hot path.
Hand-written and prepared once per connection (``config.db.CompiledQuery``) because
bench/api_bench.py measured it: compiling the equivalent ORM query cost more CPU than running it,
and planning it cost 0.87 ms against 0.16 ms of execution; with both gone the access check runs at
1.08x the floor's p50 (target 1.5x; docs/benchmarks.md, "Connector API").
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from config.db import CompiledQuery

from .models import PERMISSION_RANK, Membership, Permission, Repository, RepositoryGrant, Team, TeamMembership
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


class Unread(enum.Enum):
    UNREAD = "unread"


UNREAD = Unread.UNREAD


def _rank_sql(column: str) -> str:
    whens = " ".join(f"WHEN '{perm.value}' THEN {rank}" for perm, rank in PERMISSION_RANK.items())
    return f"CASE {column} {whens} ELSE 0 END"


def decision_sql(member: str = "%(member)s", workspace: str = "%(workspace)s", name: str = "%(name)s") -> str:
    """One statement: the repository (by workspace and case-folded name, served by the functional unique index
    ``repository_name_ci_unique_per_workspace``) with the member's best direct grant and best team grant.
    Its columns are ``DecisionRow``'s.

    ``member``, ``workspace`` and ``name`` are SQL expressions: placeholders by default; the access check's
    key lookup passes its own columns and joins this in (``workspaces.api.authentication``), so the key and
    the decision's row come back in one round trip.

    Hand-written because this is the artifact service's hot path: compiling the equivalent ORM query
    (three correlated subqueries) cost more CPU than running it. Portable SQL (PostgreSQL and SQLite).
    """
    repo, grant = Repository._meta.db_table, RepositoryGrant._meta.db_table
    team, link = Team._meta.db_table, TeamMembership._meta.db_table
    rank = _rank_sql("g.permission")
    team_grants = (
        f"FROM {grant} g JOIN {link} tm ON tm.team_id = g.team_id JOIN {team} t ON t.id = g.team_id "
        f"WHERE g.repository_id = r.id AND tm.membership_id = {member}"
    )
    return (
        f"SELECT r.id, r.name, r.environment, "
        f"(SELECT MAX({rank}) FROM {grant} g WHERE g.repository_id = r.id AND g.membership_id = {member}), "
        f"(SELECT MAX({rank}) {team_grants}), "
        f"(SELECT t.name {team_grants} ORDER BY {rank} DESC, t.name LIMIT 1) "
        f"FROM {repo} r WHERE r.workspace_id = {workspace} AND LOWER(r.name) = LOWER({name})"
    )


# The decision with placeholders, built once and prepared once per connection on PostgreSQL: planning
# the three subqueries cost five times running them.
_DECISION = CompiledQuery(lambda conn: decision_sql(), prepare=True)

# What ``decision_sql`` returns for one repository: id, name, environment, the best direct grant's rank,
# the best team grant's rank and that team's name. None: no repository of that name in the workspace.
DecisionRow = tuple[int, str, str, int | None, int | None, str | None] | None


@dataclass(frozen=True)
class PackageDecision:
    allowed: bool
    reason: str
    repository: Repository | None
    # The member's effective permission on the repository ("" when none).
    permission: str = ""
    # Where that permission comes from: "role", "direct grant", "team <name>" ("" when none).
    source: str = ""


def package_access_decision(
    *, membership: Membership, repository_name: str, action: str, row: DecisionRow | Unread = UNREAD
) -> PackageDecision:
    """The one decision. ``membership`` must be active (the caller's authentication checked it).

    ``row``: the decision's row for this member and ``repository_name`` when the caller already read it
    (``decision_sql`` joined into another statement); by default it is read here.
    """
    if action not in NEEDED_PERMISSION:
        raise ValueError(f"unknown package action {action!r}")
    needed = NEEDED_PERMISSION[action].value
    if row is UNREAD:
        row = _DECISION.fetchone(
            {"member": membership.pk, "workspace": membership.workspace_id, "name": repository_name}
        )
    repository = direct_rank = team_rank = team_name = None
    if row is not None:
        repo_id, name, environment, direct_rank, team_rank, team_name = row
        repository = Repository(id=repo_id, workspace_id=membership.workspace_id, name=name, environment=environment)
    if repository is None:
        # A Collaborator cannot list repositories: do not confirm which names exist.
        if can(membership, Cap.REPOSITORIES_LIST):
            return PackageDecision(False, f"No repository named {repository_name!r} in this workspace.", None)
        return PackageDecision(False, f"No grant on repository {repository_name!r}.", None)

    allowed_environments = membership.allowed_environments or []
    if isinstance(allowed_environments, str):  # a single value, as some IdPs send it
        allowed_environments = [allowed_environments]
    limits = [str(e).lower() for e in allowed_environments]
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
    if direct_rank:
        candidates.append((direct_rank, "direct grant"))
    if team_rank:
        candidates.append((team_rank, f"team {team_name!r}"))
    if not candidates:
        return PackageDecision(False, f"No grant on repository {repository.name!r}.", repository)
    rank, source = max(candidates, key=lambda c: c[0])
    permission = _RANK_TO_PERMISSION[rank]
    if rank >= PERMISSION_RANK[NEEDED_PERMISSION[action]]:
        return PackageDecision(True, f"{action} allowed: {permission} via {source}.", repository, permission, source)
    return PackageDecision(
        False, f"{action} needs {needed}; the member has {permission} via {source}.", repository, permission, source
    )
