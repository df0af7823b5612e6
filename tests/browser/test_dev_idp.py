"""The demo's SSO in a real browser: the development IdP (DEBUG) answers Test SSO and a member's login, through its
"Sign in as:" page and the form it posts to the ACS (a button: no inline script under the strict CSP)."""

from __future__ import annotations

import importlib
import re
from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import clear_url_caches
from playwright.sync_api import expect

import config.urls

from .conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def dev_idp(world, settings, live_server, tmp_path):
    settings.DEBUG = True
    settings.DATA_DIR = tmp_path
    settings.PUBLIC_BASE_URL = live_server.url  # the SP's and the IdP's URLs as the browser reaches them
    importlib.reload(config.urls)
    clear_url_caches()
    call_command("dev_idp_configure", "alpha", stdout=StringIO())
    yield
    settings.DEBUG = False
    importlib.reload(config.urls)
    clear_url_caches()


def test_owner_tests_sso_and_a_member_signs_in_through_the_dev_idp(page, browser, live_server, world, password,
                                                                   dev_idp):
    sign_in(page, "owner@alpha.test", password)
    expect(page).to_have_url(re.compile(r"/w/alpha/$"))
    page.goto("/w/alpha/settings/sso/")
    page.click("#test-sso")
    expect(page).to_have_url(re.compile(r"/dev-idp/alpha/sso/"))
    expect(page.locator("h2")).to_have_text("Sign in as:")
    page.click("button[value='owner@alpha.test']")
    page.click("text=Continue to Gatehouse")
    expect(page).to_have_url(re.compile(r"/w/alpha/settings/sso/test/$"))
    expect(page.locator("#test-succeeded")).to_be_visible()

    member = browser.new_context(base_url=live_server.url).new_page()  # a private window: no Owner session
    member.goto("/saml/alpha/login/?next=/w/alpha/")
    member.click("button[value='member@alpha.test']")
    member.click("text=Continue to Gatehouse")
    expect(member).to_have_url(re.compile(r"/w/alpha/$"))
    expect(member.locator(".who")).to_have_text("member@alpha.test")
    member.context.close()
