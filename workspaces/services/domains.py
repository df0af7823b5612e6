"""Email-domain claims: claim, verify (a DNS TXT record), remove, and the periodic re-check and expiry.

States of a claim: *pending* (``verified_at`` empty, ``expires_at`` set) until a check finds its record, then
*verified*. A verified claim is checked again every ``DOMAIN_RECHECK_SECONDS``; after
``DOMAIN_LOST_AFTER_FAILURES`` consecutive checks that find no record it is *lost* (pending again, with a fresh
expiry). A check that gets no answer from DNS (timeout, SERVFAIL) is reported but never counted: an outage of
the domain's DNS servers is no evidence the owner withdrew the record. Pending claims are removed when they
expire. Every state change is audited: ``domain.claimed``, ``domain.verified``, ``domain.verification_failed``,
``domain.lost``, ``domain.expired``, ``domain.removed``.

The DNS lookup runs outside any transaction (a slow DNS server must not hold a row lock or the audit chain
head); what it found is then recorded by ``domain_claim_record_check``, which locks the claim.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from audit.record import Actor, record_event

from ..domains import InvalidDomain, Lookup, lookup_token, normalise_domain, record_name
from ..exceptions import AlreadyExists, ServiceError
from ..models import DomainClaim, Workspace
from ..roles import Cap
from ._common import require_capability

logger = logging.getLogger("gatehouse.domains")

OTHER_WORKSPACE_HOLDS_IT = (
    "Another workspace holds this domain verified. It keeps it until its own record is removed and its "
    "verification lapses; then verify again."
)


def _target(claim: DomainClaim) -> dict[str, Any]:
    return {"target_type": "domain", "target_id": claim.pk, "target_label": claim.domain}


def _pending_until(now: datetime) -> datetime:
    return now + timedelta(days=settings.DOMAIN_CLAIM_PENDING_DAYS)


@transaction.atomic
def domain_claim_add(*, workspace: Workspace, domain: str, actor: Actor) -> DomainClaim:
    """Claim an email domain for the workspace: a pending claim with a fresh token to publish in DNS.

    Other workspaces may claim the same domain; only one can ever hold it verified. Refused when this workspace
    already claims it.
    """
    require_capability(actor, workspace, Cap.SETTINGS_MANAGE)
    try:
        normalised = normalise_domain(domain)
    except InvalidDomain as exc:
        raise ServiceError(str(exc), field="domain") from None
    now = timezone.now()
    expires_at = _pending_until(now)
    claim = DomainClaim(
        workspace=workspace, domain=normalised, token=secrets.token_hex(16), created_at=now, expires_at=expires_at,
    )
    try:
        with transaction.atomic():
            claim.save()
    except IntegrityError:
        raise AlreadyExists(f"This workspace already claims {normalised}.", field="domain") from None
    record_event(
        actor=actor, action="domain.claimed", workspace=workspace, **_target(claim),
        details={"record_name": record_name(normalised), "expires_at": expires_at.isoformat()},
    )
    return claim


def _verify(row: DomainClaim, now: datetime) -> bool:
    """Mark ``row`` verified unless another workspace holds its domain verified (the partial unique index
    domain_claim_verified_unique settles a race between two workspaces verifying at once)."""
    if DomainClaim.objects.filter(domain=row.domain, verified_at__isnull=False).exclude(pk=row.pk).exists():
        return False
    expires_at = row.expires_at
    row.verified_at, row.expires_at = now, None
    try:
        with transaction.atomic():
            row.save(update_fields=["last_checked_at", "last_error", "failures", "verified_at", "expires_at"])
    except IntegrityError:
        row.verified_at, row.expires_at = None, expires_at
        return False
    return True


def domain_claim_verify(*, claim: DomainClaim, actor: Actor) -> DomainClaim:
    """Look for the claim's TXT record now ("Verify now", ``manage.py workspace_domain verify``) and record what was
    found. The lookup runs outside any transaction; DNS failures come back as the claim's ``last_error``, never
    as an exception."""
    require_capability(actor, claim.workspace, Cap.SETTINGS_MANAGE)
    lookup = lookup_token(claim.domain, claim.token)
    return domain_claim_record_check(claim=claim, lookup=lookup, actor=actor)


@transaction.atomic
def domain_claim_record_check(*, claim: DomainClaim, lookup: Lookup, actor: Actor) -> DomainClaim:
    """Record the outcome of one check of ``claim``'s record (``lookup``): verify it, count a failure, or lose it."""
    require_capability(actor, claim.workspace, Cap.SETTINGS_MANAGE)
    row = DomainClaim.objects.select_for_update().select_related("workspace").filter(pk=claim.pk).first()
    if row is None:
        raise ServiceError("This domain claim no longer exists: it expired or was removed. Claim the domain again.")
    now = timezone.now()
    row.last_checked_at = now
    workspace = row.workspace
    if lookup.found:
        row.last_error, row.failures = "", 0
        if row.verified_at is not None:
            row.save(update_fields=["last_checked_at", "last_error", "failures"])
            return row  # still verified: nothing changed, nothing to record
        if _verify(row, now):
            record_event(
                actor=actor, action="domain.verified", workspace=workspace, **_target(row),
                details={"record_name": record_name(row.domain)},
            )
            return row
        # The record is there, but the domain is another workspace's (both may publish a record; the first to
        # verify keeps it while its record stays).
        row.last_error = OTHER_WORKSPACE_HOLDS_IT
        row.save(update_fields=["last_checked_at", "last_error", "failures"])
        record_event(
            actor=actor, action="domain.verification_failed", workspace=workspace, **_target(row),
            details={"reason": "verified by another workspace", "dns_error": False, "verified": False,
                     "failed_checks": 0},
        )
        return row
    row.last_error = lookup.problem[:300]
    was_verified = row.verified_at is not None
    if was_verified and not lookup.dns_error:
        row.failures += 1
        if row.failures >= settings.DOMAIN_LOST_AFTER_FAILURES:
            checks, expires_at = row.failures, _pending_until(now)
            row.verified_at, row.failures, row.expires_at = None, 0, expires_at
            row.save(update_fields=["last_checked_at", "last_error", "failures", "verified_at", "expires_at"])
            record_event(
                actor=actor, action="domain.lost", workspace=workspace, **_target(row),
                details={"reason": row.last_error, "failed_checks": checks,
                         "expires_at": expires_at.isoformat()},
            )
            return row
    row.save(update_fields=["last_checked_at", "last_error", "failures"])
    record_event(
        actor=actor, action="domain.verification_failed", workspace=workspace, **_target(row),
        details={"reason": row.last_error, "dns_error": lookup.dns_error, "verified": was_verified,
                 "failed_checks": row.failures},
    )
    return row


@transaction.atomic
def domain_claim_remove(*, claim: DomainClaim, actor: Actor) -> None:
    """Withdraw the workspace's claim. A verified domain stops routing ``/login/`` and renames at once."""
    require_capability(actor, claim.workspace, Cap.SETTINGS_MANAGE)
    row = DomainClaim.objects.select_for_update().filter(pk=claim.pk).first()
    if row is None:
        return
    details = {"was_verified": row.verified_at is not None}
    target = _target(row)
    row.delete()
    record_event(actor=actor, action="domain.removed", workspace=claim.workspace, **target, details=details)


@transaction.atomic
def domain_claims_expire(*, actor: Actor, now: datetime | None = None) -> int:
    """Remove pending claims past their expiry, one ``domain.expired`` event each. Returns how many went."""
    now = now or timezone.now()
    expired = list(
        DomainClaim.objects.select_for_update(skip_locked=True).select_related("workspace")
        .filter(verified_at__isnull=True, expires_at__lte=now).order_by("workspace_id", "pk")
    )
    for claim in expired:
        target = _target(claim)
        claim.delete()
        record_event(actor=actor, action="domain.expired", workspace=claim.workspace, **target,
                     details={"created_at": claim.created_at.isoformat(), "last_error": claim.last_error})
    return len(expired)


def domain_claims_recheck(
    *, now: datetime | None = None, progress: Callable[[int, int, DomainClaim], None] | None = None
) -> dict[str, int]:
    """The periodic job: expire pending claims, then check every verified claim not checked for
    ``DOMAIN_RECHECK_SECONDS``. Each check is its own transaction (``domain_claim_record_check``); a claim that
    fails in an unexpected way is logged and left for the next run. Pending claims are checked only when a person
    asks ("Verify now"), so an unverified claim writes no event per run."""
    now = now or timezone.now()
    actor = Actor.system("domain verification")
    counts = {"expired": domain_claims_expire(actor=actor, now=now), "checked": 0, "verified": 0, "failed": 0,
              "lost": 0}
    due = list(
        DomainClaim.objects.select_related("workspace").filter(verified_at__isnull=False).filter(
            Q(last_checked_at__isnull=True)
            | Q(last_checked_at__lte=now - timedelta(seconds=settings.DOMAIN_RECHECK_SECONDS))
        ).order_by("last_checked_at", "pk")
    )
    for index, claim in enumerate(due, start=1):
        if progress is not None:
            progress(index, len(due), claim)
        try:
            row = domain_claim_record_check(claim=claim, lookup=lookup_token(claim.domain, claim.token), actor=actor)
        except ServiceError:
            continue  # removed meanwhile
        except Exception:
            logger.exception("re-check of domain claim %s (%s) failed", claim.pk, claim.domain)
            continue
        counts["checked"] += 1
        if row.verified_at is None:
            counts["lost"] += 1
        elif row.last_error:
            counts["failed"] += 1
        else:
            counts["verified"] += 1
    return counts
