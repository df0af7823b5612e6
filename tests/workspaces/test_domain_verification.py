"""A workspace proves an email domain with a DNS TXT record, checked against a real DNS server on loopback."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from tests.dns_server import publish
from workspaces import services
from workspaces.domains import (
    InvalidDomain,
    email_domain_verified,
    normalise_domain,
    verified_workspace_for_email,
)
from workspaces.exceptions import AlreadyExists, NotAllowed, ServiceError
from workspaces.models import DomainClaim
from workspaces.services import actor_for_membership


def _owner(membership):
    return actor_for_membership(membership, "password")


def _claim(world, domain="bigcorp.test", membership=None):
    membership = membership or world.owner_a
    return services.domain_claim_add(workspace=membership.workspace, domain=domain, actor=_owner(membership))


def _verify(claim, membership):
    return services.domain_claim_verify(claim=claim, actor=_owner(membership))


def _actions(workspace) -> list[str]:
    return list(AuditEvent.objects.filter(workspace=workspace, action__startswith="domain.")
                .order_by("seq").values_list("action", flat=True))


def test_a_claim_is_pending_with_a_token_and_an_expiry(world):
    claim = _claim(world, " @BigCorp.TEST. ")
    assert claim.domain == "bigcorp.test" and len(claim.token) == 32
    assert claim.verified_at is None
    assert claim.expires_at - claim.created_at == timedelta(days=7)
    assert _actions(world.a) == ["domain.claimed"]


def test_a_pending_claim_is_not_verified(world):
    _claim(world)
    assert not email_domain_verified(world.a.pk, "ann@bigcorp.test")
    assert verified_workspace_for_email("ann@bigcorp.test") is None


def test_the_record_verifies_the_claim(world, dns):
    claim = _claim(world)
    publish(dns, claim)
    claim = _verify(claim, world.owner_a)
    assert claim.verified_at is not None and claim.expires_at is None and claim.last_error == ""
    assert email_domain_verified(world.a.pk, "Ann@BIGCORP.test")
    assert verified_workspace_for_email("ann@bigcorp.test") == world.a.pk
    assert dns.zone.queries == ["_gatehouse-challenge.bigcorp.test"]
    assert _actions(world.a) == ["domain.claimed", "domain.verified"]


def test_verification_is_for_the_exact_domain_and_the_workspace_holding_it(world, dns):
    claim = _claim(world)
    publish(dns, claim)
    _verify(claim, world.owner_a)
    assert not email_domain_verified(world.b.pk, "ann@bigcorp.test")
    assert not email_domain_verified(world.a.pk, "ann@eu.bigcorp.test")
    assert not email_domain_verified(world.a.pk, "not-an-email")
    assert verified_workspace_for_email("ann@eu.bigcorp.test") is None


def test_without_the_record_the_page_is_told_where_to_add_it(world, dns):
    claim = _verify(_claim(world), world.owner_a)
    assert claim.verified_at is None
    assert claim.last_error.startswith("No TXT record found at _gatehouse-challenge.bigcorp.test: add a TXT record")
    assert f'"gatehouse-verification={claim.token}"' in claim.last_error
    assert "DNS changes can take minutes" in claim.last_error
    event = AuditEvent.objects.get(workspace=world.a, action="domain.verification_failed")
    assert event.details["dns_error"] is False and event.target_label == "bigcorp.test"


def test_a_record_with_another_value_does_not_verify(world, dns):
    claim = _claim(world)
    dns.set_txt("_gatehouse-challenge.bigcorp.test", "gatehouse-verification=someone-else", "v=spf1 -all")
    claim = _verify(claim, world.owner_a)
    assert claim.verified_at is None
    assert "does not hold this claim's value" in claim.last_error


def test_two_workspaces_claim_a_domain_only_the_one_with_the_record_verifies(world, dns):
    mine, theirs = _claim(world), _claim(world, membership=world.outsider_b)
    publish(dns, theirs)
    assert _verify(mine, world.owner_a).verified_at is None
    assert _verify(theirs, world.outsider_b).verified_at is not None
    assert verified_workspace_for_email("x@bigcorp.test") == world.b.pk


def test_a_domain_verified_by_one_workspace_cannot_be_verified_by_another(world, dns):
    first, second = _claim(world), _claim(world, membership=world.outsider_b)
    dns.set_txt("_gatehouse-challenge.bigcorp.test", f"gatehouse-verification={first.token}",
                f"gatehouse-verification={second.token}")
    _verify(first, world.owner_a)
    second = _verify(second, world.outsider_b)
    assert second.verified_at is None
    assert "Another workspace holds this domain verified" in second.last_error
    assert DomainClaim.objects.filter(domain="bigcorp.test", verified_at__isnull=False).count() == 1
    assert _actions(world.b) == ["domain.claimed", "domain.verification_failed"]


def test_dns_server_down_is_a_clear_error_and_not_a_failed_check(world, dns):
    claim = _claim(world)
    publish(dns, claim)
    _verify(claim, world.owner_a)
    dns.stop()
    claim = _verify(claim, world.owner_a)
    assert claim.verified_at is not None and claim.failures == 0
    assert "The DNS servers did not answer for _gatehouse-challenge.bigcorp.test" in claim.last_error


def test_servfail_is_a_dns_error(world, dns):
    claim = _claim(world)
    dns.zone.fail = True
    claim = _verify(claim, world.owner_a)
    assert "did not answer" in claim.last_error
    assert AuditEvent.objects.get(action="domain.verification_failed").details["dns_error"] is True


def _recheck_later(hours: float = 25):
    return services.domain_claims_recheck(now=timezone.now() + timedelta(hours=hours))


def test_a_verified_claim_is_rechecked_daily_and_stays_verified_while_the_record_does(world, dns):
    claim = _claim(world)
    publish(dns, claim)
    _verify(claim, world.owner_a)
    assert services.domain_claims_recheck()["checked"] == 0  # checked just now: not due
    assert _recheck_later()["verified"] == 1
    assert _actions(world.a) == ["domain.claimed", "domain.verified"]  # no change, no event


def test_a_verified_claim_whose_record_is_removed_loses_verification_after_three_checks(world, dns):
    claim = _claim(world)
    publish(dns, claim)
    _verify(claim, world.owner_a)
    dns.remove("_gatehouse-challenge.bigcorp.test")
    for day in (1, 2):
        assert _recheck_later(25 * day)["failed"] == 1
        claim.refresh_from_db()
        assert claim.verified_at is not None and claim.failures == day
    assert email_domain_verified(world.a.pk, "ann@bigcorp.test")
    assert _recheck_later(75)["lost"] == 1
    claim.refresh_from_db()
    assert claim.verified_at is None and claim.failures == 0 and claim.expires_at is not None
    assert not email_domain_verified(world.a.pk, "ann@bigcorp.test")
    assert _actions(world.a) == ["domain.claimed", "domain.verified", "domain.verification_failed",
                                 "domain.verification_failed", "domain.lost"]
    lost = AuditEvent.objects.get(action="domain.lost")
    assert lost.actor_kind == "system" and lost.details["failed_checks"] == 3


def test_a_record_back_before_the_third_check_resets_the_count(world, dns):
    claim = _claim(world)
    publish(dns, claim)
    _verify(claim, world.owner_a)
    dns.remove("_gatehouse-challenge.bigcorp.test")
    _recheck_later(25)
    publish(dns, claim)
    _recheck_later(50)
    claim.refresh_from_db()
    assert claim.verified_at is not None and claim.failures == 0 and claim.last_error == ""


def test_dns_outages_never_make_a_verified_claim_lose_its_verification(world, dns):
    claim = _claim(world)
    publish(dns, claim)
    _verify(claim, world.owner_a)
    dns.zone.fail = True
    for day in (1, 2, 3, 4):
        _recheck_later(25 * day)
    claim.refresh_from_db()
    assert claim.verified_at is not None and claim.failures == 0


def test_pending_claims_expire(world, dns):
    claim = _claim(world)
    assert services.domain_claims_recheck(now=timezone.now() + timedelta(days=6))["expired"] == 0
    assert services.domain_claims_recheck(now=timezone.now() + timedelta(days=7, seconds=1))["expired"] == 1
    assert not DomainClaim.objects.filter(pk=claim.pk).exists()
    event = AuditEvent.objects.get(action="domain.expired")
    assert event.workspace_id == world.a.pk and event.target_label == "bigcorp.test"
    assert dns.zone.queries == []  # pending claims are checked only when someone asks


def test_verified_claims_do_not_expire(world, dns):
    claim = _claim(world)
    publish(dns, claim)
    _verify(claim, world.owner_a)
    assert services.domain_claims_recheck(now=timezone.now() + timedelta(days=30))["expired"] == 0


def test_removing_a_claim_stops_it_counting(world, dns):
    claim = _claim(world)
    publish(dns, claim)
    _verify(claim, world.owner_a)
    services.domain_claim_remove(claim=claim, actor=_owner(world.owner_a))
    assert verified_workspace_for_email("ann@bigcorp.test") is None
    assert AuditEvent.objects.get(action="domain.removed").details == {"was_verified": True}


def test_a_workspace_claims_a_domain_once(world):
    _claim(world)
    with pytest.raises(AlreadyExists):
        _claim(world, "BIGCORP.test")


def test_only_owners_manage_domains(world):
    with pytest.raises(NotAllowed):
        services.domain_claim_add(workspace=world.a, domain="bigcorp.test", actor=_owner(world.manager_a))
    claim = _claim(world)
    with pytest.raises(NotAllowed):
        services.domain_claim_remove(claim=claim, actor=_owner(world.manager_a))


def test_an_owner_of_b_cannot_manage_a_claim_of_a(world):
    claim = _claim(world)
    with pytest.raises(NotAllowed):
        services.domain_claim_remove(claim=claim, actor=_owner(world.outsider_b))
    with pytest.raises(NotAllowed):
        services.domain_claim_verify(claim=claim, actor=_owner(world.outsider_b))


@pytest.mark.parametrize("raw", ["", "localhost", "10.0.0.1", "exa mple.com", "-bad.com", "a..b", "example.123",
                                 "x" * 64 + ".com", "user@example.com"])
def test_what_is_not_a_mail_domain_is_refused(raw):
    with pytest.raises(InvalidDomain):
        normalise_domain(raw)


def test_international_domains_are_stored_as_a_labels():
    assert normalise_domain("Bücher.Example") == "xn--bcher-kva.example"


def test_an_invalid_domain_is_a_service_error_on_the_field(world):
    with pytest.raises(ServiceError) as caught:
        _claim(world, "localhost")
    assert caught.value.field == "domain"


def test_a_removed_claim_cannot_be_checked(world, dns):
    claim = _claim(world)
    services.domain_claim_remove(claim=claim, actor=_owner(world.owner_a))
    with pytest.raises(ServiceError, match="no longer exists"):
        _verify(claim, world.owner_a)


def test_beat_runs_the_recheck_hourly_through_the_periodic_claim(world, dns, settings):
    import workspaces.tasks  # noqa: F401 - registers the task, as a worker's autodiscovery does
    from config.tasks import run_periodic

    job = settings.PERIODIC_JOBS["domain-recheck"]
    assert job["task"] == "workspaces.tasks.recheck_domain_claims" and job["every"] == 3600
    assert settings.CELERY_BEAT_SCHEDULE["domain-recheck"]["args"] == ("domain-recheck",)
    claim = _claim(world)
    DomainClaim.objects.filter(pk=claim.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    run_periodic.apply(args=["domain-recheck"]).get()
    assert not DomainClaim.objects.filter(pk=claim.pk).exists()
    assert AuditEvent.objects.get(action="domain.expired").actor_label == "domain verification"
