"""Per-workspace sign-in lifetime and "sign everyone out" (Owners; page, command and the grant check)."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from audit.models import AuditEvent
from tests.conftest import login_client
from workspaces.access import grant_problem
from workspaces.exceptions import ServiceError
from workspaces.services import (
    actor_for_membership,
    workspace_set_session_max_age,
    workspace_sign_everyone_out,
)

URL = "/w/alpha/settings/sessions/"


def _grant(at: float, method: str = "password") -> dict:
    return {"method": method, "at": at, "exp": None, "mfa": False}


class TestTheGrantCheck:
    """Each rule alone, on the layer itself (the page would refuse for other reasons first)."""

    def test_a_grant_older_than_the_workspaces_lifetime_no_longer_opens_it(self, world):
        world.member_a.created_at = timezone.now() - timedelta(days=30)
        world.a.session_max_age = 3600
        assert grant_problem(_grant(time.time() - 3590), world.a, world.member_a) == ""
        assert "expired" in grant_problem(_grant(time.time() - 3601), world.a, world.member_a)

    def test_without_a_lifetime_of_its_own_an_old_grant_still_opens_the_workspace(self, world):
        world.member_a.created_at = timezone.now() - timedelta(days=30)
        assert grant_problem(_grant(time.time() - 10 * 86400), world.a, world.member_a) == ""

    def test_a_grant_from_before_sign_everyone_out_no_longer_opens_it(self, world):
        world.member_a.created_at = timezone.now() - timedelta(days=30)
        world.a.sessions_valid_after = timezone.now()
        assert "signed everyone out" in grant_problem(_grant(time.time() - 5), world.a, world.member_a)
        assert grant_problem(_grant(time.time() + 1), world.a, world.member_a) == ""

    def test_the_refusals_say_what_happened(self, world):
        world.member_a.created_at = timezone.now() - timedelta(days=30)
        world.a.sessions_valid_after = timezone.now()
        assert grant_problem(_grant(time.time() - 5), world.a, world.member_a) == (
            "An Owner signed everyone out of this workspace. Sign in again."
        )
        world.a.sessions_valid_after = None
        world.a.session_max_age = 3600
        assert grant_problem(_grant(time.time() - 7200), world.a, world.member_a) == (
            "Your sign-in for this workspace has expired (its Owners limit how long a sign-in lasts)."
        )

    def test_a_grant_issued_the_moment_everyone_was_signed_out_still_opens(self, world):
        world.member_a.created_at = timezone.now() - timedelta(days=30)
        world.a.sessions_valid_after = timezone.now()
        assert grant_problem(_grant(world.a.sessions_valid_after.timestamp()), world.a, world.member_a) == ""

    def test_a_grant_ends_exactly_when_its_lifetime_is_up(self, world, monkeypatch):
        world.member_a.created_at = timezone.now() - timedelta(days=30)
        world.a.session_max_age = 3600
        now = time.time()
        monkeypatch.setattr("workspaces.access.time.time", lambda: now)
        assert grant_problem(_grant(now - 3600), world.a, world.member_a) != ""
        assert grant_problem(_grant(now - 3599), world.a, world.member_a) == ""

    def test_a_grant_without_an_issue_time_is_refused_by_either_rule(self, world):
        world.member_a.created_at = timezone.now() - timedelta(days=30)
        grant = {"method": "password", "exp": None, "mfa": False}
        world.a.sessions_valid_after = timezone.now()
        assert "signed everyone out" in grant_problem(grant, world.a, world.member_a)
        world.a.sessions_valid_after = None
        world.a.session_max_age = 3600
        assert "expired" in grant_problem(grant, world.a, world.member_a)

    def test_saml_grants_are_held_to_both_rules_too(self, world):
        world.a.sessions_valid_after = timezone.now()
        assert grant_problem(_grant(time.time() - 5, "saml"), world.a, world.member_a) != ""


class TestSignEveryoneOut:
    def test_everyone_else_signs_in_again_and_other_workspaces_keep_their_sign_ins(self, world):
        from tests.factories import MembershipFactory

        also_in_b = MembershipFactory(workspace=world.b, user=world.member_a.user)
        member = login_client(world.member_a, world.a, world.b)
        owner = login_client(world.owner_a)
        response = owner.post(URL, {"action": "sign_everyone_out", "confirm": "alpha"})
        assert response.status_code == 302
        assert owner.get("/w/alpha/").status_code == 200  # the Owner who asked keeps their session
        assert member.get("/w/alpha/").status_code == 403
        assert member.get(f"/w/{also_in_b.workspace.slug}/").status_code == 200
        event = AuditEvent.objects.get(action="workspace.signed_everyone_out")
        assert event.workspace == world.a and event.actor_label == "owner@alpha.test"

    def test_it_needs_the_slug_typed_to_confirm(self, world):
        member = login_client(world.member_a)
        login_client(world.owner_a).post(URL, {"action": "sign_everyone_out", "confirm": "yes"})
        assert member.get("/w/alpha/").status_code == 200
        assert not AuditEvent.objects.filter(action="workspace.signed_everyone_out").exists()

    def test_only_owners_reach_the_page(self, world):
        assert login_client(world.manager_a).get(URL).status_code == 403
        assert login_client(world.owner_a).get(URL).status_code == 200

    def test_a_manager_cannot_use_the_service(self, world):
        with pytest.raises(ServiceError):
            workspace_sign_everyone_out(workspace=world.a, actor=actor_for_membership(world.manager_a, "password"))


class TestLifetime:
    def test_an_owner_sets_the_lifetime_and_older_sign_ins_end(self, world):
        member = login_client(world.member_a)
        session = member.session
        grants = session["gatehouse_grants"]
        grants[str(world.a.pk)]["at"] = time.time() - 2 * 3600
        session["gatehouse_grants"] = grants
        session.save()
        owner = login_client(world.owner_a)
        assert owner.post(URL, {"action": "lifetime", "hours": "1"}).status_code == 302
        world.a.refresh_from_db()
        assert world.a.session_max_age == 3600
        assert member.get("/w/alpha/").status_code == 403
        event = AuditEvent.objects.get(action="workspace.session_lifetime_changed")
        assert event.details == {"before_seconds": None, "after_seconds": 3600}

    def test_out_of_range_lifetimes_are_refused_with_the_bounds(self, world):
        actor = actor_for_membership(world.owner_a, "password")
        for seconds in (60, 31 * 86400):
            with pytest.raises(ServiceError, match="between 15 minutes and 30 days"):
                workspace_set_session_max_age(workspace=world.a, max_age=seconds, actor=actor)
        body = login_client(world.owner_a).post(URL, {"action": "lifetime", "hours": "0"}).content.decode()
        assert "greater than or equal to 1" in body
        world.a.refresh_from_db()
        assert world.a.session_max_age is None

    def test_setting_the_same_lifetime_again_records_nothing(self, world):
        actor = actor_for_membership(world.owner_a, "password")
        workspace_set_session_max_age(workspace=world.a, max_age=7200, actor=actor)
        workspace_set_session_max_age(workspace=world.a, max_age=7200, actor=actor)
        assert AuditEvent.objects.filter(action="workspace.session_lifetime_changed").count() == 1


class TestCommand:
    def test_the_command_sets_the_lifetime_and_signs_everyone_out(self, world, capsys):
        call_command("workspace_sessions", "alpha", "--max-age-hours", "8", "--sign-everyone-out")
        world.a.refresh_from_db()
        assert world.a.session_max_age == 8 * 3600 and world.a.sessions_valid_after is not None
        out = capsys.readouterr().out
        assert "Everyone was signed out of alpha" in out and "at most 8 hours" in out
        call_command("workspace_sessions", "alpha", "--default-max-age")
        world.a.refresh_from_db()
        assert world.a.session_max_age is None

    def test_the_command_explains_a_refused_value(self, world):
        with pytest.raises(CommandError, match="between 15 minutes and 30 days"):
            call_command("workspace_sessions", "alpha", "--max-age-hours", "1000")
