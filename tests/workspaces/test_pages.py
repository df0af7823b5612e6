"""Team, repository and member pages do what their buttons say, for the roles allowed to press them."""

from __future__ import annotations

from tests.conftest import login_client
from tests.factories import RepositoryFactory, TeamFactory
from workspaces.models import RepositoryGrant, Team, TeamMembership


def test_manager_creates_a_team_and_adds_a_member(world):
    client = login_client(world.manager_a)
    response = client.post("/w/alpha/teams/new/", {"name": "Release"}, follow=True)
    assert "Team created." in response.content.decode()
    team = Team.objects.get(workspace=world.a, name="Release")
    client.post(f"/w/alpha/teams/{team.pk}/", {"action": "add", "member": world.member_a.pk})
    assert TeamMembership.objects.filter(team=team, membership=world.member_a).exists()


def test_duplicate_team_name_is_refused_case_insensitively_with_a_message(world):
    TeamFactory(workspace=world.a, name="Release")
    client = login_client(world.owner_a)
    response = client.post("/w/alpha/teams/new/", {"name": "release"}, follow=True)
    assert "already exists" in response.content.decode()
    assert Team.objects.filter(workspace=world.a).count() == 1


def test_the_same_team_name_is_fine_in_another_workspace(world):
    TeamFactory(workspace=world.b, name="Release")
    login_client(world.owner_a).post("/w/alpha/teams/new/", {"name": "Release"})
    assert Team.objects.filter(name="Release").count() == 2


def test_member_cannot_change_a_team(world):
    team = TeamFactory(workspace=world.a)
    client = login_client(world.member_a)
    assert client.post("/w/alpha/teams/new/", {"name": "X"}).status_code == 403
    client.post(f"/w/alpha/teams/{team.pk}/", {"action": "add", "member": world.member_a.pk})
    assert not TeamMembership.objects.filter(team=team).exists()


def test_owner_grants_a_team_write_on_a_repository(world):
    team = TeamFactory(workspace=world.a)
    repo = RepositoryFactory(workspace=world.a)
    client = login_client(world.owner_a)
    client.post(f"/w/alpha/repositories/{repo.pk}/", {"grantee": f"team:{team.pk}", "permission": "write"})
    assert RepositoryGrant.objects.get(repository=repo).permission == "write"


def test_a_team_of_another_workspace_cannot_be_granted(world):
    b_team = TeamFactory(workspace=world.b)
    repo = RepositoryFactory(workspace=world.a)
    login_client(world.owner_a).post(f"/w/alpha/repositories/{repo.pk}/", {"grantee": f"team:{b_team.pk}", "permission": "write"})
    assert not RepositoryGrant.objects.exists()


def test_workspace_home_lists_members_with_role_and_status(world):
    body = login_client(world.owner_a).get("/w/alpha/").content.decode()
    assert "manager@alpha.test" in body and "Manager" in body and "active" in body


def test_collaborator_home_shows_no_other_members(world):
    body = login_client(world.collaborator_a).get("/w/alpha/").content.decode()
    assert "collab@alpha.test" in body
    assert "member@alpha.test" not in body
