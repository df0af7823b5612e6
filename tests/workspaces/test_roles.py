"""Last-Owner protection and role changes, enforced in services and reachable through the UI.

The capability matrix itself, cell by cell, is pinned in tests/security/test_role_layers.py.
"""

from __future__ import annotations

import pytest

from audit.models import AuditEvent
from tests.conftest import login_client
from tests.factories import MembershipFactory, RepositoryFactory, TeamFactory
from workspaces import selectors, services
from workspaces.exceptions import LastOwnerError, NotAllowed
from workspaces.models import User
from workspaces.roles import Role
from workspaces.services import actor_for_membership


def as_(m):
    return actor_for_membership(m, "password")


def test_creating_a_workspace_makes_its_creator_owner(db):
    user = User.objects.create_user("founder@example.test", "pw-long-enough-1")
    ws = services.workspace_create(slug="new-co", name="New Co", owner=user, actor=_system())
    m = ws.memberships.get()
    assert (m.user, m.role) == (user, Role.OWNER)


def _system():
    from audit.record import Actor

    return Actor.system("test")


def test_owner_can_make_an_owner(world):
    services.membership_change_role(membership=world.member_a, role=Role.OWNER, actor=as_(world.owner_a))
    world.member_a.refresh_from_db()
    assert world.member_a.role == Role.OWNER


def test_manager_cannot_make_an_owner(world):
    with pytest.raises(NotAllowed):
        services.membership_change_role(membership=world.member_a, role=Role.OWNER, actor=as_(world.manager_a))
    world.member_a.refresh_from_db()
    assert world.member_a.role == Role.MEMBER


def test_manager_cannot_demote_an_owner(world):
    MembershipFactory(workspace=world.a, role=Role.OWNER)  # not the last one: only the rule stops it
    with pytest.raises(NotAllowed):
        services.membership_change_role(membership=world.owner_a, role=Role.MEMBER, actor=as_(world.manager_a))


def test_manager_can_move_members_among_lower_roles(world):
    services.membership_change_role(membership=world.member_a, role=Role.COLLABORATOR, actor=as_(world.manager_a))
    world.member_a.refresh_from_db()
    assert world.member_a.role == Role.COLLABORATOR


def test_member_cannot_change_roles(world):
    with pytest.raises(NotAllowed):
        services.membership_change_role(membership=world.collaborator_a, role=Role.MEMBER, actor=as_(world.member_a))


def test_member_of_another_workspace_cannot_act_here(world):
    with pytest.raises(NotAllowed):
        services.membership_change_role(membership=world.member_a, role=Role.MANAGER, actor=as_(world.outsider_b))


@pytest.mark.parametrize(
    "change",
    [
        lambda w: services.membership_change_role(membership=w.owner_a, role=Role.MANAGER, actor=as_(w.owner_a)),
        lambda w: services.membership_deactivate(membership=w.owner_a, actor=as_(w.owner_a)),
        lambda w: services.membership_remove(membership=w.owner_a, actor=as_(w.owner_a)),
    ],
    ids=["demote", "deactivate", "remove"],
)
def test_last_active_owner_cannot_be_demoted_deactivated_or_removed(world, change):
    events_before = AuditEvent.objects.count()
    with pytest.raises(LastOwnerError):
        change(world)
    world.owner_a.refresh_from_db()
    assert (world.owner_a.role, world.owner_a.is_active) == (Role.OWNER, True)
    assert AuditEvent.objects.count() == events_before


def test_an_inactive_second_owner_does_not_count_as_another_owner(world):
    MembershipFactory(workspace=world.a, role=Role.OWNER, is_active=False)
    with pytest.raises(LastOwnerError):
        services.membership_change_role(membership=world.owner_a, role=Role.MEMBER, actor=as_(world.owner_a))


def test_an_owner_can_step_down_when_another_active_owner_exists(world):
    other = MembershipFactory(workspace=world.a, role=Role.OWNER)
    services.membership_change_role(membership=world.owner_a, role=Role.MEMBER, actor=as_(other))
    world.owner_a.refresh_from_db()
    assert world.owner_a.role == Role.MEMBER


def test_collaborator_sees_only_itself_and_repositories_granted_to_it_directly(world):
    granted = RepositoryFactory(workspace=world.a, name="granted")
    RepositoryFactory(workspace=world.a, name="not-granted")
    team = TeamFactory(workspace=world.a)
    via_team = RepositoryFactory(workspace=world.a, name="via-team")
    owner = as_(world.owner_a)
    services.team_add_member(team=team, membership=world.collaborator_a, actor=owner)
    services.repository_grant(repository=granted, membership=world.collaborator_a, permission="read", actor=owner)
    services.repository_grant(repository=via_team, team=team, permission="read", actor=owner)

    assert [r.name for r in selectors.repositories_visible_to(world.collaborator_a)] == ["granted"]
    assert list(selectors.members_visible_to(world.collaborator_a)) == [world.collaborator_a]
    assert list(selectors.teams_visible_to(world.collaborator_a)) == []


def test_member_sees_public_members_and_itself_but_not_private_ones(world):
    visible = {m.email for m in selectors.members_visible_to(world.member_a)}
    assert "private@alpha.test" not in visible
    assert {"member@alpha.test", "owner@alpha.test", "collab@alpha.test"} <= visible
    assert "owner@bravo.test" not in visible


def test_manager_sees_private_members(world):
    assert "private@alpha.test" in {m.email for m in selectors.members_visible_to(world.manager_a)}


# ----------------------------------------------------------------------------- through the UI


def test_ui_refuses_a_manager_making_an_owner_and_says_why(world):
    client = login_client(world.manager_a)
    response = client.post(f"/w/alpha/members/{world.member_a.pk}/", {"action": "role", "role": "owner"})
    assert response.status_code == 200
    assert "Only Owners can make Owners" in response.content.decode()
    world.member_a.refresh_from_db()
    assert world.member_a.role == Role.MEMBER


def test_ui_refuses_demoting_the_last_owner_and_says_what_to_do(world):
    client = login_client(world.owner_a)
    response = client.post(f"/w/alpha/members/{world.owner_a.pk}/", {"action": "role", "role": "member"})
    assert "Make another member Owner first" in response.content.decode()
    world.owner_a.refresh_from_db()
    assert world.owner_a.role == Role.OWNER


def test_ui_lets_an_owner_change_a_role(world):
    client = login_client(world.owner_a)
    response = client.post(f"/w/alpha/members/{world.member_a.pk}/", {"action": "role", "role": "manager"}, follow=True)
    assert "Role changed." in response.content.decode()
    world.member_a.refresh_from_db()
    assert world.member_a.role == Role.MANAGER


def test_member_page_has_no_role_form_for_a_member_and_posting_anyway_changes_nothing(world):
    client = login_client(world.member_a)
    page = client.get(f"/w/alpha/members/{world.collaborator_a.pk}/")
    assert page.status_code == 200
    assert "Save role" not in page.content.decode()
    client.post(f"/w/alpha/members/{world.collaborator_a.pk}/", {"action": "role", "role": "manager"})
    world.collaborator_a.refresh_from_db()
    assert world.collaborator_a.role == Role.COLLABORATOR
