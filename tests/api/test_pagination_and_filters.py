"""Cursor pagination (stable, no duplicates or gaps), filters, inactive members and the 2FA flag."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.factories import MembershipFactory, TeamFactory
from workspaces.models import Membership, TeamMembership

from .conftest import ApiClient, all_pages, personal_key

pytestmark = pytest.mark.django_db

MEMBERS = "/api/v1/workspaces/alpha/members/"


def test_pages_follow_next_to_the_whole_roster_without_duplicates(world):
    MembershipFactory.create_batch(12, workspace=world.a)
    client = ApiClient(personal_key(world.owner_a))
    rows = all_pages(client, MEMBERS, page_size=5)
    assert len(rows) == len({r["id"] for r in rows}) == Membership.objects.filter(workspace=world.a).count()


def test_a_member_added_mid_sync_does_not_shift_pages(world):
    MembershipFactory.create_batch(6, workspace=world.a)
    client = ApiClient(personal_key(world.owner_a))
    first = client.get(MEMBERS, page_size=4).json()
    MembershipFactory(workspace=world.a)  # arrives while the connector is between pages
    second = client.client.get(first["next"], headers=client.headers).json()
    ids = [r["id"] for r in first["results"] + second["results"]]
    assert len(ids) == len(set(ids)) and ids == sorted(ids)


def test_garbled_cursor_is_400(world):
    assert ApiClient(personal_key(world.owner_a)).get(MEMBERS, cursor="not-a-cursor").status_code == 400


@pytest.mark.parametrize("size", ["0", "501", "x"])
def test_out_of_range_page_size_is_400(world, size):
    assert ApiClient(personal_key(world.owner_a)).get(MEMBERS, page_size=size).status_code == 400


def test_members_list_runs_a_fixed_number_of_queries_whatever_the_page_size(world):
    for team_no in range(3):
        team = TeamFactory(workspace=world.a)
        for m in MembershipFactory.create_batch(5, workspace=world.a):
            TeamMembership.objects.create(team=team, membership=m)
            TOTPDevice.objects.create(user=m.user, name="app", confirmed=team_no == 0)
    client = ApiClient(personal_key(world.owner_a))
    client.get(MEMBERS)  # last_used_at write happens on the first call
    with CaptureQueriesContext(connection) as small:
        client.get(MEMBERS, page_size=2)
    with CaptureQueriesContext(connection) as large:
        client.get(MEMBERS, page_size=100)
    assert len(small) == len(large)


def test_inactive_member_is_listed_as_inactive(world):
    Membership.objects.filter(pk=world.member_a.pk).update(is_active=False)
    rows = all_pages(ApiClient(personal_key(world.owner_a)), MEMBERS)
    assert {r["email"]: r["active"] for r in rows}["member@alpha.test"] is False


def test_active_filter_lists_only_deactivated_members(world):
    Membership.objects.filter(pk=world.member_a.pk).update(is_active=False)
    rows = all_pages(ApiClient(personal_key(world.owner_a)), MEMBERS, active="false")
    assert [r["email"] for r in rows] == ["member@alpha.test"]


def test_role_filter(world):
    rows = all_pages(ApiClient(personal_key(world.owner_a)), MEMBERS, role="collaborator")
    assert [r["email"] for r in rows] == ["collab@alpha.test"]


def test_email_filter_is_case_insensitive(world):
    rows = all_pages(ApiClient(personal_key(world.owner_a)), MEMBERS, email="MANAGER@alpha.TEST")
    assert [r["role"] for r in rows] == ["manager"]


def test_email_filter_never_finds_a_workspace_b_member(world):
    assert all_pages(ApiClient(personal_key(world.owner_a)), MEMBERS, email="owner@bravo.test") == []


def test_email_filter_does_not_reveal_a_private_member_to_a_member_key(world):
    assert all_pages(ApiClient(personal_key(world.member_a)), MEMBERS, email="private@alpha.test") == []


def test_team_filter_lists_the_teams_members(world):
    team = TeamFactory(workspace=world.a)
    TeamMembership.objects.create(team=team, membership=world.manager_a)
    rows = all_pages(ApiClient(personal_key(world.owner_a)), MEMBERS, team=team.pk)
    assert [r["email"] for r in rows] == ["manager@alpha.test"]


def test_team_filter_on_a_team_hidden_from_a_member_key_is_empty(world):
    team = TeamFactory(workspace=world.a)
    TeamMembership.objects.create(team=team, membership=world.manager_a)
    assert all_pages(ApiClient(personal_key(world.member_a)), MEMBERS, team=team.pk) == []


def test_invalid_role_filter_is_400(world):
    assert ApiClient(personal_key(world.owner_a)).get(MEMBERS, role="emperor").status_code == 400


def test_two_factor_enabled_reflects_a_confirmed_totp_device(world):
    TOTPDevice.objects.create(user=world.member_a.user, name="app", confirmed=True)
    TOTPDevice.objects.create(user=world.manager_a.user, name="app", confirmed=False)
    rows = {r["email"]: r["two_factor_enabled"] for r in all_pages(ApiClient(personal_key(world.owner_a)), MEMBERS)}
    assert rows["member@alpha.test"] is True
    assert rows["manager@alpha.test"] is False  # enrolment started, never confirmed
    assert world.member_a.user.two_factor_enabled is True


def test_member_row_has_the_connector_fields(world):
    row = ApiClient(personal_key(world.owner_a)).get(f"{MEMBERS}{world.private_member_a.pk}/").json()
    assert set(row) >= {"id", "email", "name", "role", "visibility", "two_factor_enabled", "active", "last_login", "teams"}
    assert (row["role"], row["visibility"], row["active"]) == ("member", "private", True)
