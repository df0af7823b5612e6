"""Every migration can run while the portal serves: no long lock on a table that already holds rows, and nothing
that breaks the nodes still running the previous release during a rolling upgrade (docs/deploy.md, "Upgrading").

Reads the SQL each migration would run on PostgreSQL (what ``sqlmigrate`` prints) and refuses, on a table the
migration did not create itself: an index built without ``CONCURRENTLY`` (blocks writes for the whole build), a
unique, foreign-key or check constraint added without ``NOT VALID`` (scans or builds under a lock), a column type
change (rewrites the table), ``SET NOT NULL`` (scans under an exclusive lock), a column added with a volatile
default (rewrites), and a dropped or renamed column or table (the previous release still reads it). Initial
migrations are exempt (their tables are new). A migration that must break a rule is listed in ``ALLOWED`` with the
reason and what an operator does about it.
"""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

OUR_APPS = {"audit", "workspaces", "saml", "scim", "config"}

RULES: list[tuple[str, re.Pattern[str]]] = [
    ("index built without CONCURRENTLY (use AddIndexConcurrently in a non-atomic migration)",
     re.compile(r'^CREATE (UNIQUE )?INDEX (?!CONCURRENTLY)\S+ ON "(?P<table>[^"]+)"')),
    ("unique constraint added under a lock (build the index CONCURRENTLY, then ADD CONSTRAINT ... USING INDEX)",
     re.compile(r'^ALTER TABLE "(?P<table>[^"]+)" ADD CONSTRAINT \S+ UNIQUE')),
    ("foreign key or check constraint validated under a lock (add it NOT VALID, then VALIDATE CONSTRAINT)",
     re.compile(r'^ALTER TABLE "(?P<table>[^"]+)" ADD CONSTRAINT \S+ (FOREIGN KEY|CHECK)(?!.*NOT VALID)')),
    ("column type changed (rewrites the table)",
     re.compile(r'^ALTER TABLE "(?P<table>[^"]+)" ALTER COLUMN \S+ TYPE')),
    ("SET NOT NULL scans the table under an exclusive lock (add a CHECK ... NOT VALID, validate, then SET NOT NULL)",
     re.compile(r'^ALTER TABLE "(?P<table>[^"]+)" ALTER COLUMN \S+ SET NOT NULL')),
    ("column added with a volatile default (rewrites the table)",
     re.compile(r'^ALTER TABLE "(?P<table>[^"]+)" ADD COLUMN .* DEFAULT \w+\(')),
    ("column dropped or renamed (the previous release still reads it during a rolling upgrade)",
     re.compile(r'^ALTER TABLE "(?P<table>[^"]+)" (DROP COLUMN|RENAME COLUMN)')),
    ("table dropped or renamed (the previous release still reads it during a rolling upgrade)",
     re.compile(r'^(DROP TABLE|ALTER TABLE "[^"]+" RENAME TO) "?(?P<table>[^" ]+)"?')),
]

# (app, migration) -> why it is allowed and what an operator does about it.
ALLOWED: dict[tuple[str, str], str] = {
    ("audit", "0004_auditor_tools"): (
        "shipped before this check: two indexes on audit_auditevent built under a write lock. An installation that "
        "has not applied it yet and holds a large audit log applies it in a maintenance window (docs/deploy.md)"
    ),
}


def _migrations_sql() -> list[tuple[str, str, bool, list[str]]]:
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes(), clean_start=True)
    found = []
    for migration, _ in plan:
        if migration.app_label in OUR_APPS:
            sql = executor.loader.collect_sql([(migration, False)])
            found.append((migration.app_label, migration.name, bool(migration.initial), sql))
    return found


def violations(sql: list[str]) -> list[str]:
    """What in ``sql`` (one migration's statements) would lock or break a table that already exists."""
    created = set(re.findall(r'CREATE TABLE "([^"]+)"', "\n".join(sql)))
    found = []
    for statement in sql:
        statement = statement.strip()
        for reason, pattern in RULES:
            match = pattern.search(statement)
            if match and match.group("table") not in created:
                found.append(f"{reason}: {statement[:140]}")
    return found


@pytest.fixture(scope="module")
def migrations_sql(django_db_blocker):
    if connection.vendor != "postgresql":
        pytest.skip("reads the SQL migrations run on PostgreSQL (run with DATABASE_URL=postgres://...)")
    with django_db_blocker.unblock():
        return _migrations_sql()


def test_no_migration_locks_or_breaks_a_table_that_holds_rows(migrations_sql):
    problems = {
        f"{app}.{name}": found
        for app, name, initial, sql in migrations_sql
        if not initial and (app, name) not in ALLOWED and (found := violations(sql))
    }
    assert problems == {}, "\n".join(f"{key}:\n  " + "\n  ".join(found) for key, found in problems.items())


def test_every_allowed_migration_still_exists_and_still_needs_its_exemption(migrations_sql):
    needed = {(app, name) for app, name, initial, sql in migrations_sql if violations(sql)}
    assert set(ALLOWED) <= needed


@pytest.mark.parametrize("statement, refused", [
    ('CREATE INDEX "i" ON "t" ("a");', True),
    ('CREATE INDEX CONCURRENTLY "i" ON "t" ("a");', False),
    ('ALTER TABLE "t" ADD CONSTRAINT "c" FOREIGN KEY ("a") REFERENCES "u" ("id") DEFERRABLE INITIALLY DEFERRED;', True),
    ('ALTER TABLE "t" ADD CONSTRAINT "c" FOREIGN KEY ("a") REFERENCES "u" ("id") NOT VALID;', False),
    ('ALTER TABLE "t" ADD CONSTRAINT "c" UNIQUE ("a", "b");', True),
    ('ALTER TABLE "t" ALTER COLUMN "a" TYPE bigint USING "a"::bigint;', True),
    ('ALTER TABLE "t" ALTER COLUMN "a" SET NOT NULL;', True),
    ('ALTER TABLE "t" ALTER COLUMN "a" DROP DEFAULT;', False),
    ('ALTER TABLE "t" ADD COLUMN "a" integer DEFAULT 0 NOT NULL;', False),
    ('ALTER TABLE "t" ADD COLUMN "a" timestamp with time zone DEFAULT now() NOT NULL;', True),
    ('ALTER TABLE "t" DROP COLUMN "a" CASCADE;', True),
    ('ALTER TABLE "t" RENAME COLUMN "a" TO "b";', True),
    ('DROP TABLE "t" CASCADE;', True),
])
def test_the_rules_refuse_what_locks_or_breaks_an_existing_table(statement, refused):
    assert bool(violations([statement])) is refused
    # The same statement on a table the migration creates is fine.
    assert violations(['CREATE TABLE "t" ("id" bigint);', statement]) == []
