"""Changes the audit app makes: SIEM sinks, export records, verification results.

Same rules as every service (docs/architecture.md): keyword-only, atomic, an explicit actor, the audit
event in the same transaction. Rights are the caller's to check, because ``audit`` sits below every
other app and knows no roles: the workspace's audit pages (``workspaces.views_audit``) let only
people with ``settings.manage`` (Owners) reach the sink services and ``audit.view`` the export;
the verifier runs as the system. Refusals are ``AuditSettingRefused``.
"""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import urlsplit

from django.db import transaction
from django.utils import timezone

from config import outbound

from .chain import ChainReport, chain_key
from .exceptions import AuditSettingRefused
from .keys import encrypt_sink_secret
from .models import AuditChainHead, AuditSink, AuditVerification
from .record import Actor, record_event

SINK_SECRET_PREFIX = "whsec_"
EXPORT_FORMATS = ("csv", "jsonl")


def validate_sink_url(url: str) -> str:
    """HTTPS (plain http only with OUTBOUND_ALLOW_HTTP), no credentials, not an internal address.

    A name is resolved and checked again on every delivery (config.outbound); here only what needs no lookup.
    """
    url = (url or "").strip()
    parts = urlsplit(url)
    if not parts.hostname or parts.scheme not in ("https", "http"):
        raise AuditSettingRefused("Give the receiver's full URL, for example https://siem.example.com/gatehouse.", field="url")
    try:
        outbound.check_literal_host(url)
    except outbound.OutboundError as exc:
        raise AuditSettingRefused(f"{exc.public} Events carry personal data: use your SIEM's https:// address.", field="url") from None
    return url


def _sink_target(sink: AuditSink) -> dict[str, Any]:
    return {"target_type": "audit_sink", "target_id": sink.pk, "target_label": sink.name}


@transaction.atomic
def audit_sink_create(*, workspace: Any, name: str, url: str, actor: Actor) -> tuple[AuditSink, str]:
    """Create a sink; returns it with its HMAC signing secret, shown once. The caller checked ``settings.manage``.

    New sinks start at the current end of the chain: they receive events from now on (a SIEM
    back-fills history through the API's ``after_seq`` pull).
    """
    name = (name or "").strip()
    if not name:
        raise AuditSettingRefused("Name the sink (for example “Splunk production”).", field="name")
    url = validate_sink_url(url)
    secret = SINK_SECRET_PREFIX + secrets.token_urlsafe(32)
    head = AuditChainHead.objects.filter(chain=chain_key(workspace.pk)).first()
    sink = AuditSink.objects.create(
        workspace=workspace, name=name, url=url, secret_encrypted=encrypt_sink_secret(secret),
        created_at=timezone.now(), last_delivered_seq=head.last_seq if head else 0,
    )
    # Recorded after the sink exists: this event is the first one the sink will receive.
    record_event(
        actor=actor, action="audit.sink_created", workspace=workspace, **_sink_target(sink),
        details={"name": name, "url": url, "starts_after_seq": sink.last_delivered_seq},
    )
    return sink, secret


@transaction.atomic
def audit_sink_update(*, sink: AuditSink, actor: Actor, is_active: bool | None = None, url: str | None = None) -> AuditSink:
    """Pause/resume a sink or point it elsewhere. A paused sink queues nothing (events go to the API).

    The caller checked ``settings.manage`` in the sink's workspace.
    """
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    if is_active is not None and is_active != sink.is_active:
        before["is_active"], after["is_active"] = sink.is_active, is_active
        sink.is_active = is_active
    if url is not None:
        url = validate_sink_url(url)
        if url != sink.url:
            before["url"], after["url"] = sink.url, url
            sink.url = url
    if not after:
        return sink
    if after.get("is_active") or "url" in after:
        sink.consecutive_failures = 0
        sink.next_attempt_at = None
    sink.save()
    record_event(
        actor=actor, action="audit.sink_updated", workspace=sink.workspace, **_sink_target(sink),
        details={"before": before, "after": after},
    )
    return sink


@transaction.atomic
def audit_sink_delete(*, sink: AuditSink, actor: Actor) -> None:
    """Delete a sink and what it had not delivered yet. The caller checked ``settings.manage``."""
    pending = sink.outbox.count()
    record_event(
        actor=actor, action="audit.sink_deleted", workspace=sink.workspace, **_sink_target(sink),
        details={"url": sink.url, "undelivered": pending, "last_delivered_seq": sink.last_delivered_seq},
    )
    sink.delete()


@transaction.atomic
def audit_log_export(*, workspace: Any, actor: Actor, export_format: str, filters: dict[str, Any]) -> None:
    """Record that someone exported (a view of) the log, before the first byte is streamed.

    The caller checked ``audit.view``.
    """
    if export_format not in EXPORT_FORMATS:
        raise AuditSettingRefused(f"Unknown export format {export_format!r}; use csv or jsonl.")
    record_event(
        actor=actor, action="audit.exported", workspace=workspace,
        target_type="workspace", target_id=workspace.pk, target_label=workspace.slug,
        details={"format": export_format, "filters": filters},
    )


@transaction.atomic
def audit_verification_record(*, workspace: Any, report: ChainReport, actor: Actor) -> AuditVerification:
    """Store a verification run; a change of verdict (first run, broken, repaired) is also an event.

    Not every run is an event: an hourly "still fine" would fill the log it verifies.
    """
    previous = AuditVerification.objects.filter(workspace_id=workspace.pk).order_by("-at", "-id").first()
    verification = AuditVerification.objects.create(
        workspace_id=workspace.pk, at=timezone.now(), ok=report.ok, verified_up_to=report.last_seq,
        events_checked=report.verified, broken_event_id=report.broken_event_id,
        broken_seq=report.broken_seq, reason=report.reason,
    )
    if previous is None or previous.ok != report.ok or previous.broken_seq != report.broken_seq:
        record_event(
            actor=actor, action="audit.chain_verified" if report.ok else "audit.chain_broken", workspace=workspace,
            target_type="workspace", target_id=workspace.pk, target_label=getattr(workspace, "slug", ""),
            details={
                "ok": report.ok, "verified_up_to": report.last_seq, "events_checked": report.verified,
                "broken_event_id": report.broken_event_id, "broken_seq": report.broken_seq,
                "reason": report.reason, "verification_id": verification.pk,
            },
        )
    return verification
