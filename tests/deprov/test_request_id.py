"""The request id of a SCIM deactivation reaches the Celery task it starts: the revocation's audit event and the
worker's JSON log lines carry it (real redis-server and worker, PostgreSQL)."""

from __future__ import annotations

import json

import pytest
import requests

from audit.models import AuditEvent
from audit.record import Actor
from scim.services import scim_credential_create
from workspaces.models import DeprovisionJob, DeprovisionStatus, Workspace

from .harness import make_leavers, wait_until

pytestmark = pytest.mark.django_db(transaction=True)

DEACTIVATE = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
              "Operations": [{"op": "replace", "value": {"active": False}}]}


def test_the_revocation_a_scim_deactivation_starts_carries_the_request_s_id(rig, live_server):
    workspace = Workspace.objects.create(slug="traced", name="Traced Ltd", scim_enabled=True)
    (member_id,) = make_leavers(workspace, 1)
    _, token = scim_credential_create(workspace=workspace, kind="bearer", name="Okta", actor=Actor.system("test"))
    worker = rig.start("worker")
    response = requests.patch(
        f"{live_server.url}/scim/v2/traced/Users/{member_id}", json=DEACTIVATE, timeout=30,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json",
                 "X-Request-ID": "okta-req-7f3a9c21"},
    )
    assert response.status_code == 200 and response.headers["X-Request-ID"] == "okta-req-7f3a9c21"
    wait_until(lambda: DeprovisionJob.objects.filter(membership_id=member_id, status=DeprovisionStatus.DONE).exists(),
               60, "the revocation")
    deactivated = AuditEvent.objects.get(workspace=workspace, action="member.deactivated")
    revoked = AuditEvent.objects.get(workspace=workspace, action="member.credentials_revoked")
    assert deactivated.request_id == revoked.request_id == "okta-req-7f3a9c21"
    # The worker's log lines for that task are JSON and carry the id; its other lines carry none.
    lines = [json.loads(line) for line in worker.output().splitlines() if line.startswith("{")]
    assert any(entry["request_id"] == "okta-req-7f3a9c21" for entry in lines), worker.output()[-3000:]
    assert {entry["request_id"] for entry in lines} <= {"", "okta-req-7f3a9c21"}
