"""An Owner enables SCIM, creates a bearer token, sees it once; after a reload only its prefix is left."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from scim.models import ScimCredential

from .conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

URL = "/w/alpha/settings/provisioning/"


def test_owner_enables_scim_creates_a_bearer_token_and_sees_it_only_once(page, world, password):
    sign_in(page, "owner@alpha.test", password)
    page.get_by_role("navigation", name="Workspace").get_by_role("link", name="Provisioning", exact=True).click()
    expect(page.locator("#scim-status")).to_have_text("off")

    page.click("#scim-toggle")
    expect(page.locator(".msg.success")).to_contain_text("SCIM provisioning is on")
    expect(page.locator("#scim-status")).to_have_text("on")
    expect(page.locator("#scim-base-url")).to_contain_text("/scim/v2/alpha/")

    page.fill("#create-credential input[name=name]", "Okta production")
    page.select_option("#create-credential select[name=kind]", "bearer")
    page.click("#create-credential button[type=submit]")
    secret = page.locator("[data-testid=new-secret]")
    expect(secret).to_contain_text("gs_")
    token = secret.inner_text().strip()
    credential = ScimCredential.objects.get(workspace=world.a)
    assert token.startswith(f"gs_{credential.key_id}_")

    page.goto(URL)
    expect(page.locator("[data-testid=new-secret]")).to_have_count(0)
    row = page.locator(f"#credentials tr[data-credential='{credential.pk}']")
    expect(row).to_contain_text("Okta production")
    expect(row.locator(".prefix")).to_have_text(f"gs_{credential.key_id}_…")
    expect(row.locator(".status")).to_have_text("live")
    assert token not in page.content()
