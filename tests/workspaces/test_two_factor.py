"""TOTP two-factor authentication: enrolment, the login's second step, recovery codes, the workspace requirement."""

from __future__ import annotations

import re
import time

import pytest
from django.test import Client, override_settings
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.models import AuditEvent
from tests.conftest import login_client
from tests.factories import TEST_PASSWORD
from workspaces.models import Workspace
from workspaces.services import (
    actor_for_membership,
    hash_recovery_code,
    two_factor_enrol_confirm,
    two_factor_enrol_start,
    user_actor,
)

pytestmark = pytest.mark.django_db


def code(device: TOTPDevice, steps_ahead: int = 0) -> str:
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time() + steps_ahead * device.step
    return f"{totp.token():0{device.digits}d}"


def enrol(user) -> tuple[TOTPDevice, list[str]]:
    device = two_factor_enrol_start(user=user)
    codes = two_factor_enrol_confirm(user=user, device_id=device.pk, token=code(device), actor=user_actor(user, "password"))
    device.refresh_from_db()
    return device, codes


def password_step(client: Client, email: str):
    return client.post("/login/", {"email": email, "password": TEST_PASSWORD})


def events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action))


def test_member_without_2fa_signs_in_with_the_password_alone(world):
    client = Client()
    response = password_step(client, "member@alpha.test")
    assert response.status_code == 302 and response["Location"] == "/w/alpha/"
    assert client.get("/w/alpha/").status_code == 200


def test_member_with_2fa_is_sent_to_the_second_step_without_a_session(world):
    enrol(world.member_a.user)
    client = Client()
    response = password_step(client, "member@alpha.test")
    assert response["Location"] == "/login/2fa/"
    assert client.get("/w/alpha/").status_code == 302  # not signed in yet: back to the login page


def test_correct_totp_code_completes_the_login(world):
    device, _ = enrol(world.member_a.user)
    client = Client()
    password_step(client, "member@alpha.test")
    response = client.post("/login/2fa/", {"code": code(device, steps_ahead=1)})
    assert response.status_code == 302 and response["Location"] == "/w/alpha/"
    assert client.get("/w/alpha/").status_code == 200


def test_repeated_wrong_codes_are_throttled_even_when_the_next_one_is_right(world):
    device, _ = enrol(world.member_a.user)
    client = Client()
    password_step(client, "member@alpha.test")
    client.post("/login/2fa/", {"code": "000000"})
    assert client.post("/login/2fa/", {"code": code(device, 1)}).status_code == 200  # throttled: refused


def test_wrong_code_is_refused_and_audited(world):
    enrol(world.member_a.user)
    client = Client()
    password_step(client, "member@alpha.test")
    response = client.post("/login/2fa/", {"code": "000000"})
    assert response.status_code == 200 and b"not valid" in response.content
    assert client.get("/w/alpha/").status_code == 302
    failed = events("2fa.verification_failed")
    assert failed and failed[0].workspace_id == world.a.pk and failed[0].actor_label == "member@alpha.test"


def test_recovery_code_signs_in_once(world):
    _, codes = enrol(world.member_a.user)
    first = Client()
    password_step(first, "member@alpha.test")
    assert first.post("/login/2fa/", {"code": codes[0].upper()})["Location"] == "/w/alpha/"
    assert events("2fa.recovery_code_used")[0].details == {"remaining": 9}
    second = Client()
    password_step(second, "member@alpha.test")
    assert second.post("/login/2fa/", {"code": codes[0]}).status_code == 200
    assert second.get("/w/alpha/").status_code == 302


def test_recovery_codes_are_stored_only_as_hashes(world):
    _, codes = enrol(world.member_a.user)
    stored = set(StaticToken.objects.values_list("token", flat=True))
    assert len(codes) == 10 and not stored & set(codes)
    assert hash_recovery_code(codes[3]) in stored


def test_second_step_without_a_password_step_goes_back_to_login(world):
    assert Client().get("/login/2fa/")["Location"] == "/login/"


@override_settings(TWO_FACTOR_PENDING_SECONDS=-1)
def test_pending_login_expires(world):
    device, _ = enrol(world.member_a.user)
    client = Client()
    password_step(client, "member@alpha.test")
    assert client.post("/login/2fa/", {"code": code(device, 1)})["Location"] == "/login/"


def test_workspace_requiring_2fa_makes_a_member_enrol_at_login(world):
    Workspace.objects.filter(pk=world.a.pk).update(require_2fa=True)
    client = Client()
    assert password_step(client, "member@alpha.test")["Location"] == "/login/2fa/"
    page = client.get("/login/2fa/")
    secret = re.search(rb'data-testid="totp-secret">([A-Z2-7]+)<', page.content).group(1).decode()
    assert b"otpauth://totp/" in page.content and b"<svg" in page.content
    device = TOTPDevice.objects.get(user=world.member_a.user, confirmed=False)
    assert device.config_url.split("secret=")[1].startswith(secret)
    done = client.post("/login/2fa/", {"code": code(device)})
    assert b"recovery codes" in done.content.lower() and "no-store" in done["Cache-Control"]
    assert world.member_a.user.two_factor_enabled
    assert client.get("/w/alpha/").status_code == 200
    assert events("2fa.enabled")


def test_member_of_a_workspace_without_the_requirement_is_not_asked_to_enrol(world):
    Workspace.objects.filter(pk=world.b.pk).update(require_2fa=True)
    assert password_step(Client(), "member@alpha.test")["Location"] == "/w/alpha/"


def test_account_page_enrolment_turns_2fa_on_and_shows_recovery_codes(world):
    client = login_client(world.member_a)
    client.get("/account/2fa/")
    device = TOTPDevice.objects.get(user=world.member_a.user, confirmed=False)
    response = client.post("/account/2fa/", {"action": "confirm", "device": device.pk, "code": code(device)})
    assert b'data-testid="recovery-codes"' in response.content
    assert world.member_a.user.two_factor_enabled
    assert events("2fa.enabled")[0].details == {"method": "totp"}


def test_turning_2fa_off_needs_a_valid_code_and_is_audited(world):
    _, codes = enrol(world.member_a.user)
    client = login_client(world.member_a)
    client.post("/account/2fa/", {"action": "disable", "code": "123456"})
    assert world.member_a.user.two_factor_enabled
    # The wrong TOTP code throttles the authenticator for a moment (django-otp); a recovery code also proves the factor.
    client.post("/account/2fa/", {"action": "disable", "code": codes[0]})
    assert not world.member_a.user.two_factor_enabled
    assert events("2fa.disabled")


def test_owner_with_2fa_requires_it_for_the_workspace(world):
    enrol(world.owner_a.user)
    client = login_client(world.owner_a)
    client.post("/w/alpha/settings/two-factor/", {"require_2fa": "on"})
    assert Workspace.objects.get(pk=world.a.pk).require_2fa
    assert events("workspace.2fa_requirement_changed")[0].details["after"] == {"require_2fa": True}


def test_owner_without_2fa_cannot_require_it(world):
    client = login_client(world.owner_a)
    response = client.post("/w/alpha/settings/two-factor/", {"require_2fa": "on"})
    assert b"Turn on two-factor authentication for your own account" in response.content
    assert not Workspace.objects.get(pk=world.a.pk).require_2fa


def test_manager_cannot_open_the_workspace_2fa_page(world):
    assert login_client(world.manager_a).get("/w/alpha/settings/two-factor/").status_code == 403


def test_owner_of_workspace_b_cannot_change_workspace_a_requirement(world):
    response = login_client(world.outsider_b).post("/w/alpha/settings/two-factor/", {"require_2fa": "on"})
    assert response.status_code == 404
    assert not Workspace.objects.get(pk=world.a.pk).require_2fa


def test_password_session_without_2fa_loses_the_workspace_when_it_becomes_required(world):
    member = login_client(world.member_a)
    assert member.get("/w/alpha/").status_code == 200
    from workspaces.services import workspace_set_require_2fa

    enrol(world.owner_a.user)
    workspace_set_require_2fa(workspace=world.a, required=True, actor=actor_for_membership(world.owner_a, "password"))
    assert member.get("/w/alpha/").status_code == 403
