"""Every deactivation writes an outbox row with its audit event; a dead broker never loses it or breaks the request."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from audit.models import AuditEvent
from tests.conftest import login_client
from workspaces import services
from workspaces.deprovisioning.tasks import sweep_deprovision_jobs
from workspaces.models import DeprovisionJob, DeprovisionStatus, Membership


def test_deactivation_writes_a_pending_job_next_to_its_audit_event(world, owner_actor, dead_broker):
    services.membership_deactivate(membership=world.member_a, actor=owner_actor, reason="leaver")
    job = DeprovisionJob.objects.get()
    assert (job.workspace, job.user, job.membership) == (world.a, world.member_a.user, world.member_a)
    assert (job.status, job.cause, job.member_label) == ("pending", "deactivated", "member@alpha.test")
    assert AuditEvent.objects.filter(action="member.deactivated", target_id=str(world.member_a.pk)).count() == 1


def test_a_rolled_back_deactivation_leaves_neither_job_nor_event(world, owner_actor):
    with pytest.raises(RuntimeError), transaction.atomic():
        services.membership_deactivate(membership=world.member_a, actor=owner_actor)
        raise RuntimeError("the caller's transaction fails after the service")
    assert not DeprovisionJob.objects.exists()
    assert not AuditEvent.objects.filter(action="member.deactivated").exists()
    assert Membership.objects.get(pk=world.member_a.pk).is_active


def test_deactivating_an_inactive_member_again_writes_no_second_job(world, owner_actor, dead_broker):
    services.membership_deactivate(membership=world.member_a, actor=owner_actor)
    services.membership_deactivate(membership=Membership.objects.get(pk=world.member_a.pk), actor=owner_actor)
    assert DeprovisionJob.objects.count() == 1


def test_the_deactivate_page_succeeds_when_redis_is_down_and_the_job_stays_pending(
    world, owner_client, dead_broker, caplog, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = owner_client.post(f"/w/alpha/members/{world.member_a.pk}/", {"action": "deactivate", "confirmed": "yes"})
    assert response.status_code == 302
    assert "stay pending for the sweeper" in caplog.text
    assert not Membership.objects.get(pk=world.member_a.pk).is_active
    assert DeprovisionJob.objects.get().status == DeprovisionStatus.PENDING


def test_removing_a_member_also_writes_a_job_that_outlives_the_membership(world, owner_actor, dead_broker):
    services.membership_remove(membership=world.member_a, actor=owner_actor)
    job = DeprovisionJob.objects.get()
    assert (job.cause, job.membership, job.user) == ("removed", None, world.member_a.user)


def test_the_sweeper_runs_jobs_that_are_overdue(world, owner_actor, dead_broker):
    services.membership_deactivate(membership=world.member_a, actor=owner_actor)
    DeprovisionJob.objects.update(due_at=timezone.now() - timedelta(seconds=1))
    from config.celery import app

    app.conf.task_always_eager = True  # the broker is back (embedded mode): the sweep runs the job here
    assert sweep_deprovision_jobs() == 1
    assert DeprovisionJob.objects.get().status == DeprovisionStatus.DONE


def test_the_sweeper_leaves_jobs_that_are_not_due_yet(world, owner_actor, dead_broker):
    services.membership_deactivate(membership=world.member_a, actor=owner_actor)
    from config.celery import app

    app.conf.task_always_eager = True
    assert sweep_deprovision_jobs() == 0
    assert DeprovisionJob.objects.get().status == DeprovisionStatus.PENDING


def test_in_the_embedded_default_the_job_runs_at_once(world, owner_actor, django_capture_on_commit_callbacks):
    client = login_client(world.member_a)
    with django_capture_on_commit_callbacks(execute=True):
        services.membership_deactivate(membership=world.member_a, actor=owner_actor)
    job = DeprovisionJob.objects.get()
    assert job.status == DeprovisionStatus.DONE
    assert job.result == {"sessions": 1, "api_keys": 0, "oauth_tokens": 0}
    assert client.get("/w/alpha/").status_code == 403
