"""Test SSO's result page: the IdP's answer to a test comes back to the admin's page, success or failure, never
to the end-user error page; the IdP's POST is cross-site (no session cookie), as a real browser sends it."""

from __future__ import annotations

from django.test import Client

from audit.models import AuditEvent
from saml.models import IssuedAuthnRequest, SamlSettings
from tests.conftest import login_client
from workspaces.models import Workspace

from .conftest import post_acs, start_login
from .idp import make_key

RESULT = "/w/alpha/settings/sso/test/"


def _start_test(world):
    """The Owner presses Test SSO; returns the Owner's client and the test request's ID."""
    owner = login_client(world.owner_a)
    assert owner.post("/w/alpha/settings/sso/", {"action": "test"}).status_code == 302
    return owner, IssuedAuthnRequest.objects.filter(workspace=world.a, purpose="test").latest("created_at").request_id


def test_a_refused_test_returns_to_the_admins_result_page_with_the_reason_and_what_to_check(world, sso_a):
    owner, request_id = _start_test(world)
    idp_browser = Client()  # the IdP's auto-posting form: no Gatehouse session cookie comes with it
    response = post_acs(idp_browser, "alpha", sso_a.response(name_id="member@alpha.test", in_response_to=request_id))
    assert response.status_code == 302 and response["Location"] == RESULT
    page = owner.get(RESULT).content.decode()
    assert 'id="test-failed"' in page and '<code id="test-code">test_identity_mismatch</code>' in page
    assert "Test with your own IdP account" in page
    assert AuditEvent.objects.filter(action="sso.login_failed", details__reason="test_identity_mismatch").exists()
    assert SamlSettings.objects.get(workspace=world.a).last_test_succeeded_at is None


def test_a_signature_from_another_key_is_named_with_its_fix(world, sso_a):
    owner, request_id = _start_test(world)
    forged = sso_a.response(name_id="owner@alpha.test", in_response_to=request_id, key=make_key("someone-else"))
    assert post_acs(Client(), "alpha", forged)["Location"] == RESULT
    page = owner.get(RESULT).content.decode()
    assert '<code id="test-code">signature_invalid</code>' in page and "Download the IdP metadata again" in page


def test_a_refused_ordinary_login_still_gets_the_end_user_page(world, sso_a):
    client = Client()
    request_id = start_login(client, "alpha")
    response = post_acs(client, "alpha", sso_a.response(name_id="nobody@alpha.test", in_response_to=request_id))
    assert response.status_code == 403 and "Ask a workspace Owner" in response.content.decode()


def test_a_successful_test_shows_what_the_idp_sent_and_what_a_login_would_do(world, sso_a):
    Workspace.objects.filter(pk=world.a.pk).update(jit_provisioning=True, default_role="collaborator")
    owner, request_id = _start_test(world)
    response = post_acs(Client(), "alpha", sso_a.response(
        name_id="owner@alpha.test", in_response_to=request_id, groups=("eng",),
        attributes={"department": ["Platform"]},
    ))
    assert response["Location"] == RESULT
    page = owner.get(RESULT).content.decode()
    assert 'id="test-succeeded"' in page and 'id="test-failed"' not in page
    assert '<code id="test-name-id">owner@alpha.test</code>' in page
    assert "<td><code>department</code></td><td>Platform</td>" in page
    assert '<dd id="test-groups">eng</dd>' in page
    assert "added at first sign-in as <strong>Collaborator</strong>" in page
    assert "enforce SAML-only" in page


def test_a_later_success_replaces_an_earlier_failure(world, sso_a):
    owner, request_id = _start_test(world)
    post_acs(Client(), "alpha", sso_a.response(name_id="member@alpha.test", in_response_to=request_id))
    owner, request_id = _start_test(world)
    post_acs(Client(), "alpha", sso_a.response(name_id="owner@alpha.test", in_response_to=request_id))
    page = owner.get(RESULT).content.decode()
    assert 'id="test-succeeded"' in page and 'id="test-failed"' not in page


def test_another_owner_does_not_see_someone_elses_refused_test(world, sso_a):
    from tests.factories import MembershipFactory

    other = MembershipFactory(workspace=world.a, role="owner", user__email="second-owner@alpha.test")
    _, request_id = _start_test(world)
    post_acs(Client(), "alpha", sso_a.response(name_id="member@alpha.test", in_response_to=request_id))
    assert 'id="test-failed"' not in login_client(other).get(RESULT).content.decode()


def test_the_result_page_is_for_owners_only(world, sso_a):
    assert login_client(world.manager_a).get(RESULT).status_code == 403
