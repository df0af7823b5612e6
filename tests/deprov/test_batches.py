"""A worker revokes jobs in batches: same effects and audit events as one by one, faults stay per job."""

from __future__ import annotations

import pytest
from django.contrib.sessions.models import Session

from audit.models import AuditEvent
from audit.record import Actor
from workspaces import services
from workspaces.access import SESSION_KEY
from workspaces.deprovisioning import revoke
from workspaces.models import ApiKey, DeprovisionJob, DeprovisionStatus, Workspace
from workspaces.services import deprovision_jobs_run

from .harness import make_leavers

SYSTEM = Actor.system("deprovisioning")
SCIM = Actor(kind="scim_client", id="1", label="Okta", auth_method="scim_bearer")


@pytest.fixture
def leavers(world, dead_broker):
    """Five signed-in members with an API key each, deactivated: five pending jobs (Redis is down)."""
    workspace = Workspace.objects.get(pk=world.a.pk)
    ids = make_leavers(workspace, 5, prefix="batch")
    for membership in workspace.memberships.filter(pk__in=ids).select_related("user", "workspace"):
        services.membership_deactivate(membership=membership, actor=SCIM, reason="scim")
    return ids


def _jobs(ids: list[int]):
    return DeprovisionJob.objects.filter(membership_id__in=ids).order_by("pk")


def _live_grants(ids: list[int], workspace_id: int) -> int:
    users = set(DeprovisionJob.objects.filter(membership_id__in=ids).values_list("user_id", flat=True))
    return sum(
        1
        for s in Session.objects.all()
        if int(s.get_decoded().get("_auth_user_id", 0)) in users
        and str(workspace_id) in s.get_decoded().get(SESSION_KEY, {})
    )


def test_a_batch_revokes_every_job_and_records_one_event_each(world, leavers, caplog):
    job_ids = list(_jobs(leavers).values_list("pk", flat=True))
    outcomes = deprovision_jobs_run(job_ids=job_ids, actor=SYSTEM)
    assert outcomes == dict.fromkeys(job_ids, "done")
    assert "one by one" not in caplog.text  # done as a batch, not by the fallback
    assert {tuple(sorted(j.result.items())) for j in _jobs(leavers)} == {
        (("api_keys", 1), ("oauth_tokens", 0), ("sessions", 1))
    }
    assert not ApiKey.objects.filter(membership_id__in=leavers, revoked_at__isnull=True).exists()
    assert _live_grants(leavers, world.a.pk) == 0
    events = AuditEvent.objects.filter(action="member.credentials_revoked", workspace=world.a)
    assert sorted(int(e.target_id) for e in events) == sorted(leavers)
    assert deprovision_jobs_run(job_ids=job_ids, actor=SYSTEM) == dict.fromkeys(job_ids, "skipped")
    assert events.count() == 5


def test_one_failing_job_in_a_batch_is_retried_alone_and_the_others_finish(world, leavers, monkeypatch):
    failing = _jobs(leavers).first()
    real = revoke._revoke_api_keys

    def breaks_for_one(jobs):
        if any(job.pk == failing.pk for job in jobs):
            raise RuntimeError("api key table unavailable")
        return real(jobs)

    monkeypatch.setattr(revoke, "_revoke_api_keys", breaks_for_one)
    outcomes = deprovision_jobs_run(job_ids=list(_jobs(leavers).values_list("pk", flat=True)), actor=SYSTEM)
    assert outcomes.pop(failing.pk) == "retry"
    assert set(outcomes.values()) == {"done"}
    failing.refresh_from_db()
    assert (failing.status, failing.last_error) == (
        DeprovisionStatus.PENDING,
        "RuntimeError: api key table unavailable",
    )
    assert ApiKey.objects.filter(
        membership_id=failing.membership_id, revoked_at__isnull=True
    ).exists()  # rolled back
    assert AuditEvent.objects.filter(action="member.credentials_revoked").count() == 4


def test_a_message_takes_other_fresh_jobs_but_leaves_jobs_waiting_for_their_retry(world, leavers):
    first, waiting, *fresh = list(_jobs(leavers))
    DeprovisionJob.objects.filter(pk=waiting.pk).update(attempts=1, last_error="earlier failure")
    outcomes = deprovision_jobs_run(job_ids=[first.pk], actor=SYSTEM, fill_to=100)
    assert outcomes == {first.pk: "done", **{job.pk: "done" for job in fresh}}
    waiting.refresh_from_db()
    assert waiting.status == DeprovisionStatus.PENDING  # its backoff is respected
    # The messages of the jobs it took find them done.
    assert deprovision_jobs_run(job_ids=[fresh[0].pk], actor=SYSTEM) == {fresh[0].pk: "skipped"}


def test_a_person_with_jobs_in_two_workspaces_loses_both_grants_in_one_batch(world, dead_broker):
    from tests.factories import MembershipFactory

    both = MembershipFactory(workspace=world.b, user=world.member_a.user, role="member")
    store = Session.get_session_store_class()()
    store.update(
        {
            "_auth_user_id": str(both.user_id),
            SESSION_KEY: {
                str(world.a.pk): {"method": "saml", "at": 0.0, "exp": None},
                str(world.b.pk): {"method": "saml", "at": 0.0, "exp": None},
            },
        }
    )
    store.create()
    services.user_session_record(user=both.user, session_key=store.session_key)
    jobs = services.user_disable(user=both.user, actor=Actor.system("support"), reason="left")
    outcomes = deprovision_jobs_run(job_ids=[job.pk for job in jobs], actor=SYSTEM)
    assert set(outcomes.values()) == {"done"}
    assert Session.objects.get(session_key=store.session_key).get_decoded()[SESSION_KEY] == {}
    assert sorted(
        DeprovisionJob.objects.filter(pk__in=outcomes).values_list("result__sessions", flat=True)
    ) == [1, 1]


@pytest.fixture
def published(monkeypatch):
    from workspaces.deprovisioning import tasks

    sent: list[tuple[list[int], float | None]] = []
    monkeypatch.setattr(
        tasks,
        "enqueue_deprovision_jobs",
        lambda ids, countdown=None: sent.append((list(ids), countdown)) or len(ids),
    )
    return sent


def _deactivate_each_in_its_own_transaction(world, n: int, capture, prefix: str = "burst") -> list[int]:
    workspace = Workspace.objects.get(pk=world.a.pk)
    ids = make_leavers(workspace, n, prefix=prefix)
    with capture(execute=True):
        for membership in workspace.memberships.filter(pk__in=ids).select_related("user", "workspace"):
            services.membership_deactivate(membership=membership, actor=SCIM, reason="scim")
    return ids


def test_a_burst_of_deactivations_publishes_one_delayed_message_whose_worker_takes_them_all(
    world, dead_broker, published, django_capture_on_commit_callbacks, settings
):
    settings.DEPROVISION_COALESCE_SECONDS = 1
    ids = _deactivate_each_in_its_own_transaction(world, 4, django_capture_on_commit_callbacks)
    assert len(published) == 1
    (first_job,), countdown = published[0]
    assert countdown > 1  # runs after the window closes, so after every commit that saw it open
    outcomes = deprovision_jobs_run(job_ids=[first_job], actor=SYSTEM, fill_to=100)
    assert sorted(outcomes) == sorted(_jobs(ids).values_list("pk", flat=True))
    assert set(outcomes.values()) == {"done"}


def test_after_the_window_the_next_job_publishes_again(
    world, dead_broker, published, django_capture_on_commit_callbacks, settings
):
    from django.core.cache import cache

    from workspaces.deprovisioning.tasks import _COALESCE_KEY

    settings.DEPROVISION_COALESCE_SECONDS = 1
    _deactivate_each_in_its_own_transaction(world, 1, django_capture_on_commit_callbacks)
    cache.delete(_COALESCE_KEY)  # the window's flag expired
    _deactivate_each_in_its_own_transaction(world, 1, django_capture_on_commit_callbacks, prefix="later")
    assert len(published) == 2


def test_without_a_window_every_job_publishes_its_own_message(
    world, dead_broker, published, django_capture_on_commit_callbacks, settings
):
    settings.DEPROVISION_COALESCE_SECONDS = 0
    _deactivate_each_in_its_own_transaction(world, 3, django_capture_on_commit_callbacks)
    assert [countdown for _, countdown in published] == [None, None, None]
