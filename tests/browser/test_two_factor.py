"""In a real browser: a workspace requires 2FA, a member enrols at login, then signs in with a recovery code."""

from __future__ import annotations

import re
from base64 import b32decode

import pytest
from django_otp.oath import totp
from playwright.sync_api import expect

from audit.models import AuditEvent
from workspaces.models import Workspace

from .conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_member_enrols_at_login_when_required_and_later_uses_a_recovery_code(page, world, password):
    Workspace.objects.filter(pk=world.a.pk).update(require_2fa=True)

    sign_in(page, "member@alpha.test", password)
    expect(page).to_have_url(re.compile(r"/login/2fa/$"))
    expect(page.locator(".qr svg")).to_be_visible()
    secret = page.locator("[data-testid=totp-secret]").inner_text().strip()
    code = f"{totp(b32decode(secret)):06d}"  # the authenticator app's job (RFC 6238, current time)
    page.fill("input[name=code]", code)
    page.click("button[type=submit]")

    codes = page.locator("[data-testid=recovery-codes]").inner_text().split()
    assert len(codes) == 10
    page.click("text=I have saved them, continue")
    expect(page).to_have_url(re.compile(r"/w/alpha/$"))

    page.click("button:has-text('Sign out')")
    sign_in(page, "member@alpha.test", password)
    expect(page).to_have_url(re.compile(r"/login/2fa/$"))
    page.fill("input[name=code]", codes[0])
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(r"/w/alpha/$"))
    expect(page.locator(".msg").first).to_contain_text("recovery code")

    actions = set(AuditEvent.objects.filter(workspace=world.a).values_list("action", flat=True))
    assert {"2fa.enabled", "2fa.recovery_code_used"} <= actions
