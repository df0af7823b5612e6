"""Password logins and their failures are in the log of each workspace they concern."""

from __future__ import annotations

from django.test import Client

from audit.models import AuditEvent


def test_a_successful_password_login_is_recorded_in_the_workspace_with_ip_and_method(world, password):
    world.owner_a.user.set_password(password)
    world.owner_a.user.save()
    # follow: the login lands in the workspace, whose first request records the sign-in there.
    Client(REMOTE_ADDR="198.51.100.4").post("/login/", {"email": "owner@alpha.test", "password": password},
                                            follow=True)
    event = AuditEvent.objects.get(action="auth.login_succeeded")
    assert (event.workspace_id, event.auth_method, event.ip) == (world.a.pk, "password", "198.51.100.4")
    assert event.actor_label == "owner@alpha.test"


def test_a_failed_password_login_is_recorded_with_its_reason(world):
    Client().post("/login/", {"email": "owner@alpha.test", "password": "wrong-password-123"})
    event = AuditEvent.objects.get(action="auth.login_failed")
    assert event.workspace_id == world.a.pk and event.details == {"reason": "bad email or password"}
    assert not AuditEvent.objects.filter(workspace_id=world.b.pk, action="auth.login_failed").exists()


def test_a_failed_login_for_an_unknown_email_goes_to_the_global_chain(db):
    Client().post("/login/", {"email": "nobody@nowhere.test", "password": "wrong-password-123"})
    event = AuditEvent.objects.get(action="auth.login_failed")
    assert event.workspace_id is None and event.target_label == "nobody@nowhere.test"
