"""Every admin action of the member, team and repository pages has a command for automation."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from audit.models import AuditEvent
from workspaces.models import Membership, RepositoryGrant, Team


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_member_command_adds_changes_role_and_deactivates_with_audit(world):
    assert "Added new@alpha.test" in run("member", "alpha", "new@alpha.test", "--add", "--role", "manager")
    text = run("member", "alpha", "new@alpha.test", "--role", "collaborator", "--deactivate")
    assert "Collaborator" in text and "deactivated" in text
    member = Membership.objects.get(workspace=world.a, user__email="new@alpha.test")
    assert (member.role, member.is_active) == ("collaborator", False)
    actions = list(AuditEvent.objects.filter(target_id=str(member.pk)).order_by("seq").values_list("action", "actor_kind"))
    assert actions == [("member.created", "system"), ("member.role_changed", "system"), ("member.deactivated", "system")]


def test_member_command_refuses_to_demote_the_last_owner(world):
    with pytest.raises(CommandError, match="last active Owner"):
        run("member", "alpha", "owner@alpha.test", "--role", "member")


def test_member_command_does_not_reach_into_another_workspace(world):
    with pytest.raises(CommandError, match="not a member of alpha"):
        run("member", "alpha", "owner@bravo.test", "--deactivate")
    world.outsider_b.refresh_from_db()
    assert world.outsider_b.is_active


def test_team_command_creates_adds_and_renames(world):
    text = run("team", "alpha", "Ops", "--create", "--add", "member@alpha.test", "manager@alpha.test", "--rename", "SRE")
    assert "SRE" in text and "member@alpha.test" in text
    assert Team.objects.get(workspace=world.a, name="SRE").members.count() == 2


def test_repository_command_creates_and_grants(world):
    run("team", "alpha", "Ops", "--create")
    run("repository", "alpha", "prod", "--create", "--environment", "production",
        "--grant", "team:Ops=write", "--grant", "member:collab@alpha.test=read")
    grants = {(g.team.name if g.team else g.membership.email, g.permission) for g in RepositoryGrant.objects.all()}
    assert grants == {("Ops", "write"), ("collab@alpha.test", "read")}
    run("repository", "alpha", "prod", "--revoke", "member:collab@alpha.test")
    assert RepositoryGrant.objects.count() == 1


def test_member_remove_removes_the_membership_as_the_page_does_and_keeps_the_last_owner(world):
    assert "Removed member@alpha.test from alpha" in run("member", "alpha", "member@alpha.test", "--remove")
    assert not Membership.objects.filter(pk=world.member_a.pk).exists()
    assert AuditEvent.objects.filter(workspace=world.a, action="member.removed", target_label="member@alpha.test").exists()
    with pytest.raises(CommandError):
        run("member", "alpha", "owner@alpha.test", "--remove")
    assert Membership.objects.filter(pk=world.owner_a.pk).exists()
