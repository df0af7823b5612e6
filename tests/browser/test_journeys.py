"""One journey per role, in a real browser, through the real login page: what that role does in a day.

Owner: finds members by search and filter, changes a role, creates a team, reads the audit log filtered. Manager:
adds a member, deactivates a Member through the confirmation page, is refused the SSO settings. Member: sees the
roster it may see and its own two-factor page, no settings. Auditor: reads, filters and opens audit events, has
the CSV export, changes nothing. The Owner's journey runs again on a 390 px phone, through the navigation,
without the page scrolling sideways."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from audit.models import AuditEvent
from workspaces.models import Membership, Team

from .conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _no_sideways_scroll(page) -> None:
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"{page.url} scrolls sideways by {overflow} px"


def _go(page, name: str) -> None:
    """Follow a link of the workspace navigation, as a person would."""
    page.get_by_role("navigation", name="Workspace").get_by_role("link", name=name, exact=True).click()


@pytest.mark.parametrize("width", [1280, 390])
def test_an_owner_finds_members_changes_a_role_creates_a_team_and_reads_the_audit_log(page, world, password, width):
    page.set_viewport_size({"width": width, "height": 800})
    sign_in(page, "owner@alpha.test", password)
    expect(page).to_have_url(re.compile(r"/w/alpha/$"))
    _no_sideways_scroll(page)

    _go(page, "Members")
    expect(page.locator("h1")).to_have_text("Members")
    _no_sideways_scroll(page)
    page.fill("#member-filters input[name=q]", "manager@")
    page.click("#member-filters button[type=submit]")
    expect(page.locator("#members tbody tr[data-member]")).to_have_count(1)
    expect(page.locator("#members tbody tr[data-member]")).to_have_attribute("data-member", "manager@alpha.test")
    page.get_by_role("link", name="Clear", exact=True).click()
    page.select_option("#member-filters select[name=role]", "collaborator")
    page.click("#member-filters button[type=submit]")
    expect(page.locator("#members tbody tr[data-member]")).to_have_count(1)
    expect(page.locator("#members tbody tr[data-member]")).to_have_attribute("data-member", "collab@alpha.test")
    _no_sideways_scroll(page)

    # Promote the Collaborator to Member from its page.
    page.locator("#members tr[data-member='collab@alpha.test'] a").click()
    page.select_option("select[name=role]", "member")
    page.click("text=Save role")
    expect(page.locator(".msg.success")).to_contain_text("Role changed")
    expect(page.locator("#member-role")).to_have_text("Member")
    _no_sideways_scroll(page)
    assert Membership.objects.get(pk=world.collaborator_a.pk).role == "member"

    # A team, from the overview's Teams section.
    _go(page, "Teams")
    page.fill("#teams input[name=name]", "Platform")
    page.click("#teams button[type=submit]")
    expect(page.locator("h1")).to_contain_text("Platform")
    _no_sideways_scroll(page)
    assert Team.objects.filter(workspace=world.a, name="Platform").exists()

    # The audit log, filtered to role changes: the one just made.
    _go(page, "Audit log")
    expect(page.locator("h1")).to_contain_text("Audit log")
    page.fill("#audit-filters input[name=action]", "member.role_changed")
    page.click("#audit-filters button[type=submit]")
    expect(page.locator("tr.event")).to_have_count(1)
    expect(page.locator("tr.event")).to_contain_text("collab@alpha.test")
    _no_sideways_scroll(page)


def test_a_manager_adds_a_member_deactivates_one_after_confirming_and_cannot_reach_sso_settings(page, world, password):
    page.set_viewport_size({"width": 1280, "height": 800})
    sign_in(page, "manager@alpha.test", password)
    nav = page.get_by_role("navigation", name="Workspace")
    expect(nav.get_by_role("link", name="SSO and SAML-only")).to_have_count(0)

    _go(page, "Members")
    page.get_by_role("link", name="Add member").click()
    page.fill("input[name=email]", "newcomer@alpha.test")
    page.select_option("select[name=role]", "member")
    page.get_by_role("button", name="Add member").click()
    expect(page.locator(".msg.success")).to_be_visible()
    assert AuditEvent.objects.filter(workspace=world.a, actor_label="manager@alpha.test").exists()

    page.goto(f"/w/alpha/members/{world.member_a.pk}/")
    page.get_by_role("button", name="Deactivate").click()
    expect(page.locator("#confirm h1")).to_have_text("Deactivate member@alpha.test?")
    assert Membership.objects.get(pk=world.member_a.pk).is_active  # nothing changes before the confirmation
    page.click("#confirm-button")
    expect(page.locator(".msg.success")).to_be_visible()
    assert not Membership.objects.get(pk=world.member_a.pk).is_active

    response = page.goto("/w/alpha/settings/sso/")
    assert response is not None and response.status in (403, 404)


def test_a_member_sees_the_roster_it_may_see_its_own_two_factor_page_and_no_settings(page, world, password):
    page.set_viewport_size({"width": 1280, "height": 800})
    sign_in(page, "member@alpha.test", password)
    nav = page.get_by_role("navigation", name="Workspace")
    for settings_link in ("SSO and SAML-only", "Provisioning", "Audit log", "SIEM sinks"):
        expect(nav.get_by_role("link", name=settings_link)).to_have_count(0)

    _go(page, "Members")
    roster = page.locator("#members tbody tr[data-member]")
    expect(page.locator("#members tr[data-member='owner@alpha.test']")).to_have_count(1)
    expect(page.locator("#members tr[data-member='private@alpha.test']")).to_have_count(0)  # private to Managers up
    expect(page.get_by_role("link", name="Add member")).to_have_count(0)
    assert roster.count() >= 3

    _go(page, "Two-factor")
    expect(page).to_have_url(re.compile(r"/account/2fa/$"))
    expect(page.locator("h1")).to_contain_text("Two-factor")

    for path in ("/w/alpha/settings/sso/", "/w/alpha/settings/provisioning/", "/w/alpha/audit/", "/w/alpha/members/add/"):
        response = page.goto(path)
        assert response is not None and response.status in (403, 404), path


def test_an_auditor_reads_filters_and_opens_audit_events_and_can_change_nothing(page, world, password):
    world.member_a.is_auditor = True
    world.member_a.save(update_fields=["is_auditor"])
    page.set_viewport_size({"width": 1280, "height": 800})
    sign_in(page, "member@alpha.test", password)

    _go(page, "Audit log")
    expect(page.locator("h1")).to_contain_text("Audit log")
    expect(page.locator("#export-csv")).to_have_attribute("href", re.compile(r"/w/alpha/audit/export\.csv"))
    page.fill("#audit-filters input[name=actor]", "member@alpha.test")
    page.click("#audit-filters button[type=submit]")
    expect(page.locator("#export-csv")).to_have_attribute("href", re.compile(r"actor=member"))
    rows = page.locator("tr.event")
    expect(rows.first).to_contain_text("member@alpha.test")
    rows.first.locator("a.event-link").click()
    expect(page).to_have_url(re.compile(r"/w/alpha/audit/\d+/$"))
    expect(page.locator("main")).to_contain_text("member@alpha.test")

    # Reading is all: no settings, no adding, no changing another member.
    nav = page.get_by_role("navigation", name="Workspace")
    expect(nav.get_by_role("link", name="SSO and SAML-only")).to_have_count(0)
    page.goto(f"/w/alpha/members/{world.collaborator_a.pk}/")
    expect(page.get_by_role("button", name="Save role")).to_have_count(0)
    expect(page.get_by_role("button", name="Deactivate")).to_have_count(0)
    for path in ("/w/alpha/members/add/", "/w/alpha/settings/sso/", "/w/alpha/audit/sinks/"):
        response = page.goto(path)
        assert response is not None and response.status in (403, 404), path
