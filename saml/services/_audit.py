"""Who SAML acts as when nobody clicked, and the target its workspace-level events name."""

from __future__ import annotations

from typing import Any

from audit.record import Actor
from workspaces.models import Workspace


def saml_actor(label: str) -> Actor:
    """The actor for changes SAML makes on its own (JIT, group sync): authorised by the IdP's signed word."""
    return Actor(kind="system", id="", label=label[:255], auth_method="saml")


def workspace_target(workspace: Workspace) -> dict[str, Any]:
    """``record_event`` target keywords for SSO events about the workspace itself (settings, logins)."""
    return {"target_type": "workspace", "target_id": workspace.pk, "target_label": workspace.slug}
