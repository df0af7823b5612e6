"""Celery shells for SCIM housekeeping."""

from __future__ import annotations

from celery import shared_task


@shared_task
def clear_expired_oauth_tokens() -> None:
    """django-oauth-toolkit's own cleanup (what ``manage.py cleartokens`` runs): expired tokens and used grants.

    They are refused as soon as they expire; this only keeps DOT's tables from growing for ever.
    """
    from oauth2_provider.models import clear_expired

    clear_expired()
