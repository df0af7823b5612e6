"""An Owner opens a member the IdP manages: the page says so and offers no role change; the Owner detaches the member
and then changes its role. A real browser against the live server; the member was created by SCIM over HTTP."""

from __future__ import annotations

import pytest
import requests
from playwright.sync_api import expect

from audit.models import AuditEvent
from tests.scim.conftest import SCIM_JSON, make_cred, okta_user

from .conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_owner_sees_why_a_managed_member_is_read_only_then_detaches_it(page, world, live_server, password):
    auth = make_cred(world.owner_a, "bearer").requests_auth
    created = requests.post(f"{live_server.url}/scim/v2/alpha/Users", json={**okta_user("ada@alpha.test"),
                            "role": "manager"}, headers={**auth, "Content-Type": SCIM_JSON}, timeout=30)
    assert created.status_code == 201, created.text
    uid = created.json()["id"]

    sign_in(page, "owner@alpha.test", password)
    page.goto(f"/w/alpha/members/{uid}/")
    expect(page.locator("#managed-by")).to_contain_text("Managed by your identity provider (SCIM)")
    expect(page.locator("#role-owned")).to_contain_text("detach")
    expect(page.locator("select[name=role]")).to_have_count(0)

    page.click("text=Detach from the identity provider")
    expect(page.locator("#confirm h1")).to_contain_text("Detach ada")  # the consequences first, then the action
    expect(page.locator("#confirm")).to_contain_text("The portal then owns their name, email, role")
    page.click("#confirm-button")
    expect(page.locator(".msg.success")).to_contain_text("Detached from the identity provider")
    expect(page.locator("#detached")).to_be_visible()
    page.select_option("select[name=role]", "member")
    page.click("text=Save role")
    expect(page.locator("#member-role")).to_have_text("Member")
    assert AuditEvent.objects.filter(workspace=world.a, action="member.detached", target_id=str(uid)).count() == 1
