"""Group sync at every SSO login: mapped teams follow the asserted groups, roles follow the highest priority."""

from __future__ import annotations

from django.test import Client

from audit.models import AuditEvent
from saml import services
from saml.models import GroupMapping
from tests.factories import TeamFactory
from workspaces.models import TeamMembership, TeamSource
from workspaces.services import actor_for_membership, team_add_member

from .conftest import post_acs, start_login


def _owner(world):
    return actor_for_membership(world.owner_a, "password")


def _login(sso, email: str, groups: tuple[str, ...], slug: str = "alpha"):
    client = Client()
    rid = start_login(client, slug)
    response = post_acs(client, slug, sso.response(name_id=email, in_response_to=rid, groups=groups))
    assert response.status_code == 302, response.content[:500]
    return client


def _enable(world, sso):
    services.group_sync_set(workspace=world.a, actor=_owner(world), enabled=True)


def _teams(membership) -> set[str]:
    return set(TeamMembership.objects.filter(membership=membership).values_list("team__name", flat=True))


def test_asserted_groups_put_the_member_in_mapped_teams(world, sso_a):
    eng = TeamFactory(workspace=world.a, name="Engineering")
    services.group_mapping_create(workspace=world.a, actor=_owner(world), idp_group="eng", team=eng)
    _enable(world, sso_a)
    _login(sso_a, "member@alpha.test", ("eng", "unmapped"))
    assert _teams(world.member_a) == {"Engineering"}
    tm = TeamMembership.objects.get(membership=world.member_a, team=eng)
    assert tm.source == TeamSource.SAML
    event = AuditEvent.objects.get(action="team.member_added", target_label="Engineering")
    assert event.auth_method == "saml" and event.details["source"] == "saml"


def test_a_mapping_can_create_its_team(world, sso_a):
    services.group_mapping_create(workspace=world.a, actor=_owner(world), idp_group="ops", new_team_name="Operations")
    _enable(world, sso_a)
    _login(sso_a, "member@alpha.test", ("ops",))
    assert _teams(world.member_a) == {"Operations"}
    assert AuditEvent.objects.filter(action="team.created", target_label="Operations").exists()


def test_member_leaves_a_mapped_team_whose_group_is_no_longer_asserted(world, sso_a):
    eng = TeamFactory(workspace=world.a, name="Engineering")
    services.group_mapping_create(workspace=world.a, actor=_owner(world), idp_group="eng", team=eng)
    _enable(world, sso_a)
    _login(sso_a, "member@alpha.test", ("eng",))
    _login(sso_a, "member@alpha.test", ())
    assert _teams(world.member_a) == set()
    assert AuditEvent.objects.filter(action="team.member_removed", target_label="Engineering").exists()


def test_teams_without_a_mapping_are_never_touched(world, sso_a):
    manual = TeamFactory(workspace=world.a, name="Book club")
    team_add_member(team=manual, membership=world.member_a, actor=_owner(world))
    _enable(world, sso_a)
    _login(sso_a, "member@alpha.test", ())
    assert _teams(world.member_a) == {"Book club"}


def test_group_sync_off_changes_nothing(world, sso_a):
    eng = TeamFactory(workspace=world.a, name="Engineering")
    services.group_mapping_create(workspace=world.a, actor=_owner(world), idp_group="eng", team=eng)
    _login(sso_a, "member@alpha.test", ("eng",))
    assert _teams(world.member_a) == set()


def test_highest_priority_role_mapping_wins(world, sso_a):
    services.group_mapping_create(workspace=world.a, actor=_owner(world), idp_group="staff", role="collaborator", priority=1)
    services.group_mapping_create(workspace=world.a, actor=_owner(world), idp_group="leads", role="manager", priority=10)
    _enable(world, sso_a)
    _login(sso_a, "member@alpha.test", ("staff", "leads"))
    world.member_a.refresh_from_db()
    assert world.member_a.role == "manager"
    assert AuditEvent.objects.filter(action="member.role_changed", target_label="member@alpha.test").exists()


def test_role_given_by_the_idp_goes_back_to_the_default_when_the_group_is_gone(world, sso_a):
    services.group_mapping_create(workspace=world.a, actor=_owner(world), idp_group="leads", role="manager")
    _enable(world, sso_a)
    _login(sso_a, "member@alpha.test", ("leads",))
    _login(sso_a, "member@alpha.test", ())
    world.member_a.refresh_from_db()
    assert world.member_a.role == world.a.default_role


def test_an_owner_made_outside_the_idp_is_never_demoted(world, sso_a):
    services.group_mapping_create(workspace=world.a, actor=_owner(world), idp_group="staff", role="collaborator")
    _enable(world, sso_a)
    _login(sso_a, "owner@alpha.test", ("staff",))
    world.owner_a.refresh_from_db()
    assert world.owner_a.role == "owner"


def test_group_sync_never_grants_owner_unless_the_workspace_allows_it(world, sso_a):
    GroupMapping.objects.create(workspace=world.a, idp_group="admins", role="owner", priority=5)  # older policy
    _enable(world, sso_a)
    _login(sso_a, "member@alpha.test", ("admins",))
    world.member_a.refresh_from_db()
    assert world.member_a.role == "member"
    assert AuditEvent.objects.filter(action="sso.group_sync_skipped").exists()


def test_owner_mapping_is_refused_when_the_workspace_does_not_allow_it(world, sso_a):
    import pytest

    from workspaces.exceptions import NotAllowed

    with pytest.raises(NotAllowed):
        services.group_mapping_create(workspace=world.a, actor=_owner(world), idp_group="admins", role="owner")


def test_group_sync_grants_owner_when_the_workspace_lets_the_idp_grant_it(world, sso_a):
    type(world.a).objects.filter(pk=world.a.pk).update(scim_may_grant_owner=True)
    world.a.refresh_from_db()
    services.group_mapping_create(workspace=world.a, actor=_owner(world), idp_group="admins", role="owner")
    _enable(world, sso_a)
    _login(sso_a, "member@alpha.test", ("admins",))
    world.member_a.refresh_from_db()
    assert world.member_a.role == "owner"
    assert not AuditEvent.objects.filter(action="sso.group_sync_skipped").exists()


def test_group_sync_in_b_never_touches_a_team_of_a(world, sso_a, sso_b):
    eng_a = TeamFactory(workspace=world.a, name="Engineering")
    services.group_mapping_create(workspace=world.a, actor=_owner(world), idp_group="eng", team=eng_a)
    services.group_sync_set(workspace=world.a, actor=_owner(world), enabled=True)
    services.group_sync_set(workspace=world.b, actor=actor_for_membership(world.outsider_b, "password"), enabled=True)
    _login(sso_b, "owner@bravo.test", ("eng",), slug="bravo")
    assert not TeamMembership.objects.filter(team=eng_a).exists()


def test_mapping_to_a_team_of_another_workspace_is_refused(world, sso_a, sso_b):
    import pytest

    from workspaces.exceptions import ServiceError

    eng_b = TeamFactory(workspace=world.b, name="Engineering")
    with pytest.raises(ServiceError):
        services.group_mapping_create(workspace=world.a, actor=_owner(world), idp_group="eng", team=eng_b)
