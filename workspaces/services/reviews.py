"""Access reviews (docs/access-reviews.md): snapshot the grants in scope, decide keep or revoke, complete.

Completing applies each revocation through ``entitlement_revoke``, the service the portal and the connector API
use, with the completing actor's own rights: what the actor could not do by hand (a grant the IdP owns, the last
Owner, a role above theirs) is refused and recorded as such, and the rest of the review still completes. Each
revocation writes its own ordinary event; the review writes ``access_review.started``, ``access_review.decided``
(one per change of a decision) and ``access_review.completed`` (with the counts and the SHA-256 of the JSON export).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import transaction
from django.utils import timezone

from audit.record import Actor, record_event

from .. import review_export, selectors
from ..entitlements import EntitlementKind, EntitlementRef
from ..exceptions import NotFound, ServiceError
from ..models import (
    AccessReview,
    AccessReviewItem,
    Membership,
    Permission,
    Repository,
    ReviewDecision,
    ReviewOutcome,
    ReviewScope,
    ReviewStatus,
    Team,
    Workspace,
)
from ..roles import Cap
from ._common import acting_membership, require_capability
from .entitlements import entitlement_revoke

NOTE_MAX = 2000
SNAPSHOT_PAGE = 500


class ReviewCompleted(ServiceError):
    """The review is completed: its decisions are evidence now and no longer change."""

    status = 409
    code = "review_completed"


class ReviewUndecided(ServiceError):
    """Some grants of the review have no decision yet: it cannot be completed."""

    status = 409
    code = "undecided"


def _target(review: AccessReview) -> dict[str, Any]:
    return {"target_type": "access_review", "target_id": review.pk, "target_label": review.name}


def _scope(workspace: Workspace, scope_kind: str, scope_id: int | None) -> tuple[Team | None, Repository | None, str]:
    if scope_kind not in ReviewScope.values:
        raise ServiceError("Choose the scope: workspace, team or repository.", field="scope_kind")
    if scope_kind == ReviewScope.WORKSPACE:
        return None, None, workspace.name
    if scope_id is None:
        raise ServiceError(f"Choose the {scope_kind} to review.", field="scope_id")
    if scope_kind == ReviewScope.TEAM:
        team = Team.objects.filter(workspace=workspace, pk=scope_id).first()
        if team is None:
            raise NotFound("No such team in this workspace.", field="scope_id")
        return team, None, team.name
    repo = Repository.objects.filter(workspace=workspace, pk=scope_id).first()
    if repo is None:
        raise NotFound("No such repository in this workspace.", field="scope_id")
    return None, repo, repo.name


def _snapshot_filters(team: Team | None, repo: Repository | None) -> list[EntitlementRef | None]:
    """The ``grants_page`` entitlement filters that together list the scope's grants (None: every grant)."""
    if team is not None:
        return [EntitlementRef(kind=EntitlementKind.TEAM, object_id=team.pk)]
    if repo is not None:
        return [EntitlementRef(kind=EntitlementKind.REPOSITORY, object_id=repo.pk, value=p) for p in Permission.values]
    return [None]


@transaction.atomic
def access_review_start(
    *, workspace: Workspace, actor: Actor, name: str, scope_kind: str, scope_id: int | None = None
) -> AccessReview:
    """Start a review of the workspace's grants in scope: every grant (``workspace``), the members of one team
    (``team``), or every permission on one repository (``repository``), as they are now."""
    require_capability(actor, workspace, Cap.REVIEW_MANAGE)
    name = (name or "").strip()
    if not name:
        raise ServiceError("A review needs a name, for example \"Q3 2025 production access\".", field="name")
    if len(name) > 200:
        raise ServiceError("Use at most 200 characters for the name.", field="name")
    team, repo, scope_label = _scope(workspace, scope_kind, scope_id)
    acting = acting_membership(actor, workspace)
    review = AccessReview.objects.create(
        workspace=workspace, name=name, scope_kind=scope_kind, scope_team=team, scope_repository=repo,
        scope_label=scope_label, created_by=acting.user if acting is not None else None, created_by_label=actor.label,
    )
    count = 0
    for entitlement in _snapshot_filters(team, repo):
        after: tuple[int, ...] | None = None
        while True:
            # viewer=None: every grant of the workspace, private members included (reviewers judge them all).
            rows, more = selectors.grants_page(
                workspace=workspace, viewer=None, after=after, limit=SNAPSHOT_PAGE, entitlement=entitlement,
            )
            AccessReviewItem.objects.bulk_create([
                AccessReviewItem(
                    review=review, entitlement=row.entitlement, kind=row.kind, label=row.label[:300],
                    principal_type=row.principal_type, principal_id=row.principal_id,
                    principal_label=row.principal_label[:254], source=row.source, idp_owned=row.idp_owned,
                ) for row in rows
            ])
            count += len(rows)
            if not more or not rows:
                break
            after = rows[-1].position
    record_event(
        actor=actor, action="access_review.started", workspace=workspace, **_target(review),
        details={"scope": scope_kind, "scope_id": scope_id if team or repo else None, "scope_label": scope_label,
                 "items": count},
    )
    return review


def _decide(review: AccessReview, item: AccessReviewItem, decision: str, note: str, actor: Actor) -> bool:
    if decision not in (ReviewDecision.KEEP, ReviewDecision.REVOKE):
        raise ServiceError("Decide keep or revoke.", field="decision")
    note = (note or "").strip()
    if len(note) > NOTE_MAX:
        raise ServiceError(f"Use at most {NOTE_MAX} characters for the note.", field="note")
    if item.decision == decision and item.note == note:
        return False
    before = {"decision": item.decision or None, "note": item.note}
    item.decision, item.note = decision, note
    item.decided_by_label, item.decided_at = actor.label, timezone.now()
    item.save(update_fields=["decision", "note", "decided_by_label", "decided_at"])
    record_event(
        actor=actor, action="access_review.decided", workspace=review.workspace, **_target(review),
        details={"item": item.pk, "entitlement": item.entitlement,
                 "principal": f"{item.principal_type}:{item.principal_id} {item.principal_label}",
                 "before": before, "after": {"decision": decision, "note": note}},
    )
    return True


def _open_review(review: AccessReview, actor: Actor) -> AccessReview:
    """The review, locked (decisions and completion never interleave), checked open and the actor's to change."""
    locked = AccessReview.objects.select_for_update().select_related("workspace").get(pk=review.pk)
    require_capability(actor, locked.workspace, Cap.REVIEW_MANAGE)
    if locked.status != ReviewStatus.OPEN:
        raise ReviewCompleted("This review is completed: its decisions are final. Start a new review to change them.")
    return locked


@transaction.atomic
def access_review_decide(*, item: AccessReviewItem, decision: str, actor: Actor, note: str = "") -> bool:
    """Mark one grant of an open review keep or revoke (with an optional note); False when nothing changed."""
    review = _open_review(item.review, actor)
    fresh = AccessReviewItem.objects.select_for_update().get(pk=item.pk, review=review)
    changed = _decide(review, fresh, decision, note, actor)
    item.decision, item.note = fresh.decision, fresh.note
    item.decided_by_label, item.decided_at = fresh.decided_by_label, fresh.decided_at
    return changed


@transaction.atomic
def access_review_decide_many(
    *, review: AccessReview, decisions: Mapping[int, tuple[str, str]], actor: Actor
) -> int:
    """Decide several items of an open review at once (item id -> (decision, note)): one page of the portal's
    form. All or nothing: an unknown item or decision changes none. Returns how many changed."""
    locked = _open_review(review, actor)
    items = {i.pk: i for i in AccessReviewItem.objects.select_for_update().filter(review=locked, pk__in=list(decisions))}
    missing = [pk for pk in decisions if pk not in items]
    if missing:
        raise NotFound("Some of these grants are not in this review.", field="decision")
    return sum(_decide(locked, items[pk], *decisions[pk], actor) for pk in sorted(decisions))


def _holder(workspace: Workspace, item: AccessReviewItem) -> tuple[Membership | None, Team | None]:
    if item.principal_type == "team":
        return None, Team.objects.filter(workspace=workspace, pk=item.principal_id).select_related("workspace").first()
    member = Membership.objects.filter(workspace=workspace, pk=item.principal_id).select_related("user", "workspace")
    return member.first(), None


def _apply_revocation(workspace: Workspace, item: AccessReviewItem, actor: Actor) -> tuple[str, str]:
    """Revoke one grant in its own savepoint: a refusal undoes only this revocation. (outcome, detail)."""
    member, team = _holder(workspace, item)
    if member is None and team is None:
        return ReviewOutcome.NOT_HELD, f"The {item.principal_type} is no longer in this workspace."
    try:
        with transaction.atomic():
            changed = entitlement_revoke(workspace=workspace, entitlement=item.entitlement, actor=actor,
                                         member=member, team=team)
    except NotFound as exc:  # the team or repository was deleted since: nothing is held any more
        return ReviewOutcome.NOT_HELD, exc.message
    except ServiceError as exc:  # the IdP owns it, the last Owner, the actor's rights: refused, and why
        return ReviewOutcome.REFUSED, exc.message
    if changed:
        return ReviewOutcome.REVOKED, ""
    return ReviewOutcome.NOT_HELD, "Already revoked or changed since the review started."


@transaction.atomic
def access_review_complete(*, review: AccessReview, actor: Actor) -> AccessReview:
    """Apply the review: every ``revoke`` through ``entitlement_revoke`` with the actor's rights (each in its own
    savepoint, its outcome recorded: revoked, not_held or refused with the reason), every ``keep`` marked kept.
    Refused while any grant is undecided. Records ``access_review.completed`` with the counts and the SHA-256 of the
    JSON export, which is final from then on."""
    locked = _open_review(review, actor)
    workspace = locked.workspace
    undecided = locked.items.filter(decision=ReviewDecision.UNDECIDED).count()
    if undecided:
        raise ReviewUndecided(
            f"{undecided} grant{'s are' if undecided != 1 else ' is'} still undecided: mark each keep or revoke, then "
            "complete the review.",
        )
    acting = acting_membership(actor, workspace)
    revoking = list(locked.items.filter(decision=ReviewDecision.REVOKE).order_by("pk"))
    # The actor's own grants last: every other revocation is applied with the rights the actor had on completing.
    revoking.sort(key=lambda i: (acting is not None and i.principal_type == "member" and i.principal_id == acting.pk,
                                 i.pk))
    counts: dict[str, int] = {ReviewOutcome.REVOKED.value: 0, ReviewOutcome.NOT_HELD.value: 0,
                              ReviewOutcome.REFUSED.value: 0}
    for item in revoking:
        item.outcome, item.outcome_detail = _apply_revocation(workspace, item, actor)
        counts[item.outcome] += 1
    AccessReviewItem.objects.bulk_update(revoking, ["outcome", "outcome_detail"], batch_size=500)
    counts[ReviewOutcome.KEPT.value] = locked.items.filter(decision=ReviewDecision.KEEP).update(
        outcome=ReviewOutcome.KEPT, outcome_detail="")
    locked.status, locked.completed_at, locked.completed_by = ReviewStatus.COMPLETED, timezone.now(), actor.label
    # The export reads the review from this instance and its items (outcomes just written) from the database.
    locked.export_sha256 = review_export.export_sha256(locked)
    locked.save(update_fields=["status", "completed_at", "completed_by", "export_sha256"])
    record_event(
        actor=actor, action="access_review.completed", workspace=workspace, **_target(locked),
        details={"items": len(revoking) + counts[ReviewOutcome.KEPT.value], **counts,
                 "export_sha256": locked.export_sha256},
    )
    return locked
