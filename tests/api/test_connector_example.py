"""examples/connector_sync.py against the live server: its roster summary matches the database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.factories import MembershipFactory, TeamFactory
from workspaces.models import Membership, TeamMembership

from .conftest import personal_key, service_key

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "connector_sync.py"


def run(base_url: str, *args: str, key: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "GATEHOUSE_API_KEY"}
    if key:
        env["GATEHOUSE_API_KEY"] = key
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--base-url", base_url, *args], capture_output=True, text=True, timeout=60, env=env
    )


def expected_roster(workspace) -> list[str]:
    lines = []
    for m in Membership.objects.filter(workspace=workspace).select_related("user"):
        teams = ",".join(sorted(m.teams.values_list("name", flat=True), key=str.lower)) or "-"
        lines.append(
            f"MEMBER {m.user.email} role={m.role} status={'active' if m.is_active else 'disabled'} "
            f"2fa={'yes' if m.user.two_factor_enabled else 'no'} visibility={m.visibility} teams={teams}"
        )
    return sorted(lines, key=str.lower)


@pytest.fixture
def roster(world):
    MembershipFactory.create_batch(7, workspace=world.a)  # with page size 3 the sync needs several pages
    core = TeamFactory(workspace=world.a, name="core")
    for m in (world.member_a, world.private_member_a):
        TeamMembership.objects.create(team=core, membership=m)
    Membership.objects.filter(pk=world.collaborator_a.pk).update(is_active=False)
    TOTPDevice.objects.create(user=world.manager_a.user, name="app", confirmed=True)
    return world


@pytest.mark.django_db(transaction=True)
def test_connector_prints_the_whole_roster_of_an_owner_key(roster, live_server):
    done = run(live_server.url, "--workspace", "alpha", "--page-size", "3", key=personal_key(roster.owner_a))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "Workspace: Alpha Inc (alpha)"
    assert lines[2] == "Members: 12 (11 active, 1 disabled, 1 with 2FA)"
    assert sorted((ln for ln in lines if ln.startswith("MEMBER ")), key=str.lower) == expected_roster(roster.a)
    assert "TEAM core members=2 member@alpha.test,private@alpha.test" in lines


@pytest.mark.django_db(transaction=True)
def test_connector_with_a_service_key_passed_as_argument_sees_the_same_roster(roster, live_server):
    key = service_key(roster.a, ["members:read", "teams:read"])
    done = run(live_server.url, "--workspace", "alpha", "--key", key)
    assert done.returncode == 0, done.stderr
    assert sorted((ln for ln in done.stdout.splitlines() if ln.startswith("MEMBER ")), key=str.lower) == expected_roster(roster.a)


@pytest.mark.django_db(transaction=True)
def test_connector_with_workspace_a_key_on_workspace_b_fails_without_data(roster, live_server):
    done = run(live_server.url, "--workspace", "bravo", key=personal_key(roster.owner_a))
    assert done.returncode == 1
    assert "401" in done.stderr and "owner@bravo.test" not in done.stdout
