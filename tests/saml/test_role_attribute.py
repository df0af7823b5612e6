"""The SAML role attribute: its value sets the member's role at each login, through the workspace's role mapping
(the same mapping SCIM's ``role`` goes through). Real signed assertions from the test IdP."""

from __future__ import annotations

from django.core.management import call_command
from django.test import Client

from audit.models import AuditEvent
from saml import services
from saml.models import GroupMapping, SamlSettings
from tests.conftest import login_client
from tests.factories import TeamFactory
from workspaces import services as ws
from workspaces.models import Membership, TeamMembership, Workspace

from .conftest import configure, failures, post_acs, start_login


def _owner(world):
    return ws.actor_for_membership(world.owner_a, "password")


def _role_attribute(world, sso, name: str = "role") -> None:
    configure(world.a, world.owner_a, sso.entity_id, sso.key, role_attribute=name)


def _cloudinary(world) -> None:
    ws.role_map_apply_preset(workspace=world.a, preset="cloudinary", actor=_owner(world))


def _login(sso, email: str, roles: list[str] | None, *, groups: tuple[str, ...] = (), name: str = "role"):
    client = Client()
    rid = start_login(client, "alpha")
    attributes = {name: roles} if roles is not None else {}
    response = post_acs(client, "alpha", sso.response(name_id=email, in_response_to=rid, groups=groups,
                                                      attributes=attributes))
    return response


def _role(membership: Membership) -> str:
    membership.refresh_from_db()
    return membership.role


def test_the_role_value_goes_through_the_workspace_role_mapping(world, sso_a):
    _role_attribute(world, sso_a)
    _cloudinary(world)
    response = _login(sso_a, "member@alpha.test", ["admin"])
    assert response.status_code == 302
    assert _role(world.member_a) == "manager"
    change = AuditEvent.objects.get(action="member.role_changed", target_id=str(world.member_a.pk))
    assert change.auth_method == "saml"


def test_values_match_case_and_space_insensitively_and_gatehouse_role_names_need_no_mapping(world, sso_a):
    _role_attribute(world, sso_a)
    _cloudinary(world)
    _login(sso_a, "member@alpha.test", [" Media_Library_User "])
    assert _role(world.member_a) == "collaborator"
    _login(sso_a, "member@alpha.test", ["Manager"])
    assert _role(world.member_a) == "manager"


def test_several_values_give_the_highest_of_their_roles(world, sso_a):
    _role_attribute(world, sso_a)
    _cloudinary(world)
    _login(sso_a, "collab@alpha.test", ["media_library_user", "technical_admin", "reports"])
    assert _role(world.collaborator_a) == "manager"


def test_an_unknown_value_refuses_the_login_naming_the_accepted_values(world, sso_a):
    _role_attribute(world, sso_a)
    _cloudinary(world)
    response = _login(sso_a, "member@alpha.test", ["janitor"])
    assert response.status_code == 403
    assert b"Role mapping" in response.content
    assert failures(world.a) == ["unknown_role"]
    detail = AuditEvent.objects.get(action="sso.login_failed").details["detail"]
    assert "'janitor'" in detail and "media_library_user" in detail and "collaborator" in detail
    assert _role(world.member_a) == "member"
    assert not AuditEvent.objects.filter(action="sso.login_succeeded").exists()


def test_an_unknown_value_gives_the_default_role_when_the_workspace_chooses_so(world, sso_a):
    _role_attribute(world, sso_a)
    ws.role_map_set_unknown(workspace=world.a, policy="default", actor=_owner(world))
    Workspace.objects.filter(pk=world.a.pk).update(default_role="collaborator")
    response = _login(sso_a, "member@alpha.test", ["janitor"])
    assert response.status_code == 302
    assert _role(world.member_a) == "collaborator"


def test_no_value_in_the_assertion_leaves_the_role_as_it_is(world, sso_a):
    _role_attribute(world, sso_a)
    assert _login(sso_a, "manager@alpha.test", None).status_code == 302
    assert _role(world.manager_a) == "manager"


def test_without_a_role_attribute_configured_a_role_value_is_ignored(world, sso_a):
    _cloudinary(world)
    assert SamlSettings.objects.get(workspace=world.a).role_attribute == ""
    assert _login(sso_a, "member@alpha.test", ["admin"]).status_code == 302
    assert _login(sso_a, "member@alpha.test", ["janitor"]).status_code == 302
    assert _role(world.member_a) == "member"


def test_the_role_attribute_decides_the_role_and_group_sync_keeps_the_teams(world, sso_a):
    _role_attribute(world, sso_a)
    _cloudinary(world)
    eng = TeamFactory(workspace=world.a, name="Engineering")
    services.group_mapping_create(workspace=world.a, actor=_owner(world), idp_group="eng", team=eng)
    GroupMapping.objects.create(workspace=world.a, idp_group="leads", role="manager", priority=9)
    services.group_sync_set(workspace=world.a, actor=_owner(world), enabled=True)
    _login(sso_a, "member@alpha.test", ["media_library_user"], groups=("eng", "leads"))
    assert _role(world.member_a) == "collaborator"
    assert TeamMembership.objects.filter(membership=world.member_a, team=eng).exists()
    # The same login without the role value: the group mapping's role applies again.
    _login(sso_a, "member@alpha.test", None, groups=("eng", "leads"))
    assert _role(world.member_a) == "manager"


def test_a_jit_member_is_created_with_the_mapped_role(world, sso_a):
    _role_attribute(world, sso_a)
    _cloudinary(world)
    ws.workspace_update_policy(workspace=world.a, actor=_owner(world), jit_provisioning=True)
    assert _login(sso_a, "newcomer@alpha.test", ["technical_admin"]).status_code == 302
    newcomer = Membership.objects.get(workspace=world.a, user__email="newcomer@alpha.test")
    assert newcomer.role == "manager"
    assert not AuditEvent.objects.filter(action="member.role_changed", target_id=str(newcomer.pk)).exists()


def test_an_unknown_value_creates_nobody_by_jit(world, sso_a):
    _role_attribute(world, sso_a)
    ws.workspace_update_policy(workspace=world.a, actor=_owner(world), jit_provisioning=True)
    assert _login(sso_a, "newcomer@alpha.test", ["janitor"]).status_code == 403
    assert not Membership.objects.filter(workspace=world.a, user__email="newcomer@alpha.test").exists()


def test_owner_is_not_given_when_the_workspace_keeps_owner_grants_from_the_idp(world, sso_a):
    _role_attribute(world, sso_a)
    _cloudinary(world)  # master_admin -> owner
    assert _login(sso_a, "member@alpha.test", ["master_admin"]).status_code == 302
    assert _role(world.member_a) == "member"
    skipped = AuditEvent.objects.get(action="sso.group_sync_skipped")
    assert skipped.details["role_attribute"] == "role"


def test_owner_is_given_when_the_workspace_lets_the_idp_grant_it(world, sso_a):
    Workspace.objects.filter(pk=world.a.pk).update(scim_may_grant_owner=True)
    _role_attribute(world, sso_a)
    _cloudinary(world)
    _login(sso_a, "member@alpha.test", ["master_admin"])
    assert _role(world.member_a) == "owner"


def test_an_owner_made_in_the_portal_is_never_demoted_by_the_role_attribute(world, sso_a):
    _role_attribute(world, sso_a)
    _cloudinary(world)
    assert _login(sso_a, "owner@alpha.test", ["media_library_user"]).status_code == 302
    assert _role(world.owner_a) == "owner"


def test_a_role_the_attribute_gave_follows_the_next_value(world, sso_a):
    _role_attribute(world, sso_a)
    _cloudinary(world)
    _login(sso_a, "member@alpha.test", ["admin"])
    assert _role(world.member_a) == "manager"
    _login(sso_a, "member@alpha.test", ["reports"])
    assert _role(world.member_a) == "member"


def test_test_sso_shows_the_role_a_login_would_give(world, sso_a):
    from .test_sso_settings_page import URL

    _role_attribute(world, sso_a)
    _cloudinary(world)
    client = login_client(world.owner_a)
    _run_test(client, sso_a, ["admin"])
    page = client.get(URL).content.decode()
    assert 'id="last-test-role">manager<' in page
    # A value a login would refuse fails the test: SAML-only cannot then be enforced on it.
    assert _run_test(client, sso_a, ["janitor"])  # refused: back to the admin's result page, which says why
    assert 'id="test-failed"' in client.get("/w/alpha/settings/sso/test/").content.decode()
    assert "janitor" in AuditEvent.objects.filter(action="sso.login_failed").latest("seq").details["detail"]
    _role(world.owner_a)
    assert world.owner_a.role == "owner"  # a test changes nobody's role


def _run_test(client, sso, roles, status=302):
    from saml.models import IssuedAuthnRequest

    from .test_sso_settings_page import URL

    client.post(URL, {"action": "test"})
    request = IssuedAuthnRequest.objects.filter(workspace=sso.workspace, purpose="test").latest("created_at")
    response = post_acs(client, "alpha", sso.response(name_id="owner@alpha.test", in_response_to=request.request_id,
                                                      attributes={"role": roles}))
    assert response.status_code == status
    return True


def test_sso_configure_sets_and_clears_the_role_attribute(world, sso_a, tmp_path):
    from .idp import idp_metadata

    path = tmp_path / "idp.xml"
    path.write_text(idp_metadata(sso_a.entity_id, "https://idp.test/alpha/sso", sso_a.key))
    call_command("sso_configure", "alpha", "--metadata", str(path), "--role-attribute", "cloudinaryRole")
    assert SamlSettings.objects.get(workspace=world.a).role_attribute == "cloudinaryRole"
    changed = AuditEvent.objects.filter(action="sso.settings_changed").latest("seq")
    assert changed.details["changes"]["role_attribute"] == {"before": "", "after": "cloudinaryRole"}
    call_command("sso_configure", "alpha", "--metadata", str(path), "--role-attribute", "")
    assert SamlSettings.objects.get(workspace=world.a).role_attribute == ""
