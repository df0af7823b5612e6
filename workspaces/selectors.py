"""Reads of tenant data, always scoped by workspace and by what the viewer may see. N+1-safe."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import BooleanField, Case, Count, Exists, OuterRef, Prefetch, Q, QuerySet, Value, When
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from .credentials import hash_secret
from .entitlements import KIND_RANK, PERMISSION_ORDER, ROLE_ORDER, TEAM_SOURCE, EntitlementKind, GrantSource
from .models import (
    AccessReview,
    AccessReviewItem,
    ApiKey,
    DeprovisionJob,
    DeprovisionStatus,
    DomainClaim,
    Invitation,
    Membership,
    Permission,
    Repository,
    RepositoryGrant,
    ReviewDecision,
    ReviewOutcome,
    Team,
    TeamMembership,
    User,
    Workspace,
)
from .ownership import idp_owned, team_membership_owned, team_owned_reason
from .policy import personal_key_sso_problem, personal_key_sso_until
from .roles import Cap, Role, can


def workspaces_of_user(user: User) -> QuerySet[Membership]:
    return Membership.objects.filter(user=user).select_related("workspace").order_by("workspace__name")


def members_visible_to(viewer: Membership) -> QuerySet[Membership]:
    """Owners/Managers: everyone; Members: public members and themselves; Collaborators: themselves."""
    qs = Membership.objects.filter(workspace_id=viewer.workspace_id).select_related("user")
    if can(viewer, Cap.MEMBERS_VIEW_PRIVATE):
        pass
    elif can(viewer, Cap.MEMBERS_LIST):
        qs = qs.filter(Q(visibility="public") | Q(pk=viewer.pk))
    else:
        qs = qs.filter(pk=viewer.pk)
    return qs.order_by("user__email")


MEMBERS_PAGE_SIZE = 50


@dataclass(frozen=True)
class MemberPage:
    members: list[Membership]
    next_after: int | None  # the last row's id when another page follows


def member_search(viewer: Membership, filters: dict[str, str]) -> QuerySet[Membership]:
    """The members page's rows: what ``viewer`` may see, narrowed by the search and filters
    (``MemberSearchForm``), each row annotated with its two-factor state in the same SELECT."""
    qs = _with_two_factor(members_visible_to(viewer))
    text = (filters.get("q") or "").strip()
    if text:
        qs = qs.filter(
            Q(user__email__icontains=text) | Q(directory_email__icontains=text) | Q(display_name__icontains=text)
            | Q(given_name__icontains=text) | Q(family_name__icontains=text) | Q(user__full_name__icontains=text)
        )
    if filters.get("role"):
        qs = qs.filter(role=filters["role"])
    status = filters.get("status")
    if status == "invited":
        qs = qs.filter(consent_pending_since__isnull=False)
    elif status:
        qs = qs.filter(is_active=status == "active", consent_pending_since__isnull=True)
    if filters.get("two_factor"):
        # A member pending consent has no known 2FA state here (member_two_factor): it matches neither filter.
        confirmed = Exists(TOTPDevice.objects.filter(user_id=OuterRef("user_id"), confirmed=True))
        qs = qs.filter(confirmed if filters["two_factor"] == "on" else ~confirmed, consent_pending_since__isnull=True)
    source = filters.get("source")
    if source == "scim":
        qs = qs.filter(detached_at__isnull=True).exclude(scim_username="")
    elif source == "saml":
        qs = qs.filter(detached_at__isnull=True, scim_username="").exclude(saml_subject="")
    elif source == "portal":
        qs = qs.filter(Q(detached_at__isnull=False) | Q(scim_username="", saml_subject=""))
    if filters.get("sso"):
        qs = qs.exclude(saml_subject="") if filters["sso"] == "linked" else qs.filter(saml_subject="")
    return qs


def members_page(
    viewer: Membership, filters: dict[str, str], *, after: int | None = None, limit: int = MEMBERS_PAGE_SIZE
) -> MemberPage:
    """One page of ``member_search`` in email order, after the member ``after`` (keyset on (email, id): as
    fast on the last page as on the first, and stable while members are added)."""
    qs = member_search(viewer, filters).order_by("user__email", "pk")
    if after is not None:
        anchor = Membership.objects.filter(workspace_id=viewer.workspace_id, pk=after).values_list(
            "user__email", flat=True
        ).first()
        if anchor is not None:
            qs = qs.filter(Q(user__email__gt=anchor) | Q(user__email=anchor, pk__gt=after))
    rows = list(qs[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return MemberPage(rows, rows[-1].pk if more else None)


def member_counts(workspace: Workspace) -> dict[str, int]:
    """Active, deactivated and invited (pending consent) members (the overview's figures), in one query."""
    pending = Q(consent_pending_since__isnull=False)
    counts = Membership.objects.filter(workspace=workspace).aggregate(
        active=Count("pk", filter=Q(is_active=True) & ~pending), deactivated=Count("pk", filter=Q(is_active=False) & ~pending),
        invited=Count("pk", filter=pending),
    )
    return {k: v or 0 for k, v in counts.items()}


def member_for_viewer(viewer: Membership, member_id: int) -> Membership | None:
    return members_visible_to(viewer).filter(pk=member_id).first()


def teams_visible_to(viewer: Membership) -> QuerySet[Team]:
    qs = Team.objects.filter(workspace_id=viewer.workspace_id)
    if not can(viewer, Cap.TEAMS_LIST):
        # By id, not by joining the viewer's row: a join would also narrow the member count to that one row.
        mine = TeamMembership.objects.filter(membership=viewer).values("team_id")
        qs = qs.filter(pk__in=mine) if can(viewer, Cap.MEMBERS_LIST) else qs.none()
    return qs.annotate(member_count=Count("team_memberships")).order_by("name")


def team_for_viewer(viewer: Membership, team_id: int) -> Team | None:
    return teams_visible_to(viewer).filter(pk=team_id).first()


def team_members(team: Team, viewer: Membership) -> QuerySet[Membership]:
    return members_visible_to(viewer).filter(team_memberships__team=team)


def repositories_visible_to(viewer: Membership) -> QuerySet[Repository]:
    """Collaborators see only repositories granted to them directly.

    Each repository's grants the viewer may see are prefetched into ``visible_grants`` (the rule of
    ``repository_grants_visible_to``, shared with the connector API): a grant never names a private
    member, or a team, that the viewer may not see.
    """
    workspace = viewer.workspace
    qs = Repository.objects.filter(workspace_id=viewer.workspace_id)
    if not can(viewer, Cap.REPOSITORIES_LIST):
        qs = qs.filter(grants__membership=viewer)
    grants = repository_grants_visible_to(workspace=workspace, viewer=viewer)
    return qs.prefetch_related(Prefetch("grants", queryset=grants, to_attr="visible_grants")).order_by("name").distinct()


def api_keys_for(viewer: Membership) -> QuerySet[ApiKey]:
    """One's own personal keys, plus the workspace's service keys for those who manage them."""
    mine = Q(membership=viewer)
    if can(viewer, Cap.APIKEY_SERVICE):
        mine |= Q(membership__isnull=True)
    return (
        ApiKey.objects.filter(mine, workspace_id=viewer.workspace_id)
        .select_related("membership__user").order_by("-created_at")
    )


@dataclass(frozen=True)
class ApiKeyRow:
    """A key as the API keys page shows it: who it acts as, and (personal keys in a SAML-only workspace) whether
    its member's SSO sign-in authorises it now and until when."""

    key: ApiKey
    acts_as: str  # the member's email; "" for a service key
    sso_bound: bool  # the workspace enforces SAML-only and this is a personal key
    sso_authorised: bool
    sso_until: datetime | None


def api_key_rows_for(viewer: Membership, now: datetime) -> list[ApiKeyRow]:
    """``api_keys_for`` with each key's kind and SSO authorisation (``workspaces.policy``), one query."""
    workspace = viewer.workspace
    rows = []
    for key in api_keys_for(viewer):
        member = key.membership
        if member is None:
            rows.append(ApiKeyRow(key, "", False, False, None))
            continue
        rows.append(ApiKeyRow(
            key, member.user.email, workspace.saml_only, not personal_key_sso_problem(workspace, member, now),
            personal_key_sso_until(workspace, member),
        ))
    return rows


def active_owner_count(workspace: Workspace) -> int:
    return Membership.objects.filter(
        workspace=workspace, role="owner", is_active=True, consent_pending_since__isnull=True
    ).count()


# ----------------------------------------------------------------------------- connector API reads
# ``viewer`` is the member behind a personal API key; None means a workspace service key, which
# sees the whole workspace (its scopes were checked by the API's permission class).


def _with_two_factor(qs: QuerySet[Membership]) -> QuerySet[Membership]:
    """Annotate ``has_confirmed_totp`` (read by ``member_two_factor``) in the same SELECT: no query per row.

    NULL for a member pending consent: the workspace learns nothing of an account it has not been let into.
    """
    return qs.annotate(
        has_confirmed_totp=Case(
            When(consent_pending_since__isnull=False, then=Value(None)),
            default=Exists(TOTPDevice.objects.filter(user_id=OuterRef("user_id"), confirmed=True)),
            output_field=BooleanField(null=True),
        )
    )


def member_two_factor(membership: Membership) -> bool | None:
    """Whether the member's account has 2FA, as the workspace may know it: None (unknown) while the member is
    pending consent, since the account is not yet the workspace's to inspect."""
    if membership.consent_pending:
        return None
    annotated = getattr(membership, "has_confirmed_totp", None)
    return bool(annotated) if annotated is not None else membership.user.two_factor_enabled


def member_last_login(membership: Membership) -> Any:
    """The member's last sign-in to this workspace; None while pending consent."""
    return None if membership.consent_pending else membership.last_login_at


def _visible_team_ids(workspace: Workspace, viewer: Membership | None) -> QuerySet[Team, Any]:
    if viewer is None:
        return Team.objects.filter(workspace=workspace).values("pk")
    return teams_visible_to(viewer).values("pk")


def _visible_members(workspace: Workspace, viewer: Membership | None) -> QuerySet[Membership]:
    if viewer is None:
        return Membership.objects.filter(workspace=workspace).select_related("user")
    return members_visible_to(viewer)


def visible_members(workspace: Workspace, viewer: Membership | None) -> QuerySet[Membership]:
    """Members of ``workspace`` the viewer may see (``viewer`` None: a service key, everyone); nobody for a viewer of
    another workspace. The roster, the grants list and the principal a grant names all use it."""
    return _visible_members(workspace, viewer).filter(workspace=workspace)


def api_members(*, workspace: Workspace, viewer: Membership | None) -> QuerySet[Membership]:
    """The roster a key may read, inactive members included (connectors sync them as disabled).

    Each member's teams are prefetched into ``visible_teams`` (only teams the viewer may see).
    """
    team_links = (
        TeamMembership.objects.filter(team_id__in=_visible_team_ids(workspace, viewer))
        .select_related("team")
        .order_by("team__name")
    )
    return _with_two_factor(visible_members(workspace, viewer)).prefetch_related(Prefetch("team_memberships", queryset=team_links, to_attr="visible_teams"))


def api_teams(*, workspace: Workspace, viewer: Membership | None) -> QuerySet[Team]:
    """Teams a key may read, each with its members the viewer may see prefetched into ``visible_members``."""
    qs = Team.objects.filter(workspace=workspace) if viewer is None else teams_visible_to(viewer)
    links = (
        TeamMembership.objects.filter(membership__in=_visible_members(workspace, viewer).values("pk"))
        .select_related("membership__user")
        .order_by("membership__user__email")
    )
    return qs.filter(workspace=workspace).prefetch_related(
        Prefetch("team_memberships", queryset=links, to_attr="visible_members")
    )


def api_repositories(*, workspace: Workspace, viewer: Membership | None) -> QuerySet[Repository]:
    """Repositories a key may read, with the grants whose grantee the viewer may see (``visible_grants``).

    A Member does not learn private members or other teams through grants; a Collaborator sees
    only repositories granted to it, and only its own grants.
    """
    if viewer is not None and viewer.workspace_id != workspace.pk:
        return Repository.objects.none()  # a viewer of another workspace sees nothing here (as api_members)
    if viewer is None or can(viewer, Cap.REPOSITORIES_LIST):
        qs = Repository.objects.filter(workspace=workspace)
    else:
        qs = Repository.objects.filter(workspace=workspace, pk__in=RepositoryGrant.objects.filter(membership=viewer).values("repository_id"))
    grants = repository_grants_visible_to(workspace=workspace, viewer=viewer)
    return qs.prefetch_related(Prefetch("grants", queryset=grants, to_attr="visible_grants"))


def repository_grants_visible_to(*, workspace: Workspace, viewer: Membership | None) -> QuerySet[RepositoryGrant]:
    """Repository grants whose grantee the viewer may see: the one rule for web pages and the API.

    A grant to a member is visible only if that member is (``members_visible_to``: private members
    only to those with ``Cap.MEMBERS_VIEW_PRIVATE``); a grant to a team only if the team is
    (``teams_visible_to``). ``viewer`` None is a workspace service key, which sees every grant.
    """
    return RepositoryGrant.objects.filter(
        Q(team_id__in=_visible_team_ids(workspace, viewer))
        | Q(membership_id__in=_visible_members(workspace, viewer).values("pk")),
        repository__workspace=workspace,
    ).select_related("team", "membership__user").order_by("pk")


# ----------------------------------------------------------------------------- deprovisioning


def deprovision_counts(workspace: Workspace | None = None) -> dict[str, int]:
    """Jobs per status (all four keys present), for one workspace or all."""
    qs = DeprovisionJob.objects.all() if workspace is None else DeprovisionJob.objects.filter(workspace=workspace)
    counts = dict.fromkeys(DeprovisionStatus.values, 0)
    counts.update({row["status"]: row["n"] for row in qs.values("status").annotate(n=Count("pk")).order_by()})
    return counts


def deprovision_jobs_open(workspace: Workspace | None = None, limit: int = 200) -> QuerySet[DeprovisionJob]:
    """Pending, running and failed jobs (what needs attention), failed first, oldest first."""
    qs = DeprovisionJob.objects.exclude(status=DeprovisionStatus.DONE).select_related("workspace")
    if workspace is not None:
        qs = qs.filter(workspace=workspace)
    failed_first = Case(When(status=DeprovisionStatus.FAILED, then=Value(0)), default=Value(1))
    return qs.order_by(failed_first, "created_at", "pk")[:limit]


def deprovision_jobs_recent_done(workspace: Workspace, limit: int = 20) -> QuerySet[DeprovisionJob]:
    return DeprovisionJob.objects.filter(workspace=workspace, status=DeprovisionStatus.DONE).order_by(
        "-finished_at", "-pk"
    )[:limit]


# ----------------------------------------------------------------------------- invitations


def invitation_by_token(token: str) -> Invitation | None:
    """The invitation a link carries, found by the token's hash (a 256-bit secret: its hash reveals nothing and
    cannot be guessed, so the lookup needs no constant-time comparison). Resolves to exactly one workspace's row."""
    if not token or len(token) > 128:
        return None
    return (
        Invitation.objects.select_related("workspace", "membership__user")
        .filter(token_hash=hash_secret(token)).first()
    )


def invitation_problem(invitation: Invitation) -> str:
    """Why this link no longer works, said so the person knows what to do; empty when it works."""
    ask = f"Ask an Owner of {invitation.workspace.name} to send you a new invitation."
    if invitation.accepted_at is not None:
        return f"This invitation was already used. If you still cannot open the workspace, {ask[0].lower()}{ask[1:]}"
    if invitation.revoked_at is not None:
        return f"This invitation was withdrawn or replaced by a newer one. {ask}"
    if invitation.expires_at <= timezone.now():
        return f"This invitation expired on {invitation.expires_at:%Y-%m-%d %H:%M} UTC. {ask}"
    return ""


def invitation_sets_password(invitation: Invitation) -> bool:
    """The invitation creates the person's first password (a new account the workspace made, with none yet); any
    other invitation is accepted by signing in as the account."""
    membership = invitation.membership
    return not membership.consent_pending and not membership.user.has_usable_password()


def invitations_open(workspace: Workspace) -> QuerySet[Invitation]:
    """Invitations not yet accepted or revoked (expired ones included, to be resent), newest first."""
    return (
        Invitation.objects.filter(workspace=workspace, accepted_at__isnull=True, revoked_at__isnull=True)
        .select_related("membership__user").order_by("-created_at", "-pk")
    )


def domain_claims_of(workspace: Workspace) -> QuerySet[DomainClaim]:
    """The workspace's claims, for its domains page and ``manage.py workspace_domain list``."""
    return DomainClaim.objects.filter(workspace=workspace).order_by("domain")


# ----------------------------------------------------------------------------- entitlements and grants (governance)


@dataclass(frozen=True)
class EntitlementRow:
    """One grantable entitlement (``workspaces.entitlements``) with where it lives."""

    id: str
    kind: str
    value: str
    label: str
    resource_type: str
    resource_id: int | None
    resource_name: str
    idp_owned: str  # why only the IdP adds holders (a team it pushes or syncs), or ""
    position: tuple[int, int, int]


@dataclass(frozen=True)
class GrantRow:
    """An entitlement held by a member (or, for a repository permission, a team), and who put it there."""

    entitlement: str
    kind: str
    label: str
    principal_type: str  # "member" or "team"
    principal_id: int
    principal_label: str
    principal_active: bool | None  # None for a team
    source: str
    idp_owned: str  # why the portal may not revoke it (workspaces.ownership), or ""
    granted_at: datetime | None
    position: tuple[int, int]

    @property
    def id(self) -> str:
        return f"{self.entitlement}/{self.principal_type}:{self.principal_id}"


_ROLE, _TEAM, _REPOSITORY = (KIND_RANK[k] for k in (EntitlementKind.ROLE, EntitlementKind.TEAM,
                                                        EntitlementKind.REPOSITORY))


def _member_principal(m: Membership) -> dict[str, Any]:
    return {"principal_type": "member", "principal_id": m.pk, "principal_label": m.user.email,
            "principal_active": m.is_active and not m.consent_pending}


def _role_grant(m: Membership) -> GrantRow:
    """A member's role as a grant (``m.user`` loaded)."""
    return GrantRow(
        entitlement=f"role:{m.role}", kind=EntitlementKind.ROLE, label=Role(m.role).label, **_member_principal(m),
        source=GrantSource.IDP_ROLE if m.role_from_idp and m.detached_at is None else GrantSource.MANUAL,
        idp_owned=idp_owned(m, "role"), granted_at=None, position=(_ROLE, m.pk),
    )


def _team_grant(tm: TeamMembership) -> GrantRow:
    """A team membership as a grant (``tm.team`` and ``tm.membership.user`` loaded)."""
    return GrantRow(
        entitlement=f"team:{tm.team_id}", kind=EntitlementKind.TEAM, label=f"Member of team {tm.team.name}",
        **_member_principal(tm.membership), source=TEAM_SOURCE.get(tm.source, GrantSource.MANUAL),
        idp_owned=team_membership_owned(tm), granted_at=tm.created_at, position=(_TEAM, tm.pk),
    )


def _repository_grant(g: RepositoryGrant) -> GrantRow:
    """A repository grant (``g.repository`` and its team, or its member's user, loaded)."""
    if g.team_id is not None:
        assert g.team is not None
        principal: dict[str, Any] = {"principal_type": "team", "principal_id": g.team_id,
                                     "principal_label": g.team.name, "principal_active": None}
    else:
        assert g.membership is not None  # a grant has exactly one grantee (a check constraint)
        principal = _member_principal(g.membership)
    return GrantRow(
        entitlement=f"repository:{g.repository_id}:{g.permission}", kind=EntitlementKind.REPOSITORY,
        label=f"{Permission(g.permission).label} on {g.repository.name}", **principal, source=GrantSource.MANUAL,
        idp_owned="", granted_at=g.created_at, position=(_REPOSITORY, g.pk),
    )


def entitlements_page(
    *, workspace: Workspace, viewer: Membership | None, after: tuple[int, ...] | None, limit: int,
    kind: str | None = None,
) -> tuple[list[EntitlementRow], bool]:
    """One keyset page of the workspace's entitlements (roles, then teams, then repository permissions, by id),
    and whether more follow. Teams and repositories are those the viewer may see."""
    start = tuple(after) if after else (-1, -1, -1)
    rows: list[EntitlementRow] = []
    want = limit + 1
    if kind in (None, EntitlementKind.ROLE) and start[0] <= _ROLE:
        for index, role in enumerate(ROLE_ORDER):
            position = (_ROLE, index, 0)
            if position > start:
                rows.append(EntitlementRow(
                    id=f"role:{role}", kind=EntitlementKind.ROLE, value=role, label=Role(role).label,
                    resource_type="workspace", resource_id=workspace.pk, resource_name=workspace.name, idp_owned="",
                    position=position,
                ))
    if len(rows) < want and kind in (None, EntitlementKind.TEAM) and start[0] <= _TEAM:
        after_id = start[1] if start[0] == _TEAM else -1
        teams = (
            Team.objects.filter(workspace=workspace, pk__in=_visible_team_ids(workspace, viewer), pk__gt=after_id)
            # saml's GroupMapping, through its reverse relation (this app does not import saml)
            .annotate(saml_synced=Exists(Team.objects.filter(pk=OuterRef("pk"), saml_group_mappings__isnull=False)))
            .order_by("pk")[: want - len(rows)]
        )
        for team in teams:
            owned = team_owned_reason(scim=team.scim_managed, saml=team.saml_synced)
            rows.append(EntitlementRow(
                id=f"team:{team.pk}", kind=EntitlementKind.TEAM, value="member", label=f"Member of team {team.name}",
                resource_type="team", resource_id=team.pk, resource_name=team.name, idp_owned=owned,
                position=(_TEAM, team.pk, 0),
            ))
    if len(rows) < want and kind in (None, EntitlementKind.REPOSITORY):
        after_id, after_perm = (start[1], start[2]) if start[0] == _REPOSITORY else (-1, -1)
        repos = (
            api_repositories(workspace=workspace, viewer=viewer).prefetch_related(None)
            .filter(pk__gte=after_id).order_by("pk")[: (want - len(rows)) // len(PERMISSION_ORDER) + 2]
        )
        for repo in repos:
            for index, permission in enumerate(PERMISSION_ORDER):
                if (repo.pk, index) <= (after_id, after_perm):
                    continue
                rows.append(EntitlementRow(
                    id=f"repository:{repo.pk}:{permission}", kind=EntitlementKind.REPOSITORY, value=permission,
                    label=f"{Permission(permission).label} on {repo.name}", resource_type="repository",
                    resource_id=repo.pk, resource_name=repo.name, idp_owned="", position=(_REPOSITORY, repo.pk, index),
                ))
    return rows[:limit], len(rows) > limit


def grants_page(
    *, workspace: Workspace, viewer: Membership | None, after: tuple[int, ...] | None, limit: int,
    kind: str | None = None, member_id: int | None = None, team_id: int | None = None, entitlement: Any = None,
) -> tuple[list[GrantRow], bool]:
    """One keyset page of grants (role grants by member id, team memberships by row id, repository grants by row id),
    and whether more follow.

    Consistent under concurrent changes: each grant has a fixed place in the order, so a walk never repeats one, and
    a grant that exists for the whole walk is listed exactly once. Filters: ``member_id`` (held by that member),
    ``team_id`` (held by that team: repository permissions), ``entitlement`` (an ``EntitlementRef``: its holders).
    """
    start = tuple(after) if after else (-1, -1)
    rows: list[GrantRow] = []
    want = limit + 1
    ent_kind = entitlement.kind if entitlement is not None else None

    def wanted(k: str) -> bool:
        return kind in (None, k) and ent_kind in (None, k)

    members = visible_members(workspace, viewer)
    sees_all = viewer is None or (
        viewer.workspace_id == workspace.pk and can(viewer, Cap.TEAMS_LIST) and can(viewer, Cap.MEMBERS_VIEW_PRIVATE)
    )
    if wanted(EntitlementKind.ROLE) and team_id is None and start[0] <= _ROLE:
        qs = members.filter(pk__gt=start[1] if start[0] == _ROLE else -1).select_related("user").order_by("pk")
        if member_id is not None:
            qs = qs.filter(pk=member_id)
        if entitlement is not None:
            qs = qs.filter(role=entitlement.value)
        rows += [_role_grant(m) for m in qs[: want - len(rows)]]
    if len(rows) < want and wanted(EntitlementKind.TEAM) and team_id is None and start[0] <= _TEAM:
        links = TeamMembership.objects.filter(team__workspace=workspace, pk__gt=start[1] if start[0] == _TEAM else -1)
        if not sees_all:  # a Member's key: only teams and members it may see
            links = links.filter(team_id__in=_visible_team_ids(workspace, viewer), membership_id__in=members.values("pk"))
        links = links.select_related("team", "membership__user").order_by("pk")
        if member_id is not None:
            links = links.filter(membership_id=member_id)
        if entitlement is not None:
            links = links.filter(team_id=entitlement.object_id)
        rows += [_team_grant(tm) for tm in links[: want - len(rows)]]
    if len(rows) < want and wanted(EntitlementKind.REPOSITORY):
        grants = repository_grants_visible_to(workspace=workspace, viewer=viewer).select_related("repository").filter(
            pk__gt=start[1] if start[0] == _REPOSITORY else -1
        )
        if member_id is not None:
            grants = grants.filter(membership_id=member_id)
        if team_id is not None:
            grants = grants.filter(team_id=team_id)
        if entitlement is not None:
            grants = grants.filter(repository_id=entitlement.object_id, permission=entitlement.value)
        rows += [_repository_grant(g) for g in grants[: want - len(rows)]]
    return rows[:limit], len(rows) > limit


# ----------------------------------------------------------------------------- access reviews (docs/access-reviews.md)

REVIEW_ITEMS_PAGE_SIZE = 100
# The decision filter of an items page: what reviewers and the API ask for.
REVIEW_DECISION_FILTERS = ("keep", "revoke", "undecided")


def _review_counts() -> dict[str, Count]:
    """Per-review figures, computed in the same query as the reviews (one row each, no N+1)."""
    return {
        "item_count": Count("items"),
        "keep_count": Count("items", filter=Q(items__decision=ReviewDecision.KEEP)),
        "revoke_count": Count("items", filter=Q(items__decision=ReviewDecision.REVOKE)),
        "undecided_count": Count("items", filter=Q(items__decision=ReviewDecision.UNDECIDED)),
        "kept_count": Count("items", filter=Q(items__outcome=ReviewOutcome.KEPT)),
        "revoked_count": Count("items", filter=Q(items__outcome=ReviewOutcome.REVOKED)),
        "not_held_count": Count("items", filter=Q(items__outcome=ReviewOutcome.NOT_HELD)),
        "refused_count": Count("items", filter=Q(items__outcome=ReviewOutcome.REFUSED)),
    }


def access_reviews_of(workspace: Workspace) -> QuerySet[AccessReview]:
    """The workspace's access reviews, newest first, each with its counts (``item_count``, ``undecided_count``...)."""
    return AccessReview.objects.filter(workspace=workspace).annotate(**_review_counts()).order_by("-created_at", "-pk")


def access_review_for(workspace: Workspace, review_id: int) -> AccessReview | None:
    """One review of *this* workspace with its counts; None for another workspace's (the caller answers 404)."""
    return access_reviews_of(workspace).select_related("workspace").filter(pk=review_id).first()


def access_review_item_for(review: AccessReview, item_id: int) -> AccessReviewItem | None:
    """One item of this review; None for an item of any other review."""
    return review.items.select_related("review__workspace").filter(pk=item_id).first()


def access_review_items_page(
    *, review: AccessReview, after: int | None = None, limit: int = REVIEW_ITEMS_PAGE_SIZE, decision: str | None = None,
) -> tuple[list[AccessReviewItem], bool]:
    """One keyset page of the review's items (by id, after ``after``), and whether more follow. ``decision``:
    ``keep``, ``revoke`` or ``undecided`` (None: all)."""
    qs = review.items.all().order_by("pk")
    if after is not None:
        qs = qs.filter(pk__gt=after)
    if decision is not None:
        qs = qs.filter(decision="" if decision == "undecided" else decision)
    rows = list(qs[: limit + 1])
    return rows[:limit], len(rows) > limit


def access_review_items(review: AccessReview) -> QuerySet[AccessReviewItem]:
    """Every item of the review, in order (the export; the API pages it with cursors)."""
    return review.items.all().order_by("pk")


def access_review_revoked_kinds(review: AccessReview) -> set[str]:
    """The entitlement kinds among the review's revoke decisions, plus ``owner`` when one revokes the Owner role:
    what a service key must be allowed to change for completion to apply them (the API checks its scopes)."""
    revoking = review.items.filter(decision=ReviewDecision.REVOKE)
    kinds = set(revoking.values_list("kind", flat=True).distinct())
    if revoking.filter(entitlement=f"role:{Role.OWNER}").exists():
        kinds.add("owner")
    return kinds


def access_review_scope_choices(workspace: Workspace) -> tuple[QuerySet[Team], QuerySet[Repository]]:
    """The teams and repositories a review may be scoped to (every one of the workspace: reviewers see all grants)."""
    return (Team.objects.filter(workspace=workspace).order_by("name"),
            Repository.objects.filter(workspace=workspace).order_by("name"))


def grant_row_for(*, entitlement: Any, member: Membership | None, team: Team | None) -> GrantRow | None:
    """The grant of ``entitlement`` (an ``EntitlementRef``) held by ``member`` (or ``team``), or None: the answer to a
    grant, read with one small query (none for a role)."""
    if entitlement.kind == EntitlementKind.ROLE:
        assert member is not None
        member.refresh_from_db(fields=["role", "role_from_idp", "detached_at"])
        return _role_grant(member) if member.role == entitlement.value else None
    if entitlement.kind == EntitlementKind.TEAM:
        assert member is not None
        tm = TeamMembership.objects.filter(team_id=entitlement.object_id, membership=member).select_related("team").first()
        if tm is None:
            return None
        tm.membership = member
        return _team_grant(tm)
    grants = RepositoryGrant.objects.filter(repository_id=entitlement.object_id, permission=entitlement.value)
    g = (grants.filter(team=team) if team is not None else grants.filter(membership=member)).select_related(
        "repository").first()
    if g is None:
        return None
    if team is not None:
        g.team = team
    else:
        g.membership = member
    return _repository_grant(g)
