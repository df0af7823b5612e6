"""Celery shells around services: take ids, re-fetch, stay idempotent."""

from __future__ import annotations

from celery import shared_task

from audit.record import Actor

from .services import membership_revoke_credentials


@shared_task(acks_late=True, autoretry_for=(Exception,), retry_backoff=True, retry_backoff_max=300, max_retries=8)
def revoke_member_credentials(membership_id: int) -> dict[str, int] | None:
    """Revoke a deactivated member's API keys (sessions already fail the grant check)."""
    return membership_revoke_credentials(membership_id=membership_id, actor=Actor.system("deprovisioning"))
