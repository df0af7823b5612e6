"""Reads for the provisioning page, always scoped by workspace."""

from __future__ import annotations

from django.db.models import QuerySet

from workspaces.models import Workspace

from .models import ScimCredential


def credentials_of(workspace: Workspace) -> QuerySet[ScimCredential]:
    """Every SCIM credential of the workspace, newest first, with OAuth client details (one query)."""
    return (
        ScimCredential.objects.filter(workspace=workspace)
        .select_related("oauth_application", "created_by")
        .order_by("-created_at", "-id")
    )


def credential_of(workspace: Workspace, credential_id: int) -> ScimCredential | None:
    """One credential by id, only if it belongs to this workspace (404 otherwise, at the view)."""
    return credentials_of(workspace).filter(pk=credential_id).first()
