"""What the audit app's services refuse. The workspace's pages show ``message`` next to the field."""

from __future__ import annotations


class AuditSettingRefused(ValueError):
    """A sink's name or URL, or an export format, is not acceptable; ``message`` is safe to show."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
