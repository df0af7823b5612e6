"""Granting and revoking entitlements through the services a governance tool and an access review call."""

from __future__ import annotations

import pytest

from audit.models import AuditEvent
from audit.record import Actor
from tests.factories import MembershipFactory, RepositoryFactory, TeamFactory
from workspaces import selectors
from workspaces.exceptions import IdpOwned, LastOwnerError, NotAllowed, NotFound, ServiceError
from workspaces.models import RepositoryGrant, TeamMembership, TeamSource
from workspaces.services import actor_for_membership, entitlement_grant, entitlement_revoke

pytestmark = pytest.mark.django_db

KEY = Actor(kind="api_key", id="1", label="service key governance (gs_x)", auth_method="api_key")


def events(world) -> int:
    return AuditEvent.objects.filter(workspace=world.a).count()


def test_granting_a_role_changes_it_once_and_records_one_event(world):
    before = events(world)
    assert entitlement_grant(workspace=world.a, entitlement="role:manager", actor=KEY, member=world.member_a) is True
    world.member_a.refresh_from_db()
    assert world.member_a.role == "manager"
    assert events(world) == before + 1
    assert entitlement_grant(workspace=world.a, entitlement="role:manager", actor=KEY, member=world.member_a) is False
    assert events(world) == before + 1  # idempotent: no second event


def test_revoking_a_role_leaves_the_role_below_and_collaborator_cannot_be_revoked(world):
    assert entitlement_revoke(workspace=world.a, entitlement="role:manager", actor=KEY, member=world.manager_a)
    world.manager_a.refresh_from_db()
    assert world.manager_a.role == "member"
    assert entitlement_revoke(workspace=world.a, entitlement="role:manager", actor=KEY, member=world.manager_a) is False
    assert entitlement_revoke(workspace=world.a, entitlement="role:member", actor=KEY, member=world.manager_a)
    world.manager_a.refresh_from_db()
    assert world.manager_a.role == "collaborator"
    with pytest.raises(ServiceError, match="deactivate"):
        entitlement_revoke(workspace=world.a, entitlement="role:collaborator", actor=KEY, member=world.manager_a)


def test_the_last_active_owner_keeps_the_role(world):
    with pytest.raises(LastOwnerError):
        entitlement_revoke(workspace=world.a, entitlement="role:owner", actor=KEY, member=world.owner_a)
    world.owner_a.refresh_from_db()
    assert world.owner_a.role == "owner"


def test_a_person_acts_with_their_own_role(world):
    manager = actor_for_membership(world.manager_a, "api_key")
    with pytest.raises(NotAllowed):
        entitlement_grant(workspace=world.a, entitlement="role:owner", actor=manager, member=world.member_a)
    member = actor_for_membership(world.member_a, "api_key")
    team = TeamFactory(workspace=world.a)
    with pytest.raises(NotAllowed):
        entitlement_grant(workspace=world.a, entitlement=f"team:{team.pk}", actor=member, member=world.member_a)
    assert not TeamMembership.objects.filter(team=team).exists()


def test_team_membership_is_granted_and_revoked_idempotently(world):
    team = TeamFactory(workspace=world.a)
    ent = f"team:{team.pk}"
    assert entitlement_grant(workspace=world.a, entitlement=ent, actor=KEY, member=world.member_a)
    assert entitlement_grant(workspace=world.a, entitlement=ent, actor=KEY, member=world.member_a) is False
    assert entitlement_revoke(workspace=world.a, entitlement=ent, actor=KEY, member=world.member_a)
    assert entitlement_revoke(workspace=world.a, entitlement=ent, actor=KEY, member=world.member_a) is False


def test_a_repository_permission_replaces_the_holders_other_permission(world):
    repo = RepositoryFactory(workspace=world.a)
    team = TeamFactory(workspace=world.a)
    assert entitlement_grant(workspace=world.a, entitlement=f"repository:{repo.pk}:read", actor=KEY, team=team)
    assert entitlement_grant(workspace=world.a, entitlement=f"repository:{repo.pk}:write", actor=KEY, team=team)
    assert RepositoryGrant.objects.get(repository=repo, team=team).permission == "write"
    # Revoking the permission the team no longer holds changes nothing.
    assert entitlement_revoke(workspace=world.a, entitlement=f"repository:{repo.pk}:read", actor=KEY, team=team) is False
    assert entitlement_revoke(workspace=world.a, entitlement=f"repository:{repo.pk}:write", actor=KEY, team=team)
    assert not RepositoryGrant.objects.filter(repository=repo).exists()


def test_objects_of_another_workspace_are_not_found(world):
    team_b = TeamFactory(workspace=world.b)
    repo_b = RepositoryFactory(workspace=world.b)
    with pytest.raises(NotFound):
        entitlement_grant(workspace=world.a, entitlement=f"team:{team_b.pk}", actor=KEY, member=world.member_a)
    with pytest.raises(NotFound):
        entitlement_grant(workspace=world.a, entitlement=f"repository:{repo_b.pk}:read", actor=KEY, member=world.member_a)
    with pytest.raises(NotFound):
        entitlement_grant(workspace=world.a, entitlement="role:manager", actor=KEY, member=world.outsider_b)


@pytest.mark.parametrize("bad", ["", "role", "role:king", "team:abc", "team:0", "repository:1", "repository:1:own",
                                 "team:1:2", None, 12])
def test_malformed_entitlement_ids_are_refused_naming_the_forms(world, bad):
    with pytest.raises(ServiceError, match="role:<owner"):
        entitlement_grant(workspace=world.a, entitlement=bad, actor=KEY, member=world.member_a)


def test_a_role_the_idp_set_is_refused_naming_it_unless_the_workspace_allows_the_override(world):
    m = MembershipFactory(workspace=world.a, role="manager", scim_username="idp@alpha.test", role_from_idp=True)
    with pytest.raises(IdpOwned, match=r"identity provider \(SCIM\)") as exc:
        entitlement_revoke(workspace=world.a, entitlement="role:manager", actor=KEY, member=m)
    assert exc.value.owner == "SCIM"
    world.a.api_may_override_idp = True
    world.a.save()
    m.workspace = world.a
    assert entitlement_revoke(workspace=world.a, entitlement="role:manager", actor=KEY, member=m)
    m.refresh_from_db()
    assert (m.role, m.role_from_idp) == ("member", False)


def test_a_team_pushed_by_scim_takes_no_members_from_anyone_else(world):
    team = TeamFactory(workspace=world.a, scim_managed=True)
    pushed = MembershipFactory(workspace=world.a, scim_username="p@alpha.test")
    TeamMembership.objects.create(team=team, membership=pushed, source=TeamSource.SCIM)
    with pytest.raises(IdpOwned, match="SCIM group push"):
        entitlement_grant(workspace=world.a, entitlement=f"team:{team.pk}", actor=KEY, member=world.member_a)
    with pytest.raises(IdpOwned, match="SCIM group"):
        entitlement_revoke(workspace=world.a, entitlement=f"team:{team.pk}", actor=KEY, member=pushed)
    owner = actor_for_membership(world.owner_a, "password")
    with pytest.raises(IdpOwned):  # the same rule in the portal
        entitlement_grant(workspace=world.a, entitlement=f"team:{team.pk}", actor=owner, member=world.member_a)
    assert list(TeamMembership.objects.filter(team=team).values_list("membership_id", flat=True)) == [pushed.pk]


def test_grants_list_names_each_source(world):
    team = TeamFactory(workspace=world.a, scim_managed=True)
    pushed = MembershipFactory(workspace=world.a, scim_username="p@alpha.test", role_from_idp=True)
    TeamMembership.objects.create(team=team, membership=pushed, source=TeamSource.SCIM)
    rows, more = selectors.grants_page(workspace=world.a, viewer=None, after=None, limit=100, member_id=pushed.pk)
    assert not more
    assert [(r.entitlement, r.source, bool(r.idp_owned)) for r in rows] == [
        ("role:member", "idp_role", True), (f"team:{team.pk}", "scim_group", True),
    ]
