"""The Owner's switch that lets governance tools override the identity provider: page, command, audit, API."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from audit.models import AuditEvent
from tests.api.conftest import ApiClient, service_key
from tests.conftest import login_client
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db


def test_the_provisioning_page_switches_it_and_the_change_is_audited(world):
    client = login_client(world.owner_a)
    page = client.get("/w/alpha/settings/provisioning/").content.decode()
    assert "Governance tools may override the identity provider" in page
    client.post("/w/alpha/settings/provisioning/", {"action": "policy", "default_role": "member",
                                                     "api_may_override_idp": "on"})
    world.a.refresh_from_db()
    assert world.a.api_may_override_idp is True
    event = AuditEvent.objects.filter(workspace=world.a, action="workspace.settings_changed").latest("pk")
    assert event.details["after"] == {"api_may_override_idp": True}


def test_the_command_switches_it_and_the_api_then_overrides(world):
    managed = MembershipFactory(workspace=world.a, role="manager", scim_username="m@alpha.test", role_from_idp=True)
    client = ApiClient(service_key(world.a, ["roles:write", "grants:read"]))
    body = {"entitlement": "role:manager", "member": managed.pk}
    assert client.post("/api/v1/workspaces/alpha/grants/revoke/", body).status_code == 403
    out = StringIO()
    call_command("workspace_policy", "alpha", "--api-may-override-idp", stdout=out)
    assert "the connector API may override the IdP" in out.getvalue()
    assert ApiClient(service_key(world.a, ["grants:read"])).get("/api/v1/workspaces/alpha/").json()["policy"][
        "api_may_override_idp"] is True
    assert client.post("/api/v1/workspaces/alpha/grants/revoke/", body).json()["changed"] is True


def test_a_manager_cannot_switch_it(world):
    login_client(world.manager_a).post("/w/alpha/settings/provisioning/", {"action": "policy", "default_role": "member",
                                                                            "api_may_override_idp": "on"})
    world.a.refresh_from_db()
    assert world.a.api_may_override_idp is False
