"""A private member stays private: a Member or a Collaborator learns their email from no page and no endpoint.

The private member is everywhere a name can appear: in a team, granted a repository directly, in a
team that is granted one. Only Owners and Managers (``Cap.MEMBERS_VIEW_PRIVATE``) see them.
"""

from __future__ import annotations

import pytest

from tests.api.conftest import ApiClient, personal_key
from tests.conftest import login_client
from tests.factories import RepositoryFactory, TeamFactory
from workspaces.models import RepositoryGrant, TeamMembership, User

PRIVATE_EMAIL = "private@alpha.test"
PRIVATE_NAME = "Quincy Hiddenfield"


@pytest.fixture
def hidden(world):
    User.objects.filter(pk=world.private_member_a.user_id).update(full_name=PRIVATE_NAME)
    core = TeamFactory(workspace=world.a, name="core")
    TeamMembership.objects.create(team=core, membership=world.private_member_a)
    TeamMembership.objects.create(team=core, membership=world.member_a)
    prod = RepositoryFactory(workspace=world.a, name="prod-images")
    libs = RepositoryFactory(workspace=world.a, name="libs")
    RepositoryGrant.objects.create(repository=prod, membership=world.private_member_a, permission="admin")
    RepositoryGrant.objects.create(repository=prod, membership=world.collaborator_a, permission="read")
    RepositoryGrant.objects.create(repository=libs, team=core, permission="write")
    RepositoryGrant.objects.create(repository=libs, membership=world.collaborator_a, permission="read")
    world.core, world.prod, world.libs = core, prod, libs
    return world


def _web_pages(w) -> list[str]:
    return [
        "/",
        "/w/alpha/",
        f"/w/alpha/members/{w.private_member_a.pk}/",
        f"/w/alpha/members/{w.member_a.pk}/",
        f"/w/alpha/members/{w.collaborator_a.pk}/",
        f"/w/alpha/teams/{w.core.pk}/",
        f"/w/alpha/repositories/{w.prod.pk}/",
        f"/w/alpha/repositories/{w.libs.pk}/",
        "/w/alpha/api-keys/",
    ]


def _api_paths(w) -> list[str]:
    base = "/api/v1/workspaces/alpha/"
    return [
        base,
        f"{base}members/",
        f"{base}members/{w.private_member_a.pk}/",
        f"{base}teams/",
        f"{base}teams/{w.core.pk}/",
        f"{base}repositories/",
        f"{base}repositories/{w.prod.pk}/",
        f"{base}repositories/{w.libs.pk}/",
    ]


def _leaks(body: str) -> bool:
    return PRIVATE_EMAIL in body or PRIVATE_NAME in body


@pytest.mark.parametrize("who", ["member_a", "collaborator_a"])
def test_no_web_page_shows_a_private_member_to_a_member_or_collaborator(hidden, who):
    client = login_client(getattr(hidden, who))
    for path in _web_pages(hidden):
        response = client.get(path)
        assert response.status_code in (200, 403, 404), (path, response.status_code)
        assert not _leaks(response.content.decode()), f"{who} learns the private member from {path}"


@pytest.mark.parametrize("who", ["member_a", "collaborator_a"])
def test_no_api_endpoint_shows_a_private_member_to_a_member_or_collaborator_key(hidden, who):
    api = ApiClient(personal_key(getattr(hidden, who)))
    for path in _api_paths(hidden):
        response = api.get(path)
        assert response.status_code in (200, 403, 404), (path, response.status_code)
        assert not _leaks(response.content.decode()), f"{who} learns the private member from {path}"


def test_repository_page_hides_the_private_members_grant_but_shows_the_visible_ones(hidden):
    body = login_client(hidden.member_a).get(f"/w/alpha/repositories/{hidden.prod.pk}/").content.decode()
    assert "collab@alpha.test" in body  # the page still lists grants the Member may see
    assert PRIVATE_EMAIL not in body


def test_a_collaborator_sees_only_its_own_grant_not_the_team_grant(hidden):
    body = login_client(hidden.collaborator_a).get(f"/w/alpha/repositories/{hidden.libs.pk}/").content.decode()
    assert "collab@alpha.test" in body
    assert ">core<" not in body and "core:" not in body


@pytest.mark.parametrize("who", ["owner_a", "manager_a"])
def test_owners_and_managers_see_the_private_member_where_the_others_do_not(hidden, who):
    client = login_client(getattr(hidden, who))
    for path in (f"/w/alpha/repositories/{hidden.prod.pk}/", "/w/alpha/", f"/w/alpha/teams/{hidden.core.pk}/"):
        assert PRIVATE_EMAIL in client.get(path).content.decode(), path


def test_the_workspace_home_lists_grants_by_the_same_rule(hidden):
    member_home = login_client(hidden.member_a).get("/w/alpha/").content.decode()
    owner_home = login_client(hidden.owner_a).get("/w/alpha/").content.decode()
    assert f"{PRIVATE_EMAIL}: admin" in owner_home
    assert f"{PRIVATE_EMAIL}: admin" not in member_home and "collab@alpha.test: read" in member_home


def test_another_workspaces_repository_page_is_invisible(hidden):
    bravo_repo = RepositoryFactory(workspace=hidden.b, name="bravo-repo")
    assert login_client(hidden.member_a).get(f"/w/alpha/repositories/{bravo_repo.pk}/").status_code == 404
