from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from audit.record import Actor

from .models import (
    ApiKey,
    DeprovisionJob,
    DeprovisionStatus,
    DomainClaim,
    Membership,
    Repository,
    RepositoryGrant,
    Team,
    TeamMembership,
    User,
    Workspace,
)
from .services import deprovision_job_requeue, user_disable, user_enable


def _support_actor(request) -> Actor:
    return Actor(kind="user", id=str(request.user.pk), label=request.user.email, auth_method="django_admin")


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
    # Disabling goes through user_disable (audit + credential revocation in every workspace), not the form.
    readonly_fields = ("is_active",)
    actions = ["disable_accounts", "enable_accounts"]

    @admin.action(description="Disable selected accounts and revoke their credentials everywhere",
                  permissions=["change"])
    def disable_accounts(self, request, queryset) -> None:
        jobs = 0
        for user in queryset:
            jobs += len(user_disable(user=user, actor=_support_actor(request), reason="Django admin"))
        self.message_user(request, f"Disabled; credential revocation queued in {jobs} workspace(s).", messages.SUCCESS)

    @admin.action(description="Re-enable selected accounts (revoked credentials stay revoked)", permissions=["change"])
    def enable_accounts(self, request, queryset) -> None:
        for user in queryset:
            user_enable(user=user, actor=_support_actor(request), reason="Django admin")
        self.message_user(request, "Re-enabled.", messages.SUCCESS)


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


@admin.register(DomainClaim)
class DomainClaimAdmin(admin.ModelAdmin):
    """Read-only: which workspace claims or holds an email domain. Changes go through the domains page or
    ``manage.py workspace_domain`` (audited)."""

    list_display = ("domain", "workspace", "verified_at", "last_checked_at", "expires_at", "failures")
    list_filter = (("verified_at", admin.EmptyFieldListFilter),)
    search_fields = ("domain", "workspace__slug")
    readonly_fields = [f.name for f in DomainClaim._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(DeprovisionJob)
class DeprovisionJobAdmin(admin.ModelAdmin):
    """The outbox, read-only; failed jobs can be given a fresh set of attempts."""

    list_display = ("member_label", "workspace", "cause", "status", "attempts", "created_at", "finished_at")
    list_filter = ("status", "cause")
    search_fields = ("member_label", "workspace__slug")
    readonly_fields = [f.name for f in DeprovisionJob._meta.fields]
    actions = ["requeue"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.action(description="Retry selected failed jobs", permissions=["change"])
    def requeue(self, request, queryset) -> None:
        failed = list(queryset.filter(status=DeprovisionStatus.FAILED))
        for job in failed:
            deprovision_job_requeue(job=job, actor=_support_actor(request))
        self.message_user(request, f"{len(failed)} failed job(s) queued again.", messages.SUCCESS)
