"""An IdP never moves an account's email into a domain another workspace has verified (SCIM and SAML renames).

The member's directory email still follows its IdP (SSO into that workspace answers to it); only the global
account keeps its address. Domains are verified against a real DNS server on loopback.
"""

from __future__ import annotations

import pytest

from audit.models import AuditEvent
from tests.dns_server import publish
from tests.factories import MembershipFactory
from tests.scim.conftest import ScimClient, make_cred
from workspaces import services as ws
from workspaces.models import DomainClaim, Membership

from .conftest import configure
from .test_directory_link import _login, _scim_rename, _subject


@pytest.fixture
def scim(world):
    return ScimClient("alpha", make_cred(world.owner_a, "bearer"))


@pytest.fixture
def email_attribute(world, sso_a):
    configure(world.a, world.owner_a, sso_a.entity_id, sso_a.key, email_attribute="email")


def _verified(dns, membership, domain: str):
    actor = ws.actor_for_membership(membership, "password")
    claim = DomainClaim.objects.filter(workspace=membership.workspace, domain=domain).first() or (
        ws.domain_claim_add(workspace=membership.workspace, domain=domain, actor=actor))
    publish(dns, claim)
    claim = ws.domain_claim_verify(claim=claim, actor=actor)
    assert claim.verified_at is not None
    return claim


def _kept(reason: str, email: str) -> dict[str, str]:
    return {"kept": email, "reason": reason}


def test_a_scim_rename_into_another_workspaces_verified_domain_keeps_the_account_email(world, scim, dns):
    _verified(dns, world.outsider_b, "bigcorp.test")
    uid = scim.post("Users", {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "ann@alpha.test",
        "emails": [{"value": "ann@alpha.test", "type": "work", "primary": True}], "active": True,
    }).json()["id"]
    _scim_rename(scim, uid, "ann@bigcorp.test")
    member = Membership.objects.select_related("user").get(pk=uid)
    assert member.directory_email == "ann@bigcorp.test"  # the workspace's SSO answers to the new address
    assert member.user.email == "ann@alpha.test"  # the account is not moved into BigCorp's domain
    details = AuditEvent.objects.get(action="member.renamed").details
    assert details["account_email"] == _kept("the domain is verified by another workspace", "ann@alpha.test")


def test_a_scim_rename_into_a_domain_only_claimed_elsewhere_follows_as_before(world, scim, dns):
    ws.domain_claim_add(workspace=world.b, domain="bigcorp.test", actor=ws.actor_for_membership(world.outsider_b, "password"))
    uid = scim.post("Users", {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "ann@alpha.test",
        "emails": [{"value": "ann@alpha.test", "type": "work", "primary": True}], "active": True,
    }).json()["id"]
    _scim_rename(scim, uid, "ann@bigcorp.test")
    assert Membership.objects.select_related("user").get(pk=uid).user.email == "ann@bigcorp.test"


def test_a_saml_rename_into_another_workspaces_verified_domain_keeps_the_account_email(world, sso_a, dns):
    _verified(dns, world.outsider_b, "bigcorp.test")
    _subject(world, sso_a, email_attribute="email")
    assert _login(sso_a, "member@alpha.test", okta_id="00u1member").status_code == 302
    assert _login(sso_a, "member@bigcorp.test", okta_id="00u1member").status_code == 302
    world.member_a.refresh_from_db()
    assert world.member_a.directory_email == "member@bigcorp.test"
    assert world.member_a.user.email == "member@alpha.test"
    details = AuditEvent.objects.get(action="member.renamed").details
    assert details["account_email"] == _kept("the domain is verified by another workspace", "member@alpha.test")


def test_a_saml_rename_within_the_workspaces_own_verified_domain_follows(world, sso_a, dns):
    _verified(dns, world.owner_a, "alpha.test")
    _subject(world, sso_a, email_attribute="email")
    assert _login(sso_a, "member@alpha.test", okta_id="00u1member").status_code == 302
    assert _login(sso_a, "member.renamed@alpha.test", okta_id="00u1member").status_code == 302
    world.member_a.refresh_from_db()
    assert world.member_a.user.email == "member.renamed@alpha.test"


def test_an_account_shared_with_another_workspace_follows_a_rename_inside_the_verified_domain(
        world, scim, email_attribute, dns):
    _verified(dns, world.owner_a, "alpha.test")
    uid = scim.post("Users", {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "ada@alpha.test",
        "emails": [{"value": "ada@alpha.test", "type": "work", "primary": True}], "active": True,
    }).json()["id"]
    account = Membership.objects.get(pk=uid).user
    MembershipFactory(workspace=world.b, user=account, role="member")
    _scim_rename(scim, uid, "ada.new@alpha.test")
    account.refresh_from_db()
    assert account.email == "ada.new@alpha.test"  # both addresses are in Alpha's verified domain


def test_an_account_shared_with_another_workspace_keeps_an_address_outside_the_verified_domain(
        world, scim, email_attribute, dns):
    _verified(dns, world.owner_a, "alpha.test")
    uid = scim.post("Users", {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "ada@personal.test",
        "emails": [{"value": "ada@personal.test", "type": "work", "primary": True}], "active": True,
    }).json()["id"]
    account = Membership.objects.get(pk=uid).user
    MembershipFactory(workspace=world.b, user=account, role="member")
    _scim_rename(scim, uid, "ada@alpha.test")
    account.refresh_from_db()
    assert account.email == "ada@personal.test"
    details = AuditEvent.objects.get(action="member.renamed").details
    assert details["account_email"]["reason"] == "the account is also a member of another workspace"
