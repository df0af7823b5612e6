"""The provisioning page's policy card and its command: JIT, the default role, whether the IdP may grant Owner."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from audit.models import AuditEvent
from tests.conftest import login_client
from workspaces.models import Workspace

pytestmark = pytest.mark.django_db

URL = "/w/alpha/settings/provisioning/"


def test_an_owner_changes_the_policy_on_the_page_and_it_is_audited(world):
    client = login_client(world.owner_a)
    page = client.get(URL).content.decode()
    assert 'id="provisioning-policy"' in page and "manage.py workspace_policy alpha" in page
    response = client.post(URL, {"action": "policy", "jit_provisioning": "on", "default_role": "collaborator"})
    assert response.status_code == 302
    ws = Workspace.objects.get(pk=world.a.pk)
    assert ws.jit_provisioning and ws.default_role == "collaborator" and not ws.scim_may_grant_owner
    event = AuditEvent.objects.get(action="workspace.settings_changed")
    assert event.details["after"] == {"jit_provisioning": True, "default_role": "collaborator"}
    client.post(URL, {"action": "policy", "jit_provisioning": "on", "default_role": "collaborator"})
    assert AuditEvent.objects.filter(action="workspace.settings_changed").count() == 1  # nothing changed


def test_a_bad_role_is_refused_on_the_form_and_changes_nothing(world):
    response = login_client(world.owner_a).post(URL, {"action": "policy", "default_role": "emperor"})
    assert response.status_code == 200 and "emperor" in response.content.decode()
    assert Workspace.objects.get(pk=world.a.pk).default_role == "member"


def test_a_manager_cannot_change_it(world):
    response = login_client(world.manager_a).post(URL, {"action": "policy", "default_role": "owner"})
    assert response.status_code == 403
    assert Workspace.objects.get(pk=world.a.pk).default_role == "member"


def test_the_command_shows_and_changes_the_policy(world):
    out = io.StringIO()
    call_command("workspace_policy", "alpha", "--jit", "--default-role", "manager", "--idp-may-grant-owner", stdout=out)
    assert "JIT on, default role manager, the IdP may grant Owner" in out.getvalue()
    ws = Workspace.objects.get(pk=world.a.pk)
    assert ws.jit_provisioning and ws.default_role == "manager" and ws.scim_may_grant_owner
    shown = io.StringIO()
    call_command("workspace_policy", "alpha", stdout=shown)
    assert "JIT on" in shown.getvalue()
