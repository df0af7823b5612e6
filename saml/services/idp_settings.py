"""IdP settings: metadata (pasted or fetched from a URL), attribute mapping, email domains, refresh."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from audit.record import Actor, record_event
from workspaces import services as ws
from workspaces.exceptions import ServiceError
from workspaces.models import Workspace
from workspaces.roles import Cap

from ..fetch import FetchError, fetch_metadata_url
from ..metadata import MetadataError, ParsedMetadata, cert_info, parse_idp_metadata
from ..models import SamlSettings, SsoEmailDomain
from ._audit import workspace_target

logger = logging.getLogger(__name__)


def _summary(cfg: SamlSettings) -> dict[str, Any]:
    return {
        "idp_entity_id": cfg.idp_entity_id,
        "sso_urls": [u["location"] for u in cfg.sso_urls],
        "certificates": [cert_info(c).fingerprint_sha256 for c in cfg.certificates],
        "metadata_url": cfg.metadata_url,
        "email_attribute": cfg.email_attribute,
        "first_name_attribute": cfg.first_name_attribute,
        "last_name_attribute": cfg.last_name_attribute,
        "groups_attribute": cfg.groups_attribute,
        "role_attribute": cfg.role_attribute,
        "subject_attribute": cfg.subject_attribute,
        "idp_initiated": cfg.idp_initiated,
        "allow_sha1": cfg.allow_sha1,
        "clock_skew_seconds": cfg.clock_skew_seconds,
        "email_domains": sorted(d.domain for d in cfg.email_domains.all()) if cfg.pk else [],
    }


def _changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The audit ``changes`` detail: each summary key whose value differs, before and after."""
    return {k: {"before": before.get(k), "after": v} for k, v in after.items() if before.get(k) != v}


def _apply_metadata(cfg: SamlSettings, parsed: ParsedMetadata, xml: str) -> None:
    cfg.metadata_xml = xml
    cfg.idp_entity_id = parsed.entity_id
    cfg.sso_urls = parsed.sso_urls
    cfg.certificates = parsed.certificates
    cfg.metadata_refresh_error = ""


def _normalise_domains(domains: list[str]) -> list[str]:
    out: list[str] = []
    for raw in domains:
        domain = raw.strip().lower().lstrip("@")
        if not domain:
            continue
        if "." not in domain or any(c.isspace() or c in "/@:" for c in domain):
            raise ServiceError(f"{raw!r} is not an email domain (example: example.com).", field="email_domains")
        if domain not in out:
            out.append(domain)
    return out


def _load_metadata(metadata_xml: str, metadata_url: str) -> tuple[ParsedMetadata, str]:
    if metadata_xml.strip():
        xml = metadata_xml.strip()
    elif metadata_url.strip():
        try:
            xml = fetch_metadata_url(metadata_url.strip()).decode("utf-8", errors="replace")
        except FetchError as exc:
            raise ServiceError(str(exc), field="metadata_url") from None
    else:
        raise ServiceError("Paste the IdP metadata XML or give its metadata URL.", field="metadata_xml")
    try:
        parsed = parse_idp_metadata(xml)
    except MetadataError as exc:
        raise ServiceError(" ".join(exc.errors), field="metadata_xml") from None
    return parsed, xml


@transaction.atomic
def saml_settings_save(
    *,
    workspace: Workspace,
    actor: Actor,
    metadata_xml: str = "",
    metadata_url: str = "",
    email_domains: list[str] | None = None,
    email_attribute: str | None = None,
    first_name_attribute: str | None = None,
    last_name_attribute: str | None = None,
    groups_attribute: str | None = None,
    role_attribute: str | None = None,
    subject_attribute: str | None = None,
    idp_initiated: bool | None = None,
    allow_sha1: bool | None = None,
    clock_skew_seconds: int | None = None,
) -> SamlSettings:
    """Validate IdP metadata (entity ID, SSO URL, signing certificate) and save this workspace's SSO settings.

    A new IdP identity (entity ID or certificates) voids the last Test SSO: enforcement needs a fresh one.
    """
    ws.require_capability(actor, workspace, Cap.SETTINGS_MANAGE)
    cfg = SamlSettings.objects.select_for_update().filter(workspace=workspace).first()
    if cfg is not None and not metadata_xml.strip() and not metadata_url.strip():
        metadata_xml = cfg.metadata_xml  # changing the mapping only: keep (and re-validate) the current metadata
    parsed, xml = _load_metadata(metadata_xml, metadata_url)
    created = cfg is None
    before = _summary(cfg) if cfg else {}
    if cfg is None:
        cfg = SamlSettings(workspace=workspace)
    identity_changed = created or cfg.idp_entity_id != parsed.entity_id or set(cfg.certificates) != set(parsed.certificates)
    # Which value identifies a person decides who gets in: a new one needs a new Test SSO too.
    identity_changed = identity_changed or (
        subject_attribute is not None and subject_attribute.strip() != cfg.subject_attribute
    )
    _apply_metadata(cfg, parsed, xml)
    cfg.metadata_url = metadata_url.strip()
    cfg.metadata_fetched_at = timezone.now() if cfg.metadata_url else None
    for name, value in (
        ("email_attribute", email_attribute), ("first_name_attribute", first_name_attribute),
        ("last_name_attribute", last_name_attribute), ("groups_attribute", groups_attribute),
        ("role_attribute", role_attribute), ("subject_attribute", subject_attribute),
    ):
        if value is not None:
            setattr(cfg, name, value.strip()[:200])
    if idp_initiated is not None:
        cfg.idp_initiated = idp_initiated
    if allow_sha1 is not None:
        cfg.allow_sha1 = allow_sha1
    if clock_skew_seconds is not None:
        if not 0 <= clock_skew_seconds <= 600:
            raise ServiceError("Clock skew must be between 0 and 600 seconds.", field="clock_skew_seconds")
        cfg.clock_skew_seconds = clock_skew_seconds
    if identity_changed:
        cfg.last_test_succeeded_at = None
        cfg.last_test_by = None
        cfg.last_test_result = {}
    cfg.updated_at = timezone.now()
    if not created:
        cfg.version = F("version") + 1  # an UPDATE expression, re-read below
    cfg.save()
    cfg.refresh_from_db()
    if email_domains is not None:
        domains = _normalise_domains(email_domains)
        taken = SsoEmailDomain.objects.filter(domain__in=domains).exclude(saml_settings=cfg).first()
        if taken is not None:
            raise ServiceError(
                f"The domain {taken.domain} already sends its people to another workspace's SSO.",
                field="email_domains",
            )
        cfg.email_domains.exclude(domain__in=domains).delete()
        for domain in domains:
            SsoEmailDomain.objects.get_or_create(saml_settings=cfg, domain=domain)
    record_event(
        actor=actor, action="sso.settings_changed", workspace=workspace, **workspace_target(workspace),
        details={"created": created, "changes": _changes(before, _summary(cfg)),
                 "test_reset": identity_changed and not created},
    )
    return cfg


@transaction.atomic
def saml_metadata_refresh(*, settings_id: int, actor: Actor) -> str:
    """Re-fetch a metadata URL. Changes are audited; a failure keeps the last good metadata and warns."""
    cfg = SamlSettings.objects.select_for_update().select_related("workspace").filter(pk=settings_id).first()
    if cfg is None or not cfg.metadata_url:
        return "skipped"
    workspace = cfg.workspace
    try:
        body = fetch_metadata_url(cfg.metadata_url).decode("utf-8", errors="replace")
        parsed = parse_idp_metadata(body)
    except (FetchError, MetadataError) as exc:
        message = str(exc)[:500]
        logger.warning("SAML metadata refresh failed for workspace %s: %s (keeping the last good metadata)",
                       workspace.slug, message)
        cfg.metadata_refresh_error = message
        cfg.save(update_fields=["metadata_refresh_error"])
        record_event(actor=actor, action="sso.metadata_refresh_failed", workspace=workspace,
                     **workspace_target(workspace), details={"error": message, "kept_last_good": True})
        return "failed"
    before = _summary(cfg)
    _apply_metadata(cfg, parsed, body)
    cfg.metadata_fetched_at = timezone.now()
    changes = _changes(before, _summary(cfg))
    if changes:
        cfg.updated_at = timezone.now()
        cfg.version = F("version") + 1  # an UPDATE expression
    cfg.save()
    if changes:
        record_event(actor=actor, action="sso.metadata_refreshed", workspace=workspace,
                     **workspace_target(workspace), details={"changes": changes})
        return "changed"
    return "unchanged"
