"""Delivery of audit events to SIEM sinks: ordered, at least once, with backoff.

The outbox rows are written by ``record_event`` in the event's own transaction, so a committed
event is always queued for every active sink and a rolled-back one never is. Delivery takes
the sink's row lock (``SKIP LOCKED``: one deliverer per sink at a time, so order holds),
sends the oldest undelivered events as one JSON Lines body signed with the sink's HMAC
secret, and only after a 2xx deletes those outbox rows and advances ``last_delivered_seq``.
A failure leaves everything queued and pushes ``next_attempt_at`` back exponentially.
Receivers de-duplicate on the event ``id`` (a batch can be resent after a lost reply).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography.fernet import InvalidToken
from django.conf import settings
from django.db import transaction
from django.db.models import Count, Min
from django.utils import timezone

from config import outbound

from .keys import decrypt_sink_secret, sign_body
from .models import AuditEvent, AuditOutbox, AuditSink
from .selectors import event_as_dict

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Gatehouse-Signature"


@dataclass(frozen=True)
class DeliveryResult:
    delivered: int
    ok: bool
    error: str = ""
    skipped: bool = False


def backoff_seconds(failures: int) -> int:
    """1, 2, 4, 8 ... seconds, capped (AUDIT_SINK_MAX_BACKOFF, default 10 minutes)."""
    cap = getattr(settings, "AUDIT_SINK_MAX_BACKOFF", 600)
    return int(min(cap, 2 ** max(0, failures - 1)))


def _post(sink: AuditSink, body: bytes, first_seq: int, last_seq: int) -> str:
    """POST one batch; returns an error text ('' on a 2xx). Never raises for HTTP/network errors."""
    try:
        secret = decrypt_sink_secret(sink.secret_encrypted)
    except InvalidToken:
        return "cannot decrypt the signing secret (was AUDIT_SINK_KEY or SECRET_KEY changed?); recreate the sink"
    headers = {
        "Content-Type": "application/x-ndjson",
        "User-Agent": "Gatehouse-Audit/1",
        SIGNATURE_HEADER: sign_body(secret, body),
        "X-Gatehouse-Sink": str(sink.pk),
        "X-Gatehouse-Seq-Range": f"{first_seq}-{last_seq}",
    }
    try:
        # The guarded client: the sink's host must resolve to a public address (or an allowed network), and
        # what an Owner sees of a failure never tells an open port from a closed one.
        response = outbound.request(
            "POST", sink.url, body=body, headers=headers,
            timeout=getattr(settings, "AUDIT_SINK_TIMEOUT", 10), max_bytes=64 * 1024,
        )
    except outbound.OutboundError as exc:
        return f"could not deliver: {exc.public}"
    if 200 <= response.status < 300:
        return ""
    return f"could not deliver: the receiver answered HTTP {response.status}"


def deliver_sink(sink_id: int, *, force: bool = False, max_batches: int = 20) -> DeliveryResult:
    """Deliver what is queued for one sink, oldest first, in batches of AUDIT_SINK_BATCH events."""
    batch_size = getattr(settings, "AUDIT_SINK_BATCH", 500)
    delivered = 0
    for _ in range(max_batches):
        with transaction.atomic():
            # FOR NO KEY UPDATE, not FOR UPDATE: record_event's outbox INSERT takes FOR KEY SHARE on the
            # sink row (foreign key check); a plain FOR UPDATE held across a slow receiver would stall
            # every change in the workspace. SKIP LOCKED: one deliverer per sink, so order holds.
            sink = (
                AuditSink.objects.select_for_update(skip_locked=True, no_key=True)
                .filter(pk=sink_id, is_active=True).first()
            )
            if sink is None:
                return DeliveryResult(delivered, True, skipped=True)
            now = timezone.now()
            if not force and sink.next_attempt_at is not None and sink.next_attempt_at > now:
                return DeliveryResult(delivered, True, skipped=True)
            rows = list(AuditOutbox.objects.filter(sink=sink).order_by("seq").values_list("pk", "event_id", "seq")[:batch_size])
            if not rows:
                return DeliveryResult(delivered, True)
            events = {e.pk: e for e in AuditEvent.objects.filter(pk__in=[r[1] for r in rows])}
            lines = [json.dumps(event_as_dict(events[r[1]]), sort_keys=True, separators=(",", ":")) for r in rows if r[1] in events]
            body = ("\n".join(lines) + "\n").encode("utf-8")
            error = _post(sink, body, rows[0][2], rows[-1][2])
            sink.last_attempt_at = now
            if error:
                sink.consecutive_failures += 1
                sink.last_error = error[:500]
                sink.next_attempt_at = now + timedelta(seconds=backoff_seconds(sink.consecutive_failures))
                sink.save(update_fields=["last_attempt_at", "consecutive_failures", "last_error", "next_attempt_at"])
                log.warning("audit sink %s delivery failed (%s); retry in %ss", sink.pk, error, backoff_seconds(sink.consecutive_failures))
                return DeliveryResult(delivered, False, error)
            AuditOutbox.objects.filter(pk__in=[r[0] for r in rows]).delete()
            sink.last_delivered_seq = rows[-1][2]
            sink.last_delivered_at = now
            sink.consecutive_failures = 0
            sink.next_attempt_at = None
            sink.last_error = ""
            sink.save(update_fields=[
                "last_attempt_at", "last_delivered_seq", "last_delivered_at", "consecutive_failures",
                "next_attempt_at", "last_error",
            ])
            delivered += len(rows)
            if len(rows) < batch_size:
                return DeliveryResult(delivered, True)
    return DeliveryResult(delivered, True)


def due_sink_ids() -> list[int]:
    """Active sinks with something queued whose backoff has elapsed."""
    now = timezone.now()
    return list(
        AuditSink.objects.filter(is_active=True, outbox__isnull=False)
        .exclude(next_attempt_at__gt=now).values_list("pk", flat=True).distinct()
    )


# A sink whose oldest undelivered event has waited longer than this is "behind", not "ok": delivery runs
# every AUDIT_SINK_POLL_SECONDS (5 s by default), so a minute means the receiver is slow or refusing.
BEHIND_AFTER_SECONDS = 60


@dataclass(frozen=True)
class SinkStatus:
    sink: AuditSink
    behind: int
    oldest_undelivered_at: datetime | None

    @property
    def lag_seconds(self) -> float | None:
        if self.oldest_undelivered_at is None:
            return None
        return (timezone.now() - self.oldest_undelivered_at).total_seconds()

    @property
    def state(self) -> str:
        """paused, failing (the last attempt failed), behind (events waiting over a minute) or ok."""
        if not self.sink.is_active:
            return "paused"
        if self.sink.consecutive_failures:
            return "failing"
        lag = self.lag_seconds
        if lag is not None and lag > BEHIND_AFTER_SECONDS:
            return "behind"
        return "ok"


def sink_statuses(workspace: Any) -> list[SinkStatus]:
    """Delivery status and lag for each sink of the workspace, in one query."""
    sinks = AuditSink.objects.filter(workspace_id=workspace.pk).annotate(
        behind=Count("outbox"), oldest=Min("outbox__created_at")
    ).order_by("name")
    return [SinkStatus(s, s.behind, s.oldest) for s in sinks]
