"""An Owner runs an access review in a real browser: start it for a team, mark a grant revoke, confirm, see the
outcome, and download the evidence."""

from __future__ import annotations

import csv
import io

import pytest
from playwright.sync_api import expect

from tests.factories import TeamFactory
from workspaces.models import TeamMembership

from .conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_owner_reviews_a_team_revokes_one_member_and_downloads_the_evidence(page, world, password):
    team = TeamFactory(workspace=world.a, name="core")
    TeamMembership.objects.create(team=team, membership=world.member_a)
    TeamMembership.objects.create(team=team, membership=world.manager_a)
    sign_in(page, "owner@alpha.test", password)
    page.get_by_role("link", name="Access reviews").click()
    page.fill("input[name=name]", "Q4 core")
    page.check("input[name=scope_kind][value=team]")
    page.select_option("select[name=team]", str(team.pk))
    page.click("text=Start review")
    expect(page.locator(".msg.success")).to_contain_text("Review started with 2 grants")

    page.locator("tr[data-principal='member@alpha.test'] input[value=revoke]").check()
    page.fill("tr[data-principal='member@alpha.test'] input[type=text]", "moved to data")
    page.click("text=Save decisions")
    expect(page.locator(".msg.success")).to_contain_text("1 grant still undecided")
    expect(page.locator("#complete-blocked")).to_be_visible()
    page.click("text=Keep all undecided on this page")
    page.click("button:has-text('Complete review')")
    expect(page.locator("main")).to_contain_text("1 revocation will be applied now")
    page.click("button:has-text('Complete review')")
    expect(page.locator(".msg.success")).to_contain_text("Review completed: 1 revoked, 1 kept")
    expect(page.locator("tr[data-principal='member@alpha.test'] .outcome")).to_contain_text("Revoked")
    assert list(TeamMembership.objects.filter(team=team).values_list("membership_id", flat=True)) == [world.manager_a.pk]

    with page.expect_download() as download:
        page.click("#export-csv")
    rows = list(csv.DictReader(io.StringIO(open(download.value.path(), encoding="utf-8").read())))
    assert {(r["principal_label"], r["decision"], r["outcome"], r["note"]) for r in rows} == {
        ("member@alpha.test", "revoke", "revoked", "moved to data"), ("manager@alpha.test", "keep", "kept", ""),
    }
