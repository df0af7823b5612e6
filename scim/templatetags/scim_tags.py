"""Template tags other apps' templates include (the overview's provisioning card)."""

from __future__ import annotations

from typing import Any

from django import template

from workspaces.models import Workspace

from ..request_log import recent_requests

register = template.Library()


@register.inclusion_tag("scim/overview_status.html")
def scim_overview(workspace: Workspace) -> dict[str, Any]:
    """The overview's provisioning card: SCIM on or off and the IdP's last request, with its status."""
    last = next(iter(recent_requests(workspace, limit=1)), None)
    return {"workspace": workspace, "last": last}
