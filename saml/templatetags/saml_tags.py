"""Template tags other apps' templates include additively (the break-glass notice on the workspace home)."""

from __future__ import annotations

from typing import Any

from django import template

from workspaces.models import Workspace

from ..selectors import recent_break_glass_uses, saml_settings_for

register = template.Library()


@register.inclusion_tag("saml/break_glass_notice.html")
def break_glass_notice(workspace: Workspace) -> dict[str, Any]:
    """Every member of the workspace sees that SAML-only was bypassed, by whom and when (last 30 days)."""
    return {"uses": list(recent_break_glass_uses(workspace)[:5]), "workspace": workspace}


@register.inclusion_tag("saml/overview_status.html")
def sso_overview(workspace: Workspace) -> dict[str, Any]:
    """The overview's SSO card: configured, tested (when, by whom), enforced, a staged IdP waiting."""
    return {"workspace": workspace, "sso": saml_settings_for(workspace)}
