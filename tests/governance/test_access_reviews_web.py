"""Access reviews in the portal: start, decide, confirm completion, export; who may, and workspaces kept apart."""

from __future__ import annotations

import csv
import io

import pytest

from tests.conftest import login_client
from tests.factories import TeamFactory
from workspaces.models import AccessReview, TeamMembership

pytestmark = pytest.mark.django_db


def test_an_owner_runs_a_review_from_start_to_export(world):
    team = TeamFactory(workspace=world.a, name="core")
    TeamMembership.objects.create(team=team, membership=world.member_a)
    client = login_client(world.owner_a)
    assert b"No access reviews yet" in client.get("/w/alpha/reviews/").content
    response = client.post("/w/alpha/reviews/", {"name": "Q4", "scope_kind": "team", "team": team.pk}, follow=True)
    assert b"Review started with 1 grant" in response.content
    review = AccessReview.objects.get()
    item = review.items.get()
    page = client.get(f"/w/alpha/reviews/{review.pk}/").content.decode()
    assert 'id="complete-blocked"' in page and "member@alpha.test" in page
    response = client.post(f"/w/alpha/reviews/{review.pk}/", {"action": "save", "item": [item.pk],
                                                              f"decision-{item.pk}": "revoke",
                                                              f"note-{item.pk}": "moved"}, follow=True)
    assert b"Saved 1 decision. 0 grants still undecided: you can complete the review" in response.content
    ask = client.post(f"/w/alpha/reviews/{review.pk}/", {"action": "complete"})
    assert b"1 revocation will be applied now" in ask.content
    assert TeamMembership.objects.filter(team=team).exists()  # nothing happens before the confirmation
    done = client.post(f"/w/alpha/reviews/{review.pk}/", {"action": "complete", "confirmed": "yes"}, follow=True)
    assert b"Review completed: 1 revoked" in done.content and b'id="export-sha256"' in done.content
    assert not TeamMembership.objects.filter(team=team).exists()
    rows = list(csv.DictReader(io.StringIO(client.get(f"/w/alpha/reviews/{review.pk}/export.csv").content.decode())))
    assert [(r["entitlement"], r["principal_label"], r["decision"], r["outcome"], r["note"]) for r in rows] == [
        (f"team:{team.pk}", "member@alpha.test", "revoke", "revoked", "moved")]


def test_keep_all_undecided_marks_the_page(world):
    client = login_client(world.owner_a)
    client.post("/w/alpha/reviews/", {"name": "Q4", "scope_kind": "workspace"})
    review = AccessReview.objects.get()
    ids = list(review.items.values_list("pk", flat=True))
    client.post(f"/w/alpha/reviews/{review.pk}/", {"action": "keep_undecided", "item": ids})
    assert set(review.items.values_list("decision", flat=True)) == {"keep"}


def test_an_auditor_may_and_a_manager_may_not(world):
    world.member_a.is_auditor = True
    world.member_a.save()
    assert login_client(world.member_a).get("/w/alpha/reviews/").status_code == 200
    assert login_client(world.manager_a).get("/w/alpha/reviews/").status_code in (403, 404)
    assert b"Access reviews" not in login_client(world.manager_a).get("/w/alpha/").content


def test_another_workspaces_review_is_not_found(world):
    login_client(world.owner_a).post("/w/alpha/reviews/", {"name": "Q4", "scope_kind": "workspace"})
    review = AccessReview.objects.get()
    outsider = login_client(world.outsider_b)
    assert outsider.get(f"/w/bravo/reviews/{review.pk}/").status_code == 404
    assert outsider.get(f"/w/bravo/reviews/{review.pk}/export.json").status_code == 404


def test_a_start_without_a_team_says_what_to_choose(world):
    response = login_client(world.owner_a).post("/w/alpha/reviews/", {"name": "Q4", "scope_kind": "team"})
    assert response.status_code == 200 and b"Choose the team to review" in response.content
    assert not AccessReview.objects.exists()
