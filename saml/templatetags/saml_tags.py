"""Template tags other apps' templates include additively (the break-glass notice on the workspace home)."""

from __future__ import annotations

from typing import Any

from django import template

from workspaces.models import Workspace

from ..selectors import recent_break_glass_uses

register = template.Library()


@register.inclusion_tag("saml/break_glass_notice.html")
def break_glass_notice(workspace: Workspace) -> dict[str, Any]:
    """Every member of the workspace sees that SAML-only was bypassed, by whom and when (last 30 days)."""
    return {"uses": list(recent_break_glass_uses(workspace)[:5]), "workspace": workspace}
