"""What a key sees follows the role matrix, role by role (docs/api.md, "Who sees what")."""

from __future__ import annotations

import pytest

from tests.factories import RepositoryFactory, TeamFactory
from workspaces.models import RepositoryGrant, TeamMembership

from .conftest import ApiClient, all_pages, personal_key, service_key

pytestmark = pytest.mark.django_db

EVERYONE = {"owner@alpha.test", "manager@alpha.test", "member@alpha.test", "private@alpha.test", "collab@alpha.test"}
PUBLIC = EVERYONE - {"private@alpha.test"}


@pytest.fixture
def layout(world):
    core = TeamFactory(workspace=world.a, name="core")
    ops = TeamFactory(workspace=world.a, name="ops")
    TeamMembership.objects.create(team=core, membership=world.member_a)
    TeamMembership.objects.create(team=core, membership=world.private_member_a)
    TeamMembership.objects.create(team=ops, membership=world.manager_a)
    libs = RepositoryFactory(workspace=world.a, name="libs")
    secret = RepositoryFactory(workspace=world.a, name="secret")
    prod = RepositoryFactory(workspace=world.a, name="prod-images", environment="production")
    RepositoryGrant.objects.create(repository=libs, team=core, permission="write")
    RepositoryGrant.objects.create(repository=secret, membership=world.collaborator_a, permission="read")
    RepositoryGrant.objects.create(repository=prod, membership=world.private_member_a, permission="admin")
    bravo_team = TeamFactory(workspace=world.b, name="bravo-team")
    TeamMembership.objects.create(team=bravo_team, membership=world.outsider_b)
    RepositoryFactory(workspace=world.b, name="bravo-repo")
    return world


def emails(client: ApiClient) -> set[str]:
    return {m["email"] for m in all_pages(client, "/api/v1/workspaces/alpha/members/")}


def teams(client: ApiClient) -> dict[str, set[str]]:
    return {t["name"]: {m["email"] for m in t["members"]} for t in all_pages(client, "/api/v1/workspaces/alpha/teams/")}


def repositories(client: ApiClient) -> dict[str, set[str]]:
    out = {}
    for repo in all_pages(client, "/api/v1/workspaces/alpha/repositories/"):
        out[repo["name"]] = {
            (g["team"]["name"] if g["team"] else g["member"]["email"]) + ":" + g["permission"] for g in repo["grants"]
        }
    return out


@pytest.mark.parametrize("who", ["owner_a", "manager_a"])
def test_owner_and_manager_keys_see_the_full_roster_including_private_members(layout, who):
    assert emails(ApiClient(personal_key(getattr(layout, who)))) == EVERYONE


def test_member_key_sees_public_members_and_itself(layout):
    assert emails(ApiClient(personal_key(layout.member_a))) == PUBLIC


def test_private_member_key_sees_public_members_and_itself(layout):
    assert emails(ApiClient(personal_key(layout.private_member_a))) == PUBLIC | {"private@alpha.test"}


def test_collaborator_key_sees_only_itself(layout):
    assert emails(ApiClient(personal_key(layout.collaborator_a))) == {"collab@alpha.test"}


def test_no_key_of_workspace_a_lists_workspace_b_members(layout):
    for who in ("owner_a", "member_a", "collaborator_a"):
        assert "owner@bravo.test" not in emails(ApiClient(personal_key(getattr(layout, who))))


@pytest.mark.parametrize("who", ["owner_a", "manager_a"])
def test_owner_and_manager_keys_see_every_team_with_all_members(layout, who):
    assert teams(ApiClient(personal_key(getattr(layout, who)))) == {
        "core": {"member@alpha.test", "private@alpha.test"},
        "ops": {"manager@alpha.test"},
    }


def test_member_key_sees_only_its_teams_and_not_their_private_members(layout):
    assert teams(ApiClient(personal_key(layout.member_a))) == {"core": {"member@alpha.test"}}


def test_collaborator_key_sees_no_teams(layout):
    assert teams(ApiClient(personal_key(layout.collaborator_a))) == {}


def test_member_key_cannot_read_a_team_it_is_not_in(layout):
    ops = layout.a.teams.get(name="ops")
    assert ApiClient(personal_key(layout.member_a)).get(f"/api/v1/workspaces/alpha/teams/{ops.pk}/").status_code == 404


def test_owner_key_reads_a_team_of_its_workspace_by_id(layout):
    ops = layout.a.teams.get(name="ops")
    response = ApiClient(personal_key(layout.owner_a)).get(f"/api/v1/workspaces/alpha/teams/{ops.pk}/")
    assert response.json()["members"][0]["email"] == "manager@alpha.test"


def test_owner_key_cannot_read_workspace_b_team_by_id(layout):
    bravo_team = layout.b.teams.get()
    assert ApiClient(personal_key(layout.owner_a)).get(f"/api/v1/workspaces/alpha/teams/{bravo_team.pk}/").status_code == 404


def test_owner_key_sees_every_repository_and_grant(layout):
    assert repositories(ApiClient(personal_key(layout.owner_a))) == {
        "libs": {"core:write"},
        "prod-images": {"private@alpha.test:admin"},
        "secret": {"collab@alpha.test:read"},
    }


def test_member_key_sees_repositories_without_grants_naming_private_members(layout):
    assert repositories(ApiClient(personal_key(layout.member_a))) == {
        "libs": {"core:write"},
        "prod-images": set(),
        "secret": {"collab@alpha.test:read"},
    }


def test_collaborator_key_sees_itself_and_only_its_grants(layout):
    assert repositories(ApiClient(personal_key(layout.collaborator_a))) == {"secret": {"collab@alpha.test:read"}}


def test_collaborator_key_cannot_read_an_ungranted_repository_by_id(layout):
    libs = layout.a.repositories.get(name="libs")
    client = ApiClient(personal_key(layout.collaborator_a))
    assert client.get(f"/api/v1/workspaces/alpha/repositories/{libs.pk}/").status_code == 404


def test_owner_key_cannot_read_workspace_b_repository_by_id(layout):
    bravo_repo = layout.b.repositories.get()
    client = ApiClient(personal_key(layout.owner_a))
    assert client.get(f"/api/v1/workspaces/alpha/repositories/{bravo_repo.pk}/").status_code == 404


def test_member_key_does_not_see_a_private_member_by_id(layout):
    client = ApiClient(personal_key(layout.member_a))
    assert client.get(f"/api/v1/workspaces/alpha/members/{layout.private_member_a.pk}/").status_code == 404


def test_member_teams_listed_on_a_member_are_only_teams_the_viewer_sees(layout):
    client = ApiClient(personal_key(layout.member_a))
    me = client.get(f"/api/v1/workspaces/alpha/members/{layout.member_a.pk}/").json()
    assert [t["name"] for t in me["teams"]] == ["core"]
    manager = client.get(f"/api/v1/workspaces/alpha/members/{layout.manager_a.pk}/").json()
    assert manager["teams"] == []  # "ops" is not a team a Member sees


def test_service_key_with_members_read_sees_the_full_roster(layout):
    assert emails(ApiClient(service_key(layout.a, ["members:read"]))) == EVERYONE
