"""IdP settings: metadata (pasted or fetched from a URL), attribute mapping, refresh."""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from audit.record import Actor, record_event
from workspaces import services as ws
from workspaces.domains import InvalidDomain, normalise_domain
from workspaces.exceptions import ServiceError
from workspaces.models import DomainClaim, Workspace
from workspaces.roles import Cap

from ..fetch import FetchError, fetch_metadata_url
from ..metadata import MetadataError, ParsedMetadata, cert_info, parse_idp_metadata
from ..models import SamlSettings
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


def _locations(sso_urls: list[dict[str, str]]) -> set[tuple[str, str]]:
    return {(u["binding"], u["location"]) for u in sso_urls}


def needs_staging(cfg: SamlSettings, parsed: ParsedMetadata) -> bool:
    """Would applying ``parsed`` now risk locking the workspace out? True while SAML-only is enforced and the IdP
    changes: another entity ID or SSO URL, or a signing certificate removed or replaced. Adding a certificate
    beside the current ones (the IdP's rollover) is not a change of IdP: it applies at once."""
    if not cfg.workspace.saml_only:
        return False
    return (
        cfg.idp_entity_id != parsed.entity_id
        or _locations(cfg.sso_urls) != _locations(parsed.sso_urls)
        or not set(cfg.certificates) <= set(parsed.certificates)
    )


def _stage(cfg: SamlSettings, parsed: ParsedMetadata, xml: str, metadata_url: str, actor: Actor) -> None:
    cfg.pending_idp = {
        "metadata_xml": xml, "metadata_url": metadata_url, "entity_id": parsed.entity_id,
        "sso_urls": parsed.sso_urls, "certificates": parsed.certificates,
        "staged_at": timezone.now().isoformat(), "staged_by": actor.label,
    }


def _staged_detail(parsed: ParsedMetadata) -> dict[str, Any]:
    """What the audit log keeps of a staged IdP: its entity ID and certificate fingerprints."""
    return {"entity_id": parsed.entity_id,
            "certificates": [cert_info(c).fingerprint_sha256 for c in parsed.certificates]}


def _pending_metadata(pending: dict[str, Any]) -> ParsedMetadata:
    return ParsedMetadata(entity_id=pending["entity_id"], sso_urls=pending["sso_urls"],
                          certificates=pending["certificates"])


def settings_with_pending(cfg: SamlSettings) -> SamlSettings | None:
    """The settings as they would be with the staged IdP (an unsaved copy: for Test SSO only), or None."""
    pending = cfg.pending_idp or {}
    if not pending:
        return None
    staged = copy.copy(cfg)
    _apply_metadata(staged, _pending_metadata(pending), pending["metadata_xml"])
    return staged


def pending_summary(cfg: SamlSettings | None) -> dict[str, Any]:
    """What the settings page shows of a staged IdP change (certificate fingerprints, never key material)."""
    pending = (cfg.pending_idp if cfg else None) or {}
    if not pending:
        return {}
    return {
        "entity_id": pending["entity_id"], "sso_urls": [u["location"] for u in pending["sso_urls"]],
        "certificates": [cert_info(c) for c in pending["certificates"]], "staged_at": pending.get("staged_at", ""),
        "staged_by": pending.get("staged_by", ""), "metadata_url": pending.get("metadata_url", ""),
    }


@transaction.atomic
def saml_pending_apply(*, cfg: SamlSettings, actor: Actor) -> SamlSettings:
    """Make the staged IdP live: called when a Test SSO was answered, and verified, by it."""
    cfg = SamlSettings.objects.select_for_update().select_related("workspace").get(pk=cfg.pk)
    pending = cfg.pending_idp or {}
    if not pending:
        return cfg
    before = _summary(cfg)
    _apply_metadata(cfg, _pending_metadata(pending), pending["metadata_xml"])
    cfg.metadata_url = pending.get("metadata_url", "")
    cfg.metadata_fetched_at = timezone.now() if cfg.metadata_url else None
    cfg.pending_idp = {}
    cfg.updated_at = timezone.now()
    cfg.version = F("version") + 1
    cfg.save()
    cfg.refresh_from_db()
    record_event(actor=actor, action="sso.pending_applied", workspace=cfg.workspace,
                 **workspace_target(cfg.workspace), details={"changes": _changes(before, _summary(cfg))})
    return cfg


@transaction.atomic
def saml_pending_discard(*, workspace: Workspace, actor: Actor) -> None:
    """Drop a staged IdP change; the live IdP stays as it is."""
    ws.require_capability(actor, workspace, Cap.SETTINGS_MANAGE)
    cfg = SamlSettings.objects.select_for_update().filter(workspace=workspace).first()
    if cfg is None or not cfg.pending_idp:
        raise ServiceError("There is no staged IdP change.")
    entity_id = cfg.pending_idp.get("entity_id", "")
    cfg.pending_idp = {}
    cfg.save(update_fields=["pending_idp"])
    record_event(actor=actor, action="sso.pending_discarded", workspace=workspace, **workspace_target(workspace),
                 details={"entity_id": entity_id})


def _claim_domains(workspace: Workspace, actor: Actor, domains: list[str]) -> None:
    """Claim the domains this workspace does not claim yet (``manage.py sso_configure --email-domain``). A claim
    routes ``/login/`` only once verified (workspaces.services.domain_claim_verify); each is audited domain.claimed.
    Nothing is unclaimed here: the Domains page and ``manage.py workspace_domain`` remove claims."""
    claimed = set(DomainClaim.objects.filter(workspace=workspace).values_list("domain", flat=True))
    for raw in domains:
        if not raw.strip():
            continue
        try:
            domain = normalise_domain(raw)
        except InvalidDomain as exc:
            raise ServiceError(str(exc), field="email_domains") from None
        if domain not in claimed:
            ws.domain_claim_add(workspace=workspace, domain=domain, actor=actor)
            claimed.add(domain)


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


@dataclass(frozen=True)
class MetadataPreview:
    """What saving this metadata would set, shown before saving: the parsed IdP and what the save would do."""

    parsed: ParsedMetadata
    staged: bool  # SAML-only is enforced and the IdP changes: saving stages it for a Test SSO
    voids_test: bool  # another IdP (or certificates): the last Test SSO no longer counts
    added_certificates: list[str]
    removed_certificates: list[str]


def saml_metadata_preview(*, workspace: Workspace, metadata_xml: str = "", metadata_url: str = "") -> MetadataPreview:
    """Parse (or fetch, through the guarded client) the metadata an Owner entered and say what saving it would
    do, without saving anything. ServiceError names the field at fault, as saving would."""
    parsed, _ = _load_metadata(metadata_xml, metadata_url)
    cfg = SamlSettings.objects.select_related("workspace").filter(workspace=workspace).first()
    if cfg is None:
        return MetadataPreview(parsed, False, False, list(parsed.certificates), [])
    changed = (cfg.idp_entity_id != parsed.entity_id or _locations(cfg.sso_urls) != _locations(parsed.sso_urls)
               or set(cfg.certificates) != set(parsed.certificates))
    return MetadataPreview(
        parsed=parsed, staged=needs_staging(cfg, parsed), voids_test=changed,
        added_certificates=[c for c in parsed.certificates if c not in cfg.certificates],
        removed_certificates=[c for c in cfg.certificates if c not in parsed.certificates],
    )


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
    ``email_domains`` are claimed for the workspace (pending until verified by DNS; see ``_claim_domains``).
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
    cfg.workspace = workspace
    staged = not created and needs_staging(cfg, parsed)
    identity_changed = not staged and (
        created or cfg.idp_entity_id != parsed.entity_id or set(cfg.certificates) != set(parsed.certificates)
    )
    # Which value identifies a person decides who gets in: a new one needs a new Test SSO too.
    identity_changed = identity_changed or (
        subject_attribute is not None and subject_attribute.strip() != cfg.subject_attribute
    )
    if staged:
        # SAML-only is enforced: the new IdP waits for a Test SSO answered by it; the live one keeps working.
        _stage(cfg, parsed, xml, metadata_url.strip(), actor)
    else:
        _apply_metadata(cfg, parsed, xml)
        cfg.metadata_url = metadata_url.strip()
        cfg.metadata_fetched_at = timezone.now() if cfg.metadata_url else None
        cfg.pending_idp = {}
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
        _claim_domains(workspace, actor, email_domains)
    record_event(
        actor=actor, action="sso.settings_changed", workspace=workspace, **workspace_target(workspace),
        details={"created": created, "changes": _changes(before, _summary(cfg)),
                 "test_reset": identity_changed and not created,
                 **({"staged": _staged_detail(parsed)} if staged else {})},
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
    if needs_staging(cfg, parsed):
        if (cfg.pending_idp or {}).get("metadata_xml") == body:
            return "unchanged"
        # Enforced: a changed IdP from the URL is staged for a Test SSO, never applied behind the Owners' backs.
        _stage(cfg, parsed, body, cfg.metadata_url, actor)
        cfg.save(update_fields=["pending_idp"])
        record_event(actor=actor, action="sso.metadata_staged", workspace=workspace, **workspace_target(workspace),
                     details=_staged_detail(parsed))
        logger.warning("SAML metadata of workspace %s changed its IdP while SAML-only is enforced: staged for a "
                       "Test SSO", workspace.slug)
        return "staged"
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
