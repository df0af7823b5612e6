"""The SCIM Users list index hears every change of the visible member set from database triggers
(scim/list_index_triggers.py), and every workspace gets its index row when it is created."""

from django.db import migrations


def install(apps, schema_editor):
    from scim import list_index_triggers

    list_index_triggers.install(schema_editor.connection)


def uninstall(apps, schema_editor):
    from scim import list_index_triggers

    list_index_triggers.uninstall(schema_editor.connection)


class Migration(migrations.Migration):

    dependencies = [
        ('scim', '0003_scim_list_index'),
        ('workspaces', '0002_deprov_outbox'),
    ]

    operations = [
        migrations.RunPython(install, uninstall),
    ]
