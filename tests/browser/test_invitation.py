"""In a real browser: workspace A invited Dana's existing account; she opens the emailed link, signs in with her
password and second factor through the normal login, and accepts."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.consent_helpers import DANA, dana_in_b, sent_token
from tests.factories import TEST_PASSWORD
from tests.workspaces.test_two_factor import code
from workspaces.models import Membership
from workspaces.services import actor_for_membership, membership_add

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_invited_existing_account_signs_in_with_its_second_factor_and_accepts(page, world):
    dana = dana_in_b(world)
    membership_add(workspace=world.a, email=DANA, actor=actor_for_membership(world.owner_a, "password"))
    link = f"/invitations/{sent_token(DANA)}/"

    page.goto(link)
    expect(page.locator("#sign-in-first")).to_contain_text(DANA)
    page.click("text=Sign in to accept")
    page.fill("input[name=email]", DANA)
    page.fill("input[name=password]", TEST_PASSWORD)
    page.click("button[type=submit]:has-text('Sign in')")
    expect(page).to_have_url(re.compile(r"/login/2fa/"))
    page.fill("input[name=code]", code(dana.user.totpdevice_set.get(), steps_ahead=1))
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(re.escape(link) + "$"))
    page.click("button:has-text('Accept and join Alpha Inc')")

    expect(page.locator(".msg").first).to_contain_text("You joined Alpha Inc")
    assert not Membership.objects.get(workspace=world.a, user=dana.user).consent_pending
