"""Break-glass: while SAML-only is enforced, an Owner gets in with password + one-time code, loudly."""

from __future__ import annotations

import re

from django.test import Client

from audit.models import AuditEvent
from saml import selectors, services
from saml.models import SamlSettings
from workspaces.access import SESSION_KEY
from workspaces.services import actor_for_membership

URL = "/saml/alpha/break-glass/"


def _enforce(world, sso) -> list[str]:
    from django.utils import timezone

    SamlSettings.objects.filter(pk=sso.cfg.pk).update(last_test_succeeded_at=timezone.now(), last_test_by=world.owner_a.user)
    return services.saml_only_set(workspace=world.a, actor=actor_for_membership(world.owner_a, "saml"), enabled=True)


def test_owner_gets_in_with_a_recovery_code_and_it_is_audited(world, sso_a, password):
    codes = _enforce(world, sso_a)
    client = Client()
    response = client.post(URL, {"email": "owner@alpha.test", "password": password, "code": codes[0]})
    assert response.status_code == 302, AuditEvent.objects.filter(action="sso.break_glass_failed").values_list("details", flat=True)
    assert response["Location"] == "/w/alpha/"
    assert client.session[SESSION_KEY][str(world.a.pk)]["method"] == "break_glass"
    home = client.get("/w/alpha/").content.decode()
    assert 'id="break-glass-notice"' in home and "owner@alpha.test" in home
    event = AuditEvent.objects.get(action="sso.break_glass_used")
    assert event.auth_method == "break_glass" and event.details["codes_left"] == 7


def test_every_member_sees_the_break_glass_notice(world, sso_a, password):
    from tests.conftest import login_client

    codes = _enforce(world, sso_a)
    Client().post(URL, {"email": "owner@alpha.test", "password": password, "code": codes[0]})
    page = login_client(world.member_a, method="saml").get("/w/alpha/").content.decode()
    assert re.search(r"owner@alpha.test</strong> bypassed single sign-on", page)


def test_a_recovery_code_works_once(world, sso_a, password):
    codes = _enforce(world, sso_a)
    Client().post(URL, {"email": "owner@alpha.test", "password": password, "code": codes[0]})
    client = Client()
    response = client.post(URL, {"email": "owner@alpha.test", "password": password, "code": codes[0]})
    assert response.status_code == 200 and SESSION_KEY not in client.session
    assert AuditEvent.objects.filter(action="sso.break_glass_failed").count() == 1


def test_a_non_owner_cannot_use_a_recovery_code(world, sso_a, password):
    codes = _enforce(world, sso_a)
    client = Client()
    client.post(URL, {"email": "manager@alpha.test", "password": password, "code": codes[0]})
    assert SESSION_KEY not in client.session
    assert AuditEvent.objects.filter(action="sso.break_glass_failed").exists()


def test_a_code_of_workspace_a_does_not_open_b(world, sso_a, sso_b, password):
    from django.utils import timezone

    codes = _enforce(world, sso_a)
    SamlSettings.objects.filter(pk=sso_b.cfg.pk).update(last_test_succeeded_at=timezone.now())
    services.saml_only_set(workspace=world.b, actor=actor_for_membership(world.outsider_b, "saml"), enabled=True)
    client = Client()
    client.post("/saml/bravo/break-glass/", {"email": "owner@bravo.test", "password": password, "code": codes[0]})
    assert SESSION_KEY not in client.session


def test_wrong_password_with_a_valid_code_is_refused(world, sso_a):
    codes = _enforce(world, sso_a)
    client = Client()
    client.post(URL, {"email": "owner@alpha.test", "password": "wrong-password-123", "code": codes[0]})
    assert SESSION_KEY not in client.session
    assert selectors.break_glass_codes_left(world.a) == 8


def test_break_glass_page_does_not_exist_without_enforcement(world, sso_a):
    assert Client().get(URL).status_code == 404


def test_codes_are_stored_only_as_hashes(world, sso_a):
    from saml.models import BreakGlassCode

    codes = _enforce(world, sso_a)
    stored = set(BreakGlassCode.objects.values_list("code_hash", flat=True))
    assert not any(c in h or c.replace("-", "") in h for c in codes for h in stored)


def test_the_break_glass_page_is_never_cached(world, sso_a):
    _enforce(world, sso_a)
    response = Client().get(URL)
    assert response.status_code == 200
    assert response["Cache-Control"] == "max-age=0, no-cache, no-store, must-revalidate, private"


class TestThrottling:
    """Break-glass is throttled per workspace and address, refused before any hashing, and a stranger's failures
    never lock the real Owner out."""

    @staticmethod
    def _pin_clock(monkeypatch):
        import time

        monkeypatch.setattr("config.ratelimit._now", lambda: (int(time.time() // 900) + 0.5) * 900)

    def test_an_address_with_too_many_failures_is_refused_without_hashing_and_recorded_once(
        self, world, sso_a, password, settings, monkeypatch
    ):
        self._pin_clock(monkeypatch)
        settings.BREAK_GLASS_FAILURE_LIMIT = 3
        codes = _enforce(world, sso_a)
        stranger = Client(REMOTE_ADDR="198.51.100.7")
        for _ in range(3):
            assert stranger.post(URL, {"email": "owner@alpha.test", "password": "guess", "code": "x" * 10}).status_code == 200
        hashed = []
        monkeypatch.setattr("saml.views.authenticate", lambda *a, **k: hashed.append(1))
        for _ in range(20):
            response = stranger.post(URL, {"email": "owner@alpha.test", "password": password, "code": codes[0]})
            assert response.status_code == 429 and "Too many failed attempts" in response.content.decode()
        assert hashed == []
        failed = AuditEvent.objects.filter(action="sso.break_glass_failed")
        assert failed.count() == 4 and failed.filter(details__reason__startswith="throttled").count() == 1

    def test_a_strangers_failures_do_not_lock_out_the_owner_at_another_address(
        self, world, sso_a, password, settings, monkeypatch
    ):
        self._pin_clock(monkeypatch)
        settings.BREAK_GLASS_FAILURE_LIMIT = 3
        codes = _enforce(world, sso_a)
        stranger = Client(REMOTE_ADDR="198.51.100.7")
        for _ in range(10):
            stranger.post(URL, {"email": "owner@alpha.test", "password": "guess", "code": "x" * 10})
        owner = Client(REMOTE_ADDR="203.0.113.5")
        response = owner.post(URL, {"email": "owner@alpha.test", "password": password, "code": codes[0]})
        assert response.status_code == 302 and response["Location"] == "/w/alpha/"
