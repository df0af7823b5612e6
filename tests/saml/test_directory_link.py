"""The directory link: a member the IdP manages is found by its immutable subject first and by email only while
unlinked, and an email change at the IdP (SCIM or SAML) renames that member in place. Real signed assertions from
the test IdP and SCIM requests as Okta and Entra send them."""

from __future__ import annotations

import pytest
from django.test import Client

from audit.models import AuditEvent
from saml.models import SamlSettings
from tests.factories import MembershipFactory
from tests.scim.conftest import ScimClient, make_cred, okta_user, patch_body
from workspaces import services as ws
from workspaces.models import Membership, User

from .conftest import configure, failures, post_acs, start_login

OKTA_ID = "oktaId"


def _owner(world):
    return ws.actor_for_membership(world.owner_a, "password")


def _subject(world, sso, source: str = OKTA_ID, **kw) -> None:
    configure(world.a, world.owner_a, sso.entity_id, sso.key, subject_attribute=source, **kw)


def _jit(world, on: bool = True) -> None:
    ws.workspace_update_policy(workspace=world.a, actor=_owner(world), jit_provisioning=on)


def _login(sso, email: str, *, okta_id: str | None = None, name_id: str | None = None):
    client = Client()
    rid = start_login(client, "alpha")
    attributes = {"email": [email]}
    if okta_id is not None:
        attributes[OKTA_ID] = [okta_id]
    return post_acs(client, "alpha", sso.response(name_id=name_id or email, in_response_to=rid, attributes=attributes))


def _members(world, email: str) -> list[Membership]:
    return list(Membership.objects.filter(workspace=world.a, user__email__iexact=email))


@pytest.fixture
def scim(world):
    return ScimClient("alpha", make_cred(world.owner_a, "bearer"))


@pytest.fixture
def email_attribute(world, sso_a):
    configure(world.a, world.owner_a, sso_a.entity_id, sso_a.key, email_attribute="email")


# ----------------------------------------------------------------------------- renames through SCIM


def _scim_rename(scim, uid: str, email: str):
    response = scim.patch(f"Users/{uid}", patch_body(
        {"op": "replace", "path": "userName", "value": email},
        {"op": "replace", "path": 'emails[type eq "work"].value', "value": email},
    ))
    assert response.status_code == 200, response.content
    return response


def test_after_a_scim_rename_the_new_email_signs_in_as_the_same_member_and_the_old_one_does_not(
        world, sso_a, scim, email_attribute):
    uid = scim.post("Users", okta_user("ada@alpha.test")).json()["id"]
    _jit(world)
    _scim_rename(scim, uid, "ada.lovelace@alpha.test")
    member = Membership.objects.select_related("user").get(pk=uid)
    assert member.directory_email == "ada.lovelace@alpha.test"
    assert member.user.email == "ada.lovelace@alpha.test"  # the account is in this workspace only: it follows
    renamed = AuditEvent.objects.get(action="member.renamed")
    assert renamed.details["before"] == "ada@alpha.test" and renamed.details["account_email"]["after"] == (
        "ada.lovelace@alpha.test")

    assert _login(sso_a, "ada.lovelace@alpha.test").status_code == 302
    assert Membership.objects.filter(workspace=world.a).count() == 6  # the world's five and Ada: nobody new
    # The old address no longer reaches Ada: with JIT on, the IdP asserting it makes someone else.
    assert _login(sso_a, "ada@alpha.test").status_code == 302
    newcomer = Membership.objects.get(workspace=world.a, user__email="ada@alpha.test")
    assert newcomer.pk != int(uid)


def test_with_jit_off_the_old_email_is_refused_after_a_scim_rename(world, sso_a, scim, email_attribute):
    uid = scim.post("Users", okta_user("ada@alpha.test")).json()["id"]
    _scim_rename(scim, uid, "ada.l@alpha.test")
    assert _login(sso_a, "ada@alpha.test").status_code == 403
    assert failures(world.a) == ["unknown_member"]
    assert _login(sso_a, "ada.l@alpha.test").status_code == 302


def test_an_account_shared_with_another_workspace_keeps_its_email_and_its_other_membership(
        world, sso_a, scim, email_attribute, password):
    uid = scim.post("Users", okta_user("ada@alpha.test")).json()["id"]
    account = Membership.objects.get(pk=uid).user
    elsewhere = MembershipFactory(workspace=world.b, user=account, role="member")
    _scim_rename(scim, uid, "ada.new@alpha.test")
    account.refresh_from_db()
    assert account.email == "ada@alpha.test"
    elsewhere.refresh_from_db()
    assert elsewhere.is_active and elsewhere.user_id == account.pk
    kept = AuditEvent.objects.get(action="member.renamed").details["account_email"]
    assert kept == {"kept": "ada@alpha.test", "reason": "the account is also a member of another workspace"}
    # SSO into this workspace answers to the IdP's name for Ada, not the account's.
    assert _login(sso_a, "ada.new@alpha.test").status_code == 302
    assert _login(sso_a, "ada@alpha.test").status_code == 403
    _jit(world)
    refused = _login(sso_a, "ada@alpha.test")  # JIT cannot make the same account a second member either
    assert refused.status_code == 403 and failures(world.a)[-1] == "jit_refused"


def test_a_rename_to_an_address_another_account_holds_keeps_the_account_email(world, sso_a, scim, email_attribute):
    uid = scim.post("Users", okta_user("ada@alpha.test")).json()["id"]
    User.objects.create_user(email="taken@alpha.test", password=None)
    _scim_rename(scim, uid, "taken@alpha.test")
    member = Membership.objects.select_related("user").get(pk=uid)
    assert member.user.email == "ada@alpha.test" and member.directory_email == "taken@alpha.test"
    assert _login(sso_a, "taken@alpha.test").status_code == 302
    assert Membership.objects.filter(user__email="taken@alpha.test").count() == 0


def test_a_rename_to_something_that_is_no_email_is_refused_and_changes_nothing(world, scim):
    uid = scim.post("Users", okta_user("ada@alpha.test")).json()["id"]
    response = scim.patch(f"Users/{uid}", patch_body(
        {"op": "replace", "path": 'emails[type eq "work"].value', "value": "nope"},
        {"op": "replace", "path": "name.familyName", "value": "Byron"},
    ))
    assert response.status_code == 400 and response.json()["scimType"] == "invalidValue"
    member = Membership.objects.get(pk=uid)
    assert member.directory_email == "ada@alpha.test" and member.family_name == "User"


# ----------------------------------------------------------------------------- the immutable subject


def test_the_first_login_links_the_subject_and_a_later_new_email_renames_in_place(world, sso_a):
    _subject(world, sso_a, email_attribute="email")
    assert _login(sso_a, "member@alpha.test", okta_id="00u1member").status_code == 302
    world.member_a.refresh_from_db()
    assert world.member_a.saml_subject == "00u1member"
    assert AuditEvent.objects.filter(action="member.directory_linked").count() == 1
    assert _login(sso_a, "member.renamed@alpha.test", okta_id="00u1member").status_code == 302
    world.member_a.refresh_from_db()
    assert world.member_a.directory_email == "member.renamed@alpha.test"
    assert world.member_a.user.email == "member.renamed@alpha.test"
    assert Membership.objects.filter(workspace=world.a).count() == 5


def test_a_linked_member_is_not_reached_by_its_email_with_another_subject(world, sso_a):
    _subject(world, sso_a, email_attribute="email")
    _jit(world)
    assert _login(sso_a, "member@alpha.test", okta_id="00u1member").status_code == 302
    refused = _login(sso_a, "member@alpha.test", okta_id="00u9intruder")
    assert refused.status_code == 403
    assert failures(world.a) == ["subject_mismatch"]
    assert Membership.objects.filter(workspace=world.a).count() == 5


def test_a_configured_subject_missing_from_the_assertion_refuses_the_login(world, sso_a):
    _subject(world, sso_a, email_attribute="email")
    assert _login(sso_a, "member@alpha.test").status_code == 403
    assert failures(world.a) == ["no_subject"]


def test_the_subject_finds_a_member_scim_created_with_it_as_external_id(world, sso_a, scim):
    _subject(world, sso_a, email_attribute="email")
    uid = scim.post("Users", okta_user("grace@alpha.test", external_id="00u7grace")).json()["id"]
    # The IdP asserts another address than SCIM sent (a rename SCIM has not pushed yet): the same member.
    assert _login(sso_a, "grace.hopper@alpha.test", okta_id="00u7grace").status_code == 302
    member = Membership.objects.get(pk=uid)
    assert member.saml_subject == "00u7grace" and member.directory_email == "grace.hopper@alpha.test"


def test_a_persistent_name_id_can_be_the_subject(world, sso_a):
    _subject(world, sso_a, source="NameID", email_attribute="email")
    assert _login(sso_a, "member@alpha.test", name_id="a1b2c3-persistent").status_code == 302
    assert _login(sso_a, "member.new@alpha.test", name_id="a1b2c3-persistent").status_code == 302
    world.member_a.refresh_from_db()
    assert world.member_a.saml_subject == "a1b2c3-persistent"
    assert world.member_a.directory_email == "member.new@alpha.test"


def test_a_jit_member_is_created_linked_and_found_by_scims_lookup(world, sso_a, scim):
    _subject(world, sso_a, email_attribute="email")
    _jit(world)
    assert _login(sso_a, "newcomer@alpha.test", okta_id="00u5new").status_code == 302
    member = Membership.objects.get(workspace=world.a, user__email="newcomer@alpha.test")
    assert member.saml_subject == "00u5new" and member.directory_email == "newcomer@alpha.test"
    found = scim.get('Users?filter=userName%20eq%20%22newcomer@alpha.test%22').json()
    assert [r["id"] for r in found["Resources"]] == [str(member.pk)]


def test_two_members_answering_to_one_email_are_never_guessed_between(world, sso_a, email_attribute):
    Membership.objects.filter(pk=world.manager_a.pk).update(directory_email="member@alpha.test")
    assert _login(sso_a, "member@alpha.test").status_code == 403
    assert failures(world.a) == ["ambiguous_member"]


def test_changing_the_subject_setting_needs_a_new_test_sso(world, sso_a):
    SamlSettings.objects.filter(workspace=world.a).update(last_test_succeeded_at="2026-12-01T00:00:00Z")
    _subject(world, sso_a)
    assert SamlSettings.objects.get(workspace=world.a).last_test_succeeded_at is None
