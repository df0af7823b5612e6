"""Access ends with the deactivate response, before any background job runs."""

from __future__ import annotations

from tests.conftest import login_client
from workspaces.models import DeprovisionJob, DeprovisionStatus


def test_a_request_right_after_the_deactivate_response_is_refused_before_any_task_runs(
    world, owner_client, dead_broker, django_capture_on_commit_callbacks
):
    member = login_client(world.member_a)
    assert member.get("/w/alpha/").status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        response = owner_client.post(f"/w/alpha/members/{world.member_a.pk}/", {"action": "deactivate", "confirmed": "yes"})
    assert response.status_code == 302
    assert DeprovisionJob.objects.get().status == DeprovisionStatus.PENDING  # broker down: nothing ran
    refused = member.get("/w/alpha/")
    assert refused.status_code == 403
    assert "deactivated" in refused.content.decode()
    assert member.get("/w/alpha/api-keys/").status_code == 403


def test_the_owner_who_deactivated_keeps_access(world, owner_client, dead_broker):
    owner_client.post(f"/w/alpha/members/{world.member_a.pk}/", {"action": "deactivate", "confirmed": "yes"})
    assert owner_client.get("/w/alpha/").status_code == 200
