"""Role mapping: the role values a customer's IdP sends (Cloudinary's seven, or its own) give Gatehouse roles, for
SCIM's ``role``; edited by Owners on a page and by ``manage.py role_map``; every change audited."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from audit.models import AuditEvent
from tests.conftest import login_client
from tests.scim.conftest import ScimClient, make_cred, okta_user, patch_body
from workspaces import services
from workspaces.exceptions import NotAllowed, ServiceError
from workspaces.models import Membership, RoleMapping, UnknownIdpRole
from workspaces.services import actor_for_membership

CLOUDINARY = ["master_admin", "admin", "technical_admin", "billing", "reports", "media_library_admin",
              "media_library_user"]


@pytest.fixture
def owner(world):
    return actor_for_membership(world.owner_a, "password")


@pytest.fixture
def scim(world) -> ScimClient:
    return ScimClient(world.a.slug, make_cred(world.owner_a, "bearer"))


def _create(scim, email: str, role: str):
    return scim.post("Users", {**okta_user(email, external_id=email), "role": role})


class TestResolving:
    def test_mapped_values_give_their_role_case_insensitively(self, world, owner):
        services.role_map_set(workspace=world.a, mappings={"Engineering Lead": "manager", "eng": "member"}, actor=owner)
        assert services.resolve_idp_role(workspace=world.a, value="engineering lead ") == "manager"
        assert services.resolve_idp_role(workspace=world.a, value="ENG") == "member"

    def test_gatehouse_role_names_work_unless_mapped_otherwise(self, world, owner):
        assert services.resolve_idp_role(workspace=world.a, value="Manager") == "manager"
        services.role_map_set(workspace=world.a, mappings={"manager": "member"}, actor=owner)
        assert services.resolve_idp_role(workspace=world.a, value="manager") == "member"

    def test_an_unknown_value_is_refused_naming_the_accepted_ones(self, world, owner):
        services.role_map_set(workspace=world.a, mappings={"admin": "manager"}, actor=owner)
        with pytest.raises(ServiceError) as refused:
            services.resolve_idp_role(workspace=world.a, value="emperor")
        assert "'emperor'" in refused.value.message
        assert "admin, owner, manager, member, collaborator" in refused.value.message

    def test_or_given_the_default_role_when_the_workspace_says_so(self, world, owner):
        services.role_map_set_unknown(workspace=world.a, policy=UnknownIdpRole.DEFAULT, actor=owner)
        world.a.refresh_from_db()
        assert services.resolve_idp_role(workspace=world.a, value="emperor") == world.a.default_role

    def test_mappings_are_per_workspace(self, world, owner):
        services.role_map_set(workspace=world.a, mappings={"admin": "manager"}, actor=owner)
        with pytest.raises(ServiceError):
            services.resolve_idp_role(workspace=world.b, value="admin")


class TestChanging:
    def test_the_cloudinary_preset_maps_its_seven_values_and_is_audited(self, world, owner):
        mapping = services.role_map_apply_preset(workspace=world.a, preset="cloudinary", actor=owner)
        assert sorted(mapping) == sorted(CLOUDINARY)
        event = AuditEvent.objects.filter(workspace=world.a, action="workspace.role_map_changed").latest("seq")
        assert event.details["set"]["media_library_user"] == {"before": None, "after": "collaborator"}

    def test_a_change_records_before_and_after_and_a_no_op_records_nothing(self, world, owner):
        services.role_map_set(workspace=world.a, mappings={"admin": "manager"}, actor=owner)
        services.role_map_set(workspace=world.a, mappings={"admin": "member"}, actor=owner)
        services.role_map_set(workspace=world.a, mappings={"admin": "member"}, actor=owner)
        events = list(AuditEvent.objects.filter(workspace=world.a, action="workspace.role_map_changed")
                      .order_by("seq").values_list("details", flat=True))
        assert events == [{"set": {"admin": {"before": None, "after": "manager"}}},
                          {"set": {"admin": {"before": "manager", "after": "member"}}}]

    def test_removing_a_mapping_and_removing_an_unmapped_value(self, world, owner):
        services.role_map_set(workspace=world.a, mappings={"admin": "manager"}, actor=owner)
        assert services.role_map_remove(workspace=world.a, values=["ADMIN"], actor=owner) == {}
        with pytest.raises(ServiceError, match="No mapping for 'admin'"):
            services.role_map_remove(workspace=world.a, values=["admin"], actor=owner)

    @pytest.mark.parametrize("mappings", [{"": "member"}, {"x" * 101: "member"}, {"a\x00b": "member"},
                                          {"admin": "emperor"}])
    def test_bad_values_and_roles_are_refused_and_nothing_is_saved(self, world, owner, mappings):
        with pytest.raises(ServiceError):
            services.role_map_set(workspace=world.a, mappings={"ok": "member", **mappings}, actor=owner)
        assert not RoleMapping.objects.exists()

    def test_only_owners_change_it(self, world):
        with pytest.raises(NotAllowed):
            services.role_map_set(workspace=world.a, mappings={"admin": "manager"},
                                  actor=actor_for_membership(world.manager_a, "password"))


class TestScim:
    def test_cloudinary_role_values_create_and_update_members(self, world, owner, scim):
        assert _create(scim, "lib@corp.test", "media_library_user").status_code == 400
        services.role_map_apply_preset(workspace=world.a, preset="cloudinary", actor=owner)
        created = _create(scim, "lib@corp.test", "media_library_user")
        assert created.status_code == 201, created.content
        member = Membership.objects.get(pk=created.json()["id"])
        assert member.role == "collaborator"
        assert scim.patch(f"Users/{member.pk}", patch_body(
            {"op": "replace", "path": "role", "value": "technical_admin"})).status_code == 200
        member.refresh_from_db()
        assert member.role == "manager"

    def test_an_unknown_value_is_a_400_that_lists_what_is_accepted(self, world, owner, scim):
        services.role_map_set(workspace=world.a, mappings={"admin": "manager"}, actor=owner)
        refused = _create(scim, "x@corp.test", "emperor")
        assert refused.status_code == 400 and refused.json()["scimType"] == "invalidValue"
        assert "admin, owner, manager" in refused.json()["detail"]
        assert not Membership.objects.filter(user__email="x@corp.test").exists()

    def test_removing_the_role_returns_the_member_to_the_default_role(self, world, scim):
        created = _create(scim, "rm@corp.test", "manager").json()
        assert scim.patch(f"Users/{created['id']}", patch_body({"op": "remove", "path": "role"},
                          {"op": "remove", "path": "urn:ietf:params:scim:schemas:extension:gatehouse:2.0:User:role"}
                          )).status_code == 200
        assert Membership.objects.get(pk=created["id"]).role == world.a.default_role


class TestCommand:
    def test_set_remove_unknown_preset_and_list(self, world, capsys):
        call_command("role_map", "alpha", "--set", "Engineering Lead=manager", "--set", "eng=member")
        call_command("role_map", "alpha", "--remove", "eng", "--unknown", "default")
        call_command("role_map", "alpha", "--preset", "cloudinary", "--list")
        out = capsys.readouterr().out
        assert "Engineering Lead -> manager" in out and "media_library_user -> collaborator" in out
        assert "Any other value is given the default role" in out
        assert services.role_map(world.a)["Engineering Lead"] == "manager" and "eng" not in services.role_map(world.a)
        assert AuditEvent.objects.filter(workspace=world.a, action="workspace.role_map_changed").count() == 4

    def test_errors_say_how_to_fix_them(self, world):
        with pytest.raises(CommandError, match="VALUE=ROLE"):
            call_command("role_map", "alpha", "--set", "admin")
        with pytest.raises(CommandError, match="Unknown Gatehouse role"):
            call_command("role_map", "alpha", "--set", "admin=emperor")


class TestPage:
    def test_an_owner_maps_removes_and_sets_the_unknown_policy(self, world):
        web = login_client(world.owner_a, world.a)
        page = web.get("/w/alpha/settings/role-mapping/")
        assert page.status_code == 200 and b"No values mapped yet" in page.content
        saved = web.post("/w/alpha/settings/role-mapping/", {"action": "set", "value": "admin", "role": "manager"},
                         follow=True)
        assert b"now gives the Manager role" in saved.content and services.role_map(world.a) == {"admin": "manager"}
        web.post("/w/alpha/settings/role-mapping/", {"action": "unknown", "unknown": "default"})
        world.a.refresh_from_db()
        assert world.a.unknown_idp_role == "default"
        web.post("/w/alpha/settings/role-mapping/", {"action": "remove", "value": "admin"})
        assert services.role_map(world.a) == {}

    def test_a_bad_value_is_shown_next_to_the_field(self, world):
        web = login_client(world.owner_a, world.a)
        page = web.post("/w/alpha/settings/role-mapping/", {"action": "set", "value": "a\x01b", "role": "manager"})
        assert page.status_code == 200 and b"control characters" in page.content

    def test_managers_and_outsiders_cannot_open_it(self, world):
        assert login_client(world.manager_a, world.a).get("/w/alpha/settings/role-mapping/").status_code == 403
        assert Client().get("/w/alpha/settings/role-mapping/").status_code == 302
