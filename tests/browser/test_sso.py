"""The whole SSO story in a real browser against a tiny test IdP on loopback.

An Owner pastes the IdP's metadata, maps a group to a new team, runs Test SSO and enforces SAML-only.
Then a member's password login is refused, and "Log in with SSO" takes them through the IdP back to the
page they first asked for, with their teams updated from the asserted groups.
"""

from __future__ import annotations

import base64
import html
import re
import threading
import zlib
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest
from django.utils import timezone
from lxml import etree
from playwright.sync_api import expect

from audit.models import AuditEvent
from tests.saml.idp import build_response, idp_metadata, make_key
from workspaces.models import TeamMembership

from .conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args):  # keep the test output readable
        pass


class LoopbackIdp:
    """Serves its metadata, and answers an AuthnRequest with an auto-submitting form carrying a signed response."""

    def __init__(self) -> None:
        self.key = make_key("loopback-idp")
        self.user = ("", ())
        self.server = make_server("127.0.0.1", 0, self.app, handler_class=_Quiet)
        self.base = f"http://127.0.0.1:{self.server.server_port}"
        self.entity_id = f"{self.base}/entity"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def metadata(self) -> str:
        return idp_metadata(self.entity_id, f"{self.base}/sso", self.key)

    def app(self, environ, start_response):
        if environ["PATH_INFO"] == "/metadata":
            start_response("200 OK", [("Content-Type", "application/samlmetadata+xml")])
            return [self.metadata().encode()]
        query = parse_qs(environ.get("QUERY_STRING", ""))
        request = etree.fromstring(zlib.decompress(base64.b64decode(query["SAMLRequest"][0]), -15))
        acs = request.get("AssertionConsumerServiceURL")
        sp_entity = request.find("{urn:oasis:names:tc:SAML:2.0:assertion}Issuer").text
        email, groups = self.user
        saml_response = build_response(
            sp_entity_id=sp_entity, acs_url=acs, idp_entity_id=self.entity_id, key=self.key,
            name_id=email, in_response_to=request.get("ID"), groups=groups,
        )
        relay = query.get("RelayState", [""])[0]
        body = (
            f'<html><body onload="document.forms[0].submit()"><form method="post" action="{html.escape(acs)}">'
            f'<input type="hidden" name="SAMLResponse" value="{saml_response}">'
            f'<input type="hidden" name="RelayState" value="{html.escape(relay)}"></form></body></html>'
        )
        start_response("200 OK", [("Content-Type", "text/html")])
        return [body.encode()]

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def idp():
    with LoopbackIdp() as server:
        yield server


def test_owner_sets_up_tests_and_enforces_sso_then_members_get_in_only_through_it(
    page, browser, live_server, settings, world, password, idp, dns
):
    settings.PUBLIC_BASE_URL = live_server.url  # the SP's entity ID and ACS URL as the browser reaches them

    # The Owner pastes the IdP metadata.
    sign_in(page, "owner@alpha.test", password)
    expect(page).to_have_url(re.compile(r"/w/alpha/$"))
    page.goto("/w/alpha/settings/sso/")
    page.fill("textarea[name=metadata_xml]", idp.metadata())
    page.click("button[name=action][value=save]")
    expect(page.locator(".msg.success")).to_contain_text("SSO settings saved")
    expect(page.locator("#idp-entity-id")).to_have_text(idp.entity_id)
    expect(page.locator("#acs-url")).to_have_text(f"{live_server.url}/saml/alpha/acs/")

    # Claims alpha.test and proves it: the record the page shows goes into DNS, then Verify now.
    page.click("text=Claim and verify domains")
    page.fill("input[name=domain]", "alpha.test")
    page.click("button:has-text('Claim domain')")
    name = page.locator("code[id^=record-name-]").inner_text()
    value = page.locator("code[id^=record-value-]").inner_text()
    assert name == "_gatehouse-challenge.alpha.test"
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    copy = page.locator("button[data-copy^=record-value-]")
    copy.click()  # static/js/copy.js (the CSP allows no inline script)
    expect(copy).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == value
    dns.set_txt(name, value)
    page.click("button:has-text('Verify now')")
    expect(page.locator(".msg.success")).to_contain_text("alpha.test is verified")

    # Maps the IdP group "eng" to a team created by the mapping, and turns group sync on.
    page.goto("/w/alpha/settings/group-sync/")
    page.fill("input[name=idp_group]", "eng")
    page.fill("input[name=new_team_name]", "Engineering")
    page.click("text=Add mapping")
    expect(page.locator("#mappings tr[data-group='eng']")).to_contain_text("Engineering")
    page.click("#toggle-group-sync")
    expect(page.locator("#group-sync-state")).to_have_text("on")

    # Runs Test SSO (the IdP asserts the Owner), then enforces SAML-only and receives recovery codes.
    idp.user = ("owner@alpha.test", ())
    page.goto("/w/alpha/settings/sso/")
    page.click("#test-sso")
    expect(page).to_have_url(re.compile(r"/w/alpha/settings/sso/test/$"))  # the admin's result page
    expect(page.locator("#test-succeeded")).to_contain_text("The identity provider signed you in")
    expect(page.locator("#test-email")).to_have_text("owner@alpha.test")
    page.goto("/w/alpha/settings/sso/")
    expect(page.locator("#last-test")).to_contain_text("owner@alpha.test")
    page.click("#enforce")
    # The codes come first, with copy and download; enforcement waits for "I have stored them".
    codes = page.locator("#recovery-codes-text").inner_text().split()
    assert len(codes) == 8
    with page.expect_download() as download:
        page.click("button[data-download=recovery-codes-text]")
    assert download.value.suggested_filename == "gatehouse-alpha-recovery-codes.txt"
    assert open(download.value.path()).read().split() == codes
    page.check("#codes-stored")
    page.click("#enforce-confirm")
    # The Owner enforced from a password session, as the step said: it ends, and SSO is the way back.
    expect(page.locator("main")).to_contain_text("requires single sign-on")
    world.a.refresh_from_db()
    assert world.a.saml_only

    # A member's password login is now refused for the workspace.
    context = browser.new_context(base_url=live_server.url)
    member = context.new_page()
    member.set_default_timeout(15_000)
    sign_in(member, "member@alpha.test", password)
    expect(member.locator(".error")).to_contain_text("requires single sign-on")

    # SSO works and lands on the page first asked for, with teams from the asserted groups.
    idp.user = ("member@alpha.test", ("eng", "unmapped"))
    member.goto("/w/alpha/api-keys/")
    expect(member).to_have_url(re.compile(r"/login/\?next="))
    member.fill("input[name=email]", "member@alpha.test")
    member.click("#sso-login")
    expect(member).to_have_url(f"{live_server.url}/w/alpha/api-keys/")
    member.goto("/w/alpha/")
    expect(member.locator("text=Engineering")).to_be_visible()
    context.close()

    assert TeamMembership.objects.filter(membership=world.member_a, team__name="Engineering", source="saml").exists()
    assert AuditEvent.objects.filter(workspace=world.a, action="sso.login_succeeded", actor_label="member@alpha.test").exists()
    assert AuditEvent.objects.filter(workspace=world.a, action="sso.enforcement_changed").exists()


def test_an_idp_change_is_staged_until_tested_and_break_glass_gets_an_owner_in(
    page, browser, live_server, settings, world, password, idp
):
    """The rest of the SSO journey, on an enforced workspace: the Owner signs in through SSO, pastes another IdP's
    metadata (previewed, then staged: members keep signing in through the live IdP), its Test SSO makes it live;
    and when the IdP is down, an Owner's recovery code opens the workspace, loudly."""
    from saml import services as saml_services
    from saml.models import SamlSettings
    from tests.factories import verified_domain
    from workspaces.services import actor_for_membership

    settings.PUBLIC_BASE_URL = live_server.url
    owner_actor = actor_for_membership(world.owner_a, "saml")
    cfg = saml_services.saml_settings_save(workspace=world.a, actor=owner_actor, metadata_xml=idp.metadata())
    verified_domain(world.a, "alpha.test")
    SamlSettings.objects.filter(pk=cfg.pk).update(last_test_succeeded_at=timezone.now(), last_test_by=world.owner_a.user)
    codes = saml_services.saml_only_set(workspace=world.a, actor=owner_actor, enabled=True)

    # The Owner signs in through the live IdP and stages a new one, previewed first.
    idp.user = ("owner@alpha.test", ())
    page.goto("/login/")
    page.fill("input[name=email]", "owner@alpha.test")
    page.click("#sso-login")
    expect(page).to_have_url(re.compile(r"/w/alpha/$"))
    with LoopbackIdp() as new_idp:
        new_idp.user = ("owner@alpha.test", ())
        page.goto("/w/alpha/settings/sso/")
        page.fill("textarea[name=metadata_xml]", new_idp.metadata())
        page.click("#preview-metadata")
        expect(page.locator("#preview-entity-id")).to_have_text(new_idp.entity_id)
        expect(page.locator("#preview-staged")).to_be_visible()
        page.click("button[name=action][value=save]")
        expect(page.locator("#pending-idp")).to_contain_text(new_idp.entity_id)

        # Meanwhile a member still signs in through the live IdP.
        member_context = browser.new_context(base_url=live_server.url)
        member = member_context.new_page()
        idp.user = ("member@alpha.test", ())
        member.goto("/login/")
        member.fill("input[name=email]", "member@alpha.test")
        member.click("#sso-login")
        expect(member).to_have_url(re.compile(r"/w/alpha/$"))
        member_context.close()

        # Test SSO goes to the staged IdP; its answer makes it live.
        page.click("#test-sso")
        expect(page.locator("#test-succeeded")).to_contain_text("the staged identity provider is now live")
        assert SamlSettings.objects.get(workspace=world.a).idp_entity_id == new_idp.entity_id

    # The new IdP is down now: an Owner gets in with a recovery code, and everyone sees that it happened.
    rescue_context = browser.new_context(base_url=live_server.url)
    rescue = rescue_context.new_page()
    rescue.goto("/login/")
    expect(rescue.locator("#break-glass-hint")).to_contain_text("/saml/<workspace>/break-glass/")
    rescue.goto("/saml/alpha/break-glass/")
    rescue.fill("input[name=email]", "owner@alpha.test")
    rescue.fill("input[name=password]", password)
    rescue.fill("input[name=code]", codes[0])
    rescue.click("text=Use recovery code")
    expect(rescue).to_have_url(re.compile(r"/w/alpha/"))
    expect(rescue.locator("#break-glass-notice")).to_contain_text("owner@alpha.test")
    rescue_context.close()
    assert AuditEvent.objects.filter(workspace=world.a, action="sso.break_glass_used").count() == 1
