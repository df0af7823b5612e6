"""Reads for SAML: settings, discovery by email domain, mappings, previews. Always scoped by workspace."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from workspaces.models import Membership, TeamMembership, TeamSource, Workspace

from .models import BreakGlassCode, GroupMapping, SamlSettings, SsoEmailDomain


def saml_settings_for(workspace: Workspace) -> SamlSettings | None:
    return SamlSettings.objects.filter(workspace=workspace).first()


def saml_settings_by_slug(slug: str) -> tuple[Workspace | None, SamlSettings | None]:
    workspace = Workspace.objects.filter(slug=slug).first()
    if workspace is None:
        return None, None
    return workspace, saml_settings_for(workspace)


def email_domain(email: str) -> str:
    return email.rpartition("@")[2].strip().lower()


def sso_workspace_for_email(email: str) -> Workspace | None:
    """The workspace whose SSO claims this email's domain (``/login/``'s "Log in with SSO")."""
    domain = email_domain(email)
    if not domain:
        return None
    row = (
        SsoEmailDomain.objects.select_related("saml_settings__workspace")
        .filter(domain__iexact=domain).first()
    )
    return row.saml_settings.workspace if row else None


def test_is_fresh(cfg: SamlSettings | None, now: datetime | None = None) -> bool:
    if cfg is None or cfg.last_test_succeeded_at is None:
        return False
    now = now or timezone.now()
    return now - cfg.last_test_succeeded_at <= timedelta(seconds=settings.SAML_TEST_FRESHNESS)


def group_mappings_for(workspace: Workspace) -> QuerySet[GroupMapping]:
    return GroupMapping.objects.filter(workspace=workspace).select_related("team").order_by("-priority", "idp_group")


def group_sync_preview(workspace: Workspace) -> QuerySet[TeamMembership]:
    """Who sits in an IdP-managed team without having been put there by group sync.

    When group sync is on, each of them leaves that team at their next SSO login unless the IdP asserts
    the mapped group. Shown before the switch is turned on (lockouts are the classic mistake).
    """
    return (
        TeamMembership.objects.filter(team__workspace=workspace, team__saml_group_mappings__isnull=False)
        .exclude(source=TeamSource.SAML)
        .select_related("team", "membership__user")
        .order_by("team__name", "membership__user__email")
        .distinct()
    )


def break_glass_codes_left(workspace: Workspace) -> int:
    return BreakGlassCode.objects.filter(workspace=workspace, used_at__isnull=True, revoked_at__isnull=True).count()


def recent_break_glass_uses(workspace: Workspace, days: int = 30) -> QuerySet[BreakGlassCode]:
    since = timezone.now() - timedelta(days=days)
    return (
        BreakGlassCode.objects.filter(workspace=workspace, used_at__gte=since)
        .select_related("used_by").order_by("-used_at")
    )


def active_owner_for_email(workspace: Workspace, email: str) -> Membership | None:
    return Membership.objects.filter(
        workspace=workspace, user__email__iexact=email, role="owner", is_active=True, user__is_active=True
    ).select_related("user").first()
