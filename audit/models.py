"""The audit log: append-only events, hash-chained per workspace.

``audit`` imports nothing of ours (docs/architecture.md): the workspace is a foreign key by string, with
no database constraint so that events outlive what they describe.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC
from typing import Any

from django.db import models


class AuditLogIsAppendOnly(Exception):
    """Raised when code tries to change or delete an audit event."""


class AuditEventQuerySet(models.QuerySet):
    def update(self, **kwargs: Any) -> int:  # noqa: D401
        raise AuditLogIsAppendOnly("Audit events cannot be updated.")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AuditLogIsAppendOnly("Audit events cannot be deleted; retention purges use audit.retention.")


class ActorKind(models.TextChoices):
    USER = "user", "User"
    SCIM_CLIENT = "scim_client", "SCIM client"
    API_KEY = "api_key", "API key"
    SYSTEM = "system", "System"


class AuditEvent(models.Model):
    """One thing that happened. Written only by ``audit.record.record_event``."""

    workspace = models.ForeignKey(
        "workspaces.Workspace",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    # Position in the workspace's chain (1, 2, 3...); a gap means a deleted event.
    seq = models.PositiveBigIntegerField()
    created_at = models.DateTimeField()
    actor_kind = models.CharField(max_length=16, choices=ActorKind.choices)
    actor_id = models.CharField(max_length=64, blank=True)
    actor_label = models.CharField(max_length=255, blank=True)
    # How the actor authenticated: password, saml, scim_bearer, scim_basic, oauth, api_key, system.
    auth_method = models.CharField(max_length=32, blank=True)
    action = models.CharField(max_length=64)
    target_type = models.CharField(max_length=32, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_label = models.CharField(max_length=255, blank=True)
    ip = models.CharField(max_length=64, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    request_id = models.CharField(max_length=128, blank=True)
    details = models.JSONField(default=dict, blank=True)
    prev_hash = models.CharField(max_length=64, blank=True)
    hash = models.CharField(max_length=64)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # Two writers can never both append event N to one chain.
            models.UniqueConstraint(fields=["workspace", "seq"], name="audit_event_unique_seq_per_workspace"),
        ]
        indexes = [
            models.Index(fields=["workspace", "-created_at", "-id"], name="audit_ws_time"),
            models.Index(fields=["workspace", "actor_id", "-created_at", "-id"], name="audit_ws_actor_time"),
            models.Index(fields=["workspace", "action", "-created_at", "-id"], name="audit_ws_action_time"),
            # "Activity about this member" and the target filter.
            models.Index(
                fields=["workspace", "target_type", "target_id", "-created_at", "-id"], name="audit_ws_target_time"
            ),
            # The actor filter by label (an email), which is what people type.
            models.Index(fields=["workspace", "actor_label", "-created_at", "-id"], name="audit_ws_actorlabel_time"),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.action} by {self.actor_label or self.actor_kind}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AuditLogIsAppendOnly("Audit events cannot be updated.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise AuditLogIsAppendOnly("Audit events cannot be deleted.")

    @property
    def action_family(self) -> str:
        return self.action.split(".", 1)[0]

    def content_payload(self) -> dict[str, Any]:
        """What the event says, in a form that survives a round trip through any database.

        ``seq`` and ``prev_hash`` are not in it: they are bound by :func:`chain_link_hash`, which
        PostgreSQL computes itself while it appends (one statement, see ``audit.record``).
        """
        return event_content_payload(self)

    def content_digest(self) -> str:
        return event_content_digest(self)

    def compute_hash(self) -> str:
        """The chain link: SHA-256 over the previous link, this position and this content."""
        return chain_link_hash(self.prev_hash, self.seq, self.content_digest())


def event_content_payload(event: Any) -> dict[str, Any]:
    """The hashed content of anything shaped like an event (a model, or the benchmark's rows)."""
    return {
        "workspace": event.workspace_id,
        "created_at": event.created_at.astimezone(UTC).isoformat(timespec="microseconds"),
        "actor_kind": event.actor_kind,
        "actor_id": event.actor_id,
        "actor_label": event.actor_label,
        "auth_method": event.auth_method,
        "action": event.action,
        "target_type": event.target_type,
        "target_id": event.target_id,
        "target_label": event.target_label,
        "ip": event.ip,
        "user_agent": event.user_agent,
        "request_id": event.request_id,
        "details": event.details,
    }


def event_content_digest(event: Any) -> str:
    body = json.dumps(event_content_payload(event), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def chain_link_hash(prev_hash: str, seq: int, content_digest: str) -> str:
    """``sha256("<prev_hash>:<seq>:<content digest>")`` in hex: the same formula as the SQL in ``audit.record``.

    Changing an event's content, position or predecessor changes its link and every later one.
    """
    return hashlib.sha256(f"{prev_hash}:{seq}:{content_digest}".encode()).hexdigest()


class AuditChainHead(models.Model):
    """The last link of one workspace's chain, locked by each writer so appends are serialised."""

    # "ws:<id>" for a workspace, "global" for events outside any workspace.
    chain = models.CharField(max_length=32, unique=True)
    last_seq = models.PositiveBigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, blank=True)
    # The link before ``last_hash``: the append statement sets it from the old ``last_hash`` so
    # that one UPDATE ... RETURNING yields both ends of the new event's link.
    prev_hash = models.CharField(max_length=64, blank=True)

    def __str__(self) -> str:
        return f"{self.chain} @ {self.last_seq}"


class AuditVerification(models.Model):
    """One run of the chain verifier for one workspace (beat job or ``verify_audit_chain``)."""

    workspace = models.ForeignKey(
        "workspaces.Workspace",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    at = models.DateTimeField()
    ok = models.BooleanField()
    # Last sequence number that verified (0 when nothing did).
    verified_up_to = models.PositiveBigIntegerField(default=0)
    events_checked = models.PositiveBigIntegerField(default=0)
    # The first broken link, when there is one.
    broken_event_id = models.BigIntegerField(null=True, blank=True)
    broken_seq = models.PositiveBigIntegerField(null=True, blank=True)
    reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["workspace", "-at"], name="audit_verif_ws_at")]

    def __str__(self) -> str:
        return f"{'ok' if self.ok else 'BROKEN'} up to #{self.verified_up_to} at {self.at:%Y-%m-%d %H:%M}"


class AuditCheckpoint(models.Model):
    """Where a retention purge cut a chain: the seq and hash of the last purged event, signed.

    ``audit.chain.verify_chain`` starts from the newest checkpoint whose signature holds, so the
    remaining events still verify; an attacker with database access cannot forge one without
    the checkpoint key (``AUDIT_CHECKPOINT_KEY``, or a key derived from ``SECRET_KEY``).
    """

    workspace = models.ForeignKey(
        "workspaces.Workspace",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    seq = models.PositiveBigIntegerField()
    hash = models.CharField(max_length=64)
    purged_count = models.PositiveBigIntegerField(default=0)
    purged_before = models.DateTimeField()
    created_at = models.DateTimeField()
    signature = models.CharField(max_length=64)

    class Meta:
        ordering = ["-seq"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "seq"], name="audit_checkpoint_unique_seq"),
        ]

    def __str__(self) -> str:
        return f"checkpoint ws {self.workspace_id} @ #{self.seq}"

    def signed_payload(self) -> bytes:
        return json.dumps(
            {
                "workspace": self.workspace_id,
                "seq": self.seq,
                "hash": self.hash,
                "purged_count": self.purged_count,
                "purged_before": self.purged_before.astimezone(UTC).isoformat(timespec="microseconds"),
                "created_at": self.created_at.astimezone(UTC).isoformat(timespec="microseconds"),
            },
            sort_keys=True,
            separators=(",", ":"),
        ).encode("utf-8")


class AuditSink(models.Model):
    """A SIEM webhook: every event of the workspace is POSTed to ``url`` as JSON Lines, in order.

    ``secret_encrypted`` holds the HMAC secret encrypted with Fernet (key from ``AUDIT_SINK_KEY``
    or derived from ``SECRET_KEY``): the server must be able to sign with it, so it cannot be
    stored as a one-way hash like API keys; it is shown once at creation and never again.
    """

    workspace = models.ForeignKey(
        "workspaces.Workspace",
        on_delete=models.CASCADE,
        related_name="audit_sinks",
    )
    name = models.CharField(max_length=100)
    url = models.URLField(max_length=500)
    secret_encrypted = models.TextField()
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField()
    # Delivery state: events with seq <= last_delivered_seq have been accepted by the receiver.
    last_delivered_seq = models.PositiveBigIntegerField(default=0)
    last_delivered_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        indexes = [models.Index(fields=["workspace", "is_active"], name="audit_sink_ws_active")]

    def __str__(self) -> str:
        return f"{self.name} -> {self.url}"


class AuditOutbox(models.Model):
    """One event still to deliver to one sink; written by ``record_event`` in the event's transaction."""

    sink = models.ForeignKey(AuditSink, on_delete=models.CASCADE, related_name="outbox")
    # Plain ids, not foreign keys: the audit table refuses the cascades a constraint would bring.
    event_id = models.BigIntegerField()
    seq = models.PositiveBigIntegerField()
    created_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["sink", "seq"], name="audit_outbox_unique_sink_seq")]

    def __str__(self) -> str:
        return f"sink {self.sink_id} event #{self.seq}"
