"""A job that keeps failing is retried with backoff, then marked failed and shown to Owners: never dropped."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.test import override_settings
from django.utils import timezone

from audit.models import AuditEvent
from audit.record import Actor
from tests.conftest import login_client
from workspaces import services
from workspaces.deprovisioning import revoke
from workspaces.models import DeprovisionJob, DeprovisionStatus
from workspaces.services import actor_for_membership

from .harness import run_job

SYSTEM = Actor.system("deprovisioning")


@pytest.fixture
def broken_api_key_revocation(monkeypatch):
    """A bug (or a database fault) in one revocation step."""

    def boom(job):
        raise RuntimeError("api key table unavailable")

    monkeypatch.setattr(revoke, "_revoke_api_keys", boom)


@pytest.fixture
def pending_job(world, dead_broker):
    services.membership_deactivate(membership=world.member_a, actor=actor_for_membership(world.owner_a, "password"))
    return DeprovisionJob.objects.get()


@override_settings(DEPROVISION_MAX_ATTEMPTS=3)
def test_a_failing_job_goes_back_to_pending_with_its_error_and_a_later_due_time(pending_job, broken_api_key_revocation):
    before = timezone.now()
    assert run_job(pending_job.pk) == "retry"
    pending_job.refresh_from_db()
    assert (pending_job.status, pending_job.attempts) == (DeprovisionStatus.PENDING, 1)
    assert pending_job.last_error == "RuntimeError: api key table unavailable"
    assert pending_job.due_at > before
    assert not AuditEvent.objects.filter(action="member.credentials_revoked").exists()  # rolled back with the failure


@override_settings(DEPROVISION_MAX_ATTEMPTS=3)
def test_after_the_last_attempt_the_job_is_marked_failed_and_kept(pending_job, broken_api_key_revocation):
    outcomes = [run_job(pending_job.pk) for _ in range(4)]
    assert outcomes == ["retry", "retry", "failed", "skipped"]
    pending_job.refresh_from_db()
    assert (pending_job.status, pending_job.attempts) == (DeprovisionStatus.FAILED, 3)


def test_a_requeued_failed_job_runs_again_and_completes(pending_job, world):
    DeprovisionJob.objects.filter(pk=pending_job.pk).update(status=DeprovisionStatus.FAILED, attempts=6, last_error="x")
    services.deprovision_job_requeue(job=DeprovisionJob.objects.get(), actor=Actor.system("support"))
    assert run_job(pending_job.pk) == "done"
    assert AuditEvent.objects.filter(action="member.deprovisioning_requeued").count() == 1


def test_owners_see_pending_and_failed_jobs_with_the_last_error(world, pending_job):
    DeprovisionJob.objects.create(
        workspace=world.a, user=world.manager_a.user, membership=world.manager_a, member_label="manager@alpha.test",
        cause="deactivated", status=DeprovisionStatus.FAILED, attempts=6, last_error="RuntimeError: api key table unavailable",
    )
    page = login_client(world.owner_a).get("/w/alpha/settings/deprovisioning/").content.decode()
    assert "member@alpha.test" in page and "manager@alpha.test" in page
    assert "pending 1" in page and "failed 1" in page
    assert "RuntimeError: api key table unavailable" in page


def test_the_workspace_home_links_owners_to_the_jobs(world, pending_job):
    page = login_client(world.owner_a).get("/w/alpha/").content.decode()
    assert "/w/alpha/settings/deprovisioning/" in page
    assert "1 in progress" in page


def test_managers_do_not_see_the_deprovisioning_page(world, pending_job):
    client = login_client(world.manager_a)
    assert client.get("/w/alpha/settings/deprovisioning/").status_code == 403
    assert "/settings/deprovisioning/" not in client.get("/w/alpha/").content.decode()


def test_another_workspaces_owner_cannot_see_the_jobs(world, pending_job):
    client = login_client(world.outsider_b)
    assert client.get("/w/alpha/settings/deprovisioning/").status_code == 404
    assert "member@alpha.test" not in client.get("/w/bravo/settings/deprovisioning/").content.decode()


def test_deprovision_status_prints_open_jobs_with_errors_and_done_counts(world, pending_job):
    DeprovisionJob.objects.create(
        workspace=world.a, user=world.manager_a.user, member_label="manager@alpha.test", cause="removed",
        status=DeprovisionStatus.FAILED, attempts=6, last_error="RuntimeError: boom",
    )
    DeprovisionJob.objects.create(
        workspace=world.b, user=world.outsider_b.user, member_label="owner@bravo.test", cause="deactivated",
        status=DeprovisionStatus.DONE,
    )
    out = io.StringIO()
    call_command("deprovision_status", stdout=out)
    text = out.getvalue()
    assert "pending 1, running 0, failed 1, done 1" in text
    assert "member@alpha.test" in text and "manager@alpha.test" in text and "last error: RuntimeError: boom" in text
    out = io.StringIO()
    call_command("deprovision_status", "bravo", stdout=out)
    assert "pending 0, running 0, failed 0, done 1" in out.getvalue()
    assert "alpha.test" not in out.getvalue()
