"""A sign-in is recorded only in the workspace it signs in to (issue 15, item 4: "logins elsewhere").

A password sign-in grants every workspace its policy allows; each workspace records it when the session first opens
that workspace, so a person signing in to use workspace B leaves no trace (IP, user agent) in workspace A's log.
"""

from __future__ import annotations

from django.test import Client

from audit.models import AuditEvent
from tests.factories import TEST_PASSWORD, MembershipFactory

IP = "198.51.100.7"


def _logins(workspace) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(workspace=workspace, action="auth.login_succeeded"))


def _member_of_a_and_b(world):
    in_b = MembershipFactory(workspace=world.b, user__email="erin@bravo.test")
    MembershipFactory(workspace=world.a, user=in_b.user)
    return in_b


def test_a_password_sign_in_to_use_b_is_recorded_in_b_and_not_in_a(world):
    _member_of_a_and_b(world)
    client = Client(REMOTE_ADDR=IP, HTTP_USER_AGENT="ErinBrowser/1.0")
    response = client.post("/login/", {"email": "erin@bravo.test", "password": TEST_PASSWORD, "next": "/w/bravo/"},
                           follow=True)
    assert response.status_code == 200 and response.request["PATH_INFO"] == "/w/bravo/"
    [event] = _logins(world.b)
    assert (event.ip, event.user_agent, event.auth_method) == (IP, "ErinBrowser/1.0", "password")
    assert _logins(world.a) == []


def test_the_sign_in_is_recorded_in_a_once_when_the_session_first_opens_a(world):
    _member_of_a_and_b(world)
    client = Client(REMOTE_ADDR=IP)
    client.post("/login/", {"email": "erin@bravo.test", "password": TEST_PASSWORD, "next": "/w/bravo/"})
    assert _logins(world.a) == []
    assert client.get("/w/alpha/").status_code == 200
    assert client.get("/w/alpha/").status_code == 200
    [event] = _logins(world.a)
    assert event.ip == IP and event.target_label == "erin@bravo.test"


def test_signing_in_records_nothing_until_a_workspace_is_opened(world):
    _member_of_a_and_b(world)
    Client().post("/login/", {"email": "erin@bravo.test", "password": TEST_PASSWORD})
    assert not AuditEvent.objects.filter(action="auth.login_succeeded").exists()


def test_the_members_last_login_in_a_is_not_moved_by_a_sign_in_to_b(world):
    in_b = _member_of_a_and_b(world)
    Client().post("/login/", {"email": "erin@bravo.test", "password": TEST_PASSWORD, "next": "/w/bravo/"}, follow=True)
    in_a = in_b.user.memberships.get(workspace=world.a)
    in_b.refresh_from_db()
    assert in_b.last_login_at is not None and in_a.last_login_at is None
