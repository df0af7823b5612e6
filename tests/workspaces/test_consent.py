"""Consent and ownership (issue 15, item 4): a workspace attaches an existing account only as an invitation the person
accepts, or when it has verified the account's email domain; until then the membership opens nothing and shows
nothing of the account.

Dana is a member of workspace B with her own password and 2FA. Workspace A's Owner adds her by email.
"""

from __future__ import annotations

import pytest
from django.core import mail
from django.test import Client

from audit.models import AuditEvent
from tests.api.conftest import ApiClient, service_key
from tests.conftest import login_client
from tests.consent_helpers import DANA, dana_in_b, sent_token
from tests.factories import TEST_PASSWORD
from workspaces.grants import SESSION_KEY
from workspaces.models import Membership
from workspaces.services import actor_for_membership, membership_add


@pytest.fixture
def dana(world) -> Membership:
    return dana_in_b(world)


def _owner_adds(world, email: str, capture) -> Membership:
    with capture(execute=True):
        response = login_client(world.owner_a).post("/w/alpha/members/add/", {"email": email, "role": "member"})
    assert response.status_code == 302
    return Membership.objects.select_related("user").get(workspace=world.a, user__email__iexact=email)


def _pending_in_a(world, dana, capture) -> Membership:
    with capture(execute=True):
        return membership_add(workspace=world.a, email=DANA, actor=actor_for_membership(world.owner_a, "password"))


# ----------------------------------------------------------------------------- the rule


def test_an_owner_adding_an_existing_account_creates_a_pending_member_and_emails_it_an_invitation(
    world, dana, django_capture_on_commit_callbacks
):
    member = _owner_adds(world, DANA, django_capture_on_commit_callbacks)
    assert member.consent_pending and member.user == dana.user
    [message] = mail.outbox
    assert message.to == [DANA] and "/invitations/" in message.body and "Alpha Inc" in message.subject
    created = AuditEvent.objects.get(workspace=world.a, action="member.created", target_label=DANA)
    assert created.details["consent_pending"] is True
    invited = AuditEvent.objects.get(workspace=world.a, action="member.invited", target_label=DANA)
    assert invited.details["consent"] is True and sent_token(DANA) not in str(invited.details)


def test_an_account_left_with_no_password_and_no_other_workspace_needs_no_consent(world):
    # The account of a member this workspace created and later removed: nobody else's.
    owner = actor_for_membership(world.owner_a, "password")
    first = membership_add(workspace=world.a, email="sso-only@alpha.test", actor=owner)
    from workspaces.services import membership_remove

    membership_remove(membership=first, actor=owner)
    again = membership_add(workspace=world.a, email="sso-only@alpha.test", actor=owner)
    assert not again.consent_pending


def test_an_existing_account_in_a_verified_email_domain_joins_directly(world, dana):
    from tests.factories import verified_domain

    verified_domain(world.a, "bravo.test")
    member = membership_add(workspace=world.a, email=DANA, actor=actor_for_membership(world.owner_a, "password"))
    assert not member.consent_pending and not member.invitations.exists()


def test_a_new_account_added_in_the_portal_is_invited_to_choose_a_password(world, django_capture_on_commit_callbacks):
    member = _owner_adds(world, "newcomer@alpha.test", django_capture_on_commit_callbacks)
    assert not member.consent_pending and not member.user.has_usable_password()
    [message] = mail.outbox
    assert message.to == ["newcomer@alpha.test"] and "choose your password" in message.body


def test_a_domain_verified_by_another_workspace_waives_nothing_here(world, dana):
    from tests.factories import verified_domain

    verified_domain(world.b, "bravo.test")
    member = membership_add(workspace=world.a, email=DANA, actor=actor_for_membership(world.owner_a, "password"))
    assert member.consent_pending


# ----------------------------------------------------------------------------- no access while pending


def test_a_pending_member_is_refused_the_workspace_with_where_the_invitation_went(
    world, dana, django_capture_on_commit_callbacks
):
    _pending_in_a(world, dana, django_capture_on_commit_callbacks)
    response = login_client(dana, world.a).get("/w/alpha/")
    assert response.status_code == 403
    assert f"Accept the invitation sent to {DANA}" in response.content.decode()
    assert 'id="consent-pending"' in response.content.decode() and "Sign in again" not in response.content.decode()


def test_a_password_sign_in_grants_no_pending_workspace_and_records_nothing_there(
    world, dana, django_capture_on_commit_callbacks
):
    dana.user.totpdevice_set.all().delete()  # the password step alone signs her in
    _pending_in_a(world, dana, django_capture_on_commit_callbacks)
    client = Client(REMOTE_ADDR="203.0.113.9")
    client.post("/login/", {"email": DANA, "password": TEST_PASSWORD}, follow=True)
    assert set(client.session[SESSION_KEY]) == {str(world.b.pk)}
    assert client.get("/w/alpha/").status_code == 403
    assert not AuditEvent.objects.filter(workspace=world.a, action__startswith="auth.").exists()
    assert AuditEvent.objects.filter(workspace=world.b, action="auth.login_succeeded", ip="203.0.113.9").exists()


def test_failed_password_attempts_on_the_account_are_not_recorded_in_a_pending_workspace(
    world, dana, django_capture_on_commit_callbacks
):
    _pending_in_a(world, dana, django_capture_on_commit_callbacks)
    Client().post("/login/", {"email": DANA, "password": "not-her-password"})
    assert AuditEvent.objects.filter(workspace=world.b, action="auth.login_failed").count() == 1
    assert not AuditEvent.objects.filter(workspace=world.a, action="auth.login_failed").exists()


def test_an_api_access_check_does_not_answer_for_a_pending_member(world, dana, django_capture_on_commit_callbacks):
    _pending_in_a(world, dana, django_capture_on_commit_callbacks)
    api = ApiClient(service_key(world.a, ["access:check"]))
    body = {"repository": "anything", "action": "pull"}
    assert api.post("/api/v1/workspaces/alpha/access-check", {**body, "member": "member@alpha.test"}).status_code == 200
    response = api.post("/api/v1/workspaces/alpha/access-check", {**body, "member": DANA})
    assert response.status_code == 404 and "No active member" in response.json()["detail"]
