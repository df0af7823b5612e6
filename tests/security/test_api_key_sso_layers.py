"""SSO-bound personal keys, one layer at a time: the rule (``workspaces.policy.personal_key_sso_problem``) on unsaved
rows with one thing changed at a time, and the API key check (``resolve_api_key``), whose other refusals (another
workspace's URL, a deactivated member) must keep their place before it.

Through the API other layers answer first or the same (a 401 for most bad keys), so these tests are what would
notice a rule that lets a key through a moment too long or refuses it for the wrong reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from rest_framework import exceptions

from audit.models import AuditEvent
from tests.api.conftest import SETUP
from workspaces import policy
from workspaces.api.authentication import resolve_api_key
from workspaces.models import ApiKey, Membership, User, Workspace
from workspaces.services import api_key_create

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
WEEK = timedelta(days=7)


def workspace(*, saml_only: bool = True, window: int = 7 * 86400) -> Workspace:
    return Workspace(slug="acme", name="Acme Corp", saml_only=saml_only, api_key_sso_window=window)


def member(last_sso_at: datetime | None) -> Membership:
    return Membership(user=User(email="ada@acme.test"), role="member", last_sso_at=last_sso_at)


# ----------------------------------------------------------------------------- the rule


class TestTheRule:
    def test_outside_saml_only_a_key_needs_no_sso_sign_in(self):
        assert policy.personal_key_sso_problem(workspace(saml_only=False), member(None), NOW) == ""

    def test_without_any_sso_sign_in_a_key_is_refused(self):
        assert policy.personal_key_sso_problem(workspace(), member(None), NOW) != ""

    def test_within_the_window_a_key_acts(self):
        assert policy.personal_key_sso_problem(workspace(), member(NOW - WEEK + timedelta(microseconds=1)), NOW) == ""

    def test_at_the_end_of_the_window_a_key_is_refused(self):
        assert policy.personal_key_sso_problem(workspace(), member(NOW - WEEK), NOW) != ""

    def test_the_workspaces_window_is_the_one_used(self):
        one_hour = workspace(window=3600)
        assert policy.personal_key_sso_problem(one_hour, member(NOW - timedelta(minutes=59)), NOW) == ""
        assert policy.personal_key_sso_problem(one_hour, member(NOW - timedelta(minutes=60)), NOW) != ""

    def test_a_sign_in_in_the_future_of_now_counts_as_recent(self):
        # Another node's clock a little ahead: the sign-in happened, the key acts.
        assert policy.personal_key_sso_problem(workspace(), member(NOW + timedelta(seconds=5)), NOW) == ""

    def test_the_refusal_names_the_workspace_the_window_and_the_login_url_but_not_the_member(self, settings):
        settings.PUBLIC_BASE_URL = "https://portal.example.test"
        assert policy.personal_key_sso_problem(workspace(window=36 * 3600), member(None), NOW) == (
            "Acme Corp requires single sign-on, and the member this personal API key acts for has not signed in "
            "through SSO in the last 36 hours. Sign in to Acme Corp through SSO at "
            "https://portal.example.test/saml/acme/login/ to authorise this key again."
        )


class TestUntilWhen:
    def test_no_sso_sign_in_is_no_deadline(self):
        assert policy.personal_key_sso_until(workspace(), member(None)) is None

    def test_the_deadline_is_the_last_sso_sign_in_plus_the_window(self):
        assert policy.personal_key_sso_until(workspace(window=3600), member(NOW)) == NOW + timedelta(hours=1)

    @pytest.mark.parametrize(("seconds", "label"), [
        (3600, "1 hour"), (7200, "2 hours"), (36 * 3600, "36 hours"), (86400, "1 day"), (7 * 86400, "7 days"),
    ])
    def test_the_window_is_named_in_days_when_it_is_whole_days(self, seconds, label):
        assert policy.window_label(seconds) == label


# ----------------------------------------------------------------------------- the API key check


def _saml_only(world) -> None:
    Workspace.objects.filter(pk=world.a.pk).update(saml_only=True)


class TestTheKeyCheck:
    def test_a_personal_key_without_sso_is_refused_with_403_and_why(self, world):
        _saml_only(world)
        _, plain = api_key_create(workspace=world.a, membership=world.member_a, name="laptop", actor=SETUP)
        with pytest.raises(exceptions.PermissionDenied) as refused:
            resolve_api_key(plain, "alpha")
        assert "Sign in to Alpha Inc through SSO at" in str(refused.value.detail)
        assert "member@alpha.test" not in str(refused.value.detail)
        assert AuditEvent.objects.filter(action="api_key.sso_refused").count() == 1
        assert ApiKey.objects.get(name="laptop").last_used_at is None

    def test_the_same_key_with_a_recent_sso_sign_in_acts(self, world):
        _saml_only(world)
        _, plain = api_key_create(workspace=world.a, membership=world.member_a, name="laptop", actor=SETUP)
        Membership.objects.filter(pk=world.member_a.pk).update(last_sso_at=datetime.now(UTC) - timedelta(days=6))
        assert resolve_api_key(plain, "alpha").membership == world.member_a
        assert resolve_api_key(plain, "alpha", repository="libs").membership == world.member_a
        assert not AuditEvent.objects.filter(action="api_key.sso_refused").exists()

    def test_the_access_checks_combined_read_is_refused_alike(self, world):
        _saml_only(world)
        _, plain = api_key_create(workspace=world.a, membership=world.member_a, name="laptop", actor=SETUP)
        with pytest.raises(exceptions.PermissionDenied):
            resolve_api_key(plain, "alpha", repository="libs")

    def test_a_service_key_is_not_bound(self, world):
        _saml_only(world)
        _, plain = api_key_create(workspace=world.a, membership=None, name="connector", scopes=["members:read"],
                                  actor=SETUP)
        assert resolve_api_key(plain, "alpha").is_service_key

    def test_another_workspaces_url_is_still_a_plain_401_and_unrecorded(self, world):
        _saml_only(world)
        _, plain = api_key_create(workspace=world.a, membership=world.member_a, name="laptop", actor=SETUP)
        with pytest.raises(exceptions.AuthenticationFailed):
            resolve_api_key(plain, "bravo")
        assert not AuditEvent.objects.filter(action="api_key.sso_refused").exists()

    def test_a_deactivated_members_key_is_still_a_plain_401_and_unrecorded(self, world):
        _saml_only(world)
        _, plain = api_key_create(workspace=world.a, membership=world.member_a, name="laptop", actor=SETUP)
        Membership.objects.filter(pk=world.member_a.pk).update(is_active=False)
        with pytest.raises(exceptions.AuthenticationFailed):
            resolve_api_key(plain, "alpha")
        assert not AuditEvent.objects.filter(action="api_key.sso_refused").exists()

    def test_a_revoked_key_is_still_a_plain_401(self, world):
        _saml_only(world)
        row, plain = api_key_create(workspace=world.a, membership=world.member_a, name="laptop", actor=SETUP)
        ApiKey.objects.filter(pk=row.pk).update(revoked_at=datetime.now(UTC))
        with pytest.raises(exceptions.AuthenticationFailed):
            resolve_api_key(plain, "alpha")
