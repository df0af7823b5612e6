"""Failed password logins are limited per (email, client IP) and per client IP, never per email alone, and an
unreachable cache never breaks a login."""

from __future__ import annotations

import time

import pytest
from django.test import Client, override_settings

from audit.models import AuditEvent

UNREACHABLE_REDIS = {
    "default": {
        "BACKEND": "config.cache.ReusingRedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens on port 1
        "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
    }
}


@pytest.fixture(autouse=True)
def _mid_window(monkeypatch, settings):
    """Pin the limiter's clock to the middle of a window: a boundary between two attempts would reset the counts."""
    window = settings.LOGIN_FAILURE_WINDOW
    pinned = (int(time.time() // window) + 0.5) * window
    monkeypatch.setattr("config.ratelimit._now", lambda: pinned)
    return pinned


def _login(client: Client, email: str, password: str, ip: str = "203.0.113.1") -> str:
    return client.post("/login/", {"email": email, "password": password}, REMOTE_ADDR=ip).content.decode()


def test_the_refusal_says_how_long_is_left_of_the_window(world, settings):
    settings.LOGIN_FAILURE_LIMIT = 2
    settings.LOGIN_FAILURE_WINDOW = 900  # the pinned clock is 450 s into the window: 8 minutes left
    client = Client()
    for _ in range(2):
        _login(client, "member@alpha.test", "wrong")
    assert "Wait 8 minutes" in _login(client, "member@alpha.test", "wrong")


def test_failures_for_one_email_do_not_block_another_email(world, password, settings):
    settings.LOGIN_FAILURE_LIMIT = 2
    client = Client()
    for _ in range(2):
        _login(client, "member@alpha.test", "wrong")
    _login(client, "owner@alpha.test", password)
    assert client.get("/w/alpha/").status_code == 200


def test_the_next_window_starts_counting_afresh(world, password, settings, monkeypatch, _mid_window):
    settings.LOGIN_FAILURE_LIMIT = 2
    client = Client()
    for _ in range(2):
        _login(client, "member@alpha.test", "wrong")
    assert "Too many failed sign-in attempts" in _login(client, "member@alpha.test", password)
    monkeypatch.setattr("config.ratelimit._now", lambda: _mid_window + settings.LOGIN_FAILURE_WINDOW)
    _login(client, "member@alpha.test", password)
    assert client.get("/w/alpha/").status_code == 200


def test_a_password_login_works_when_the_cache_is_unreachable(world, password, caplog):
    client = Client()
    with override_settings(CACHES=UNREACHABLE_REDIS):
        response = client.post("/login/", {"email": "member@alpha.test", "password": password})
        assert response.status_code == 302
        assert client.get("/w/alpha/").status_code == 200
    assert "cache unavailable; not limiting" in caplog.text


def test_a_wrong_password_is_refused_as_such_when_the_cache_is_unreachable(world):
    client = Client()
    with override_settings(CACHES=UNREACHABLE_REDIS):
        response = client.post("/login/", {"email": "member@alpha.test", "password": "wrong"})
    assert response.status_code == 200
    assert "That email and password do not match" in response.content.decode()
    assert AuditEvent.objects.filter(action="auth.login_failed", details__reason="bad email or password").exists()


def test_a_stranger_hammering_an_email_does_not_block_its_owner_from_another_address(world, password, settings):
    settings.LOGIN_FAILURE_LIMIT = 2
    stranger = Client()
    for _ in range(10):
        _login(stranger, "member@alpha.test", "guess", ip="198.51.100.7")
    assert "Too many failed sign-in attempts" in _login(stranger, "member@alpha.test", password, ip="198.51.100.7")
    owner = Client()
    _login(owner, "member@alpha.test", password, ip="203.0.113.50")
    assert owner.get("/w/alpha/").status_code == 200


def test_throttled_attempts_write_one_audit_event_per_source_and_window(world, settings):
    settings.LOGIN_FAILURE_LIMIT = 2
    client = Client()
    for _ in range(50):
        _login(client, "member@alpha.test", "guess", ip="198.51.100.7")
    failed = AuditEvent.objects.filter(action="auth.login_failed", workspace=world.a)
    assert failed.filter(details__reason="bad email or password").count() == 2
    assert failed.filter(details__reason__startswith="throttled").count() == 1


def test_one_address_is_limited_across_emails(world, settings):
    settings.LOGIN_FAILURE_LIMIT = 2  # 8 failures per address, whatever the emails
    client = Client()
    for i in range(8):
        _login(client, f"nobody{i}@example.test", "guess", ip="198.51.100.9")
    assert "Too many failed sign-in attempts" in _login(client, "member@alpha.test", "guess", ip="198.51.100.9")
