"""In a SAML-only workspace, a member signs in through the IdP in a real browser, creates a personal API key, and the
API keys page shows it as personal and authorised by that sign-in; the key works at once."""

from __future__ import annotations

import re

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from saml import services
from saml.models import SamlSettings
from tests.api.conftest import ApiClient
from tests.factories import verified_domain
from workspaces.services import actor_for_membership

from .test_sso import idp  # noqa: F401  (the loopback IdP fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_member_signed_in_through_sso_sees_their_new_key_as_personal_and_authorised(
    world, browser, live_server, settings, idp  # noqa: F811
):
    settings.PUBLIC_BASE_URL = live_server.url  # the SP's entity ID and ACS URL as the browser reaches them
    owner = actor_for_membership(world.owner_a, "saml")
    cfg = services.saml_settings_save(workspace=world.a, actor=owner, metadata_xml=idp.metadata(),
                                      email_domains=["alpha.test"])
    verified_domain(world.a, "alpha.test")  # /login/ sends alpha.test people to SSO only once the domain is proven
    SamlSettings.objects.filter(pk=cfg.pk).update(last_test_succeeded_at=timezone.now(), last_test_by=world.owner_a.user)
    services.saml_only_set(workspace=world.a, actor=owner, enabled=True)

    context = browser.new_context(base_url=live_server.url)
    member = context.new_page()
    member.set_default_timeout(15_000)
    idp.user = ("member@alpha.test", ())
    member.goto("/w/alpha/api-keys/")
    expect(member).to_have_url(re.compile(r"/login/\?next="))
    member.fill("input[name=email]", "member@alpha.test")
    member.click("#sso-login")
    expect(member).to_have_url(f"{live_server.url}/w/alpha/api-keys/")

    member.fill("input[name=name]", "laptop")
    member.click("button:has-text('Create key')")
    plain = member.locator("[data-testid=new-key]").inner_text().strip()
    expect(member.locator("[data-testid=key-kind]")).to_have_text("personal (acts as member@alpha.test)")
    expect(member.locator("[data-testid=key-sso]")).to_contain_text("authorised until")
    expect(member.locator("#sso-keys-hint")).to_contain_text("requires single sign-on")
    context.close()

    body = ApiClient(plain).get("/api/v1/workspaces/alpha/").json()
    assert body["key"]["kind"] == "personal" and body["key"]["sso_authorised_until"] is not None
