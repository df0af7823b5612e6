"""Verification of the per-workspace hash chains."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from .models import AuditChainHead, AuditEvent


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

    @property
    def ok(self) -> bool:
        return not self.reason


def chain_workspace_ids() -> list[int | None]:
    return list(AuditEvent.objects.order_by().values_list("workspace_id", flat=True).distinct())


def _events(workspace_id: int | None) -> Iterator[AuditEvent]:
    qs = AuditEvent.objects.filter(workspace_id=workspace_id).order_by("seq")
    return qs.iterator(chunk_size=2000)


def verify_chain(workspace_id: int | None) -> ChainReport:
    """Walk one chain in order; stop at the first event whose content or link does not hold."""
    prev_hash = ""
    expected_seq = 1
    verified = 0
    for event in _events(workspace_id):
        reason = ""
        if event.seq != expected_seq:
            reason = f"sequence gap: expected event #{expected_seq}, found #{event.seq} (an event was removed)"
        elif event.prev_hash != prev_hash:
            reason = "link broken: prev_hash does not match the previous event's hash"
        elif event.compute_hash() != event.hash:
            reason = "content altered: stored hash does not match the event's content"
        if reason:
            return ChainReport(workspace_id, verified, expected_seq - 1, event.pk, event.seq, reason)
        prev_hash = event.hash
        expected_seq += 1
        verified += 1
    head = AuditChainHead.objects.filter(chain=chain_key(workspace_id)).first()
    if head is not None and (head.last_seq != expected_seq - 1 or head.last_hash != prev_hash):
        return ChainReport(
            workspace_id, verified, expected_seq - 1, None, head.last_seq,
            f"chain truncated: the head records event #{head.last_seq}, the table ends at #{expected_seq - 1}",
        )
    return ChainReport(workspace_id, verified, expected_seq - 1)
