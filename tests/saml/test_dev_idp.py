"""The development IdP (DEBUG only): Gatehouse login -> "Sign in as:" -> a signed response posted to the ACS ->
signed in; Test SSO with it succeeds; without DEBUG its URLs are 404 and it cannot be configured."""

from __future__ import annotations

import base64
import importlib
import re
from io import StringIO
from urllib.parse import urlsplit

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import clear_url_caches
from lxml import etree

import config.urls
from audit.models import AuditEvent
from saml import services
from saml.models import SamlSettings
from tests.conftest import login_client
from workspaces.services import actor_for_membership

DS = "{http://www.w3.org/2000/09/xmldsig#}"
SAML = "{urn:oasis:names:tc:SAML:2.0:assertion}"
HIDDEN = re.compile(r'<input type="hidden" name="(\w+)" value="([^"]*)">')


def _reload_urls() -> None:
    importlib.reload(config.urls)
    clear_url_caches()


@pytest.fixture
def dev_idp(world, settings, tmp_path):
    """DEBUG on (the portal's URLs rebuilt, so the IdP is mounted), its key in a temporary DATA_DIR, and workspace
    A's SSO configured with it by the management command."""
    settings.DEBUG = True
    settings.DATA_DIR = tmp_path
    _reload_urls()
    out = StringIO()
    call_command("dev_idp_configure", "alpha", stdout=out)
    yield out.getvalue()
    settings.DEBUG = False
    _reload_urls()


def _form(html: str, form_id: str) -> tuple[str, dict[str, str]]:
    """The action and hidden fields of the form ``form_id`` in ``html``."""
    form = html.split(f'id="{form_id}"', 1)[1].split("</form>", 1)[0]
    action = re.search(r'action="([^"]*)"', html.split(f'id="{form_id}"', 1)[0].rsplit("<form", 1)[1] + form)
    return action.group(1) if action else "", dict(HIDDEN.findall(form))


def _through_dev_idp(browser: Client, idp_location: str, email: str):
    """At the IdP: open the redirect, choose ``email``, and post the signed response to the ACS as a browser does."""
    page = browser.get(urlsplit(idp_location).path + "?" + urlsplit(idp_location).query)
    assert page.status_code == 200
    html = page.content.decode()
    assert "Sign in as:" in html and email in html
    _, fields = _form(html, "dev-idp-people")
    answer = browser.post("/dev-idp/alpha/sso/", {**fields, "email": email})
    assert answer.status_code == 200
    acs, post = _form(answer.content.decode(), "dev-idp-response")
    assert acs == "http://127.0.0.1:8000/saml/alpha/acs/"
    return Client().post(urlsplit(acs).path, post)  # cross-site POST: no Gatehouse cookie, as in a browser


def test_a_member_signs_in_end_to_end_through_the_dev_idp(world, dev_idp):
    browser = Client()
    start = browser.get("/saml/alpha/login/?next=/w/alpha/")
    assert start.status_code == 302 and start["Location"].startswith("http://127.0.0.1:8000/dev-idp/alpha/sso/?")
    page = browser.get(urlsplit(start["Location"]).path + "?" + urlsplit(start["Location"]).query)
    _, fields = _form(page.content.decode(), "dev-idp-people")
    answer = browser.post("/dev-idp/alpha/sso/", {**fields, "email": "member@alpha.test"})
    acs, post = _form(answer.content.decode(), "dev-idp-response")
    signed_in = browser.post(urlsplit(acs).path, post)
    assert signed_in.status_code == 302 and signed_in["Location"] == "/w/alpha/"
    assert browser.get("/w/alpha/").status_code == 200
    assert int(browser.session["_auth_user_id"]) == world.member_a.user.pk
    assert AuditEvent.objects.filter(workspace=world.a, action="sso.login_succeeded").count() == 1
    assert not AuditEvent.objects.filter(workspace=world.a, action="sso.login_failed").exists()


def test_the_dev_idp_response_is_signed_and_replaying_it_is_refused(world, dev_idp):
    browser = Client()
    start = browser.get("/saml/alpha/login/")
    page = browser.get(urlsplit(start["Location"]).path + "?" + urlsplit(start["Location"]).query)
    _, fields = _form(page.content.decode(), "dev-idp-people")
    answer = browser.post("/dev-idp/alpha/sso/", {**fields, "email": "member@alpha.test"})
    _, post = _form(answer.content.decode(), "dev-idp-response")
    root = etree.fromstring(base64.b64decode(post["SAMLResponse"]))
    signatures = root.findall(f"{DS}Signature") + root.findall(f"{SAML}Assertion/{DS}Signature")
    assert len(signatures) == 2  # the Response and the Assertion, as Okta signs them
    assert {s.find(f"{DS}SignedInfo/{DS}SignatureMethod").get("Algorithm") for s in signatures} == {
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"}
    assert Client().post("/saml/alpha/acs/", post).status_code == 302
    assert Client().post("/saml/alpha/acs/", post).status_code == 403


def test_test_sso_with_the_dev_idp_succeeds(world, dev_idp):
    owner = login_client(world.owner_a)
    start = owner.post("/w/alpha/settings/sso/", {"action": "test"})
    assert start.status_code == 302
    result = _through_dev_idp(owner, start["Location"], "owner@alpha.test")
    assert result.status_code == 302 and result["Location"] == "/w/alpha/settings/sso/test/"
    assert 'id="test-succeeded"' in owner.get("/w/alpha/settings/sso/test/").content.decode()
    assert SamlSettings.objects.get(workspace=world.a).last_test_succeeded_at is not None


def test_configuring_is_audited_and_prints_how_to_try_it(world, dev_idp):
    assert "Test SSO" in dev_idp and "http://127.0.0.1:8000/saml/alpha/login/" in dev_idp
    cfg = SamlSettings.objects.get(workspace=world.a)
    assert cfg.idp_entity_id == "http://127.0.0.1:8000/dev-idp/alpha/metadata/"
    assert AuditEvent.objects.filter(workspace=world.a, action__startswith="sso.").exists()
    again = StringIO()
    call_command("dev_idp_configure", "alpha", stdout=again)
    assert "already uses the development IdP" in again.getvalue()


def test_the_key_is_generated_once_and_kept_under_data_dir(world, dev_idp, settings):
    key = settings.DATA_DIR / "dev-idp" / "idp-key.pem"
    assert key.exists() and (key.stat().st_mode & 0o077) == 0
    before = key.read_bytes()
    assert Client().get("/dev-idp/alpha/metadata/").status_code == 200
    assert key.read_bytes() == before


def test_the_dev_idp_refuses_a_request_it_cannot_read(world, dev_idp):
    response = Client().get("/dev-idp/alpha/sso/?SAMLRequest=not-a-request")
    assert response.status_code == 400 and 'id="dev-idp-refused"' in response.content.decode()


def test_the_dev_idp_is_404_for_an_unknown_workspace(world, dev_idp):
    assert Client().get("/dev-idp/nope/metadata/").status_code == 404


def test_without_debug_the_dev_idp_urls_are_404(world, settings, tmp_path):
    settings.DATA_DIR = tmp_path
    _reload_urls()  # built with DEBUG off, as in production: not mounted
    client = Client()
    assert client.get("/dev-idp/alpha/metadata/").status_code == 404
    assert client.get("/dev-idp/alpha/sso/?SAMLRequest=x").status_code == 404
    assert not (tmp_path / "dev-idp").exists()


def test_without_debug_the_dev_idp_views_refuse_even_when_mounted(world, dev_idp, settings):
    settings.DEBUG = False  # the URLs are still mounted (built under DEBUG); the views check again
    client = Client()
    assert client.get("/dev-idp/alpha/metadata/").status_code == 404
    assert client.get("/dev-idp/alpha/sso/?SAMLRequest=x").status_code == 404


def test_without_debug_the_command_refuses(world):
    with pytest.raises(CommandError, match="DEBUG"):
        call_command("dev_idp_configure", "alpha", stdout=StringIO())
    assert not SamlSettings.objects.filter(workspace=world.a).exists()


def test_signed_requests_and_required_encryption_work_with_the_dev_idp(world, dev_idp):
    """With an SP key, signing on and encryption required, the dev IdP still answers what the ACS accepts."""
    actor = actor_for_membership(world.owner_a, "password")
    services.sp_key_prepare(workspace=world.a, actor=actor)
    services.sp_options_set(workspace=world.a, actor=actor, sign_authn_requests=True,
                            require_encrypted_assertions=True)
    browser = Client()
    start = browser.get("/saml/alpha/login/")
    assert "Signature=" in start["Location"]
    signed_in = _through_dev_idp(browser, start["Location"], "member@alpha.test")
    assert not AuditEvent.objects.filter(workspace=world.a, action="sso.login_failed").exists()
    assert signed_in.status_code == 302 and signed_in["Location"] == "/w/alpha/"
