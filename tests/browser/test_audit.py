"""An auditor (a Member with the auditor permission) filters the log, opens an event, exports CSV; a Member without it is refused."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from playwright.sync_api import expect

from audit.models import AuditEvent
from workspaces.services import actor_for_membership, membership_change_role, team_create

from .conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def audited_world(world):
    world.member_a.is_auditor = True
    world.member_a.save()
    owner, manager = actor_for_membership(world.owner_a, "password"), actor_for_membership(world.manager_a, "saml")
    with transaction.atomic():
        membership_change_role(membership=world.private_member_a, role="collaborator", actor=owner)
    with transaction.atomic():
        team_create(workspace=world.a, name="Platform", actor=manager)
    return world


def test_an_auditor_filters_by_actor_and_date_opens_an_event_and_exports_csv(page, audited_world, password):
    sign_in(page, "member@alpha.test", password)
    expect(page).to_have_url(re.compile(r"/w/alpha/$"))
    page.click("nav >> text=Audit log")
    expect(page).to_have_url(re.compile(r"/w/alpha/audit/$"))
    expect(page.locator("tr.event")).to_have_count(3)  # role change, team, and this sign-in

    today = timezone.now().astimezone(UTC).date()
    page.fill("input[name=actor]", "owner@alpha.test")
    page.fill("input[name=from]", (today - timedelta(days=1)).isoformat())
    page.fill("input[name=to]", today.isoformat())
    page.click("#audit-filters button[type=submit]")
    expect(page.locator("tr.event")).to_have_count(1)
    row = page.locator("tr.event[data-action='member.role_changed']")
    expect(row).to_contain_text("owner@alpha.test")

    # The same filters on a past window find nothing.
    page.fill("input[name=from]", "2020-01-01")
    page.fill("input[name=to]", "2020-01-31")
    page.click("#audit-filters button[type=submit]")
    expect(page.locator("tr.event")).to_have_count(0)
    page.fill("input[name=from]", (today - timedelta(days=1)).isoformat())
    page.fill("input[name=to]", today.isoformat())
    page.click("#audit-filters button[type=submit]")

    page.locator("tr.event[data-action='member.role_changed'] a.event-link").click()
    expect(page.locator("#event-action")).to_have_text("member.role_changed")
    expect(page.locator("#event-changes")).to_contain_text("member")
    expect(page.locator("#event-changes")).to_contain_text("collaborator")
    expect(page.locator("#event-chain")).to_contain_text("intact")
    page.go_back()

    with page.expect_download() as download_info:
        page.click("#export-csv")
    download = download_info.value
    assert download.suggested_filename.startswith("audit-alpha-") and download.suggested_filename.endswith(".csv")
    rows = list(csv.DictReader(io.StringIO(open(download.path(), encoding="utf-8").read())))
    assert [r["action"] for r in rows] == ["member.role_changed"]
    assert rows[0]["actor_label"] == "owner@alpha.test"
    exported = AuditEvent.objects.get(action="audit.exported")
    assert exported.actor_label == "member@alpha.test"
    assert exported.details["filters"]["actor"] == "owner@alpha.test"
    assert datetime.fromisoformat(rows[0]["created_at"]).date() == today


def test_a_member_without_the_auditor_permission_is_refused(page, audited_world, password):
    sign_in(page, "private@alpha.test", password)  # a Member (now Collaborator) who is not an auditor
    expect(page).to_have_url(re.compile(r"/w/alpha/$"))
    expect(page.get_by_role("navigation", name="Workspace")).not_to_contain_text("Audit log")
    response = page.goto("/w/alpha/audit/")
    assert response.status == 403
    expect(page.locator("h1")).to_have_text("Not allowed")
    response = page.goto("/w/alpha/audit/export.csv")
    assert response.status == 403
    assert not AuditEvent.objects.filter(action="audit.exported").exists()
