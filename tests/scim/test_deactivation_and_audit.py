"""Deactivation through SCIM takes effect at commit; every SCIM change is audited with its credential."""

from __future__ import annotations

import pytest

from audit.models import AuditEvent
from tests.conftest import login_client
from workspaces.models import ApiKey, Membership
from workspaces.services import actor_for_membership, api_key_create

from .conftest import okta_user, patch_body


def _deactivate_by(scim_a, member, how: str, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        if how == "patch":
            r = scim_a.patch(f"Users/{member.pk}", patch_body({"op": "replace", "value": {"active": False}}))
        elif how == "put":
            r = scim_a.put(f"Users/{member.pk}", {"userName": member.user.email, "active": False})
        else:
            r = scim_a.delete(f"Users/{member.pk}")
    assert r.status_code in (200, 204), r.content
    return callbacks


@pytest.mark.parametrize("how", ["patch", "put", "delete"])
def test_deactivated_member_is_refused_on_next_web_request(world, scim_a, how, django_capture_on_commit_callbacks):
    web = login_client(world.member_a)
    assert web.get(f"/w/{world.a.slug}/").status_code == 200
    _deactivate_by(scim_a, world.member_a, how, django_capture_on_commit_callbacks)
    assert web.get(f"/w/{world.a.slug}/").status_code == 403
    assert Membership.objects.get(pk=world.member_a.pk).is_active is False


@pytest.mark.parametrize("how", ["patch", "put", "delete"])
def test_deactivation_queues_credential_revocation_that_revokes_api_keys(world, scim_a, how, django_capture_on_commit_callbacks):
    api_key_create(workspace=world.a, name="ci", actor=actor_for_membership(world.member_a, "password"), membership=world.member_a)
    callbacks = _deactivate_by(scim_a, world.member_a, how, django_capture_on_commit_callbacks)
    assert callbacks, "revocation must be queued on commit"
    assert ApiKey.objects.get(membership=world.member_a).revoked_at is None  # not yet: it leaves on commit
    for callback in callbacks:  # commit: the outbox job is published and (eagerly) run by its task
        callback()
    assert ApiKey.objects.get(membership=world.member_a).revoked_at is not None


def test_other_members_keep_access_when_one_is_deactivated(world, scim_a, django_capture_on_commit_callbacks):
    web = login_client(world.manager_a)
    _deactivate_by(scim_a, world.member_a, "patch", django_capture_on_commit_callbacks)
    assert web.get(f"/w/{world.a.slug}/").status_code == 200


def test_reactivation_restores_the_membership_not_revoked_keys(world, scim_a, django_capture_on_commit_callbacks):
    api_key_create(workspace=world.a, name="ci", actor=actor_for_membership(world.member_a, "password"), membership=world.member_a)
    for callback in _deactivate_by(scim_a, world.member_a, "patch", django_capture_on_commit_callbacks):
        callback()  # commit: the outbox job is published and (eagerly) run by its task
    r = scim_a.patch(f"Users/{world.member_a.pk}", patch_body({"op": "replace", "path": "active", "value": True}))
    assert r.status_code == 200 and r.json()["active"] is True
    assert Membership.objects.get(pk=world.member_a.pk).is_active
    assert ApiKey.objects.get(membership=world.member_a).revoked_at is not None


def test_a_deleted_user_is_404_and_a_new_post_relinks_the_same_membership(world, scim_a):
    uid = scim_a.post("Users", okta_user("leaver@corp.test", external_id="L1")).json()["id"]
    assert scim_a.delete(f"Users/{uid}").status_code == 204
    assert scim_a.get(f"Users/{uid}").status_code == 404
    assert scim_a.get('Users?filter=userName eq "leaver@corp.test"').json()["totalResults"] == 0
    again = scim_a.post("Users", okta_user("leaver@corp.test", external_id="L2"))
    assert again.status_code == 201 and again.json()["id"] == uid and again.json()["active"] is True


def test_scim_changes_are_audited_with_the_credential_and_before_after(world, scim_a):
    uid = scim_a.post("Users", okta_user("audited@corp.test", external_id="A1")).json()["id"]
    scim_a.patch(f"Users/{uid}", patch_body(
        {"op": "replace", "path": "name.givenName", "value": "Renamed"},
        {"op": "replace", "path": "urn:ietf:params:scim:schemas:extension:gatehouse:2.0:User:role", "value": "manager"},
    ))
    events = AuditEvent.objects.filter(workspace_id=world.a.pk, target_id=uid).order_by("seq")
    profile = [e for e in events if e.action == "member.profile_changed"][-1]
    assert profile.details["before"] == {"given_name": "Test"} and profile.details["after"] == {"given_name": "Renamed"}
    role = events.get(action="member.role_changed")
    assert role.details == {"before": {"role": "member"}, "after": {"role": "manager"}}
    assert {(e.actor_kind, e.auth_method, e.actor_label) for e in events} == {("scim_client", "scim_bearer", "SCIM: Okta bearer")}


def test_group_membership_changes_are_audited_per_member(world, scim_a):
    gid = scim_a.post("Groups", {"displayName": "Audited"}).json()["id"]
    scim_a.patch(f"Groups/{gid}", patch_body({"op": "add", "path": "members", "value": [
        {"value": str(world.member_a.pk)}, {"value": str(world.manager_a.pk)},
    ]}))
    added = AuditEvent.objects.filter(workspace_id=world.a.pk, action="team.member_added", target_id=gid)
    assert added.count() == 2 and {e.actor_kind for e in added} == {"scim_client"}


@pytest.mark.parametrize("where", ["core", "extension"])
def test_role_and_allowed_environments_set_through_either_namespace(world, scim_a, where):
    body = okta_user("envs@corp.test")
    if where == "core":  # Cloudinary's Okta guide: attributes in the core User namespace
        body.update({"role": "collaborator", "product_environments": ["staging", "production"]})
    else:
        body["schemas"].append("urn:ietf:params:scim:schemas:extension:gatehouse:2.0:User")
        body["urn:ietf:params:scim:schemas:extension:gatehouse:2.0:User"] = {
            "role": "Collaborator", "allowedEnvironments": ["staging", "production"],
        }
    r = scim_a.post("Users", body)
    assert r.status_code == 201, r.content
    m = Membership.objects.get(pk=r.json()["id"])
    assert m.role == "collaborator" and m.allowed_environments == ["production", "staging"]
    ext = r.json()["urn:ietf:params:scim:schemas:extension:gatehouse:2.0:User"]
    assert ext == {"role": "collaborator", "allowedEnvironments": ["production", "staging"]}


def test_allowed_environments_patched_as_an_okta_comma_string(world, scim_a):
    uid = scim_a.post("Users", okta_user("envs2@corp.test")).json()["id"]
    r = scim_a.patch(f"Users/{uid}", patch_body({"op": "replace", "value": {"product_environments": "dev, qa"}}))
    assert r.status_code == 200
    assert Membership.objects.get(pk=uid).allowed_environments == ["dev", "qa"]


def test_an_existing_account_gets_a_membership_here_only_and_keeps_its_login(world, scim_a):
    outsider = world.outsider_b.user
    before_password = outsider.password
    r = scim_a.post("Users", {**okta_user("Owner@Bravo.test"), "emails": [{"value": "owner@bravo.test", "primary": True}]})
    assert r.status_code == 201
    outsider.refresh_from_db()
    assert outsider.password == before_password and outsider.email == "owner@bravo.test"
    assert Membership.objects.get(pk=r.json()["id"]).role == "member"
    assert Membership.objects.get(pk=world.outsider_b.pk).role == "owner"  # untouched in B


def test_a_member_added_in_the_web_ui_is_linked_not_duplicated(world, scim_a):
    r = scim_a.post("Users", okta_user(world.member_a.user.email, external_id="00uLINK"))
    assert r.status_code == 201 and r.json()["id"] == str(world.member_a.pk)
    assert Membership.objects.get(pk=world.member_a.pk).scim_username == world.member_a.user.email
