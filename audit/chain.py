"""Verification of the per-workspace hash chains, starting from the last signed retention checkpoint."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from django.db.models import Q

from .keys import checkpoint_signature_ok
from .models import AuditChainHead, AuditCheckpoint, AuditEvent


def chain_key(workspace_id: int | None) -> str:
    return f"ws:{workspace_id}" if workspace_id is not None else "global"


@dataclass(frozen=True)
class ChainReport:
    workspace_id: int | None
    verified: int
    last_seq: int
    broken_event_id: int | None = None
    broken_seq: int | None = None
    reason: str = ""
    # Seq of the retention checkpoint the walk started from (0: from the first event).
    start_seq: int = 0

    @property
    def ok(self) -> bool:
        return not self.reason


def chain_workspace_ids() -> list[int | None]:
    ids = set(AuditEvent.objects.order_by().values_list("workspace_id", flat=True).distinct())
    # A chain whose every event was purged still has a head (and a checkpoint) to check.
    for chain in AuditChainHead.objects.values_list("chain", flat=True):
        ids.add(None if chain == "global" else int(chain.split(":", 1)[1]))
    return sorted(ids, key=lambda i: (i is not None, i or 0))


def _chain(workspace_id: int | None) -> Q:
    """The rows of one chain: a workspace's, or the global one (``workspace_id`` None, IS NULL)."""
    return Q(workspace_id=workspace_id)


def latest_checkpoint(workspace_id: int | None) -> AuditCheckpoint | None:
    return AuditCheckpoint.objects.filter(_chain(workspace_id)).order_by("-seq").first()


def _events(workspace_id: int | None, after_seq: int) -> Iterator[AuditEvent]:
    qs = AuditEvent.objects.filter(_chain(workspace_id), seq__gt=after_seq).order_by("seq")
    return qs.iterator(chunk_size=2000)


def verify_chain(workspace_id: int | None) -> ChainReport:
    """Walk one chain in order; stop at the first event whose content or link does not hold.

    The walk starts after the newest retention checkpoint: its HMAC signature must hold (a
    forged or altered checkpoint breaks the chain), and the first remaining event must link to
    the hash it records. Events at or below the checkpoint are ignored (the purge removed them).
    """
    checkpoint = latest_checkpoint(workspace_id)
    prev_hash = ""
    expected_seq = 1
    start = 0
    if checkpoint is not None:
        if not checkpoint_signature_ok(checkpoint.signed_payload(), checkpoint.signature):
            return ChainReport(
                workspace_id, 0, 0, None, checkpoint.seq,
                f"retention checkpoint at #{checkpoint.seq} has an invalid signature (forged or altered)",
                start_seq=checkpoint.seq,
            )
        prev_hash = checkpoint.hash
        expected_seq = checkpoint.seq + 1
        start = checkpoint.seq
    verified = 0
    for event in _events(workspace_id, start):
        reason = ""
        if event.seq != expected_seq:
            reason = f"sequence gap: expected event #{expected_seq}, found #{event.seq} (an event was removed)"
        elif event.prev_hash != prev_hash:
            reason = "link broken: prev_hash does not match the previous event's hash"
        elif event.compute_hash() != event.hash:
            reason = "content altered: stored hash does not match the event's content"
        if reason:
            return ChainReport(workspace_id, verified, expected_seq - 1, event.pk, event.seq, reason, start)
        prev_hash = event.hash
        expected_seq += 1
        verified += 1
    head = AuditChainHead.objects.filter(chain=chain_key(workspace_id)).first()
    if head is not None and (head.last_seq != expected_seq - 1 or head.last_hash != prev_hash):
        return ChainReport(
            workspace_id, verified, expected_seq - 1, None, head.last_seq,
            f"chain truncated: the head records event #{head.last_seq}, the table ends at #{expected_seq - 1}",
            start,
        )
    return ChainReport(workspace_id, verified, expected_seq - 1, start_seq=start)


@dataclass(frozen=True)
class EventChainStatus:
    """What can be said about one event's place in its chain, without walking the whole chain."""

    hash_ok: bool
    link_ok: bool
    link_note: str
    verification: object | None  # the latest AuditVerification of the workspace
    covered: bool  # the latest verification run verified this event

    @property
    def ok(self) -> bool:
        return self.hash_ok and self.link_ok


def event_chain_status(event: AuditEvent) -> EventChainStatus:
    from .models import AuditVerification

    hash_ok = event.compute_hash() == event.hash
    if event.seq == 1:
        link_ok, note = event.prev_hash == "", "first event of the chain"
    else:
        prev = AuditEvent.objects.filter(_chain(event.workspace_id), seq=event.seq - 1).only("hash").first()
        if prev is not None:
            link_ok, note = prev.hash == event.prev_hash, f"links to event #{event.seq - 1}"
        else:
            cp = AuditCheckpoint.objects.filter(_chain(event.workspace_id), seq=event.seq - 1).first()
            if cp is not None and checkpoint_signature_ok(cp.signed_payload(), cp.signature):
                link_ok, note = cp.hash == event.prev_hash, f"links to the signed retention checkpoint at #{cp.seq}"
            else:
                link_ok, note = False, f"event #{event.seq - 1} is missing and no checkpoint accounts for it"
    verification = AuditVerification.objects.filter(_chain(event.workspace_id)).order_by("-at", "-id").first()
    covered = bool(verification and verification.verified_up_to >= event.seq)
    return EventChainStatus(hash_ok, link_ok, note, verification, covered)
