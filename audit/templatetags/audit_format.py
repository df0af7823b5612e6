"""Template filters for showing audit events."""

from __future__ import annotations

from typing import Any

from django import template

from audit.models import AuditEvent
from audit.selectors import event_changes

register = template.Library()


@register.filter
def audit_changes(event: AuditEvent) -> list[tuple[str, Any, Any]]:
    """``{% with changes=e|audit_changes %}``: the event's before/after as field rows."""
    return event_changes(event)
