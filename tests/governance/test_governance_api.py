"""The connector API as a governance tool uses it: entitlements, grants with their source, grant and revoke,
deactivate and reactivate. Through HTTP with real keys, on the real database."""

from __future__ import annotations

import pytest

from audit.models import AuditEvent
from tests.api.conftest import ApiClient, all_pages, personal_key, service_key
from tests.factories import MembershipFactory, RepositoryFactory, TeamFactory
from workspaces.models import Membership, RepositoryGrant, TeamMembership, TeamSource

pytestmark = pytest.mark.django_db

ALL_WRITE = ["grants:read", "roles:write", "teams:write", "repositories:write", "members:write"]


def url(world, tail: str = "", ws=None) -> str:
    return f"/api/v1/workspaces/{(ws or world.a).slug}/{tail}"


def governance(world, scopes=ALL_WRITE) -> ApiClient:
    return ApiClient(service_key(world.a, scopes, name="governance"))


def events(world, action: str | None = None) -> list[AuditEvent]:
    qs = AuditEvent.objects.filter(workspace=world.a)
    return list(qs.filter(action=action) if action else qs)


# ----------------------------------------------------------------------------- reading


def test_entitlements_list_roles_teams_and_each_repository_permission_by_stable_id(world):
    team = TeamFactory(workspace=world.a, name="Platform")
    repo = RepositoryFactory(workspace=world.a, name="app")
    TeamFactory(workspace=world.b)
    ids = [e["id"] for e in all_pages(governance(world), url(world, "entitlements/"), page_size=2)]
    assert ids == ["role:owner", "role:manager", "role:member", "role:collaborator", f"team:{team.pk}",
                   f"repository:{repo.pk}:read", f"repository:{repo.pk}:write", f"repository:{repo.pk}:admin"]
    only_teams = governance(world).get(url(world, "entitlements/"), kind="team").json()["results"]
    assert only_teams == [{"id": f"team:{team.pk}", "kind": "team", "value": "member", "label": "Member of team Platform",
                           "resource": {"type": "team", "id": team.pk, "name": "Platform"}, "idp_owned": None}]


def test_grants_name_holder_and_source(world):
    team = TeamFactory(workspace=world.a, scim_managed=True)
    TeamMembership.objects.create(team=team, membership=world.member_a, source=TeamSource.SCIM)
    repo = RepositoryFactory(workspace=world.a, name="app")
    RepositoryGrant.objects.create(repository=repo, team=team, permission="write")
    grants = all_pages(governance(world), url(world, "grants/"))
    assert [g["entitlement"] for g in grants if g["principal"]["id"] == world.member_a.pk
            and g["principal"]["type"] == "member"] == ["role:member", f"team:{team.pk}"]
    team_grant = next(g for g in grants if g["kind"] == "team")
    assert team_grant["source"] == "scim_group"
    assert "SCIM group" in team_grant["idp_owned"]  # pushed by the IdP: only it removes the member
    repo_grant = next(g for g in grants if g["kind"] == "repository")
    assert repo_grant["principal"] == {"type": "team", "id": team.pk, "label": team.name, "active": None}
    assert repo_grant["id"] == f"repository:{repo.pk}:write/team:{team.pk}"
    holders = governance(world).get(url(world, "grants/"), entitlement="role:owner").json()["results"]
    assert [g["principal"]["label"] for g in holders] == ["owner@alpha.test"]


def test_a_grant_walk_lists_every_stable_grant_once_while_grants_change(world):
    for i in range(30):
        MembershipFactory(workspace=world.a, user__email=f"m{i:02}@alpha.test")
    client = governance(world)
    first = client.get(url(world, "grants/"), page_size=10).json()
    seen = [g["id"] for g in first["results"]]
    # Mid-walk: a member who was already listed and one not yet listed leave; a new member arrives.
    listed = Membership.objects.get(pk=first["results"][0]["principal"]["id"])
    later = Membership.objects.filter(workspace=world.a).order_by("-pk").first()
    later_id = later.pk
    later.delete()
    MembershipFactory(workspace=world.a, user__email="new@alpha.test")
    response = client.client.get(first["next"], headers=client.headers)
    while True:
        body = response.json()
        seen += [g["id"] for g in body["results"]]
        if not body["next"]:
            break
        response = client.client.get(body["next"], headers=client.headers)
    assert len(seen) == len(set(seen))
    stable = set(Membership.objects.filter(workspace=world.a).exclude(user__email="new@alpha.test").values_list("pk", flat=True))
    role_holders = {int(g.split("member:")[1]) for g in seen if g.startswith("role:")}
    assert stable | {listed.pk} <= role_holders and later_id not in role_holders


def test_a_member_key_sees_only_the_grants_it_may_see(world):
    client = ApiClient(personal_key(world.member_a))
    grants = all_pages(client, url(world, "grants/"))
    labels = {g["principal"]["label"] for g in grants}
    assert "private@alpha.test" not in labels and "member@alpha.test" in labels
    collaborator = ApiClient(personal_key(world.collaborator_a))
    assert {g["principal"]["label"] for g in all_pages(collaborator, url(world, "grants/"))} == {"collab@alpha.test"}


@pytest.mark.parametrize("params,field", [
    ({"entitlement": "role:king"}, "entitlement"), ({"cursor": "garbage"}, "cursor"), ({"page_size": "0"}, "page_size"),
    ({"member": "x"}, "member"), ({"kind": "group"}, "kind"),
])
def test_bad_filters_are_400_naming_the_parameter(world, params, field):
    response = governance(world).get(url(world, "grants/"), **params)
    assert response.status_code == 400
    assert field in response.json()["errors"]


def test_a_key_without_grants_read_cannot_list_grants(world):
    response = ApiClient(service_key(world.a, ["members:read"])).get(url(world, "grants/"))
    assert response.status_code == 403
    assert "grants:read" in response.json()["detail"]


# ----------------------------------------------------------------------------- provisioning


def test_grant_is_201_then_200_with_no_second_event_and_the_key_is_the_actor(world):
    team = TeamFactory(workspace=world.a)
    client = governance(world)
    body = {"entitlement": f"team:{team.pk}", "member": world.member_a.pk}
    first = client.post(url(world, "grants/"), body)
    assert first.status_code == 201, first.content
    assert first.json()["changed"] is True
    assert first.json()["grant"]["id"] == f"team:{team.pk}/member:{world.member_a.pk}"
    again = client.post(url(world, "grants/"), body)
    assert again.status_code == 200 and again.json()["changed"] is False
    added = events(world, "team.member_added")
    assert len(added) == 1
    assert added[0].actor_kind == "api_key" and "governance" in added[0].actor_label
    revoked = client.post(url(world, "grants/revoke/"), body)
    assert revoked.status_code == 200 and revoked.json() == {"changed": True, "grant": None}
    assert client.post(url(world, "grants/revoke/"), body).json()["changed"] is False
    assert len(events(world, "team.member_removed")) == 1


def test_role_and_repository_grants_change_what_the_member_holds(world):
    repo = RepositoryFactory(workspace=world.a)
    client = governance(world)
    assert client.post(url(world, "grants/"), {"entitlement": "role:manager", "member": world.member_a.pk}).status_code == 201
    assert client.post(url(world, "grants/"), {"entitlement": f"repository:{repo.pk}:admin",
                                               "member": world.member_a.pk}).status_code == 201
    world.member_a.refresh_from_db()
    assert world.member_a.role == "manager"
    assert RepositoryGrant.objects.get(repository=repo, membership=world.member_a).permission == "admin"


@pytest.mark.parametrize("scopes,body_of,missing", [
    (["teams:write"], lambda w, t: {"entitlement": "role:manager", "member": w.member_a.pk}, "roles:write"),
    (["roles:write"], lambda w, t: {"entitlement": f"team:{t.pk}", "member": w.member_a.pk}, "teams:write"),
    (["roles:write"], lambda w, t: {"entitlement": "role:owner", "member": w.member_a.pk}, "owners:write"),
    (["roles:write"], lambda w, t: {"entitlement": "role:member", "member": w.owner_a.pk}, "owners:write"),
    (["grants:read"], lambda w, t: {"entitlement": "role:manager", "member": w.member_a.pk}, "roles:write"),
])
def test_a_key_provisions_only_the_kinds_its_scopes_name(world, scopes, body_of, missing):
    team = TeamFactory(workspace=world.a)
    client = ApiClient(service_key(world.a, scopes))
    before = len(events(world))
    response = client.post(url(world, "grants/"), body_of(world, team))
    assert response.status_code == 403
    assert missing in response.json()["detail"]
    assert len(events(world)) == before


def test_personal_keys_act_with_their_members_role_as_in_the_portal(world):
    manager = ApiClient(personal_key(world.manager_a))
    response = manager.post(url(world, "grants/"), {"entitlement": "role:owner", "member": world.member_a.pk})
    assert response.status_code == 403 and response.json()["code"] == "forbidden"
    assert manager.post(url(world, "grants/"), {"entitlement": "role:collaborator",
                                                "member": world.member_a.pk}).status_code == 201
    member = ApiClient(personal_key(world.member_a))
    response = member.post(url(world, "grants/"), {"entitlement": "role:manager", "member": world.member_a.pk})
    assert response.status_code == 403
    world.member_a.refresh_from_db()
    assert world.member_a.role == "collaborator"


def test_the_last_active_owner_is_kept(world):
    client = governance(world, [*ALL_WRITE, "owners:write"])
    response = client.post(url(world, "grants/revoke/"), {"entitlement": "role:owner", "member": world.owner_a.pk})
    assert response.status_code == 409 and response.json()["code"] == "last_owner"
    response = client.post(url(world, f"members/{world.owner_a.pk}/deactivate/"), {})
    assert response.status_code == 409
    world.owner_a.refresh_from_db()
    assert (world.owner_a.role, world.owner_a.is_active) == ("owner", True)


def test_what_the_idp_owns_is_refused_naming_it_unless_the_workspace_allows_the_override(world):
    managed = MembershipFactory(workspace=world.a, role="manager", scim_username="m@alpha.test", role_from_idp=True)
    client = governance(world)
    body = {"entitlement": "role:manager", "member": managed.pk}
    response = client.post(url(world, "grants/revoke/"), body)
    assert response.status_code == 403
    assert response.json()["code"] == "idp_owned" and response.json()["owner"] == "SCIM"
    assert "identity provider" in response.json()["detail"]
    world.a.api_may_override_idp = True
    world.a.save(update_fields=["api_may_override_idp"])
    assert client.post(url(world, "grants/revoke/"), body).json()["changed"] is True


def test_deactivation_takes_effect_at_once_and_is_idempotent(world):
    victim_key = ApiClient(personal_key(world.member_a))
    assert victim_key.get(url(world)).status_code == 200
    client = governance(world)
    response = client.post(url(world, f"members/{world.member_a.pk}/deactivate/"), {"reason": "access review"})
    assert response.status_code == 200
    assert response.json()["changed"] is True and response.json()["member"]["active"] is False
    assert victim_key.get(url(world)).status_code in (401, 403)
    assert client.post(url(world, f"members/{world.member_a.pk}/deactivate/"), {}).json()["changed"] is False
    assert len(events(world, "member.deactivated")) == 1
    again = client.post(url(world, f"members/{world.member_a.pk}/reactivate/"), {})
    assert again.json()["changed"] is True and again.json()["member"]["active"] is True


def test_other_workspaces_objects_are_404_and_their_keys_401(world):
    client = governance(world)
    team_b = TeamFactory(workspace=world.b)
    assert client.post(url(world, "grants/"), {"entitlement": "role:manager",
                                               "member": world.outsider_b.pk}).status_code == 404
    assert client.post(url(world, "grants/"), {"entitlement": f"team:{team_b.pk}",
                                               "member": world.member_a.pk}).status_code == 404
    assert client.post(url(world, f"members/{world.outsider_b.pk}/deactivate/"), {}).status_code == 404
    assert client.get(url(world, "grants/", ws=world.b)).status_code == 401
    world.outsider_b.refresh_from_db()
    assert world.outsider_b.is_active and world.outsider_b.role == "owner"


@pytest.mark.parametrize("body", [
    {}, {"entitlement": "role:manager"}, {"entitlement": "role:manager", "member": 1, "team": 1},
    {"entitlement": "nope", "member": 1}, {"entitlement": 5, "member": 1}, {"entitlement": "role:member", "member": "x"},
    {"entitlement": "role:member", "member": 2**70},
])
def test_malformed_bodies_are_400(world, body):
    response = governance(world).post(url(world, "grants/"), body)
    assert response.status_code == 400, response.content
    assert response.json()["errors"]


def test_a_team_cannot_hold_a_role(world):
    team = TeamFactory(workspace=world.a)
    response = governance(world).post(url(world, "grants/"), {"entitlement": "role:manager", "team": team.pk})
    assert response.status_code == 400


def test_a_governance_service_key_can_be_created_from_the_command_line(world):
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("create_api_key", "alpha", "--service", "--name", "governance", "--scope", "grants:read",
                 "--scope", "teams:write", stdout=out, stderr=StringIO())
    client = ApiClient(out.getvalue().strip())
    assert client.get(url(world, "grants/")).status_code == 200
    response = client.post(url(world, "grants/"), {"entitlement": "role:manager", "member": world.member_a.pk})
    assert response.status_code == 403 and "roles:write" in response.json()["detail"]
