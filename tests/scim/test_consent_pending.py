"""SCIM create of an account that exists already (issue 15, item 4): the IdP gets its resource (201, a valid
document), the member is pending consent and emailed an invitation, and workspace A sees nothing of the account
until the person accepts."""

from __future__ import annotations

import pytest
from django.core import mail

from tests.api.conftest import ApiClient, service_key
from tests.conftest import login_client
from tests.consent_helpers import DANA, dana_in_b, sent_token
from tests.factories import UserFactory
from workspaces.models import Membership

from .conftest import okta_user, patch_body


@pytest.fixture
def dana(world) -> Membership:
    return dana_in_b(world)


def _post(scim_a, capture, email: str = DANA):
    with capture(execute=True):
        return scim_a.post("Users", okta_user(email, given="Dana", family="Scully", external_id="00uDANA"))


def _roster_row(workspace_slug: str, workspace, email: str) -> dict:
    api = ApiClient(service_key(workspace, ["members:read"]))
    return next(m for m in api.get(f"/api/v1/workspaces/{workspace_slug}/members/").json()["results"]
                if m["email"] == email)


def test_posting_an_existing_accounts_email_answers_201_with_a_pending_member_and_emails_an_invitation(
    world, dana, scim_a, django_capture_on_commit_callbacks
):
    response = _post(scim_a, django_capture_on_commit_callbacks)
    assert response.status_code == 201
    doc = response.json()
    assert (doc["userName"], doc["active"], doc["name"]["givenName"]) == (DANA, True, "Dana")
    assert scim_a.get(f"Users/{doc['id']}").json() == doc
    member = Membership.objects.get(workspace=world.a, user=dana.user)
    assert member.consent_pending and str(member.pk) == doc["id"]
    [message] = mail.outbox
    assert message.to == [DANA]


def test_workspace_a_sees_neither_the_2fa_status_nor_the_sign_ins_of_the_pending_member(
    world, dana, scim_a, django_capture_on_commit_callbacks
):
    _post(scim_a, django_capture_on_commit_callbacks)
    row = _roster_row("alpha", world.a, DANA)
    assert (row["two_factor_enabled"], row["last_login"], row["consent_pending"]) == (None, None, True)


def test_once_the_person_accepts_the_member_is_visible_and_opens_the_workspace(
    world, dana, scim_a, django_capture_on_commit_callbacks
):
    _post(scim_a, django_capture_on_commit_callbacks)
    assert login_client(dana, world.b).post(f"/invitations/{sent_token(DANA)}/").status_code == 302
    row = _roster_row("alpha", world.a, DANA)
    assert (row["two_factor_enabled"], row["consent_pending"]) == (True, False)
    assert login_client(dana, world.a).get("/w/alpha/").status_code == 200


def test_a_new_email_is_created_directly_without_an_invitation(world, scim_a, django_capture_on_commit_callbacks):
    response = _post(scim_a, django_capture_on_commit_callbacks, email="fresh@alpha.test")
    assert response.status_code == 201
    member = Membership.objects.get(workspace=world.a, user__email="fresh@alpha.test")
    assert not member.consent_pending and not member.invitations.exists() and mail.outbox == []


def test_a_rename_of_a_pending_member_never_renames_the_account(world, scim_a, django_capture_on_commit_callbacks):
    # Pat has a password of her own and no workspace: without the consent rule, A's IdP would rename her account.
    pat = UserFactory(email="pat@example.test")
    doc = _post(scim_a, django_capture_on_commit_callbacks, email="pat@example.test").json()
    assert Membership.objects.get(pk=doc["id"]).consent_pending
    response = scim_a.patch(f"Users/{doc['id']}", patch_body(
        {"op": "replace", "path": "userName", "value": "pat.renamed@alpha.test"},
        {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "pat.renamed@alpha.test"},
    ))
    assert response.status_code == 200 and response.json()["userName"] == "pat.renamed@alpha.test"
    pat.refresh_from_db()
    assert pat.email == "pat@example.test"


def test_deactivating_a_pending_member_by_scim_works_and_never_errors(
    world, dana, scim_a, django_capture_on_commit_callbacks
):
    doc = _post(scim_a, django_capture_on_commit_callbacks).json()
    response = scim_a.patch(f"Users/{doc['id']}", patch_body({"op": "replace", "path": "active", "value": False}))
    assert response.status_code == 200 and response.json()["active"] is False


def test_a_pending_invitation_of_workspace_a_is_invisible_to_workspace_bs_scim(
    world, dana, scim_a, scim_b, django_capture_on_commit_callbacks
):
    doc = _post(scim_a, django_capture_on_commit_callbacks).json()
    assert scim_b.get(f"Users/{doc['id']}").status_code == 404
