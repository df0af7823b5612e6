"""Celery shells around SAML services: take ids, re-fetch, stay idempotent."""

from __future__ import annotations

from celery import shared_task

from .models import SamlSettings
from .services import purge_expired, saml_actor, saml_metadata_refresh


@shared_task(acks_late=True)
def refresh_metadata(settings_id: int) -> str:
    return saml_metadata_refresh(settings_id=settings_id, actor=saml_actor("metadata refresh"))


@shared_task
def refresh_all_metadata() -> int:
    """Daily (PERIODIC_JOBS): one task per workspace that gave a metadata URL."""
    ids = list(SamlSettings.objects.exclude(metadata_url="").values_list("pk", flat=True))
    for pk in ids:
        refresh_metadata.delay(pk)
    return len(ids)


@shared_task
def purge_expired_saml_state() -> dict[str, int]:
    return purge_expired()
