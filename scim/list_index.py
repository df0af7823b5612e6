"""Exact ``totalResults`` and page positions for the unfiltered ``GET /Users`` list, kept in the database.

RFC 7644 paging is by ``startIndex`` (an offset), and every list response carries an exact
``totalResults``. Done literally, both cost O(members): ``COUNT(*)`` over the workspace and an
``OFFSET`` that walks every skipped row. Instead each workspace has one ``ScimListIndex`` row:

* ``total``, the number of SCIM-visible members (``selectors.scim_users``), and
* ``anchors``, the user id of every ``SCIM_LIST_ANCHOR_EVERY``-th of them in user-id order (the
  list's default order; user ids are unique in a workspace).

A page at ``startIndex`` s is then ``user_id > anchor ORDER BY user_id OFFSET o LIMIT count`` with
``o`` below the stride: Okta and Entra page at ``count=100`` from 1, 101, 201, ..., so with the
default stride of 100 their pages start exactly at an anchor (``o = 0``), and a jump to any other
``startIndex`` skips fewer than 100 index entries. A current index serves a page in one small read
of its row, whatever the workspace's size.

Kept exact by a version, not a timeout: every change of the visible set bumps ``version`` in the
changing transaction (database triggers on the member and workspace tables, whatever wrote the row:
``save()``, ``QuerySet.update()``, ``bulk_create``, ``delete()``; see ``list_index_triggers``), and a
list request that finds ``built_version != version`` rebuilds the row from one query (``_build``:
only the count and the anchors come back) and stores it as the build of the version it read *before*
building, only if that is still the current version (``_store``). A change that committed after
that read has moved the version on, so a build that may have missed it never looks current, and a
slow build never replaces a newer one; under READ COMMITTED PostgreSQL re-checks the guard after
waiting for a writer that holds the row. The row exists from the workspace's creation on (a trigger
creates it), so no bump finds it missing. A request whose build was not stored still answers from it (it is at least as new as the
version read).

Lock order: the bump locks the index row until the change commits. Services change the membership
first and record its audit event after (``audit.record`` locks the workspace's chain head), so every
writer takes the index row before the chain head; a transaction that bumps after an audit event
could deadlock with one that does the opposite. A transaction that changes visibility only after its
audit event (``GatehouseSCIMUser.delete``: deactivate, audit, then unlink) calls ``members_changed``
first to take the row's lock in that order. ``SCIM_LIST_INDEX=False`` serves the list with ``COUNT(*)``
and ``OFFSET`` instead (the bumps go on, so turning it back on is safe).

Hand-written SQL (``_build_sql``, the row's upserts): bench/scim_bench.py justifies the index as a
whole (the 100k / 10k members p50 ratio of a cold deep page: 1.9 before it, 0.83-1.09 with it,
target 1.2; docs/benchmarks.md, "SCIM"), and the build's ``array_agg`` (37 ms at 100k members
against 140 ms for the window functions SQLite gets).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.backends.base.base import BaseDatabaseWrapper

from config.db import CompiledQuery, default_connection, is_postgresql, queryset_sql
from workspaces.models import Workspace

from . import selectors
from .models import ScimListIndex


def enabled() -> bool:
    return bool(settings.SCIM_LIST_INDEX)


def _stride() -> int:
    return int(settings.SCIM_LIST_ANCHOR_EVERY)


def _first_version() -> int:
    # A random start, not 1: a row deleted and created again (a workspace id reused after a rollback
    # or a restore) never repeats a built_version another process memoised anchors for.
    return secrets.randbelow(1 << 62) + 1


@dataclass(frozen=True)
class ListIndex:
    """The visible members' count and the user id at positions stride, 2*stride, ... (1-based)."""

    total: int
    stride: int
    anchors: tuple[int, ...]


# ----------------------------------------------------------------------------- statements, built once


def _table() -> str:
    return ScimListIndex._meta.db_table


_UPSERT = "ON CONFLICT (workspace_id) DO UPDATE SET version = {t}.version + 1"
_BUMP = CompiledQuery(
    lambda conn: (
        f"INSERT INTO {_table()} (workspace_id, version, stride, total, anchors) VALUES (%s, %s, 0, 0, '') "
        + _UPSERT.format(t=_table())
    )
)
_CREATE = CompiledQuery(
    lambda conn: (
        f"INSERT INTO {_table()} (workspace_id, version, stride, total, anchors) VALUES (%s, %s, 0, 0, '') "
        "ON CONFLICT (workspace_id) DO NOTHING"
    )
)
# The anchors text only when this process has not parsed this build yet.
_READ = CompiledQuery(
    lambda conn: (
        "SELECT version, built_version, stride, total, "
        "CASE WHEN built_version = %s AND stride = %s THEN NULL ELSE anchors END "
        f"FROM {_table()} WHERE workspace_id = %s"
    )
)
_STORE = CompiledQuery(
    lambda conn: (
        f"UPDATE {_table()} SET built_version = %s, stride = %s, total = %s, anchors = %s "
        "WHERE workspace_id = %s AND version = %s"
    )
)

_WS, _STRIDE = -700_000_011, -700_000_012  # sentinels: never a real id or stride


def _build_sql(conn: BaseDatabaseWrapper) -> tuple[str, list[Any]]:
    """Count the visible members and pick every stride-th user id: the inner query is
    ``selectors.scim_users`` (the visibility rule stays there); only the count and the anchors come back.

    Hand-written around the ORM's query because neither array indexing nor window functions over a
    subquery are ORM expressions. PostgreSQL sorts the user ids into one array and indexes it (37 ms
    at 100k members, a plain COUNT(*) is 30 ms); ROW_NUMBER() and COUNT(*) OVER () cost 140 ms there,
    but are what SQLite (>= 3.25) has.
    """
    visible = selectors.scim_users(Workspace(pk=_WS)).order_by().values("user_id")
    inner, params = queryset_sql(visible, conn)
    if is_postgresql(conn):
        return (
            f"WITH a AS (SELECT array_agg(v.user_id ORDER BY v.user_id) AS ids FROM ({inner}) v) "
            "SELECT COALESCE(cardinality(ids), 0), "
            "ARRAY(SELECT ids[i] FROM generate_series(%s, cardinality(ids), %s) i ORDER BY i) FROM a",
            [*params, _STRIDE, _STRIDE],
        )
    return (
        "SELECT user_id, rn, n FROM (SELECT v.user_id AS user_id, ROW_NUMBER() OVER (ORDER BY v.user_id) AS rn, "
        f"COUNT(*) OVER () AS n FROM ({inner}) v) w WHERE rn %% %s = 0 OR rn = n ORDER BY rn",
        [*params, _STRIDE],
    )


_BUILD = CompiledQuery(_build_sql, sentinels=[_WS, _STRIDE])


# ----------------------------------------------------------------------------- writers


def members_changed(workspace_id: int) -> None:
    """Bump the workspace's index version now, in the current transaction, and so lock its index row.

    Changes of the visible set bump it by themselves (the database triggers of migration
    ``scim.0004``); call this only to take the index row's lock before the chain head's (see the
    module's "Lock order").
    """
    _BUMP.execute([workspace_id, _first_version()])


def connect_receivers() -> None:
    """Called from ``ScimConfig.ready``: after every ``migrate``, put back the list index's triggers
    (a SQLite table rebuild drops them; ``list_index_triggers``)."""
    from django.db.models.signals import post_migrate

    from .list_index_triggers import reinstall_after_migrate

    post_migrate.connect(reinstall_after_migrate, dispatch_uid="scim_list_index_triggers")


# ----------------------------------------------------------------------------- readers


# Parsed anchors per workspace: (built_version, stride, anchors). Bounded: cleared when it grows past
# _MEMO_MAX workspaces (each entry is total / stride ints).
_memo: dict[int, tuple[int, int, tuple[int, ...]]] = {}
_MEMO_MAX = 10_000


def current(workspace: Workspace) -> ListIndex:
    """The workspace's index at its current version: one statement when it is built, else rebuilt."""
    stride = _stride()
    memo = _memo.get(workspace.pk)
    # The memo's build and stride: the text is left out only when it is the build memoised here.
    row = _READ.fetchone([*(memo[:2] if memo else (None, None)), workspace.pk])
    if row is None:  # every workspace gets its row when it is created; this is for one that lost it
        _CREATE.execute([workspace.pk, _first_version()])
        row = _READ.fetchone([None, None, workspace.pk])
        assert row is not None
    version, built_version, built_stride, total, anchors_text = row
    if built_version == version and built_stride == stride:
        if anchors_text is None:
            assert memo is not None  # the CASE left the text out: this build (and stride) is memoised
            return ListIndex(total, stride, memo[2])
        anchors = tuple(int(a) for a in anchors_text.split(",")) if anchors_text else ()
        _remember(workspace.pk, version, stride, anchors)
        return ListIndex(total, stride, anchors)
    index = _build(workspace, stride)
    if _store(workspace.pk, version, index):
        _remember(workspace.pk, version, stride, index.anchors)
    return index


def _remember(workspace_id: int, built_version: int, stride: int, anchors: tuple[int, ...]) -> None:
    if len(_memo) >= _MEMO_MAX:
        _memo.clear()
    _memo[workspace_id] = (built_version, stride, anchors)


def _build(workspace: Workspace, stride: int) -> ListIndex:
    """Count the visible members and pick every ``stride``-th user id, in one query (``_build_sql``)."""
    conn = default_connection()
    rows = _BUILD.fetchall([workspace.pk, stride], conn=conn)
    if is_postgresql(conn):
        total, anchors = rows[0]
        return ListIndex(total, stride, tuple(anchors))
    total = rows[-1][2] if rows else 0
    return ListIndex(total, stride, tuple(user_id for user_id, rn, _ in rows if rn % stride == 0))


def _store(workspace_id: int, version: int, index: ListIndex) -> bool:
    """Store a build made after ``version`` was read, unless the version has moved on since: then a
    change may have committed after the build's snapshot (the next request builds again), or a newer
    build may be stored already, which this one must not replace."""
    anchors = ",".join(str(a) for a in index.anchors)
    return _STORE.execute([version, index.stride, index.total, anchors, workspace_id, version]) == 1


def page(workspace: Workspace, start: int, count: int) -> tuple[list[int], int]:
    """Membership ids of the unfiltered Users page at ``start`` (1-based), in user-id order, and the total.

    The index answers in the version it was read at; the page's rows are read by a later statement
    and may already include a change committed in between, as with any paging by offset.
    """
    index = current(workspace)
    skip = start - 1
    if not count or skip >= index.total:
        return [], index.total
    j = min(skip // index.stride, len(index.anchors))
    # Seek to the anchor before the page (the user id at position j * stride), then skip fewer than a stride.
    ids = selectors.member_ids_in_order(
        workspace, after_user_id=index.anchors[j - 1] if j else None, limit=count, offset=skip - j * index.stride
    )
    return ids, index.total
