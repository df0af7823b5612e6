"""An Owner signs in through the real login page, changes a member's role, and sees it and its audit event."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from audit.models import AuditEvent

from .conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_owner_changes_a_members_role_and_sees_the_audit_event(page, world, password):
    sign_in(page, "owner@alpha.test", password)
    expect(page).to_have_url(re.compile(r"/w/alpha/$"))
    expect(page.locator("#members")).to_contain_text("member@alpha.test")

    page.click("#members tr[data-member='member@alpha.test'] a")
    page.select_option("select[name=role]", "manager")
    page.click("text=Save role")

    expect(page.locator(".msg.success")).to_contain_text("Role changed")
    expect(page.locator("#member-role")).to_have_text("Manager")
    event_row = page.locator("tr.event[data-action='member.role_changed']").first
    expect(event_row).to_contain_text("owner@alpha.test")
    change = event_row.locator("table.changes tbody tr")
    expect(change.locator("td")).to_have_text(["role", "member", "manager"])

    page.goto("/w/alpha/")
    expect(page.locator("#members tr[data-member='member@alpha.test'] .role")).to_have_text("Manager")
    assert AuditEvent.objects.filter(workspace=world.a, action="member.role_changed", auth_method="password").count() == 1


def test_last_owner_cannot_demote_themselves_and_the_page_says_why(page, world, password):
    sign_in(page, "owner@alpha.test", password)
    page.goto(f"/w/alpha/members/{world.owner_a.pk}/")
    page.select_option("select[name=role]", "member")
    page.click("text=Save role")
    expect(page.locator(".field-error, .error").first).to_contain_text("last active Owner")
    world.owner_a.refresh_from_db()
    assert world.owner_a.role == "owner"
