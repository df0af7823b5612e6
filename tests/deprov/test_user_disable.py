"""Support disables a global account: one revocation per workspace, each audited in its own workspace."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.test import Client

from audit.models import AuditEvent
from audit.record import Actor
from tests.conftest import login_client
from tests.factories import MembershipFactory
from workspaces import services
from workspaces.models import DeprovisionJob, User


@pytest.fixture
def person_in_both(world):
    MembershipFactory(workspace=world.b, user=world.member_a.user, role="member")
    return world.member_a.user


def test_disabling_an_account_writes_one_job_per_workspace(world, person_in_both, dead_broker):
    jobs = services.user_disable(user=person_in_both, actor=Actor.system("support"), reason="ticket 42")
    assert sorted(j.workspace.slug for j in jobs) == ["alpha", "bravo"]
    assert set(DeprovisionJob.objects.values_list("cause", flat=True)) == {"account_disabled"}
    assert not User.objects.get(pk=person_in_both.pk).is_active


def test_each_workspace_records_the_disable_in_its_own_log(world, person_in_both, dead_broker):
    services.user_disable(user=person_in_both, actor=Actor.system("support"), reason="ticket 42")
    for ws in (world.a, world.b):
        event = AuditEvent.objects.get(workspace=ws, action="member.account_disabled")
        assert event.details == {"reason": "ticket 42"}
    assert AuditEvent.objects.get(workspace=None, action="user.disabled").target_label == "member@alpha.test"


def test_the_revocations_run_and_are_audited_per_workspace(world, person_in_both, django_capture_on_commit_callbacks):
    login_client(world.member_a, world.a, world.b)
    with django_capture_on_commit_callbacks(execute=True):
        services.user_disable(user=person_in_both, actor=Actor.system("support"))
    for ws in (world.a, world.b):
        event = AuditEvent.objects.get(workspace=ws, action="member.credentials_revoked")
        assert event.details["sessions"] == 1


def test_a_disabled_account_is_refused_and_reenabling_does_not_revive_old_sessions(world, dead_broker):
    client = login_client(world.member_a)
    user = world.member_a.user
    services.user_disable(user=user, actor=Actor.system("support"))
    assert client.get("/w/alpha/").status_code == 302  # signed out
    services.user_enable(user=User.objects.get(pk=user.pk), actor=Actor.system("support"))
    assert client.get("/w/alpha/").status_code == 403


def test_other_members_of_the_workspace_are_untouched(world, person_in_both, dead_broker):
    services.user_disable(user=person_in_both, actor=Actor.system("support"))
    assert not DeprovisionJob.objects.exclude(user=person_in_both).exists()
    assert login_client(world.manager_a).get("/w/alpha/").status_code == 200


def test_disable_user_command(world, person_in_both, dead_broker):
    out = io.StringIO()
    call_command("disable_user", "MEMBER@alpha.test", "--reason", "left the company", stdout=out)
    assert "revocation queued in 2 workspace(s)" in out.getvalue()
    assert AuditEvent.objects.get(action="user.disabled").actor_label == "manage.py disable_user"


def test_admin_action_disables_the_account(world, dead_broker):
    staff = User.objects.create_superuser("support@gatehouse.test", "a-long-support-password")
    client = Client()
    client.force_login(staff, backend="workspaces.auth_backends.EmailBackend")
    response = client.post("/admin/workspaces/user/", {
        "action": "disable_accounts", "_selected_action": [world.member_a.user.pk],
    })
    assert response.status_code == 302
    assert not User.objects.get(pk=world.member_a.user.pk).is_active
    event = AuditEvent.objects.get(action="user.disabled")
    assert (event.actor_label, event.auth_method) == ("support@gatehouse.test", "django_admin")
    assert DeprovisionJob.objects.filter(user=world.member_a.user).count() == 1
