"""Group writes: members in PUT bodies, many members in one PATCH, member removal forms."""

from __future__ import annotations

from audit.models import AuditEvent
from tests.factories import MembershipFactory
from workspaces.models import Team

from .conftest import patch_body


def test_put_with_members_replaces_the_member_list(world, scim_a):
    gid = scim_a.post("Groups", {"displayName": "Ops", "members": [{"value": str(world.member_a.pk)}]}).json()["id"]
    r = scim_a.put(f"Groups/{gid}", {"displayName": "Ops", "members": [{"value": str(world.manager_a.pk)},
                                                                       {"value": str(world.collaborator_a.pk)}]})
    assert r.status_code == 200
    assert sorted(m["value"] for m in r.json()["members"]) == sorted([str(world.manager_a.pk), str(world.collaborator_a.pk)])


def test_many_members_are_added_in_one_patch_and_one_transaction(world, scim_a):
    many = [MembershipFactory(workspace=world.a, user__password="!") for _ in range(150)]
    gid = scim_a.post("Groups", {"displayName": "Everyone"}).json()["id"]
    r = scim_a.patch(f"Groups/{gid}", patch_body({"op": "add", "path": "members", "value": [{"value": str(m.pk)} for m in many]}))
    assert r.status_code == 204
    team = Team.objects.get(pk=gid)
    assert team.members.count() == 150 and team.version == 2  # one locked read-modify-write, one version bump
    assert AuditEvent.objects.filter(action="team.member_added", target_id=gid).count() == 150


def test_remove_with_an_or_filter_removes_exactly_those_members(world, scim_a):
    ids = [str(m.pk) for m in (world.member_a, world.manager_a, world.collaborator_a)]
    gid = scim_a.post("Groups", {"displayName": "Trio", "members": [{"value": i} for i in ids]}).json()["id"]
    r = scim_a.patch(f"Groups/{gid}", patch_body({"op": "remove", "path": f'members[value eq "{ids[0]}" or value eq "{ids[1]}"]'}))
    assert r.status_code == 204
    assert [str(pk) for pk in Team.objects.get(pk=gid).members.values_list("pk", flat=True)] == [ids[2]]


def test_remove_members_without_a_value_empties_the_group(world, scim_a):
    gid = scim_a.post("Groups", {"displayName": "Duo", "members": [{"value": str(world.member_a.pk)}]}).json()["id"]
    assert scim_a.patch(f"Groups/{gid}", patch_body({"op": "remove", "path": "members"})).status_code == 204
    assert Team.objects.get(pk=gid).members.count() == 0


def test_an_unsupported_group_path_is_400_not_a_silent_200(scim_a):
    gid = scim_a.post("Groups", {"displayName": "Strict"}).json()["id"]
    r = scim_a.patch(f"Groups/{gid}", patch_body({"op": "replace", "path": "members[value eq \"1\"].display", "value": "x"}))
    assert r.status_code == 400 and r.json()["scimType"] == "invalidPath"
    r = scim_a.patch(f"Groups/{gid}", patch_body({"op": "replace", "path": "description", "value": "x"}))
    assert r.status_code == 400 and r.json()["scimType"] == "invalidPath"


def test_a_stale_if_match_on_a_group_is_412(scim_a):
    created = scim_a.post("Groups", {"displayName": "Versioned"}).json()
    gid = created["id"]
    scim_a.patch(f"Groups/{gid}", patch_body({"op": "replace", "path": "displayName", "value": "V2"}))
    r = scim_a.patch(f"Groups/{gid}", patch_body({"op": "replace", "path": "displayName", "value": "V3"}),
                     if_match=created["meta"]["version"])
    assert r.status_code == 412 and Team.objects.get(pk=gid).name == "V2"
