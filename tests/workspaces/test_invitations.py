"""Invitations (issues 14 and 15): a single-use, expiring link sent by email, accepted by the person it was sent to.

An existing account accepts while signed in as itself (the normal login: password, then its second factor); a new
account chooses its password. Used, expired, revoked and replaced links say what to do. Owners resend and revoke.
"""

from __future__ import annotations

from datetime import timedelta
from io import StringIO
from urllib.parse import quote

import pytest
from django.core import mail
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from audit.models import AuditEvent
from tests.conftest import login_client
from tests.consent_helpers import DANA, dana_in_b, sent_token, sent_tokens
from tests.factories import TEST_PASSWORD
from tests.workspaces.test_two_factor import code
from workspaces.credentials import hash_secret
from workspaces.models import Invitation, Membership
from workspaces.services import actor_for_membership, membership_add


@pytest.fixture
def dana(world) -> Membership:
    return dana_in_b(world)


@pytest.fixture
def invited(world, dana, django_capture_on_commit_callbacks) -> Membership:
    """Workspace A attached Dana's existing account: pending, invitation emailed."""
    with django_capture_on_commit_callbacks(execute=True):
        return membership_add(workspace=world.a, email=DANA, actor=actor_for_membership(world.owner_a, "password"))


def _pending(member: Membership) -> bool:
    member.refresh_from_db()
    return member.consent_pending


# ----------------------------------------------------------------------------- an existing account accepts


def test_a_signed_out_visitor_is_asked_to_sign_in_as_the_invited_account(invited):
    link = f"/invitations/{sent_token(DANA)}/"
    page = Client().get(link)
    assert page.status_code == 200 and 'id="sign-in-first"' in page.content.decode()
    assert f"/login/?next={quote(link, safe='')}" in page.content.decode()
    response = Client().post(link)
    assert response.status_code == 302 and response["Location"].startswith("/login/?next=")
    assert _pending(invited)


def test_the_person_signs_in_with_password_and_second_factor_then_accepts(world, dana, invited):
    link = f"/invitations/{sent_token(DANA)}/"
    client = Client()
    step = client.post("/login/", {"email": DANA, "password": TEST_PASSWORD, "next": link})
    assert step["Location"].startswith("/login/2fa/")  # the invitation does not skip her second factor
    assert client.get(link).content.decode().count('id="sign-in-first"') == 1  # not signed in yet
    device = dana.user.totpdevice_set.get()
    done = client.post("/login/2fa/", {"code": code(device, steps_ahead=1), "next": link})
    assert done["Location"] == link
    assert client.post(link).status_code == 302
    assert not _pending(invited)
    event = AuditEvent.objects.get(workspace=world.a, action="member.invitation_accepted")
    assert (event.actor_label, event.details["consent"]) == (DANA, True)
    # Her existing session was made before she joined; the next sign-in opens A.
    fresh = Client()
    fresh.post("/login/", {"email": DANA, "password": TEST_PASSWORD})
    fresh.post("/login/2fa/", {"code": code(device, steps_ahead=2)})
    assert fresh.get("/w/alpha/").status_code == 200


def test_another_signed_in_account_cannot_accept_someone_elses_invitation(world, invited):
    link = f"/invitations/{sent_token(DANA)}/"
    intruder = login_client(world.member_a)
    assert 'id="wrong-account"' in intruder.get(link).content.decode()
    response = intruder.post(link)
    assert response.status_code == 200 and "This invitation is for dana@bravo.test" in response.content.decode()
    assert _pending(invited)
    assert not AuditEvent.objects.filter(action="member.invitation_accepted").exists()


def test_an_existing_account_cannot_be_given_a_password_through_its_invitation(invited):
    link = f"/invitations/{sent_token(DANA)}/"
    Client().post(link, {"password": "a-new-Passw0rd-for-dana", "password_again": "a-new-Passw0rd-for-dana"})
    invited.user.refresh_from_db()
    assert invited.user.check_password(TEST_PASSWORD) and _pending(invited)


# ----------------------------------------------------------------------------- a new account chooses its password


def _new_member(world, capture, email: str = "newcomer@alpha.test") -> Membership:
    with capture(execute=True):
        return membership_add(workspace=world.a, email=email, actor=actor_for_membership(world.owner_a, "password"),
                              invite=True)


def test_a_new_account_chooses_a_password_that_the_validators_accept_and_then_signs_in(
    world, django_capture_on_commit_callbacks
):
    member = _new_member(world, django_capture_on_commit_callbacks)
    link = f"/invitations/{sent_token('newcomer@alpha.test')}/"
    client = Client()
    assert 'id="set-password"' in client.get(link).content.decode()
    weak = client.post(link, {"password": "password", "password_again": "password"})
    assert weak.status_code == 200 and "too common" in weak.content.decode()
    ok = client.post(link, {"password": "violet-Harbour-93", "password_again": "violet-Harbour-93"})
    assert ok.status_code == 302 and ok["Location"].startswith("/login/")
    member.user.refresh_from_db()
    assert member.user.check_password("violet-Harbour-93")
    event = AuditEvent.objects.get(workspace=world.a, action="member.invitation_accepted")
    assert event.details == {"invitation": event.details["invitation"], "consent": False, "password_set": True}
    client.post("/login/", {"email": "newcomer@alpha.test", "password": "violet-Harbour-93"})
    assert client.get("/w/alpha/").status_code == 200


def test_mismatched_passwords_are_refused(world, django_capture_on_commit_callbacks):
    member = _new_member(world, django_capture_on_commit_callbacks)
    link = f"/invitations/{sent_token('newcomer@alpha.test')}/"
    response = Client().post(link, {"password": "violet-Harbour-93", "password_again": "violet-Harbour-94"})
    assert "The two passwords differ" in response.content.decode()
    member.user.refresh_from_db()
    assert not member.user.has_usable_password()


# ----------------------------------------------------------------------------- links that no longer work


def test_a_link_works_once(world, django_capture_on_commit_callbacks):
    _new_member(world, django_capture_on_commit_callbacks)
    link = f"/invitations/{sent_token('newcomer@alpha.test')}/"
    Client().post(link, {"password": "violet-Harbour-93", "password_again": "violet-Harbour-93"})
    again = Client().post(link, {"password": "another-Harbour-94", "password_again": "another-Harbour-94"})
    assert again.status_code == 410 and "already used" in again.content.decode()


def test_an_expired_link_says_to_ask_an_owner_to_resend_it(invited, dana):
    token = sent_token(DANA)
    Invitation.objects.filter(membership=invited).update(expires_at=timezone.now() - timedelta(minutes=1))
    page = Client().get(f"/invitations/{token}/")
    assert page.status_code == 410
    assert "expired" in page.content.decode() and "Ask an Owner of Alpha Inc" in page.content.decode()
    assert login_client(dana, dana.workspace).post(f"/invitations/{token}/").status_code == 410
    assert _pending(invited)


def test_a_revoked_link_stops_working(world, invited):
    invitation = invited.invitations.get()
    with_owner = login_client(world.owner_a)
    response = with_owner.post(f"/w/alpha/invitations/{invitation.pk}/", {"action": "revoke"})
    assert response.status_code == 302
    page = Client().get(f"/invitations/{sent_token(DANA)}/")
    assert page.status_code == 410 and "withdrawn" in page.content.decode()
    assert AuditEvent.objects.filter(workspace=world.a, action="member.invitation_revoked").count() == 1
    assert _pending(invited)  # still pending: it opens nothing; removing the member undoes the invitation


def test_a_resend_sends_a_new_link_and_the_old_one_stops_working(
    world, dana, invited, django_capture_on_commit_callbacks
):
    old = sent_token(DANA)
    with django_capture_on_commit_callbacks(execute=True):
        login_client(world.owner_a).post(f"/w/alpha/invitations/{invited.invitations.get().pk}/", {"action": "resend"})
    first, new = sent_tokens(DANA)
    assert first == old and new != old
    assert Client().get(f"/invitations/{old}/").status_code == 410
    assert login_client(dana, world.b).post(f"/invitations/{new}/").status_code == 302
    assert not _pending(invited)
    assert AuditEvent.objects.filter(workspace=world.a, action="member.invitation_resent").count() == 1


def test_an_unknown_token_is_a_plain_not_found(db):
    page = Client().get("/invitations/not-a-real-token/")
    assert page.status_code == 404 and "not valid" in page.content.decode()


# ----------------------------------------------------------------------------- storage and tenant isolation


def test_only_the_hash_of_a_token_is_stored_and_the_token_is_in_no_audit_event(invited):
    token = sent_token(DANA)
    invitation = invited.invitations.get()
    assert invitation.token_hash == hash_secret(token) and token not in invitation.token_hash
    assert not any(token in str(e.details) for e in AuditEvent.objects.all())


def test_an_owner_of_b_cannot_resend_or_revoke_an_invitation_of_a(world, invited):
    invitation = invited.invitations.get()
    owner_b = login_client(world.outsider_b)
    for action in ("resend", "revoke"):
        assert owner_b.post(f"/w/bravo/invitations/{invitation.pk}/", {"action": action}).status_code == 404
    invitation.refresh_from_db()
    assert invitation.is_open


def test_a_member_without_the_right_cannot_revoke_an_invitation(world, invited):
    invitation = invited.invitations.get()
    response = login_client(world.member_a).post(f"/w/alpha/invitations/{invitation.pk}/", {"action": "revoke"})
    assert response.status_code == 403
    invitation.refresh_from_db()
    assert invitation.is_open


def test_accepting_a_link_of_a_changes_nothing_in_b(world, dana, invited):
    login_client(dana, world.b).post(f"/invitations/{sent_token(DANA)}/")
    dana.refresh_from_db()
    assert not dana.consent_pending and dana.role == "member"
    assert not AuditEvent.objects.filter(workspace=world.b, action__startswith="member.invitation").exists()


# ----------------------------------------------------------------------------- the command


def test_member_invite_command_invites_resends_lists_and_revokes(world, dana, django_capture_on_commit_callbacks):
    out = StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("member_invite", "alpha", DANA, "--role", "collaborator", stdout=out)
    assert "they join when they accept" in out.getvalue()
    member = Membership.objects.get(workspace=world.a, user__email=DANA)
    assert member.consent_pending and member.role == "collaborator" and len(mail.outbox) == 1
    with django_capture_on_commit_callbacks(execute=True):
        call_command("member_invite", "alpha", DANA, "--resend", stdout=out)
    assert len(sent_tokens(DANA)) == 2
    listing = StringIO()
    call_command("member_invite", "alpha", "--list", stdout=listing)
    assert listing.getvalue().count(DANA) == 1 and "existing account" in listing.getvalue()
    call_command("member_invite", "alpha", DANA, "--revoke", stdout=out)
    assert not Invitation.objects.filter(membership=member, revoked_at__isnull=True).exists()
