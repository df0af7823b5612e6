from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from .models import ApiKey, Membership, Repository, RepositoryGrant, Team, TeamMembership, User, Workspace


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ("email",)
    list_display = ("email", "full_name", "is_active", "is_staff", "date_joined")
    search_fields = ("email", "full_name")
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Profile", {"fields": ("full_name",)}),
        ("Status", {"fields": ("is_active", "is_staff", "is_superuser")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)
    filter_horizontal = ()
    list_filter = ("is_active", "is_staff")


class MembershipInline(admin.TabularInline):
    model = Membership
    fields = ("user", "role", "visibility", "is_active", "is_auditor")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True


@admin.register(Workspace)
class WorkspaceAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "saml_only", "scim_enabled", "created_at")
    search_fields = ("slug", "name")
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    """Read-mostly: changes go through the portal's services so they are audited."""

    list_display = ("user", "workspace", "role", "visibility", "is_active", "is_auditor")
    list_filter = ("role", "is_active", "workspace")
    search_fields = ("user__email", "scim_username", "external_id")
    readonly_fields = [f.name for f in Membership._meta.fields]


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ("name", "workspace")
    search_fields = ("name",)
    readonly_fields = ("workspace", "name", "external_id", "created_at", "updated_at", "version")


admin.site.register(TeamMembership)


@admin.register(Repository)
class RepositoryAdmin(admin.ModelAdmin):
    list_display = ("name", "workspace", "environment")


admin.site.register(RepositoryGrant)


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("name", "prefix", "workspace", "membership", "created_at", "last_used_at", "revoked_at")
    readonly_fields = ("key_hash", "prefix")
    exclude = ()
