"""Deprovisioning under faults, with a real redis-server and real Celery worker and beat processes.

Each test starts its own redis-server on a free loopback port (never the shared one on 6379) and its
own ``celery -A config worker`` / ``beat`` on the test database, which must therefore be one the
worker process can open: PostgreSQL. Every wait polls with a deadline; each test stays under 90 s.
"""

from __future__ import annotations

import re
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from django.core.management import call_command
from django.db import transaction
from django.test import override_settings

from audit.record import Actor
from scim.services import scim_credential_create
from workspaces import services
from workspaces.deprovisioning.tasks import enqueue_deprovision_jobs, run_deprovision_jobs
from workspaces.models import DeprovisionJob, DeprovisionStatus, Membership, Workspace

from .harness import (
    assert_every_revocation_done_once,
    celery_publishing_to,
    free_port,
    make_leavers,
    wait_until,
)

pytestmark = pytest.mark.django_db(transaction=True)

SCIM_JSON = "application/scim+json"
DEACTIVATE = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
              "Operations": [{"op": "replace", "value": {"active": False}}]}
SCIM_ACTOR = Actor(kind="scim_client", id="fault-test", label="Okta", auth_method="scim_bearer")


def _done() -> int:
    return DeprovisionJob.objects.filter(status=DeprovisionStatus.DONE).count()


def _deactivate_without_enqueueing(ids: list[int]) -> None:
    """Deactivate through the service (one transaction: quick set-up) while the broker is unreachable,
    so the jobs exist only in the outbox until the test hands them to the real broker."""
    with celery_publishing_to(f"redis://127.0.0.1:{free_port()}/0"), transaction.atomic():
        for membership in Membership.objects.filter(pk__in=ids).select_related("workspace", "user"):
            services.membership_deactivate(membership=membership, actor=SCIM_ACTOR, reason="scim")


@pytest.fixture
def leavers():
    workspace = Workspace.objects.create(slug="leavers", name="Leavers Ltd", scim_enabled=True)
    return workspace, make_leavers(workspace, 1000)


@override_settings(DEPROVISION_RETRY_AFTER=2, DEPROVISION_PUBLISH_PAUSE=1.0)
def test_redis_stopped_while_1000_members_are_deactivated_through_scim_loses_and_doubles_nothing(
    rig, leavers, live_server
):
    workspace, ids = leavers
    _, token = scim_credential_create(workspace=workspace, kind="bearer", name="Okta", actor=Actor.system("test"))
    worker = rig.start("worker")
    beat = rig.start("beat")
    http = requests.Session()
    http.headers.update({"Authorization": f"Bearer {token}", "Content-Type": SCIM_JSON, "Accept": SCIM_JSON})
    base = f"{live_server.url}/scim/v2/{workspace.slug}/Users/"

    def deactivate(pk: int) -> int:
        return http.patch(f"{base}{pk}", json=DEACTIVATE, timeout=30).status_code

    with ThreadPoolExecutor(4) as pool:
        statuses = list(pool.map(deactivate, ids[:300]))
        rig.redis.stop()  # Redis dies: queued and in-flight messages are gone with it
        statuses += list(pool.map(deactivate, ids[300:700]))
        pending_during_outage = DeprovisionJob.objects.exclude(status=DeprovisionStatus.DONE).count()
        rig.redis.start()  # back, empty
        statuses += list(pool.map(deactivate, ids[700:]))
    assert statuses == [200] * 1000
    assert not Membership.objects.filter(pk__in=ids, is_active=True).exists()  # access ended with each response
    assert pending_during_outage >= 400  # the outage really left work only the outbox knew about

    restarts = []

    def all_done_under_a_supervisor() -> bool:
        # kombu 5.7 + redis-py 8 can end a busy worker with "Unrecoverable error: AttributeError('NoneType'
        # object has no attribute 'hostname')" when Redis drops it; deployments run workers under a supervisor
        # that restarts them (README). The outbox must make that harmless, which is what this test checks.
        restarts.extend(p.kind for p in (worker, beat) if p.restart_if_exited())
        return _done() == 1000

    wait_until(all_done_under_a_supervisor, 75, "all 1000 revocations to finish after Redis came back", interval=0.25)
    print(f"processes restarted by the test's supervisor: {restarts or 'none'}")
    assert_every_revocation_done_once(workspace, ids)
    call_command("verify_audit_chain", workspace.slug)


@override_settings(DEPROVISION_RETRY_AFTER=2)
def test_a_worker_killed_in_the_middle_of_a_batch_finishes_the_rest_after_restart(rig):
    workspace = Workspace.objects.create(slug="killed", name="Killed Ltd", scim_enabled=True)
    ids = make_leavers(workspace, 300)
    _deactivate_without_enqueueing(ids)
    job_ids = list(DeprovisionJob.objects.filter(membership_id__in=ids).order_by("pk").values_list("pk", flat=True))
    assert enqueue_deprovision_jobs(job_ids) == 300  # 3 batches of 100 on the real broker

    worker = rig.start("worker")
    wait_until(lambda: _done() >= 30, 60, "the worker to get into the batches", interval=0.01)
    worker.kill()  # SIGKILL to the main process and its children: no acks, no cleanup
    done_at_kill = _done()
    assert 0 < done_at_kill < 300, done_at_kill

    rig.start("worker")
    rig.start("beat")  # the sweeper re-enqueues the batch whose message died unacknowledged with the worker
    wait_until(lambda: _done() == 300, 75, "the rest of the revocations after the restart", interval=0.25)
    assert_every_revocation_done_once(workspace, ids)


@override_settings(DEPROVISION_RETRY_AFTER=600)  # no sweeper help: only the duplicate deliveries run
def test_the_same_task_delivered_twice_has_no_double_effect(rig):
    workspace = Workspace.objects.create(slug="twice", name="Twice Ltd", scim_enabled=True)
    ids = make_leavers(workspace, 200)
    _deactivate_without_enqueueing(ids)
    job_ids = list(DeprovisionJob.objects.filter(membership_id__in=ids).values_list("pk", flat=True))
    worker = rig.start("worker")  # two prefork processes: the two deliveries run side by side

    task_id = str(uuid.uuid4())
    run_deprovision_jobs.apply_async(args=[job_ids], task_id=task_id)
    run_deprovision_jobs.apply_async(args=[job_ids], task_id=task_id)  # the same message again
    wait_until(lambda: _done() == 200, 60, "the 200 revocations", interval=0.1)
    run_deprovision_jobs.apply_async(args=[job_ids], task_id=task_id)  # and a late redelivery

    pattern = re.compile(rf"run_deprovision_jobs\[{task_id}\] succeeded in [0-9.e-]+s: (\{{.*?\}})")
    wait_until(lambda: len(pattern.findall(worker.output())) == 3, 60, "all three deliveries to be processed")
    outcomes = [eval(m, {"__builtins__": {}}) for m in pattern.findall(worker.output())]  # noqa: S307 (dict literals from our log)
    assert sum(o.get("done", 0) for o in outcomes) == 200  # each job's work happened once...
    assert sum(o.get("skipped", 0) for o in outcomes) == 400  # ...and every other delivery found it done
    assert_every_revocation_done_once(workspace, ids)
