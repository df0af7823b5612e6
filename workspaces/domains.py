"""Which email domains a workspace has proven (replaced by the domain-verification module)."""

from __future__ import annotations


def email_domain_verified(workspace_id: int, email: str) -> bool:
    """Whether ``email``'s domain is verified by the workspace ``workspace_id``.

    Replaced by the domain-verification module: until then no domain is verified, so every existing account
    joins a workspace only by accepting an invitation.
    """
    return False
