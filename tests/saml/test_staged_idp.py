"""No lockout by reconfiguration: while SAML-only is enforced, a change of IdP is staged and becomes live only when
a Test SSO is answered, and verified, by the new IdP; the live IdP keeps working meanwhile. A certificate added for
rollover applies at once. The same holds for sso_configure and the metadata-URL refresh. Real signed assertions."""

from __future__ import annotations

from unittest import mock

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from audit.models import AuditEvent
from saml import services
from saml.models import IssuedAuthnRequest, SamlSettings
from tests.conftest import login_client
from workspaces.access import GrantMethod
from workspaces.models import Workspace

from .conftest import IDP_A, Sso, failures, post_acs, start_login
from .idp import idp_metadata, make_key

URL = "/w/alpha/settings/sso/"
NEW_IDP = "http://www.okta.com/exkNEWIDP"


def _owner(world):
    from workspaces.services import actor_for_membership

    return actor_for_membership(world.owner_a, "password")


@pytest.fixture
def enforced(world, sso_a):
    SamlSettings.objects.filter(pk=sso_a.cfg.pk).update(last_test_succeeded_at=timezone.now())
    services.saml_only_set(workspace=world.a, actor=_owner(world), enabled=True)
    world.a.refresh_from_db()
    return sso_a


def _owner_client(world):
    # SAML-only is enforced: the Owner's session was granted through SSO.
    return login_client(world.owner_a, method=GrantMethod.SAML)


def _login(sso, email="member@alpha.test"):
    client = Client()
    rid = start_login(client, "alpha")
    return post_acs(client, "alpha", sso.response(name_id=email, in_response_to=rid))


def _test_sso(client, sso, email="owner@alpha.test"):
    client.post(URL, {"action": "test"})
    request = IssuedAuthnRequest.objects.filter(workspace__slug="alpha", purpose="test").latest("created_at")
    return post_acs(client, "alpha", sso.response(name_id=email, in_response_to=request.request_id))


def _new_idp(world) -> Sso:
    key = make_key("idp-new")
    return Sso(world.a, None, NEW_IDP, key)


def _save(world, xml: str, **kw):
    return services.saml_settings_save(workspace=Workspace.objects.get(pk=world.a.pk), actor=_owner(world),
                                       metadata_xml=xml, **kw)


def test_a_new_idp_is_staged_while_enforced_and_the_live_one_keeps_working(world, enforced):
    new = _new_idp(world)
    cfg = _save(world, idp_metadata(NEW_IDP, "https://idp.new/sso", new.key))
    assert cfg.idp_entity_id == IDP_A and cfg.pending_idp["entity_id"] == NEW_IDP
    assert cfg.last_test_succeeded_at is not None  # the live IdP's test still stands
    assert _login(enforced).status_code == 302  # the live IdP still signs people in
    refused = _login(new)  # the staged one may not, until a test makes it live
    assert refused.status_code == 403 and failures(world.a)[-1] == "pending_idp_login"
    page = _owner_client(world).get(URL).content.decode()
    assert 'id="pending-idp"' in page and NEW_IDP in page
    event = AuditEvent.objects.filter(action="sso.settings_changed").latest("seq")
    assert event.details["staged"]["entity_id"] == NEW_IDP


def test_a_test_sso_answered_by_the_staged_idp_makes_it_live(world, enforced):
    new = _new_idp(world)
    _save(world, idp_metadata(NEW_IDP, "https://idp.new/sso", new.key))
    client = _owner_client(world)
    client.post(URL, {"action": "test"})
    request = IssuedAuthnRequest.objects.filter(workspace=world.a, purpose="test").latest("created_at")
    response = post_acs(client, "alpha", new.response(name_id="owner@alpha.test", in_response_to=request.request_id))
    assert response.status_code == 302, response.content[:300]
    cfg = SamlSettings.objects.get(workspace=world.a)
    assert cfg.idp_entity_id == NEW_IDP and cfg.pending_idp == {}
    assert AuditEvent.objects.filter(action="sso.pending_applied").count() == 1
    assert _login(new).status_code == 302
    assert _login(enforced).status_code == 403  # the old IdP is no longer the workspace's


def test_the_test_goes_to_the_staged_idps_sso_url(world, enforced):
    new = _new_idp(world)
    _save(world, idp_metadata(NEW_IDP, "https://idp.new/sso", new.key))
    response = _owner_client(world).post(URL, {"action": "test"})
    assert response.status_code == 302 and response["Location"].startswith("https://idp.new/sso?")


def test_a_failed_test_leaves_the_change_staged(world, enforced):
    new = _new_idp(world)
    _save(world, idp_metadata(NEW_IDP, "https://idp.new/sso", new.key))
    client = _owner_client(world)
    refused = _test_sso(client, new, email="member@alpha.test")  # not the Owner who started it
    assert refused["Location"] == "/w/alpha/settings/sso/test/"
    assert 'id="test-failed"' in client.get(refused["Location"]).content.decode()
    cfg = SamlSettings.objects.get(workspace=world.a)
    assert cfg.idp_entity_id == IDP_A and cfg.pending_idp["entity_id"] == NEW_IDP


def test_a_rollover_certificate_applies_at_once(world, enforced):
    second = make_key("idp-alpha-2027")
    cfg = _save(world, idp_metadata(IDP_A, "https://idp.test/alpha/sso", enforced.key, second))
    assert cfg.pending_idp == {} and len(cfg.certificates) == 2
    rolled = Sso(world.a, cfg, IDP_A, second)
    assert _login(rolled).status_code == 302 and _login(enforced).status_code == 302


def test_replacing_the_certificate_is_a_change_of_idp(world, enforced):
    replacement = make_key("idp-alpha-replaced")
    cfg = _save(world, idp_metadata(IDP_A, "https://idp.test/alpha/sso", replacement))
    assert cfg.pending_idp and cfg.certificates != cfg.pending_idp["certificates"]
    assert _login(enforced).status_code == 302


def test_without_enforcement_a_new_idp_applies_at_once(world, sso_a):
    new = _new_idp(world)
    cfg = _save(world, idp_metadata(NEW_IDP, "https://idp.new/sso", new.key))
    assert cfg.idp_entity_id == NEW_IDP and cfg.pending_idp == {}


def test_an_owner_can_discard_the_staged_change(world, enforced):
    new = _new_idp(world)
    _save(world, idp_metadata(NEW_IDP, "https://idp.new/sso", new.key))
    _owner_client(world).post(URL, {"action": "discard_pending"})
    assert SamlSettings.objects.get(workspace=world.a).pending_idp == {}
    assert AuditEvent.objects.filter(action="sso.pending_discarded").count() == 1


def test_sso_configure_stages_too_and_says_so(world, enforced, tmp_path, capsys):
    new = _new_idp(world)
    path = tmp_path / "new.xml"
    path.write_text(idp_metadata(NEW_IDP, "https://idp.new/sso", new.key))
    call_command("sso_configure", "alpha", "--metadata", str(path))
    assert "STAGED" in capsys.readouterr().out
    cfg = SamlSettings.objects.get(workspace=world.a)
    assert cfg.idp_entity_id == IDP_A and cfg.pending_idp["entity_id"] == NEW_IDP


def test_the_metadata_url_refresh_stages_a_new_idp_while_enforced(world, enforced):
    SamlSettings.objects.filter(pk=enforced.cfg.pk).update(metadata_url="https://idp.test/metadata")
    new = _new_idp(world)
    body = idp_metadata(NEW_IDP, "https://idp.new/sso", new.key).encode()
    with mock.patch("saml.services.idp_settings.fetch_metadata_url", return_value=body):
        result = services.saml_metadata_refresh(settings_id=enforced.cfg.pk, actor=_owner(world))
        again = services.saml_metadata_refresh(settings_id=enforced.cfg.pk, actor=_owner(world))
    assert (result, again) == ("staged", "unchanged")
    cfg = SamlSettings.objects.get(pk=enforced.cfg.pk)
    assert cfg.idp_entity_id == IDP_A and cfg.pending_idp["entity_id"] == NEW_IDP
    assert AuditEvent.objects.filter(action="sso.metadata_staged").count() == 1
    assert _login(enforced).status_code == 302


def test_owner_recovery_is_linked_where_a_locked_out_owner_lands(world, enforced):
    login_page = Client().get("/login/").content.decode()
    assert 'id="break-glass-hint"' in login_page
    # A failed SSO login and the "sign in to this workspace" page both link this workspace's break-glass.
    failed = _login(_new_idp(world)).content.decode()
    assert 'id="break-glass-link"' in failed and "/saml/alpha/break-glass/" in failed
    no_grant = login_client(world.owner_a).get("/w/alpha/").content.decode()  # a password session, SAML-only on
    assert 'id="break-glass-link"' in no_grant and "/saml/alpha/break-glass/" in no_grant


def test_a_staged_idp_that_encrypts_answers_test_sso_with_the_workspaces_sp_key(world, enforced):
    """The SP key belongs to the workspace, not to one IdP: a staged IdP encrypts to the same certificate."""
    from saml.models import SpKey
    from saml.sp_keys import cert_b64

    services.sp_key_prepare(workspace=world.a, actor=_owner(world))
    services.sp_options_set(workspace=world.a, actor=_owner(world), sign_authn_requests=True)
    new = _new_idp(world)
    _save(world, idp_metadata(NEW_IDP, "https://idp.new/sso", new.key))
    cert = SpKey.objects.get(saml_settings__workspace=world.a).cert_pem
    client = _owner_client(world)
    client.post(URL, {"action": "test"})
    request = IssuedAuthnRequest.objects.filter(workspace__slug="alpha", purpose="test").latest("created_at")
    response = post_acs(client, "alpha", new.response(name_id="owner@alpha.test", in_response_to=request.request_id,
                                                      encrypt_to=cert))
    assert response.status_code == 302, failures(world.a)
    cfg = SamlSettings.objects.get(workspace=world.a)
    assert cfg.idp_entity_id == NEW_IDP and cfg.pending_idp == {} and cfg.last_test_result["encrypted"] is True
    assert cert_b64(cert) in Client().get("/saml/alpha/metadata/").content.decode()
