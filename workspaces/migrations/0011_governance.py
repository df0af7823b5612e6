"""Connector API provisioning: a workspace may let governance tools override what its IdP owns (off), and a team
records that a SCIM group push created it, so its member list is the IdP's.

Backfill: a team that already has an externalId or a member pushed by SCIM came from a SCIM group. Both columns have
a database default, so rows the previous release inserts during a rolling upgrade get False."""

from django.db import migrations, models
from django.db.models import Q


def mark_scim_teams(apps, schema_editor):
    Team = apps.get_model("workspaces", "Team")
    Team.objects.filter(Q(~Q(external_id="")) | Q(team_memberships__source="scim")).update(scim_managed=True)


class Migration(migrations.Migration):

    dependencies = [
        ('workspaces', '0010_invitations'),
    ]

    operations = [
        migrations.AddField(
            model_name='team',
            name='scim_managed',
            field=models.BooleanField(default=False, db_default=False),
        ),
        migrations.AddField(
            model_name='workspace',
            name='api_may_override_idp',
            field=models.BooleanField(default=False, db_default=False),
        ),
        migrations.RunPython(mark_scim_teams, migrations.RunPython.noop),
    ]
