"""The group-sync page: Owners edit mappings and see who would be removed before switching sync on."""

from __future__ import annotations

from audit.models import AuditEvent
from saml import services
from saml.models import GroupMapping
from tests.conftest import login_client
from tests.factories import TeamFactory
from workspaces.services import actor_for_membership, team_add_member

URL = "/w/alpha/settings/group-sync/"


def test_owner_adds_a_mapping_that_creates_its_team(world, sso_a):
    client = login_client(world.owner_a)
    response = client.post(URL, {"action": "add", "idp_group": "eng", "new_team_name": "Engineering", "priority": 0})
    assert response.status_code == 302
    mapping = GroupMapping.objects.get(workspace=world.a)
    assert (mapping.idp_group, mapping.team.name) == ("eng", "Engineering")
    assert AuditEvent.objects.filter(action="sso.group_mapping_created", auth_method="password").exists()


def test_preview_lists_members_who_would_leave_a_mapped_team(world, sso_a):
    eng = TeamFactory(workspace=world.a, name="Engineering")
    team_add_member(team=eng, membership=world.member_a, actor=actor_for_membership(world.owner_a, "password"))
    services.group_mapping_create(workspace=world.a, actor=actor_for_membership(world.owner_a, "password"),
                                  idp_group="eng", team=eng)
    page = login_client(world.owner_a).get(URL).content.decode()
    assert "member@alpha.test from Engineering" in page


def test_managers_cannot_open_the_group_sync_page(world, sso_a):
    assert login_client(world.manager_a).get(URL).status_code == 403


def test_owners_of_another_workspace_cannot_open_it(world, sso_a):
    assert login_client(world.outsider_b).get(URL).status_code == 404


def test_a_mapping_of_workspace_b_cannot_be_deleted_from_a(world, sso_a, sso_b):
    eng_b = TeamFactory(workspace=world.b, name="Engineering")
    mapping_b = services.group_mapping_create(
        workspace=world.b, actor=actor_for_membership(world.outsider_b, "password"), idp_group="eng", team=eng_b)
    response = login_client(world.owner_a).post(URL, {"action": "delete", "mapping": mapping_b.pk})
    assert response.status_code == 404
    assert GroupMapping.objects.filter(pk=mapping_b.pk).exists()


def test_a_team_of_workspace_b_cannot_be_chosen_from_a(world, sso_a):
    eng_b = TeamFactory(workspace=world.b, name="Engineering")
    response = login_client(world.owner_a).post(URL, {"action": "add", "idp_group": "eng", "team": eng_b.pk, "priority": 0})
    assert response.status_code == 200
    assert not GroupMapping.objects.exists()
