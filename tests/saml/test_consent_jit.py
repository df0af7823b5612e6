"""Just-in-time provisioning of an account that exists already (issue 15, item 4): the login is answered with "accept
the invitation sent to <email>", the pending member and its invitation are kept, and no session opens the workspace
until the person accepts."""

from __future__ import annotations

import pytest
from django.core import mail
from django.test import Client

from audit.models import AuditEvent
from tests.conftest import login_client
from tests.consent_helpers import DANA, dana_in_b, sent_token, sent_tokens
from workspaces.grants import SESSION_KEY
from workspaces.models import Membership
from workspaces.services import actor_for_membership, workspace_update_policy

from .conftest import failures, post_acs, start_login


@pytest.fixture
def jit_a(world, sso_a):
    workspace_update_policy(workspace=world.a, actor=actor_for_membership(world.owner_a, "password"),
                            jit_provisioning=True)
    return sso_a


def _sso(sso, email: str, capture):
    client = Client()
    rid = start_login(client, "alpha")
    with capture(execute=True):
        response = post_acs(client, "alpha", sso.response(name_id=email, in_response_to=rid))
    return client, response


def test_jit_of_an_existing_account_is_refused_with_the_invitation_message_and_sends_it(
    world, jit_a, django_capture_on_commit_callbacks
):
    dana = dana_in_b(world)
    client, response = _sso(jit_a, DANA, django_capture_on_commit_callbacks)
    assert response.status_code == 403
    assert f"Accept the invitation sent to <strong>{DANA}</strong>" in response.content.decode()
    member = Membership.objects.get(workspace=world.a, user=dana.user)
    assert member.consent_pending and member.directory_email == DANA
    assert [m.to for m in mail.outbox] == [[DANA]]
    assert failures(world.a) == ["consent_pending"]
    assert str(world.a.pk) not in client.session.get(SESSION_KEY, {})
    assert client.get("/w/alpha/").status_code == 302  # never signed in
    assert not AuditEvent.objects.filter(workspace=world.a, action="sso.login_succeeded").exists()


def test_a_second_sso_login_while_pending_is_refused_again_without_a_second_invitation(
    world, jit_a, django_capture_on_commit_callbacks
):
    dana_in_b(world)
    _sso(jit_a, DANA, django_capture_on_commit_callbacks)
    _client, response = _sso(jit_a, DANA, django_capture_on_commit_callbacks)
    assert response.status_code == 403 and len(sent_tokens(DANA)) == 1
    assert failures(world.a) == ["consent_pending", "consent_pending"]


def test_after_accepting_the_sso_login_opens_the_workspace(world, jit_a, django_capture_on_commit_callbacks):
    dana = dana_in_b(world)
    _sso(jit_a, DANA, django_capture_on_commit_callbacks)
    assert login_client(dana, world.b).post(f"/invitations/{sent_token(DANA)}/").status_code == 302
    client, response = _sso(jit_a, DANA, django_capture_on_commit_callbacks)
    assert response.status_code == 302
    assert client.get("/w/alpha/").status_code == 200


def test_jit_of_a_new_email_still_creates_and_signs_in_the_member(world, jit_a, django_capture_on_commit_callbacks):
    client, response = _sso(jit_a, "newcomer@alpha.test", django_capture_on_commit_callbacks)
    assert response.status_code == 302 and client.get("/w/alpha/").status_code == 200
    assert mail.outbox == []


def test_an_existing_member_that_scim_attached_is_refused_at_sso_until_it_accepts(
    world, sso_a, django_capture_on_commit_callbacks
):
    dana = dana_in_b(world)
    from workspaces.services import membership_add

    with django_capture_on_commit_callbacks(execute=True):
        membership_add(workspace=world.a, email=DANA, actor=actor_for_membership(world.owner_a, "password"))
    _client, response = _sso(sso_a, DANA, django_capture_on_commit_callbacks)  # JIT off: the member exists
    assert response.status_code == 403 and "Accept the invitation" in response.content.decode()
    assert Membership.objects.get(workspace=world.a, user=dana.user).consent_pending
