"""Owners give and take the read-only auditor permission from the member page; nobody else can."""

from __future__ import annotations

import pytest
from django.db import transaction

from audit.models import AuditEvent
from tests.conftest import login_client
from workspaces.exceptions import NotAllowed
from workspaces.services import membership_set_auditor

from .helpers import as_actor


def test_owner_makes_a_member_auditor_from_the_member_page_and_it_is_audited(world):
    client = login_client(world.owner_a)
    page = client.get(f"/w/alpha/members/{world.member_a.pk}/").content.decode()
    assert "Make auditor" in page
    response = client.post(f"/w/alpha/members/{world.member_a.pk}/", {"action": "auditor_on"})
    assert response.status_code == 302
    world.member_a.refresh_from_db()
    assert world.member_a.is_auditor
    event = AuditEvent.objects.get(action="member.auditor_changed")
    assert event.actor_label == "owner@alpha.test" and event.details["after"] == {"is_auditor": True}
    assert login_client(world.member_a).get("/w/alpha/audit/").status_code == 200


def test_owner_takes_the_permission_back_and_the_log_closes_at_once(world):
    world.member_a.is_auditor = True
    world.member_a.save()
    member = login_client(world.member_a)
    assert member.get("/w/alpha/audit/").status_code == 200
    login_client(world.owner_a).post(f"/w/alpha/members/{world.member_a.pk}/", {"action": "auditor_off"})
    assert member.get("/w/alpha/audit/").status_code == 403


def test_a_manager_sees_no_auditor_button_and_cannot_post_it(world):
    client = login_client(world.manager_a)
    assert "Make auditor" not in client.get(f"/w/alpha/members/{world.member_a.pk}/").content.decode()
    response = client.post(f"/w/alpha/members/{world.member_a.pk}/", {"action": "auditor_on"})
    assert response.status_code == 200 and "does not allow this" in response.content.decode()
    world.member_a.refresh_from_db()
    assert not world.member_a.is_auditor


def test_an_auditor_cannot_make_others_auditors(world):
    world.member_a.is_auditor = True
    world.member_a.save()
    with pytest.raises(NotAllowed), transaction.atomic():
        membership_set_auditor(membership=world.private_member_a, is_auditor=True, actor=as_actor(world.member_a))


def test_an_owner_of_workspace_b_cannot_make_an_auditor_in_workspace_a(world):
    with pytest.raises(NotAllowed), transaction.atomic():
        membership_set_auditor(membership=world.member_a, is_auditor=True, actor=as_actor(world.outsider_b))
    assert login_client(world.outsider_b).post(
        f"/w/bravo/members/{world.member_a.pk}/", {"action": "auditor_on"}
    ).status_code == 404


def test_an_auditor_of_any_role_reads_but_cannot_change_members(world):
    world.collaborator_a.is_auditor = True
    world.collaborator_a.save()
    client = login_client(world.collaborator_a)
    assert client.get("/w/alpha/audit/").status_code == 200
    client.post(f"/w/alpha/members/{world.collaborator_a.pk}/", {"action": "role", "role": "owner"})
    world.collaborator_a.refresh_from_db()
    assert world.collaborator_a.role == "collaborator"
