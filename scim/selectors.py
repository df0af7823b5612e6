"""Reads of SCIM resources, always scoped by the credential's workspace, in SQL.

A SCIM "User" is a membership of the workspace that is active or still linked to the
directory (non-empty ``scim_username``). A membership the directory DELETEd is deactivated
and unlinked, so it drops out of this set (RFC 7644 §3.6: later requests get 404).

The hot member reads are ORM querysets compiled once per process (``config.db.CompiledQuery``):
compiling them cost more worker CPU than running them (bench/scim_bench.py, "worker cpu" of GET
/Users/{id} and the list pages). The one piece of hand-written SQL is ``after_in_workspace``'s row
comparison: without it the first page at 100k members took 6 ms in PostgreSQL instead of 0.1 ms
(bench/scim_bench.py, "GET /Users first page", 100,000 members; docs/benchmarks.md, "SCIM").
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from django.db import connection, connections, router
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import BooleanField, OuterRef, Q, QuerySet, Subquery
from django.db.models.expressions import RawSQL
from django.db.models.functions import JSONObject, Lower

from config.db import CompiledQuery, is_postgresql, process_cache
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


def with_groups(qs: QuerySet[Membership], conn: BaseDatabaseWrapper | None = None) -> QuerySet[Membership]:
    """On PostgreSQL, read each member's teams in the same statement (``groups_json``): one round trip
    fewer per SCIM read. Elsewhere ``groups_of_members`` reads them in one extra query per page."""
    if not is_postgresql(conn):
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


# Sentinels stand for the parameters of the compiled member queries (config.db.CompiledQuery): never real ids.
_WS, _PK = -700_000_001, -700_000_002
_USERNAME = "\x00gatehouse-username-sentinel"
_SIZES = (1, 10, 100)


_member_queries: dict[tuple[Callable[[], QuerySet[Membership]], bool], CompiledQuery] = process_cache()


def _member_query(build: Callable[[], QuerySet[Membership]], sentinels: list[object], groups: bool) -> CompiledQuery:
    """The compiled member query of ``build``, without or with the teams (``with_groups``), made on first use
    (not at import: ``config.db.forget_compiled_plans`` then makes it again from the code as it is)."""
    query = _member_queries.get((build, groups))
    if query is None:
        if groups:
            query = CompiledQuery(lambda conn: with_groups(build(), conn), sentinels=sentinels, prepare=True)
        else:
            query = CompiledQuery(lambda conn: build(), sentinels=sentinels, prepare=True)
        _member_queries[(build, groups)] = query
    return query


_by_pks: dict[tuple[int, bool], CompiledQuery] = process_cache()


def _members_by_pks_query(size: int, groups: bool) -> CompiledQuery:
    query = _by_pks.get((size, groups))
    if query is None:
        sentinels: list[object] = [_WS, *(_PK - i for i in range(size))]

        def build(conn: BaseDatabaseWrapper) -> QuerySet[Membership]:
            qs = scim_users(Workspace(pk=_WS)).filter(pk__in=sentinels[1:]).order_by()
            return with_groups(qs, conn) if groups else qs

        query = _by_pks[(size, groups)] = CompiledQuery(build, sentinels=sentinels, prepare=True)
    return query


def members_by_pks(workspace: Workspace, pks: list[int], *, groups: bool = False) -> list[Membership]:
    """SCIM-visible members of the workspace with these ids (any order), with their user and, when
    ``groups``, their teams: one statement whose SQL is compiled once per process and id count."""
    if not pks:
        return []
    # A few statement shapes, not one per page length: pad the ids (repeating one) up to a size class.
    size = next((b for b in _SIZES if len(pks) <= b), 1 << (len(pks) - 1).bit_length())
    padded = list(pks) + [pks[0]] * (size - len(pks))
    conn = connections[router.db_for_read(Membership)]
    return _members_by_pks_query(size, groups).instances([workspace.pk, *padded], conn=conn)


def _by_username() -> QuerySet[Membership]:
    return scim_users(Workspace(pk=_WS)).filter(username_ci=_USERNAME).order_by()  # type: ignore[misc]


def members_by_username(workspace: Workspace, username: str, *, groups: bool = False) -> list[Membership]:
    """The SCIM-visible member whose userName is ``username`` (case-insensitive; at most one, by the
    unique index on lower(scim_username)): Okta's lookup before every create, in one compiled statement."""
    conn = connections[router.db_for_read(Membership)]
    query = _member_query(_by_username, [_WS, _USERNAME], groups)
    found = query.instances([workspace.pk, username.lower()], conn=conn)
    if found:
        return found
    # A member the directory has not linked yet (added in the portal, or created by SAML JIT) shows its email as
    # its userName: Okta's lookup must find it too, or Okta would try to create the person again.
    unlinked = (
        Membership.objects.filter(workspace=workspace, scim_username="", is_active=True)
        .alias(email_ci=Lower("user__email"))
        .filter(email_ci=username.lower())
        .values_list("pk", flat=True)
        .first()
    )
    return members_by_pks(workspace, [unlinked], groups=groups) if unlinked is not None else []


def scim_user(workspace: Workspace, rid: str, *, groups: bool = False) -> Membership | None:
    pk = resource_pk(rid)
    if pk is None:
        return None
    found = members_by_pks(workspace, [pk], groups=groups)
    return found[0] if found else None


_CANONICAL_ID = re.compile(r"(?:0|[1-9][0-9]{0,18})")


def resource_pk(rid: str) -> int | None:
    """The id in a SCIM resource path, or None when it is no member id. Ids are matched exactly, as the ``id``
    Gatehouse serves them: decimal digits without sign, spaces or leading zeros (``1 ``, ``+1``, ``01`` and
    ``1_0`` name nobody), below 2**63."""
    if not isinstance(rid, str) or not _CANONICAL_ID.fullmatch(rid):
        return None
    pk = int(rid)
    return pk if pk < 2**63 else None


def scim_user_by_username(workspace: Workspace, username: str) -> Membership | None:
    return scim_users(workspace).filter(username_ci=username.lower()).first()  # type: ignore[misc]


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
    pk = resource_pk(rid)  # the same exact match as member ids
    if pk is None:
        return None
    qs = scim_groups(workspace)
    if for_update:
        qs = qs.select_for_update()
    return qs.filter(pk=pk).first()


def scim_group_by_name(workspace: Workspace, name: str) -> Team | None:
    return scim_groups(workspace).filter(name_ci=name.strip().lower()).first()  # type: ignore[misc]


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


# ----------------------------------------------------------------------------- the write path's one read


def scim_user_for_write(workspace: Workspace, rid: str, *, groups: bool = False) -> Membership | None:
    """The SCIM-visible member ``rid`` of ``workspace`` with its user (and teams, when ``groups``),
    locked (``FOR UPDATE`` of the member row) until the caller's transaction ends.

    One statement compiled once per process (``config.db.CompiledQuery``), like the reads above.
    """
    pk = resource_pk(rid)
    if pk is None:
        return None
    conn = connections[router.db_for_write(Membership)]
    query = _member_query(_for_write, [_WS, _PK], groups)
    found = query.instances([workspace.pk, pk], conn=conn)
    return found[0] if found else None


def _for_write() -> QuerySet[Membership]:
    return scim_users(Workspace(pk=_WS)).filter(pk=_PK).order_by().select_for_update(of=("self",))


def after_in_workspace(
    qs: QuerySet, workspace_id: int, column: str, after: Any, conn: BaseDatabaseWrapper | None = None
) -> QuerySet:
    """``qs`` rows of the workspace whose ``column`` is greater than ``after``, in ``column`` order,
    found through the ``(workspace_id, column)`` unique index.

    Written as the row comparison ``(workspace_id, column) > (%s, %s)``: with ``WHERE workspace_id = x
    ORDER BY column`` PostgreSQL preferred the global index on ``column`` when one workspace holds
    most members, and filtered out every other workspace's rows first (6 ms instead of 0.1 ms for the
    first page at 100k members). Used from the workspace's first row (``after`` below every value):
    PostgreSQL 15 starts such a scan at the equality on ``workspace_id``, not at the row comparison,
    so a keyset page after a cursor is better served by a plain ``column > cursor``.
    ``column`` must be unique in a workspace (the SCIM Users list's user id).
    """
    model = qs.model
    qn = (conn or connection).ops.quote_name
    table = qn(model._meta.db_table)
    ws_col = qn(model._meta.get_field("workspace").column)
    col = qn(model._meta.get_field(column).column)
    row_after = RawSQL(f"({table}.{ws_col}, {table}.{col}) > (%s, %s)", (workspace_id, after), output_field=BooleanField())
    return qs.filter(row_after, workspace_id=workspace_id).order_by("workspace_id", column)


_AFTER = -700_000_003  # sentinel: never a real user id


def _ids_from_first(conn: BaseDatabaseWrapper) -> QuerySet[Membership]:
    return after_in_workspace(scim_users(Workspace(pk=_WS)), _WS, "user_id", 0, conn)


def _ids_after(conn: BaseDatabaseWrapper) -> QuerySet[Membership]:
    return scim_users(Workspace(pk=_WS)).filter(user_id__gt=_AFTER).order_by("user_id")


_PAGE_IDS = {
    True: CompiledQuery(lambda conn: _ids_from_first(conn).values_list("pk", flat=True), sentinels=[_WS],
                        tail=" LIMIT %s OFFSET %s"),
    False: CompiledQuery(lambda conn: _ids_after(conn).values_list("pk", flat=True), sentinels=[_WS, _AFTER],
                         tail=" LIMIT %s OFFSET %s"),
}


def member_ids_in_order(workspace: Workspace, *, after_user_id: int | None, limit: int, offset: int) -> list[int]:
    """Ids of the workspace's SCIM-visible members in user-id order (the Users list's default order):
    those after ``after_user_id`` (None: from the first), ``offset`` skipped, at most ``limit``.

    One statement compiled once per process and shape (building and compiling it was ten times the
    cost of running it), on the ``(workspace_id, user_id)`` index either way (``after_in_workspace``).
    """
    conn = connections[router.db_for_read(Membership)]
    if after_user_id is None:
        rows = _PAGE_IDS[True].fetchall([workspace.pk, limit, offset], conn=conn)
    else:
        rows = _PAGE_IDS[False].fetchall([workspace.pk, after_user_id, limit, offset], conn=conn)
    return [row[0] for row in rows]
