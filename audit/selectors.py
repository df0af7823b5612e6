"""Reads of the audit log, always scoped to one workspace."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from .models import AuditEvent


def recent_events(workspace: Any, *, limit: int = 50, target: tuple[str, Any] | None = None) -> QuerySet[AuditEvent]:
    qs = AuditEvent.objects.filter(workspace_id=workspace.pk)
    if target is not None:
        qs = qs.filter(target_type=target[0], target_id=str(target[1]))
    return qs.order_by("-created_at", "-id")[:limit]
