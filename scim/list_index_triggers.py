"""Database triggers that keep ``ScimListIndex.version`` moving with the SCIM-visible member set.

The SCIM Users list index (``scim.list_index``) is exact because every change of the visible set
bumps the workspace's ``version`` in the changing transaction. Done in the database, the bump cannot
be forgotten: ``save()``, ``QuerySet.update()``, ``bulk_create``, ``delete()``, raw SQL and the shell
all go through it, and no caller has to call anything.

* A member row inserted or deleted while visible (``is_active OR scim_username <> ''``: the
  rule of ``scim.selectors.SCIM_VISIBLE``) bumps its workspace.
* An update bumps when visibility flips, or when a visible member changes workspace (both
  workspaces) or user (the list's order and anchors are by user id). Deactivating a member the
  directory links leaves it visible (listed as ``active: false``): no bump, so SCIM deactivations
  do not invalidate the index.
* A workspace gets its index row when it is created (random first version: a workspace id reused
  after a rollback or a restore never repeats a ``built_version`` some process memoised). The member
  triggers then only ``UPDATE`` that row: deleting a workspace deletes the row, and the deletes of
  its members, whichever order Django's collector runs them in, never create it again.

Row-level triggers with a ``WHEN`` condition: a write that does not touch visibility does not even
call them. SQLite and PostgreSQL get the same rules in each one's dialect. SQLite drops a table's
triggers when Django rebuilds the table for an ``ALTER``, so ``install`` also runs after every
``migrate`` (``post_migrate``, connected by ``list_index.connect_receivers``); it is idempotent.

If the visibility rule in ``scim.selectors`` changes, these conditions change with it (a test in
tests/scim/test_list_index_triggers.py compares them on every kind of write).
"""

from __future__ import annotations

from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper

from config.db import is_postgresql

INDEX = "scim_scimlistindex"
MEMBERS = "workspaces_membership"
WORKSPACES = "workspaces_workspace"

_OLD_VISIBLE = "(OLD.is_active OR OLD.scim_username <> '')"
_NEW_VISIBLE = "(NEW.is_active OR NEW.scim_username <> '')"
_UPDATE_CHANGES_SET = (
    f"({_OLD_VISIBLE} <> {_NEW_VISIBLE} OR ({_NEW_VISIBLE} "
    "AND (OLD.workspace_id <> NEW.workspace_id OR OLD.user_id <> NEW.user_id)))"
)
_VISIBILITY_COLUMNS = "is_active, scim_username, user_id, workspace_id"
_BUMP = f"UPDATE {INDEX} SET version = version + 1 WHERE workspace_id = "
_NAMES = ("scim_list_index_member_insert", "scim_list_index_member_delete", "scim_list_index_member_update",
          "scim_list_index_workspace_insert")

_POSTGRESQL = [
    f"""
CREATE OR REPLACE FUNCTION scim_list_index_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        IF {_OLD_VISIBLE} THEN
            {_BUMP}OLD.workspace_id;
        END IF;
    END IF;
    IF TG_OP = 'INSERT' THEN
        {_BUMP}NEW.workspace_id;
    ELSIF TG_OP = 'UPDATE' THEN
        IF {_NEW_VISIBLE} AND (NOT {_OLD_VISIBLE} OR OLD.workspace_id <> NEW.workspace_id) THEN
            {_BUMP}NEW.workspace_id;
        END IF;
    END IF;
    RETURN NULL;
END $$
""",
    f"""
CREATE OR REPLACE FUNCTION scim_list_index_create() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO {INDEX} (workspace_id, version, stride, total, anchors)
    VALUES (NEW.id, floor(random() * 4611686018427387903)::bigint + 1, 0, 0, '')
    ON CONFLICT (workspace_id) DO NOTHING;
    RETURN NULL;
END $$
""",
    f"DROP TRIGGER IF EXISTS scim_list_index_member_insert ON {MEMBERS}",
    f"CREATE TRIGGER scim_list_index_member_insert AFTER INSERT ON {MEMBERS} FOR EACH ROW "
    f"WHEN {_NEW_VISIBLE} EXECUTE FUNCTION scim_list_index_bump()",
    f"DROP TRIGGER IF EXISTS scim_list_index_member_delete ON {MEMBERS}",
    f"CREATE TRIGGER scim_list_index_member_delete AFTER DELETE ON {MEMBERS} FOR EACH ROW "
    f"WHEN {_OLD_VISIBLE} EXECUTE FUNCTION scim_list_index_bump()",
    f"DROP TRIGGER IF EXISTS scim_list_index_member_update ON {MEMBERS}",
    f"CREATE TRIGGER scim_list_index_member_update AFTER UPDATE OF {_VISIBILITY_COLUMNS} ON {MEMBERS} "
    f"FOR EACH ROW WHEN {_UPDATE_CHANGES_SET} EXECUTE FUNCTION scim_list_index_bump()",
    f"DROP TRIGGER IF EXISTS scim_list_index_workspace_insert ON {WORKSPACES}",
    f"CREATE TRIGGER scim_list_index_workspace_insert AFTER INSERT ON {WORKSPACES} FOR EACH ROW "
    "EXECUTE FUNCTION scim_list_index_create()",
]

_SQLITE = [
    f"CREATE TRIGGER IF NOT EXISTS scim_list_index_member_insert AFTER INSERT ON {MEMBERS} FOR EACH ROW "
    f"WHEN {_NEW_VISIBLE} BEGIN {_BUMP}NEW.workspace_id; END",
    f"CREATE TRIGGER IF NOT EXISTS scim_list_index_member_delete AFTER DELETE ON {MEMBERS} FOR EACH ROW "
    f"WHEN {_OLD_VISIBLE} BEGIN {_BUMP}OLD.workspace_id; END",
    f"CREATE TRIGGER IF NOT EXISTS scim_list_index_member_update AFTER UPDATE OF {_VISIBILITY_COLUMNS} "
    f"ON {MEMBERS} FOR EACH ROW WHEN {_UPDATE_CHANGES_SET} BEGIN "
    f"{_BUMP}OLD.workspace_id AND {_OLD_VISIBLE}; "
    f"{_BUMP}NEW.workspace_id AND {_NEW_VISIBLE} AND NOT (OLD.workspace_id = NEW.workspace_id AND {_OLD_VISIBLE}); "
    "END",
    f"CREATE TRIGGER IF NOT EXISTS scim_list_index_workspace_insert AFTER INSERT ON {WORKSPACES} FOR EACH ROW "
    f"BEGIN INSERT OR IGNORE INTO {INDEX} (workspace_id, version, stride, total, anchors) "
    "VALUES (NEW.id, (random() & 4611686018427387903) + 1, 0, 0, ''); END",
]

# Workspaces created before the triggers existed get their row now.
_MISSING_ROWS = {
    True: (
        f"INSERT INTO {INDEX} (workspace_id, version, stride, total, anchors) "
        f"SELECT w.id, floor(random() * 4611686018427387903)::bigint + 1, 0, 0, '' FROM {WORKSPACES} w "
        "ON CONFLICT (workspace_id) DO NOTHING"
    ),
    False: (
        f"INSERT OR IGNORE INTO {INDEX} (workspace_id, version, stride, total, anchors) "
        f"SELECT w.id, (random() & 4611686018427387903) + 1, 0, 0, '' FROM {WORKSPACES} w"
    ),
}


def install(conn: BaseDatabaseWrapper) -> None:
    """Create (or replace) the triggers on ``conn``'s database, and the index rows they rely on."""
    statements = _POSTGRESQL if is_postgresql(conn) else _SQLITE
    with conn.cursor() as cursor:
        for sql in statements:
            cursor.execute(sql)
        cursor.execute(_MISSING_ROWS[is_postgresql(conn)])


def uninstall(conn: BaseDatabaseWrapper) -> None:
    with conn.cursor() as cursor:
        for name in _NAMES:
            table = WORKSPACES if name.endswith("workspace_insert") else MEMBERS
            cursor.execute(f"DROP TRIGGER IF EXISTS {name}" + (f" ON {table}" if is_postgresql(conn) else ""))
        if is_postgresql(conn):
            cursor.execute("DROP FUNCTION IF EXISTS scim_list_index_bump()")
            cursor.execute("DROP FUNCTION IF EXISTS scim_list_index_create()")


def installed(conn: BaseDatabaseWrapper) -> set[str]:
    """The names of this module's triggers present on ``conn``'s database."""
    with conn.cursor() as cursor:
        if is_postgresql(conn):
            cursor.execute("SELECT tgname FROM pg_trigger WHERE tgname LIKE 'scim_list_index_%%' AND NOT tgisinternal")
        else:
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'scim_list_index_%%'")
        return {row[0] for row in cursor.fetchall()}


def reinstall_after_migrate(sender: Any, using: str = "default", **kwargs: Any) -> None:
    """``post_migrate``: put back triggers a SQLite table rebuild dropped (idempotent everywhere)."""
    from django.db import connections

    conn = connections[using]
    tables = set(conn.introspection.table_names())
    if {INDEX, MEMBERS, WORKSPACES} <= tables and installed(conn) != set(_NAMES):
        install(conn)
