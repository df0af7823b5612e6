"""The directory link's indexes, built without blocking writes to the members table (CONCURRENTLY on PostgreSQL:
tests/architecture/test_migrations_lock_safe.py). Not atomic: PostgreSQL builds an index concurrently only outside
a transaction. The SQL is the same as Django's for the model's Index and UniqueConstraint (see makemigrations --check)."""

import django.db.models.functions.text
from django.db import migrations, models

EMAIL_INDEX = models.Index(models.F("workspace"), django.db.models.functions.text.Lower("directory_email"),
                           name="membership_ws_directory_email")

SUBJECT_UNIQUE = models.UniqueConstraint(
    condition=models.Q(("saml_subject", ""), _negated=True), fields=("workspace", "saml_subject"),
    name="membership_saml_subject_unique",
)


def add_indexes(apps, schema_editor):
    """CONCURRENTLY on PostgreSQL; Django's own SQL elsewhere (SQLite: no concurrent writers to block)."""
    Membership = apps.get_model("workspaces", "Membership")
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            'CREATE INDEX CONCURRENTLY IF NOT EXISTS "membership_ws_directory_email" '
            'ON "workspaces_membership" ("workspace_id", (LOWER("directory_email")))'
        )
        schema_editor.execute(
            'CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS "membership_saml_subject_unique" '
            'ON "workspaces_membership" ("workspace_id", "saml_subject") WHERE NOT ("saml_subject" = \'\')'
        )
    else:
        schema_editor.add_index(Membership, EMAIL_INDEX)
        schema_editor.add_constraint(Membership, SUBJECT_UNIQUE)


def drop_indexes(apps, schema_editor):
    Membership = apps.get_model("workspaces", "Membership")
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute('DROP INDEX CONCURRENTLY IF EXISTS "membership_saml_subject_unique"')
        schema_editor.execute('DROP INDEX CONCURRENTLY IF EXISTS "membership_ws_directory_email"')
    else:
        schema_editor.remove_constraint(Membership, SUBJECT_UNIQUE)
        schema_editor.remove_index(Membership, EMAIL_INDEX)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("workspaces", "0005_directory_link"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddIndex(model_name="membership", index=EMAIL_INDEX),
                migrations.AddConstraint(model_name="membership", constraint=SUBJECT_UNIQUE),
            ],
            database_operations=[migrations.RunPython(add_indexes, drop_indexes)],
        ),
    ]
