"""Reads of SCIM resources, always scoped by the credential's workspace, in SQL.

A SCIM "User" is a membership of the workspace that is active or still linked to the
directory (non-empty ``scim_username``). A membership the directory DELETEd is deactivated
and unlinked, so it drops out of this set (RFC 7644 §3.6: later requests get 404).
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from django.db import connection, connections, router
from django.db.models import BooleanField, OuterRef, Q, QuerySet, Subquery
from django.db.models.expressions import RawSQL
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


class _Compiled:
    """A queryset compiled to SQL once per process and run again with other parameter values.

    Compiling the member queries (select_related user, the teams subquery, the list's page ids) cost
    more CPU than running them; the hot reads are the same SQL every time with other ids. Built from
    the ORM queryset with sentinel values, each replaced (wherever it occurs) by the value given to
    ``fetch``; ``tail`` adds SQL with its own parameters after the compiled statement (LIMIT/OFFSET,
    which the ORM writes as literals).
    """

    def __init__(self, qs: QuerySet, sentinels: list[object], tail: str = "") -> None:
        self.db = qs.db
        self.compiler = qs.query.get_compiler(using=self.db)
        sql, params = self.compiler.as_sql()
        self.sql = f"{sql}{tail}"
        self.params = list(params)
        self.slots = [[i for i, p in enumerate(self.params) if type(p) is type(s) and p == s] for s in sentinels]
        if not all(self.slots):
            raise ValueError("a sentinel is missing from the compiled query's parameters")

    def fetch(self, *values: object, tail: tuple[object, ...] = ()) -> list[tuple]:
        params = list(self.params)
        for slots, value in zip(self.slots, values, strict=True):
            for slot in slots:
                params[slot] = value
        with connections[self.db].cursor() as cursor:
            cursor.execute(self.sql, [*params, *tail])  # type: ignore[list-item]  # params are query values
            return cursor.fetchall()


class _Prepared(_Compiled):
    """A ``_Compiled`` member query whose rows become model instances: the converters and the model
    building are Django's own (``ModelIterable``), only the compile step is skipped."""

    def __init__(self, qs: QuerySet, sentinels: list[object]) -> None:
        from django.db.models.query import get_related_populators  # type: ignore[attr-defined]  # Django internal, not in the stubs

        super().__init__(qs, sentinels)
        compiler = self.compiler
        klass_info = compiler.klass_info
        select_fields = klass_info["select_fields"]
        self.model = klass_info["model"]
        self.start, self.end = select_fields[0], select_fields[-1] + 1
        self.init_list = [f[0].target.attname for f in compiler.select[self.start:self.end]]
        self.populators = get_related_populators(klass_info, compiler.select, self.db)
        self.annotations = dict(compiler.annotation_col_map or {})
        self.converters = compiler.get_converters([c[0] for c in compiler.select[0:compiler.col_count]])

    def run(self, *values: object) -> list:
        rows = self.fetch(*values)
        if self.compiler.has_extra_select:
            rows = [r[: self.compiler.col_count] for r in rows]
        out = []
        if self.converters:
            rows = self.compiler.apply_converters(rows, self.converters)
        for row in rows:
            obj = self.model.from_db(self.db, self.init_list, row[self.start:self.end])
            for populator in self.populators:
                populator.populate(row, obj)
            for name, position in self.annotations.items():
                setattr(obj, name, row[position])
            out.append(obj)
        return out


_prepared = threading.local()
_WS, _PK = -700_000_001, -700_000_002  # sentinels: never real ids


def _prepared_query(key: tuple, build: Callable[[], _Compiled]) -> Any:
    """The compiled query for ``key`` (its first item: the database vendor), built once per thread."""
    cache = getattr(_prepared, "queries", None)
    if cache is None:
        cache = _prepared.queries = {}
    found = cache.get(key)
    if found is None or found.db not in connections or connections[found.db].vendor != key[0]:
        found = cache[key] = build()
    return found


def members_by_pks(workspace: Workspace, pks: list[int], *, groups: bool = False) -> list[Membership]:
    """SCIM-visible members of the workspace with these ids (any order), with their user and, when
    ``groups``, their teams: one statement whose SQL is compiled once per process and id count."""
    if not pks:
        return []
    vendor = connections[router.db_for_read(Membership)].vendor
    # A few statement shapes, not one per page length: pad the ids (repeating one) up to a size class.
    size = next((b for b in (1, 10, 100) if len(pks) <= b), 1 << (len(pks) - 1).bit_length())
    padded = list(pks) + [pks[0]] * (size - len(pks))

    def build() -> _Prepared:
        ws = Workspace(pk=_WS)
        sentinels: list[object] = [_WS, *[_PK - i for i in range(size)]]
        qs = scim_users(ws).filter(pk__in=sentinels[1:]).order_by()
        return _Prepared(with_groups(qs) if groups else qs, sentinels)

    return _prepared_query((vendor, "members", groups, size), build).run(workspace.pk, *padded)


_USERNAME = "\x00gatehouse-username-sentinel"


def members_by_username(workspace: Workspace, username: str, *, groups: bool = False) -> list[Membership]:
    """The SCIM-visible member whose userName is ``username`` (case-insensitive; at most one, by the
    unique index on lower(scim_username)): Okta's lookup before every create, in one prepared statement."""
    vendor = connections[router.db_for_read(Membership)].vendor

    def build() -> _Prepared:
        ws = Workspace(pk=_WS)
        qs = scim_users(ws).filter(username_ci=_USERNAME).order_by()  # type: ignore[misc]  # an alias() the plugin cannot see
        return _Prepared(with_groups(qs) if groups else qs, [_WS, _USERNAME])

    return _prepared_query((vendor, "username", groups), build).run(workspace.pk, username.lower())


def scim_user(workspace: Workspace, rid: str, *, groups: bool = False) -> Membership | None:
    pk = _member_pk(rid)
    if pk is None:
        return None
    found = members_by_pks(workspace, [pk], groups=groups)
    return found[0] if found else None


def _member_pk(rid: str) -> int | None:
    """The id in a SCIM resource path, or None when it is no member id (not an integer, out of range)."""
    try:
        pk = int(rid)
    except (TypeError, ValueError):
        return None
    return pk if -(2**63) <= pk < 2**63 else None


def scim_user_by_username(workspace: Workspace, username: str) -> Membership | None:
    return scim_users(workspace).filter(username_ci=username.lower()).first()  # type: ignore[misc]  # an alias() the plugin cannot see


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
    return scim_groups(workspace).filter(name_ci=name.strip().lower()).first()  # type: ignore[misc]  # an alias() the plugin cannot see


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

    One statement compiled once per process (``_prepared_query``), like the reads above.
    """
    pk = _member_pk(rid)
    if pk is None:
        return None
    vendor = connections[router.db_for_write(Membership)].vendor

    def build() -> _Prepared:
        qs = scim_users(Workspace(pk=_WS)).filter(pk=_PK).order_by().select_for_update(of=("self",))
        return _Prepared(with_groups(qs) if groups else qs, [_WS, _PK])

    found = _prepared_query((vendor, "member for write", groups), build).run(workspace.pk, pk)
    return found[0] if found else None


def after_in_workspace(qs: QuerySet, workspace_id: int, column: str, after: Any) -> QuerySet:
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
    qn = connection.ops.quote_name
    table = qn(model._meta.db_table)
    ws_col = qn(model._meta.get_field("workspace").column)
    col = qn(model._meta.get_field(column).column)
    row_after = RawSQL(f"({table}.{ws_col}, {table}.{col}) > (%s, %s)", (workspace_id, after), output_field=BooleanField())
    return qs.filter(row_after, workspace_id=workspace_id).order_by("workspace_id", column)


_AFTER = -700_000_003  # sentinel: never a real user id


def member_ids_in_order(workspace: Workspace, *, after_user_id: int | None, limit: int, offset: int) -> list[int]:
    """Ids of the workspace's SCIM-visible members in user-id order (the Users list's default order):
    those after ``after_user_id`` (None: from the first), ``offset`` skipped, at most ``limit``.

    One statement compiled once per process and shape (building and compiling it was ten times the
    cost of running it), on the ``(workspace_id, user_id)`` index either way (``after_in_workspace``).
    """
    vendor = connections[router.db_for_read(Membership)].vendor
    from_first = after_user_id is None

    def build() -> _Compiled:
        qs = scim_users(Workspace(pk=_WS))
        if from_first:
            qs = after_in_workspace(qs, _WS, "user_id", 0)
            sentinels: list[object] = [_WS]
        else:
            qs = qs.filter(user_id__gt=_AFTER).order_by("user_id")
            sentinels = [_WS, _AFTER]
        return _Compiled(qs.values_list("pk", flat=True), sentinels, tail=" LIMIT %s OFFSET %s")

    compiled = _prepared_query((vendor, "member ids in order", from_first), build)
    values = (workspace.pk,) if from_first else (workspace.pk, after_user_id)
    return [row[0] for row in compiled.fetch(*values, tail=(limit, offset))]
