"""/login/ finds a workspace's SSO by email domain and offers "Log in with SSO": only for a verified domain."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.dns_server import publish
from workspaces import services as ws
from workspaces.models import DomainClaim


def _verify(dns, workspace, domain: str) -> None:
    claim = DomainClaim.objects.select_related("workspace").get(workspace=workspace, domain=domain)
    publish(dns, claim)
    claim = ws.domain_claim_verify(claim=claim, actor=ws.actor_for_membership(
        workspace.memberships.get(role="owner"), "password"))
    assert claim.verified_at is not None


@pytest.fixture
def verified_a(world, sso_a, dns):
    _verify(dns, world.a, "alpha.test")


@pytest.fixture
def verified_b(world, sso_b, dns):
    _verify(dns, world.b, "bravo.test")


def _discover(email: str, **extra):
    return Client().post("/saml/discover/", {"email": email, **extra})


def test_login_page_offers_log_in_with_sso(world):
    assert b"Log in with SSO" in Client().get("/login/").content


def test_email_domain_leads_to_its_workspace_idp(world, verified_a):
    response = _discover("someone@ALPHA.test", next="/w/alpha/api-keys/")
    assert response.status_code == 302
    assert response["Location"] == "/saml/alpha/login/?next=%2Fw%2Falpha%2Fapi-keys%2F"


def test_email_domain_of_b_leads_to_b_only(world, verified_a, verified_b):
    assert _discover("someone@bravo.test")["Location"] == "/saml/bravo/login/"


def test_unknown_domain_says_so_on_the_login_page(world, verified_a):
    response = _discover("someone@elsewhere.test")
    assert response.status_code == 200
    assert b"No single sign-on is set up for that email domain" in response.content


def test_a_non_local_next_is_dropped(world, verified_a):
    assert _discover("a@alpha.test", next="https://evil.test/")["Location"] == "/saml/alpha/login/"


def test_a_claimed_but_unverified_domain_routes_nowhere(world, sso_a):
    assert DomainClaim.objects.get(workspace=world.a, domain="alpha.test").verified_at is None
    response = _discover("someone@alpha.test")
    assert response.status_code == 200
    assert b"No single sign-on is set up for that email domain" in response.content


def test_a_squatters_claim_does_not_take_the_domain_owners_people(world, sso_a, sso_b, dns):
    # Bravo claims alpha.test too, first; only Alpha can publish the record, so only Alpha's IdP gets its people.
    ws.domain_claim_add(workspace=world.b, domain="alpha.test",
                        actor=ws.actor_for_membership(world.outsider_b, "password"))
    _verify(dns, world.a, "alpha.test")
    squatter = DomainClaim.objects.get(workspace=world.b, domain="alpha.test")
    assert ws.domain_claim_verify(claim=squatter, actor=ws.actor_for_membership(
        world.outsider_b, "password")).verified_at is None
    assert _discover("someone@alpha.test")["Location"] == "/saml/alpha/login/"


def test_a_verified_domain_of_a_workspace_without_sso_routes_nowhere(world, dns):
    claim = ws.domain_claim_add(workspace=world.a, domain="alpha.test",
                                actor=ws.actor_for_membership(world.owner_a, "password"))
    publish(dns, claim)
    ws.domain_claim_verify(claim=claim, actor=ws.actor_for_membership(world.owner_a, "password"))
    assert _discover("someone@alpha.test").status_code == 200


def test_a_domain_that_lost_its_verification_stops_routing(world, verified_a, dns, settings):
    settings.DOMAIN_LOST_AFTER_FAILURES = 1
    dns.remove("_gatehouse-challenge.alpha.test")
    claim = DomainClaim.objects.select_related("workspace").get(workspace=world.a, domain="alpha.test")
    ws.domain_claim_verify(claim=claim, actor=ws.actor_for_membership(world.owner_a, "password"))
    assert _discover("someone@alpha.test").status_code == 200
