"""Management commands admins automate with, and settings that refuse to start unsafely."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from audit.models import AuditEvent
from workspaces.models import Membership, Workspace

ROOT = Path(__file__).resolve().parents[2]


def test_createworkspace_prints_the_owners_login_and_the_login_works(db):
    out = io.StringIO()
    call_command("createworkspace", "globex", "--name", "Globex", "--owner", "hank@globex.test",
                 "--password", "a-long-test-password", stdout=out)
    text = out.getvalue()
    assert "hank@globex.test" in text and "a-long-test-password" in text
    assert Membership.objects.get(workspace__slug="globex").role == "owner"
    client = Client()
    client.post("/login/", {"email": "hank@globex.test", "password": "a-long-test-password"})
    assert client.get("/w/globex/").status_code == 200


def test_createworkspace_refuses_a_taken_slug_with_a_clear_message(db):
    call_command("createworkspace", "globex", "--name", "Globex", "--owner", "a@globex.test", stdout=io.StringIO())
    with pytest.raises(CommandError, match="taken"):
        call_command("createworkspace", "globex", "--name", "Other", "--owner", "b@globex.test", stdout=io.StringIO())


def test_createworkspace_refuses_a_bad_slug(db):
    with pytest.raises(CommandError, match="lowercase"):
        call_command("createworkspace", "Bad Slug!", "--name", "X", "--owner", "x@x.test", stdout=io.StringIO())
    assert not Workspace.objects.exists()


def test_seed_demo_creates_every_role_once_and_prints_the_owner_login(db):
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    call_command("seed_demo", stdout=out)
    ws = Workspace.objects.get(slug="acme")
    assert set(ws.memberships.values_list("role", flat=True)) == {"owner", "manager", "member", "collaborator"}
    assert list(ws.memberships.filter(is_auditor=True).values_list("user__email", flat=True)) == ["auditor@acme.test"]
    assert "owner@acme.test" in out.getvalue() and "/w/acme/" in out.getvalue()
    assert ws.teams.count() == 2 and ws.repositories.count() == 2
    call_command("verify_audit_chain", "acme", stdout=io.StringIO())
    assert AuditEvent.objects.filter(workspace=ws, action="workspace.created").count() == 1


def test_verify_audit_chain_names_an_unknown_workspace(db):
    with pytest.raises(CommandError, match="No workspace"):
        call_command("verify_audit_chain", "nope", stdout=io.StringIO())


def _django_check(env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG", "DJANGO_SETTINGS_MODULE")}
    return subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env={**clean, **env}, capture_output=True, text=True, timeout=60
    )


def test_production_mode_refuses_to_start_without_a_secret_key():
    result = _django_check({"DEBUG": "false"})
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_debug_mode_starts_with_the_development_key():
    assert _django_check({"DEBUG": "true"}).returncode == 0


def test_production_mode_starts_with_a_real_key():
    assert _django_check({"DEBUG": "false", "SECRET_KEY": "x" * 50}).returncode == 0


def test_failed_password_login_is_audited_and_explained(world):
    response = Client().post("/login/", {"email": "member@alpha.test", "password": "wrong"})
    assert "do not match" in response.content.decode()
    event = AuditEvent.objects.get(action="auth.login_failed")
    assert (event.workspace_id, event.actor_label) == (world.a.pk, "member@alpha.test")


def test_successful_password_login_is_audited_in_the_workspace(world, password):
    # Recorded when the session opens the workspace (the login lands there), not at the password step.
    Client().post("/login/", {"email": "member@alpha.test", "password": password}, follow=True)
    event = AuditEvent.objects.get(action="auth.login_succeeded")
    assert (event.workspace_id, event.auth_method) == (world.a.pk, "password")


def test_passwords_are_hashed_with_argon2(world):
    assert world.member_a.user.password.startswith("argon2")


def test_repeated_failed_logins_are_throttled_even_with_the_right_password(world, password, settings, monkeypatch):
    settings.LOGIN_FAILURE_LIMIT = 3
    # Mid-window (config.ratelimit): a window boundary between the attempts would reset the counts.
    monkeypatch.setattr("config.ratelimit._now", lambda: (int(time.time() // 900) + 0.5) * 900)
    client = Client()
    for _ in range(3):
        client.post("/login/", {"email": "member@alpha.test", "password": "wrong"})
    response = client.post("/login/", {"email": "member@alpha.test", "password": password})
    assert "Too many failed sign-in attempts" in response.content.decode()
    assert client.get("/w/alpha/").status_code == 302
    assert AuditEvent.objects.filter(action="auth.login_failed", details__reason__startswith="throttled").exists()


def test_system_check_reports_a_missing_xmlsec1(monkeypatch):
    from config import checks

    monkeypatch.setattr(checks.shutil, "which", lambda name: None)
    assert [e.id for e in checks.check_xmlsec1(None)] == ["gatehouse.E002"]


def test_system_check_warns_about_the_default_public_url_in_production(settings):
    from config import checks

    settings.DEBUG = False
    settings.PUBLIC_BASE_URL = "http://127.0.0.1:8000"
    assert [e.id for e in checks.check_public_base_url(None)] == ["gatehouse.W001"]
    settings.PUBLIC_BASE_URL = "gatehouse.example.com"
    assert [e.id for e in checks.check_public_base_url(None)] == ["gatehouse.E001"]


def test_deploy_check_warns_that_the_console_email_backend_prints_invitations_in_production(settings):
    from config import checks

    settings.DEBUG = False
    settings.EMAIL_BACKEND = checks.CONSOLE_EMAIL
    assert [e.id for e in checks.check_email_backend(None)] == ["gatehouse.W002"]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    assert checks.check_email_backend(None) == []
    settings.DEBUG, settings.EMAIL_BACKEND = True, checks.CONSOLE_EMAIL
    assert checks.check_email_backend(None) == []


def test_seed_demo_prints_the_demo_password_only_while_it_works(db):
    from workspaces.models import User

    first = io.StringIO()
    call_command("seed_demo", stdout=first)
    assert "password: gatehouse-demo" in first.getvalue()
    owner = User.objects.get(email="owner@acme.test")
    owner.set_password("something-else-entirely")
    owner.save()
    changed = io.StringIO()
    call_command("seed_demo", stdout=changed)
    assert "gatehouse-demo" not in changed.getvalue() and "no longer works" in changed.getvalue()
    Workspace.objects.filter(slug="acme").update(saml_only=True)
    enforced = io.StringIO()
    call_command("seed_demo", stdout=enforced)
    assert "SAML-only is enforced" in enforced.getvalue() and "/saml/acme/break-glass/" in enforced.getvalue()
