"""Reads of SCIM resources, always scoped by the credential's workspace, in SQL.

A SCIM "User" is a membership of the workspace that is active or still linked to the
directory (non-empty ``scim_username``). A membership the directory DELETEd is deactivated
and unlinked, so it drops out of this set (RFC 7644 §3.6: later requests get 404).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from django.db import connection
from django.db.models import OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import JSONObject, Lower

from workspaces.models import Membership, Team, TeamMembership, Workspace

SCIM_VISIBLE = Q(is_active=True) | ~Q(scim_username="")


def scim_users(workspace: Workspace) -> QuerySet[Membership]:
    # alias(), not annotate(): the lower() expressions are only computed where a filter or sort uses them,
    # and lower(scim_username) then matches the functional index (workspace_id, lower(scim_username)).
    # No alias touches the user table: a join there would be added to every count and page-id query.
    return (
        Membership.objects.filter(SCIM_VISIBLE, workspace=workspace)
        .alias(username_ci=Lower("scim_username"))
        .select_related("user")
    )


def with_groups(qs: QuerySet[Membership]) -> QuerySet[Membership]:
    """On PostgreSQL, read each member's teams in the same statement (``groups_json``): one round trip
    fewer per SCIM read. Elsewhere ``groups_of_members`` reads them in one extra query per page."""
    if connection.vendor != "postgresql":
        return qs
    from django.contrib.postgres.aggregates import JSONBAgg

    teams = (
        TeamMembership.objects.filter(membership_id=OuterRef("pk"))
        .order_by()
        .values("membership_id")
        .annotate(j=JSONBAgg(JSONObject(id="team_id", name="team__name"), order_by="team__name"))
        .values("j")
    )
    return qs.annotate(groups_json=Subquery(teams))


def groups_from_row(member: Membership) -> list[tuple[int, str]] | None:
    """The teams ``with_groups`` put on the row, or None when it did not (then query them)."""
    if not hasattr(member, "groups_json"):
        return None
    return [(g["id"], g["name"]) for g in (member.groups_json or [])]


def scim_user(workspace: Workspace, rid: str, *, for_update: bool = False, groups: bool = False) -> Membership | None:
    try:
        pk = int(rid)
    except (TypeError, ValueError):
        return None
    qs = scim_users(workspace)
    if for_update:
        qs = qs.select_for_update(of=("self",))
    if groups:
        qs = with_groups(qs)
    return qs.filter(pk=pk).first()


def scim_user_by_username(workspace: Workspace, username: str) -> Membership | None:
    return scim_users(workspace).filter(username_ci=username.lower()).first()


def membership_by_email(workspace: Workspace, email: str) -> Membership | None:
    return (
        Membership.objects.filter(workspace=workspace)
        .alias(email_ci=Lower("user__email"))
        .filter(email_ci=email.lower())
        .select_related("user")
        .first()
    )


def scim_groups(workspace: Workspace) -> QuerySet[Team]:
    return Team.objects.filter(workspace=workspace).alias(name_ci=Lower("name"))


def scim_group(workspace: Workspace, rid: str, *, for_update: bool = False) -> Team | None:
    try:
        pk = int(rid)
    except (TypeError, ValueError):
        return None
    qs = scim_groups(workspace)
    if for_update:
        qs = qs.select_for_update()
    return qs.filter(pk=pk).first()


def scim_group_by_name(workspace: Workspace, name: str) -> Team | None:
    return scim_groups(workspace).filter(name_ci=name.strip().lower()).first()


def members_by_ids(workspace: Workspace, ids: Iterable[str]) -> tuple[list[Membership], list[str]]:
    """The SCIM-visible members of this workspace with these ids, and the ids that matched nothing here."""
    wanted: dict[int, str] = {}
    unknown: list[str] = []
    for raw in ids:
        try:
            wanted[int(str(raw))] = str(raw)
        except (TypeError, ValueError):
            unknown.append(str(raw))
    found = list(scim_users(workspace).filter(pk__in=list(wanted))) if wanted else []
    found_ids = {m.pk for m in found}
    unknown += [raw for pk, raw in wanted.items() if pk not in found_ids]
    return found, unknown


def groups_of_members(member_ids: list[int]) -> dict[int, list[tuple[int, str]]]:
    """(team id, team name) per member, in one query for a whole page."""
    out: dict[int, list[tuple[int, str]]] = defaultdict(list)
    rows = (
        TeamMembership.objects.filter(membership_id__in=member_ids)
        .order_by("team__name")
        .values_list("membership_id", "team_id", "team__name")
    )
    for membership_id, team_id, name in rows:
        out[membership_id].append((team_id, name))
    return out


def members_of_groups(team_ids: list[int]) -> dict[int, list[tuple[int, str]]]:
    """(member id, display) per team, in one query for a whole page."""
    out: dict[int, list[tuple[int, str]]] = defaultdict(list)
    rows = (
        TeamMembership.objects.filter(team_id__in=team_ids)
        .order_by("membership_id")
        .values_list("team_id", "membership_id", "membership__display_name", "membership__user__email")
    )
    for team_id, member_id, display, email in rows:
        out[team_id].append((member_id, display or email))
    return out
