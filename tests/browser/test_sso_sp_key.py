"""Signed requests and encrypted assertions in a real browser, with a loopback IdP that reads Gatehouse's SP metadata.

The IdP imports the SP metadata from its URL (as an admin would paste it into Okta), refuses an AuthnRequest whose
Redirect-binding signature does not verify with the published signing certificate, and encrypts the signed assertion
to the published encryption certificate it chose. The Owner creates the key, switches both options on, rolls the
key over, and Test SSO succeeds at every step.
"""

from __future__ import annotations

import base64
import html
import re
import urllib.request
import zlib
from urllib.parse import parse_qs

import pytest
from lxml import etree
from playwright.sync_api import expect

from saml.models import SamlSettings, SpKey
from tests.saml.idp import IdpRefused, build_response, sp_certificates, verify_authn_request

from .conftest import sign_in
from .test_sso import LoopbackIdp

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


class EncryptingIdp(LoopbackIdp):
    """Trusts the SP certificates it last imported; encrypts to the one at ``encrypt_with`` (0: first published)."""

    def __init__(self) -> None:
        super().__init__()
        self.sp_metadata_url = ""
        self.signing: list[str] = []
        self.encryption: list[str] = []
        self.encrypt_with = 0
        self.refused: list[str] = []

    def import_sp_metadata(self) -> None:
        with urllib.request.urlopen(self.sp_metadata_url) as answer:  # noqa: S310 - the test's own live server
            xml = answer.read().decode()
        self.signing, self.encryption = sp_certificates(xml, "signing"), sp_certificates(xml, "encryption")

    def app(self, environ, start_response):
        if environ["PATH_INFO"] == "/metadata":
            return super().app(environ, start_response)
        if environ["PATH_INFO"] != "/sso":  # the browser's /favicon.ico
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b""]
        location = f"{self.base}/sso?{environ.get('QUERY_STRING', '')}"
        try:
            request = verify_authn_request(location, self.signing)
        except IdpRefused as exc:
            self.refused.append(str(exc))
            start_response("403 Forbidden", [("Content-Type", "text/plain")])
            return [b"The AuthnRequest signature is not valid."]
        assert request.get("ID") == etree.fromstring(
            zlib.decompress(base64.b64decode(parse_qs(environ["QUERY_STRING"])["SAMLRequest"][0]), -15)).get("ID")
        acs = request.get("AssertionConsumerServiceURL")
        email, groups = self.user
        saml_response = build_response(
            sp_entity_id=request.find("{urn:oasis:names:tc:SAML:2.0:assertion}Issuer").text, acs_url=acs,
            idp_entity_id=self.entity_id, key=self.key, name_id=email, in_response_to=request.get("ID"),
            groups=groups, encrypt_to=self.encryption[self.encrypt_with],
        )
        body = (
            f'<html><body onload="document.forms[0].submit()"><form method="post" action="{html.escape(acs)}">'
            f'<input type="hidden" name="SAMLResponse" value="{saml_response}"></form></body></html>'
        )
        start_response("200 OK", [("Content-Type", "text/html")])
        return [body.encode()]


@pytest.fixture
def idp():
    with EncryptingIdp() as server:
        yield server


def _test_sso(page) -> None:
    page.goto("/w/alpha/settings/sso/")
    page.click("#test-sso")
    expect(page).to_have_url(re.compile(r"/w/alpha/settings/sso/test/$"))
    expect(page.locator("#test-succeeded")).to_be_visible()
    page.goto("/w/alpha/settings/sso/")
    expect(page.locator("#sp-options")).to_contain_text("The last Test SSO arrived encrypted")


def test_owner_turns_on_signed_requests_and_encryption_and_rolls_the_key_without_a_failed_test(
    page, live_server, settings, world, password, idp
):
    settings.PUBLIC_BASE_URL = live_server.url
    idp.sp_metadata_url = f"{live_server.url}/saml/alpha/metadata/"
    idp.user = ("owner@alpha.test", ())
    sign_in(page, "owner@alpha.test", password)
    page.goto("/w/alpha/settings/sso/")
    page.fill("textarea[name=metadata_xml]", idp.metadata())
    page.click("button[name=action][value=save]")

    # The Owner creates the key; the page shows its certificate, never a private key.
    page.click("#sp-key-prepare")
    expect(page.locator("#sp-keys .sp-key-active")).to_contain_text("SHA-256")
    assert "PRIVATE KEY" not in page.content()
    # This IdP requires signed requests (Okta's "Signed Requests"): while signing is off, it refuses the test.
    idp.import_sp_metadata()
    page.click("#test-sso")
    expect(page.locator("body")).to_contain_text("The AuthnRequest signature is not valid.")
    assert idp.refused == ["the AuthnRequest is not signed"]
    idp.refused.clear()
    page.goto("/w/alpha/settings/sso/")
    page.check("input[name=sign_authn_requests]")
    page.check("input[name=require_encrypted_assertions]")
    page.click("#sp-options button")
    expect(page.locator(".msg.success")).to_contain_text("settings saved")

    # The IdP imports the SP metadata: the signed request verifies, the encrypted answer is accepted.
    idp.import_sp_metadata()
    _test_sso(page)

    # Rollover, step 1: a next key is published; the IdP imports it and may encrypt to it already.
    page.click("#sp-key-prepare")
    expect(page.locator("#sp-key-next-step")).to_be_visible()
    idp.import_sp_metadata()
    assert len(idp.encryption) == 2
    idp.encrypt_with = 1
    _test_sso(page)

    # Step 2: activate; the next key now signs (the IdP trusts both), the old one still decrypts.
    page.click("#sp-key-activate")
    expect(page.locator("#sp-key-previous-step")).to_be_visible()
    idp.encrypt_with = 0
    _test_sso(page)
    idp.import_sp_metadata()  # now publishes only the new key
    assert len(idp.encryption) == 1
    _test_sso(page)

    # Step 3: retire; the old key is gone.
    page.click("#sp-key-retire")
    expect(page.locator("#sp-key-previous-step")).to_have_count(0)
    assert idp.refused == []
    cfg = SamlSettings.objects.get(workspace=world.a)
    assert cfg.sign_authn_requests and cfg.require_encrypted_assertions
    assert sorted(SpKey.objects.filter(saml_settings=cfg).values_list("state", flat=True)) == ["active", "retired"]
