"""The workspace layout in a real browser: the navigation is reachable and no page scrolls sideways, on a
390 px phone as on a desktop; the current page is marked in the navigation."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from audit.models import AuditEvent
from tests.factories import TeamFactory

from .conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

OWNER_PAGES = [
    "/w/alpha/", "/w/alpha/members/", "/w/alpha/members/add/", "/w/alpha/settings/sso/",
    "/w/alpha/settings/provisioning/", "/w/alpha/settings/group-sync/", "/w/alpha/settings/role-mapping/",
    "/w/alpha/settings/two-factor/", "/w/alpha/settings/sessions/", "/w/alpha/settings/deprovisioning/",
    "/w/alpha/api-keys/", "/w/alpha/audit/", "/w/alpha/audit/sinks/", "/w/alpha/reviews/", "/account/2fa/",
]


def _overflow(page) -> int:
    """How far the page scrolls sideways (0: not at all). Tables scroll inside their own box, not the page."""
    return page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")


@pytest.mark.parametrize("width", [390, 1280])
def test_no_owner_page_scrolls_sideways_and_sign_out_is_reachable(page, world, password, width):
    page.set_viewport_size({"width": width, "height": 800})
    sign_in(page, "owner@alpha.test", password)
    for path in OWNER_PAGES:
        page.goto(path)
        assert _overflow(page) <= 0, f"{path} scrolls sideways at {width} px"
        sign_out = page.get_by_role("button", name="Sign out")
        assert sign_out.is_visible(), path
        sign_out.scroll_into_view_if_needed()
        box = sign_out.bounding_box()
        assert box and 0 <= box["x"] and box["x"] + box["width"] <= width, f"Sign out is off-screen on {path} at {width} px"


def test_the_navigation_works_on_a_phone_and_marks_the_current_page(page, world, password):
    page.set_viewport_size({"width": 390, "height": 800})
    sign_in(page, "owner@alpha.test", password)
    nav = page.get_by_role("navigation", name="Workspace")
    nav.get_by_role("link", name="Members", exact=True).click()
    expect(page.locator("h1")).to_have_text("Members")
    expect(nav.locator("a[aria-current=page]")).to_have_text("Members")
    nav.get_by_role("link", name="Audit log", exact=True).click()
    expect(page.locator("h1")).to_contain_text("Audit log")
    expect(nav.get_by_role("link", name="Two-factor")).to_have_count(1)


def test_a_member_sees_only_what_it_may_use(page, world, password):
    sign_in(page, "member@alpha.test", password)
    page.goto("/w/alpha/")
    nav = page.get_by_role("navigation", name="Workspace")
    expect(nav.get_by_role("link", name="Members", exact=True)).to_be_visible()
    expect(nav.get_by_role("link", name="SSO and SAML-only")).to_have_count(0)
    expect(nav.get_by_role("link", name="Audit log", exact=True)).to_have_count(0)
    expect(page.locator("#overview-status")).to_have_count(0)
    # Their own two-factor settings: one entry, in the workspace navigation.
    expect(page.get_by_role("link", name="Two-factor")).to_have_count(1)


@pytest.mark.parametrize("email", ["manager@alpha.test", "member@alpha.test", "collab@alpha.test", "auditor"])
def test_no_page_another_role_reaches_scrolls_sideways_on_a_phone(page, world, password, email):
    """The Owner's pages are above; here every page in the navigation of the other roles, and the detail pages."""
    if email == "auditor":  # a Member with the auditor permission
        world.member_a.is_auditor = True
        world.member_a.save(update_fields=["is_auditor"])
        email = "member@alpha.test"
    team = TeamFactory(workspace=world.a, name="Platform")
    page.set_viewport_size({"width": 390, "height": 800})
    sign_in(page, email, password)
    hrefs = page.eval_on_selector_all("nav[aria-label=Workspace] a", "els => els.map(a => a.getAttribute('href'))")
    paths = [*dict.fromkeys(h.split("#")[0] for h in hrefs), f"/w/alpha/teams/{team.pk}/",
             f"/w/alpha/members/{world.owner_a.pk}/", f"/w/alpha/members/{world.member_a.pk}/"]
    event = AuditEvent.objects.filter(workspace=world.a).order_by("-pk").first()
    if world.member_a.is_auditor and event:
        paths.append(f"/w/alpha/audit/{event.pk}/")
    assert len(paths) >= 5, paths
    for path in paths:
        page.goto(path)
        assert _overflow(page) <= 0, f"{path} scrolls sideways at 390 px for {email}"
        expect(page.get_by_role("button", name="Sign out")).to_be_visible()
