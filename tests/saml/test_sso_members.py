"""Who an SSO login may let in: active members, JIT-created members when allowed, nobody else."""

from __future__ import annotations

from django.test import Client

from audit.models import AuditEvent
from workspaces.models import Membership
from workspaces.services import actor_for_membership, membership_deactivate, workspace_update_policy

from .conftest import failures, post_acs, start_login


def _login(sso, email: str, slug: str = "alpha", **kw):
    client = Client()
    rid = start_login(client, slug)
    return client, post_acs(client, slug, sso.response(name_id=email, in_response_to=rid, **kw))


def test_unknown_email_is_refused_when_jit_is_off(world, sso_a):
    client, response = _login(sso_a, "newcomer@alpha.test")
    assert response.status_code == 403
    assert failures(world.a) == ["unknown_member"]
    assert not Membership.objects.filter(user__email="newcomer@alpha.test").exists()


def test_jit_creates_the_member_with_the_default_role_and_name(world, sso_a):
    workspace_update_policy(workspace=world.a, actor=actor_for_membership(world.owner_a, "password"),
                            jit_provisioning=True, default_role="collaborator")
    client, response = _login(sso_a, "newcomer@alpha.test", first_name="Grace", last_name="Hopper")
    assert response.status_code == 302
    member = Membership.objects.get(workspace=world.a, user__email="newcomer@alpha.test")
    assert member.role == "collaborator"
    assert (member.given_name, member.family_name) == ("Grace", "Hopper")
    assert not member.user.has_usable_password()
    created = AuditEvent.objects.get(workspace=world.a, action="member.created", target_label="newcomer@alpha.test")
    assert created.details["source"] == "saml_jit" and created.auth_method == "saml"
    assert client.get("/w/alpha/").status_code == 200


def test_jit_in_a_never_creates_a_membership_in_b(world, sso_a, sso_b):
    world.a.jit_provisioning = True
    world.a.save()
    _login(sso_a, "newcomer@alpha.test")
    assert list(Membership.objects.filter(user__email="newcomer@alpha.test").values_list("workspace__slug", flat=True)) == ["alpha"]


def test_unknown_email_at_b_is_refused_when_b_has_jit_off_even_if_a_has_it_on(world, sso_a, sso_b):
    world.a.jit_provisioning = True
    world.a.save()
    _client, response = _login(sso_b, "newcomer@alpha.test", slug="bravo")
    assert response.status_code == 403
    assert failures(world.b) == ["unknown_member"]


def test_deactivated_member_is_refused(world, sso_a):

    membership_deactivate(membership=world.member_a, actor=actor_for_membership(world.owner_a, "password"))
    client, response = _login(sso_a, "member@alpha.test")
    assert response.status_code == 403
    assert failures(world.a) == ["member_inactive"]
    assert "_auth_user_id" not in client.session


def test_email_matches_the_member_case_insensitively(world, sso_a):
    _client, response = _login(sso_a, "Member@Alpha.TEST")
    assert response.status_code == 302
    assert AuditEvent.objects.get(action="sso.login_succeeded").target_id == str(world.member_a.pk)


def _jit_with_default_owner(world, *, idp_may_grant_owner: bool) -> None:
    type(world.a).objects.filter(pk=world.a.pk).update(
        jit_provisioning=True, default_role="owner", scim_may_grant_owner=idp_may_grant_owner,
    )


def test_jit_falls_back_to_member_when_the_default_role_is_owner_and_the_idp_may_not_grant_it(world, sso_a):
    _jit_with_default_owner(world, idp_may_grant_owner=False)
    client, response = _login(sso_a, "newcomer@alpha.test")
    assert response.status_code == 302
    assert Membership.objects.get(workspace=world.a, user__email="newcomer@alpha.test").role == "member"


def test_jit_gives_the_owner_default_role_when_the_workspace_lets_the_idp_grant_owner(world, sso_a):
    _jit_with_default_owner(world, idp_may_grant_owner=True)
    client, response = _login(sso_a, "newcomer@alpha.test")
    assert response.status_code == 302
    assert Membership.objects.get(workspace=world.a, user__email="newcomer@alpha.test").role == "owner"
