"""SSO-bound personal API keys: in a workspace that enforces SAML-only, a personal key acts for its member only while
that member's last sign-in through the workspace's IdP is within the workspace's window. Driven through real signed
SAML logins, the break-glass page and the connector API."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.test import Client
from django.utils import timezone

from audit.models import AuditEvent
from saml import services
from saml.models import SamlSettings
from tests.api.conftest import ApiClient, personal_key, service_key
from tests.factories import MembershipFactory, RepositoryFactory
from workspaces.models import ApiKey, Membership, RepositoryGrant
from workspaces.services import actor_for_membership

from .conftest import post_acs, start_login

WORKSPACE = "/api/v1/workspaces/alpha/"
ACCESS_CHECK = "/api/v1/workspaces/alpha/access-check"
WEEK = timedelta(days=7)


def enforce(world, sso) -> list[str]:
    """SAML-only on for workspace A (after the Test SSO the portal asks for); the break-glass codes."""
    SamlSettings.objects.filter(pk=sso.cfg.pk).update(
        last_test_succeeded_at=timezone.now(), last_test_by=world.owner_a.user)
    return services.saml_only_set(workspace=world.a, actor=actor_for_membership(world.owner_a, "saml"), enabled=True)


def sso_login(sso, email: str, slug: str = "alpha") -> None:
    """A real SP-initiated login: AuthnRequest, signed response, ACS (on the real clock: pysaml2 reads it too)."""
    client = Client()
    request_id = start_login(client, slug)
    response = post_acs(client, slug, sso.response(name_id=email, in_response_to=request_id))
    assert response.status_code == 302, response.content


def later(delta: timedelta):
    """Everything (the key check included) believes it is now + ``delta``."""
    return mock.patch("django.utils.timezone.now", return_value=timezone.now() + delta)


def refusals() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action="api_key.sso_refused").order_by("seq"))


# ----------------------------------------------------------------------------- the window


class TestAPersonalKeyFollowsItsMembersSsoSignIn:
    def test_it_works_right_after_an_sso_sign_in(self, world, sso_a):
        enforce(world, sso_a)
        key = personal_key(world.member_a)
        sso_login(sso_a, "member@alpha.test")
        assert ApiClient(key).get(WORKSPACE).status_code == 200

    def test_it_is_refused_before_any_sso_sign_in(self, world, sso_a):
        enforce(world, sso_a)
        response = ApiClient(personal_key(world.member_a)).get(WORKSPACE)
        assert response.status_code == 403

    def test_it_is_refused_once_the_window_has_passed(self, world, sso_a):
        enforce(world, sso_a)
        key = personal_key(world.member_a)
        sso_login(sso_a, "member@alpha.test")
        with later(WEEK - timedelta(minutes=1)):
            assert ApiClient(key).get(WORKSPACE).status_code == 200
        with later(WEEK + timedelta(seconds=1)):
            assert ApiClient(key).get(WORKSPACE).status_code == 403

    def test_a_new_sso_sign_in_authorises_it_again(self, world, sso_a):
        enforce(world, sso_a)
        key = personal_key(world.member_a)
        sso_login(sso_a, "member@alpha.test")
        # That sign-in was eight days ago (the IdP's responses are checked on the real clock, so the past moves).
        Membership.objects.filter(pk=world.member_a.pk).update(last_sso_at=timezone.now() - WEEK - timedelta(days=1))
        assert ApiClient(key).get(WORKSPACE).status_code == 403
        sso_login(sso_a, "member@alpha.test")
        assert ApiClient(key).get(WORKSPACE).status_code == 200

    def test_the_workspaces_window_decides(self, world, sso_a):
        from workspaces.services import workspace_set_api_key_sso_window

        enforce(world, sso_a)
        key = personal_key(world.member_a)
        sso_login(sso_a, "member@alpha.test")
        workspace_set_api_key_sso_window(workspace=world.a, window=3600, actor=actor_for_membership(world.owner_a, "saml"))
        with later(timedelta(minutes=59)):
            assert ApiClient(key).get(WORKSPACE).status_code == 200
        with later(timedelta(minutes=61)):
            assert ApiClient(key).get(WORKSPACE).status_code == 403


# ----------------------------------------------------------------------------- what authorises a key


class TestOnlyTheWorkspacesIdpAuthorisesAKey:
    def test_a_break_glass_sign_in_does_not(self, world, sso_a, password):
        codes = enforce(world, sso_a)
        key = personal_key(world.owner_a)
        response = Client().post("/saml/alpha/break-glass/",
                                 {"email": "owner@alpha.test", "password": password, "code": codes[0]})
        assert response.status_code == 302
        assert ApiClient(key).get(WORKSPACE).status_code == 403

    def test_a_password_sign_in_does_not(self, world, sso_a, password):
        key = personal_key(world.member_a)
        client = Client()
        response = client.post("/login/", {"email": "member@alpha.test", "password": password})
        assert response.status_code == 302
        assert client.get("/w/alpha/").status_code == 200  # a password sign-in is recorded where it is first used
        world.member_a.refresh_from_db()
        assert world.member_a.last_login_at is not None and world.member_a.last_sso_at is None
        enforce(world, sso_a)
        assert ApiClient(key).get(WORKSPACE).status_code == 403

    def test_an_sso_sign_in_to_another_workspace_does_not(self, world, sso_a, sso_b):
        MembershipFactory(workspace=world.b, user=world.member_a.user, role="member")
        enforce(world, sso_a)
        key = personal_key(world.member_a)
        sso_login(sso_b, "member@alpha.test", slug="bravo")
        assert ApiClient(key).get(WORKSPACE).status_code == 403
        assert Membership.objects.get(pk=world.member_a.pk).last_sso_at is None

    def test_an_sso_sign_in_authorises_only_that_members_keys(self, world, sso_a):
        enforce(world, sso_a)
        members_key, managers_key = personal_key(world.member_a), personal_key(world.manager_a)
        sso_login(sso_a, "member@alpha.test")
        assert ApiClient(members_key).get(WORKSPACE).status_code == 200
        assert ApiClient(managers_key).get(WORKSPACE).status_code == 403


# ----------------------------------------------------------------------------- what is not bound


class TestWhatIsNotBound:
    def test_a_service_key_is_unaffected(self, world, sso_a):
        enforce(world, sso_a)
        assert ApiClient(service_key(world.a, ["members:read"])).get(f"{WORKSPACE}members/").status_code == 200

    def test_a_workspace_that_is_not_saml_only_is_unaffected(self, world, sso_a):
        assert ApiClient(personal_key(world.member_a)).get(WORKSPACE).status_code == 200

    def test_turning_saml_only_off_frees_the_key_again(self, world, sso_a):
        enforce(world, sso_a)
        key = personal_key(world.member_a)
        assert ApiClient(key).get(WORKSPACE).status_code == 403
        services.saml_only_set(workspace=world.a, actor=actor_for_membership(world.owner_a, "saml"), enabled=False)
        assert ApiClient(key).get(WORKSPACE).status_code == 200

    def test_a_deactivated_members_key_is_still_refused_as_before(self, world, sso_a):
        enforce(world, sso_a)
        key = personal_key(world.member_a)
        sso_login(sso_a, "member@alpha.test")
        Membership.objects.filter(pk=world.member_a.pk).update(is_active=False)
        response = ApiClient(key).get(WORKSPACE)
        assert response.status_code == 401
        assert response.json() == {"detail": "Invalid, expired or revoked API key."}

    def test_another_workspaces_url_still_learns_nothing(self, world, sso_a):
        enforce(world, sso_a)
        response = ApiClient(personal_key(world.member_a)).get("/api/v1/workspaces/bravo/")
        assert response.status_code == 401
        assert response.json() == {"detail": "Invalid, expired or revoked API key."}
        assert refusals() == []


# ----------------------------------------------------------------------------- the refusal


class TestTheRefusal:
    def test_it_is_a_403_in_the_apis_error_format_that_says_how_to_fix_it(self, world, sso_a, settings):
        settings.PUBLIC_BASE_URL = "https://gatehouse.example.test"
        enforce(world, sso_a)
        response = ApiClient(personal_key(world.member_a)).get(WORKSPACE)
        assert response.status_code == 403
        assert response["Content-Type"] == "application/json"
        assert response.json() == {"detail": (
            "Alpha Inc requires single sign-on, and the member this personal API key acts for has not signed in "
            "through SSO in the last 7 days. Sign in to Alpha Inc through SSO at "
            "https://gatehouse.example.test/saml/alpha/login/ to authorise this key again."
        )}

    def test_a_refused_key_is_not_marked_used(self, world, sso_a):
        enforce(world, sso_a)
        key = personal_key(world.member_a)
        ApiClient(key).get(WORKSPACE)
        assert ApiKey.objects.get(membership=world.member_a).last_used_at is None

    def test_it_is_recorded_once_per_key_and_hour_not_per_attempt(self, world, sso_a, monkeypatch):
        import time

        hour = (int(time.time() // 3600) + 0.5) * 3600  # the middle of an hour's window
        monkeypatch.setattr("config.ratelimit._now", lambda: hour)
        enforce(world, sso_a)
        key = personal_key(world.member_a, name="laptop")
        for _ in range(5):
            assert ApiClient(key).get(WORKSPACE).status_code == 403
        [event] = refusals()
        row = ApiKey.objects.get(membership=world.member_a)
        assert (event.workspace_id, event.actor_label, event.auth_method) == (world.a.pk, "member@alpha.test", "api_key")
        assert (event.target_type, event.target_id, event.target_label) == ("api_key", str(row.pk), f"laptop ({row.prefix})")
        assert event.details == {"owner": "member@alpha.test", "last_sso_at": None, "window_seconds": 7 * 86400}
        other = personal_key(world.manager_a)
        ApiClient(other).get(WORKSPACE)
        assert [e.actor_label for e in refusals()] == ["member@alpha.test", "manager@alpha.test"]
        monkeypatch.setattr("config.ratelimit._now", lambda: hour + 3600)
        ApiClient(key).get(WORKSPACE)
        assert len(refusals()) == 3


# ----------------------------------------------------------------------------- package pull and push


class TestPackageAccessWithAPersonalKey:
    @pytest.fixture
    def libs(self, world):
        repo = RepositoryFactory(workspace=world.a, name="libs")
        RepositoryGrant.objects.create(repository=repo, membership=world.member_a, permission="write")
        return repo

    def test_pull_and_push_follow_the_same_rule(self, world, sso_a, libs):
        enforce(world, sso_a)
        key = personal_key(world.member_a)
        for action in ("pull", "push"):
            response = ApiClient(key).post(ACCESS_CHECK, {"repository": "libs", "action": action})
            assert response.status_code == 403
            assert "through SSO" in response.json()["detail"]
        # Refused before any decision: no package event claims the member was checked.
        assert not AuditEvent.objects.filter(action__startswith="package.").exists()
        sso_login(sso_a, "member@alpha.test")
        for action in ("pull", "push"):
            response = ApiClient(key).post(ACCESS_CHECK, {"repository": "libs", "action": action})
            assert response.status_code == 200 and response.json()["allowed"] is True

    def test_a_service_key_checking_the_member_is_unaffected(self, world, sso_a, libs):
        enforce(world, sso_a)
        response = ApiClient(service_key(world.a, ["access:check"])).post(
            ACCESS_CHECK, {"repository": "libs", "action": "pull", "member": "member@alpha.test"})
        assert response.status_code == 200 and response.json()["allowed"] is True
