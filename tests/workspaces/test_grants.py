"""The one invariant: a workspace page opens only with a live grant for that workspace and an active membership."""

from __future__ import annotations

import time

import pytest
from django.test import Client

from tests.conftest import login_client
from tests.factories import MembershipFactory, RepositoryFactory, TeamFactory, verified_domain
from workspaces import services
from workspaces.access import SESSION_KEY, GrantMethod
from workspaces.models import Workspace
from workspaces.services import actor_for_membership


@pytest.fixture
def owner_of_a_member_of_b(world):
    """One person: Owner of workspace A, Member of workspace B."""
    MembershipFactory(workspace=world.b, user=world.owner_a.user, role="member")
    return world.owner_a


def test_session_holding_only_bs_grant_is_refused_on_as_pages(world, owner_of_a_member_of_b):
    client = login_client(owner_of_a_member_of_b, world.b)
    assert client.get("/w/bravo/").status_code == 200
    response = client.get("/w/alpha/")
    assert response.status_code == 403
    assert "has not signed in to this workspace" in response.content.decode()
    for path in ("/w/alpha/api-keys/", f"/w/alpha/members/{world.member_a.pk}/", "/w/alpha/audit/"):
        assert client.get(path).status_code == 403, path


def test_password_login_grants_every_workspace_that_allows_passwords(world, owner_of_a_member_of_b, password):
    client = Client()
    response = client.post("/login/", {"email": "OWNER@alpha.test", "password": password})
    assert response.status_code == 302
    assert client.get("/w/alpha/").status_code == 200
    assert client.get("/w/bravo/").status_code == 200


def test_password_login_does_not_grant_a_saml_only_workspace(world, owner_of_a_member_of_b, password):
    Workspace.objects.filter(pk=world.b.pk).update(saml_only=True)
    client = Client()
    client.post("/login/", {"email": "owner@alpha.test", "password": password})
    assert client.get("/w/alpha/").status_code == 200
    response = client.get("/w/bravo/")
    assert response.status_code == 403
    assert "Log in with SSO" in response.content.decode()


def test_password_login_is_refused_when_every_workspace_is_saml_only(world, password):
    Workspace.objects.filter(pk=world.a.pk).update(saml_only=True)
    response = Client().post("/login/", {"email": "member@alpha.test", "password": password})
    assert response.status_code == 200
    assert "requires single sign-on" in response.content.decode()


def test_turning_on_saml_only_ends_existing_password_sessions(world):
    client = login_client(world.member_a)
    assert client.get("/w/alpha/").status_code == 200
    Workspace.objects.filter(pk=world.a.pk).update(saml_only=True)
    assert client.get("/w/alpha/").status_code == 403


def test_saml_grant_still_opens_a_saml_only_workspace(world):
    Workspace.objects.filter(pk=world.a.pk).update(saml_only=True)
    client = login_client(world.member_a, method=GrantMethod.SAML)
    assert client.get("/w/alpha/").status_code == 200


def test_deactivated_member_is_refused_on_the_next_request(world):
    client = login_client(world.member_a)
    assert client.get("/w/alpha/").status_code == 200
    services.membership_deactivate(membership=world.member_a, actor=actor_for_membership(world.owner_a, "password"))
    response = client.get("/w/alpha/")
    assert response.status_code == 403
    assert "deactivated" in response.content.decode()


def test_reactivation_does_not_revive_a_session_issued_before_deactivation(world):
    client = login_client(world.member_a)
    owner = actor_for_membership(world.owner_a, "password")
    services.membership_deactivate(membership=world.member_a, actor=owner)
    services.membership_reactivate(membership=world.member_a, actor=owner)
    assert client.get("/w/alpha/").status_code == 403


def test_disabled_global_account_is_signed_out(world):
    client = login_client(world.member_a)
    world.member_a.user.is_active = False
    world.member_a.user.save()
    response = client.get("/w/alpha/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_expired_grant_is_refused(world):
    client = login_client(world.member_a)
    session = client.session
    grants = session[SESSION_KEY]
    grants[str(world.a.pk)]["exp"] = time.time() - 1
    session[SESSION_KEY] = grants
    session.save()
    assert client.get("/w/alpha/").status_code == 403


def test_outsider_gets_404_for_a_workspace_they_do_not_belong_to(world):
    client = login_client(world.outsider_b)
    assert client.get("/w/alpha/").status_code == 404


def test_anonymous_visitor_is_sent_to_login_with_next(world):
    response = Client().get("/w/alpha/")
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=%2Fw%2Falpha%2F"


def test_login_next_parameter_ignores_other_hosts(world, password):
    response = Client().post("/login/", {"email": "member@alpha.test", "password": password, "next": "https://evil.test/"})
    assert response["Location"] == "/w/alpha/"


# ----------------------------------------------------------------------------- cross-workspace ids


def test_ids_of_workspace_b_objects_are_404_under_workspace_as_url(world):
    b_team = TeamFactory(workspace=world.b)
    b_repo = RepositoryFactory(workspace=world.b)
    client = login_client(world.owner_a)
    assert client.get(f"/w/alpha/members/{world.outsider_b.pk}/").status_code == 404
    assert client.get(f"/w/alpha/teams/{b_team.pk}/").status_code == 404
    assert client.get(f"/w/alpha/repositories/{b_repo.pk}/").status_code == 404
    response = client.post(f"/w/alpha/members/{world.outsider_b.pk}/", {"action": "deactivate", "confirmed": "yes"})
    assert response.status_code == 404
    world.outsider_b.refresh_from_db()
    assert world.outsider_b.is_active


def test_the_same_ids_open_under_their_own_workspace(world):
    b_team = TeamFactory(workspace=world.b)
    client = login_client(world.outsider_b)
    assert client.get(f"/w/bravo/members/{world.outsider_b.pk}/").status_code == 200
    assert client.get(f"/w/bravo/teams/{b_team.pk}/").status_code == 200


def test_a_member_cannot_open_a_private_members_page(world):
    client = login_client(world.member_a)
    assert client.get(f"/w/alpha/members/{world.private_member_a.pk}/").status_code == 404
    assert client.get(f"/w/alpha/members/{world.member_a.pk}/").status_code == 200


def test_a_grant_from_a_removed_membership_does_not_open_a_new_one(world):
    client = login_client(world.member_a)
    owner = actor_for_membership(world.owner_a, "password")
    services.membership_remove(membership=world.member_a, actor=owner)
    # Re-added directly, as when the workspace has verified the email's domain; otherwise an account with a password
    # of its own waits for the person's consent (tests/workspaces/test_consent.py).
    verified_domain(world.a, "alpha.test")
    services.membership_add(workspace=world.a, email="member@alpha.test", actor=owner)
    response = client.get("/w/alpha/")
    assert response.status_code == 403
    assert "predates your current membership" in response.content.decode()
