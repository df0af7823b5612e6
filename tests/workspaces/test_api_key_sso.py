"""SSO-bound personal API keys, the portal's side: the window Owners set (page, command, audit), and what the API keys
page and the API show about each key (personal or service, and whether SSO authorises it now).

The signed SAML logins themselves are in tests/saml/test_api_key_sso.py; here a member's SSO sign-in is recorded
with the service the SAML login calls (``membership_record_login`` with a ``saml`` actor)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from audit.models import AuditEvent
from tests.api.conftest import ApiClient, personal_key, service_key
from tests.conftest import login_client
from workspaces.exceptions import ServiceError
from workspaces.grants import GrantMethod
from workspaces.models import Membership, Workspace
from workspaces.services import (
    actor_for_membership,
    membership_record_login,
    workspace_set_api_key_sso_window,
)

SESSIONS = "/w/alpha/settings/sessions/"
KEYS = "/w/alpha/api-keys/"


def saml_only(workspace: Workspace) -> None:
    Workspace.objects.filter(pk=workspace.pk).update(saml_only=True)
    workspace.refresh_from_db()


def signed_in_through_sso(membership: Membership) -> None:
    membership_record_login(membership=membership, actor=actor_for_membership(membership, "saml"),
                            action="sso.login_succeeded")


class TestWhatRecordsAnSsoSignIn:
    def test_a_saml_login_stamps_the_last_sso_time(self, world):
        signed_in_through_sso(world.member_a)
        member = Membership.objects.get(pk=world.member_a.pk)
        assert member.last_sso_at is not None and member.last_sso_at == member.last_login_at

    @pytest.mark.parametrize("method", ["password", "break_glass", "api_key"])
    def test_no_other_sign_in_does(self, world, method):
        membership_record_login(membership=world.member_a, actor=actor_for_membership(world.member_a, method))
        member = Membership.objects.get(pk=world.member_a.pk)
        assert member.last_login_at is not None and member.last_sso_at is None

    def test_it_stamps_that_membership_only(self, world):
        signed_in_through_sso(world.member_a)
        assert not Membership.objects.exclude(pk=world.member_a.pk).filter(last_sso_at__isnull=False).exists()


class TestTheWindow:
    def test_the_default_is_seven_days(self, world):
        assert Workspace.objects.get(pk=world.a.pk).api_key_sso_window == 7 * 86400

    def test_an_owner_sets_it_on_the_sign_ins_page_and_it_is_audited(self, world):
        saml_only(world.a)
        owner = login_client(world.owner_a, method=GrantMethod.SAML)
        response = owner.post(SESSIONS, {"action": "api_key_sso", "keys-hours": "24"})
        assert response.status_code == 302
        assert Workspace.objects.get(pk=world.a.pk).api_key_sso_window == 86400
        event = AuditEvent.objects.get(action="workspace.api_key_sso_window_changed")
        assert (event.workspace_id, event.actor_label, event.auth_method) == (world.a.pk, "owner@alpha.test", "saml")
        assert event.details == {"before_seconds": 7 * 86400, "after_seconds": 86400}
        assert "authorises personal API keys" in owner.get(SESSIONS).content.decode()

    def test_a_shorter_window_refuses_keys_at_their_next_request(self, world):
        saml_only(world.a)
        key = personal_key(world.member_a)
        signed_in_through_sso(world.member_a)
        Membership.objects.filter(pk=world.member_a.pk).update(last_sso_at=timezone.now() - timedelta(hours=2))
        assert ApiClient(key).get("/api/v1/workspaces/alpha/").status_code == 200
        workspace_set_api_key_sso_window(workspace=world.a, window=3600,
                                         actor=actor_for_membership(world.owner_a, "saml"))
        assert ApiClient(key).get("/api/v1/workspaces/alpha/").status_code == 403

    def test_out_of_range_windows_are_refused_with_the_bounds(self, world):
        actor = actor_for_membership(world.owner_a, "password")
        for seconds in (3599, 90 * 86400 + 1):
            with pytest.raises(ServiceError, match="between 1 hour and 90 days"):
                workspace_set_api_key_sso_window(workspace=world.a, window=seconds, actor=actor)
        for seconds in (3600, 90 * 86400):
            workspace_set_api_key_sso_window(workspace=world.a, window=seconds, actor=actor)
        body = login_client(world.owner_a).post(SESSIONS, {"action": "api_key_sso", "keys-hours": "0"}).content.decode()
        assert "greater than or equal to 1" in body
        assert Workspace.objects.get(pk=world.a.pk).api_key_sso_window == 90 * 86400

    def test_setting_the_same_window_again_records_nothing(self, world):
        actor = actor_for_membership(world.owner_a, "password")
        workspace_set_api_key_sso_window(workspace=world.a, window=7200, actor=actor)
        workspace_set_api_key_sso_window(workspace=world.a, window=7200, actor=actor)
        assert AuditEvent.objects.filter(action="workspace.api_key_sso_window_changed").count() == 1

    def test_only_owners_change_it(self, world):
        with pytest.raises(ServiceError):
            workspace_set_api_key_sso_window(workspace=world.a, window=3600,
                                             actor=actor_for_membership(world.manager_a, "password"))
        assert login_client(world.manager_a).post(SESSIONS, {"action": "api_key_sso", "keys-hours": "1"}).status_code == 403
        assert Workspace.objects.get(pk=world.a.pk).api_key_sso_window == 7 * 86400

    def test_another_workspaces_owner_cannot_change_it(self, world):
        with pytest.raises(ServiceError):
            workspace_set_api_key_sso_window(workspace=world.a, window=3600,
                                             actor=actor_for_membership(world.outsider_b, "password"))
        assert login_client(world.outsider_b).post(SESSIONS, {"action": "api_key_sso", "keys-hours": "1"}).status_code == 404
        assert Workspace.objects.get(pk=world.a.pk).api_key_sso_window == 7 * 86400

    def test_the_command_sets_and_shows_it(self, world, capsys):
        call_command("workspace_sessions", "alpha", "--api-key-sso-hours", "36")
        assert Workspace.objects.get(pk=world.a.pk).api_key_sso_window == 36 * 3600
        assert "authorises personal API keys in alpha for 36 hours while SAML-only is on (it is off)" in (
            capsys.readouterr().out)
        event = AuditEvent.objects.get(action="workspace.api_key_sso_window_changed")
        assert event.details == {"before_seconds": 7 * 86400, "after_seconds": 36 * 3600}

    def test_the_command_explains_a_refused_value(self, world):
        with pytest.raises(CommandError, match="between 1 hour and 90 days"):
            call_command("workspace_sessions", "alpha", "--api-key-sso-hours", "2161")


class TestTheApiKeysPage:
    def _rows(self, client) -> str:
        return client.get(KEYS).content.decode()

    def test_it_names_each_keys_kind(self, world):
        personal_key(world.owner_a, name="laptop")
        service_key(world.a, ["members:read"], name="connector")
        page = self._rows(login_client(world.owner_a))
        assert "personal (acts as owner@alpha.test)" in page
        assert "service key <small>(members:read)</small>" in page

    def test_in_a_saml_only_workspace_it_shows_whether_sso_authorises_a_personal_key(self, world):
        saml_only(world.a)
        personal_key(world.owner_a, name="laptop")
        service_key(world.a, ["members:read"], name="connector")
        owner = login_client(world.owner_a, method=GrantMethod.SAML)
        page = self._rows(owner)
        assert "needs SSO sign-in" in page and "not bound to a sign-in" in page
        assert 'href="/saml/alpha/login/"' in page
        signed_in_through_sso(world.owner_a)
        until = Membership.objects.get(pk=world.owner_a.pk).last_sso_at + timedelta(days=7)
        page = self._rows(owner)
        assert f"authorised until {until:%Y-%m-%d %H:%M} UTC" in page and "needs SSO sign-in" not in page

    def test_outside_saml_only_there_is_no_sso_column(self, world):
        personal_key(world.owner_a, name="laptop")
        page = self._rows(login_client(world.owner_a))
        assert 'data-testid="key-sso"' not in page and "needs SSO sign-in" not in page

    def test_a_member_sees_only_their_own_keys(self, world):
        personal_key(world.owner_a, name="owners laptop")
        personal_key(world.member_a, name="members laptop")
        page = self._rows(login_client(world.member_a))
        assert "personal (acts as member@alpha.test)" in page and "owner@alpha.test" not in page


class TestTheApi:
    URL = "/api/v1/workspaces/alpha/"

    def test_a_personal_key_sees_its_kind_and_until_when_sso_authorises_it(self, world):
        saml_only(world.a)
        key = personal_key(world.member_a)
        signed_in_through_sso(world.member_a)
        until = Membership.objects.get(pk=world.member_a.pk).last_sso_at + timedelta(days=7)
        body = ApiClient(key).get(self.URL).json()
        assert body["policy"]["api_key_sso_window_seconds"] == 7 * 86400
        assert body["key"] == {"kind": "personal", "prefix": key.split("_")[1], "acts_as": "member@alpha.test",
                               "sso_authorised_until": until.isoformat().replace("+00:00", "Z")}

    def test_a_personal_key_outside_saml_only_has_no_sso_deadline(self, world):
        body = ApiClient(personal_key(world.member_a)).get(self.URL).json()
        assert body["key"]["kind"] == "personal" and body["key"]["sso_authorised_until"] is None

    def test_a_service_key_is_named_as_such(self, world):
        saml_only(world.a)
        key = service_key(world.a, ["members:read"])
        body = ApiClient(key).get(self.URL).json()
        assert body["key"] == {"kind": "service", "prefix": key.split("_")[1], "acts_as": None,
                               "sso_authorised_until": None}
