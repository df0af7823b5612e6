from django.contrib import admin

from .models import GroupMapping, SamlSettings


@admin.register(SamlSettings)
class SamlSettingsAdmin(admin.ModelAdmin):
    list_display = ("workspace", "idp_entity_id", "idp_initiated", "group_sync_enabled", "last_test_succeeded_at")
    readonly_fields = [f.name for f in SamlSettings._meta.fields]  # changes go through the audited page


@admin.register(GroupMapping)
class GroupMappingAdmin(admin.ModelAdmin):
    list_display = ("workspace", "idp_group", "team", "role", "priority")
    readonly_fields = ("workspace", "idp_group", "team", "role", "priority", "created_at")
