"""Members who signed in through SSO before ``Membership.last_sso_at`` existed keep their personal API keys
working: their last SSO sign-in (``SamlMemberState.last_sso_at``, written by every SAML login) is copied over.

Without it every personal key of a SAML-only workspace would stop at the upgrade until its member's next SSO
sign-in. One UPDATE of the members with a SAML state (row locks only, no table lock); nothing to undo.
"""

from django.db import migrations
from django.db.models import OuterRef, Subquery


def copy_last_sso(apps, schema_editor):
    Membership = apps.get_model("workspaces", "Membership")
    SamlMemberState = apps.get_model("saml", "SamlMemberState")
    states = SamlMemberState.objects.filter(last_sso_at__isnull=False)
    Membership.objects.filter(last_sso_at__isnull=True, pk__in=states.values("membership_id")).update(
        last_sso_at=Subquery(states.filter(membership_id=OuterRef("pk")).values("last_sso_at")[:1])
    )


class Migration(migrations.Migration):

    dependencies = [
        ("saml", "0005_sp_keys"),
        ("workspaces", "0009_api_key_sso"),
    ]

    operations = [
        migrations.RunPython(copy_last_sso, migrations.RunPython.noop),
    ]
