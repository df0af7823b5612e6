"""The SP key on the SSO settings page (Owners) and through manage.py sso_sp_key: same services, same rules."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from audit.models import AuditEvent
from saml.models import SamlSettings, SpKey
from tests.conftest import login_client

URL = "/w/alpha/settings/sso/"


def states(world) -> list[str]:
    return sorted(SpKey.objects.filter(saml_settings__workspace=world.a).values_list("state", flat=True))


def test_owner_rolls_the_key_over_from_the_page(world, sso_a):
    client = login_client(world.owner_a)
    assert client.post(URL, {"action": "sp_key_prepare"}).status_code == 302
    page = client.get(URL).content.decode()
    assert "Active (signs" in page and "BEGIN CERTIFICATE" in page and "PRIVATE KEY" not in page
    client.post(URL, {"action": "sp_key_prepare"})
    page = client.get(URL).content.decode()
    assert 'id="sp-key-next-step"' in page and "Encryption Certificate" in page
    client.post(URL, {"action": "sp_key_activate"})
    page = client.get(URL).content.decode()
    assert 'id="sp-key-previous-step"' in page and states(world) == ["active", "previous"]
    client.post(URL, {"action": "sp_key_retire"})
    assert states(world) == ["active", "retired"]
    assert "Previous (decrypts" not in client.get(URL).content.decode()


def test_owner_turns_signing_and_required_encryption_on(world, sso_a):
    client = login_client(world.owner_a)
    client.post(URL, {"action": "sp_key_prepare"})
    client.post(URL, {"action": "sp_options", "sign_authn_requests": "on", "require_encrypted_assertions": "on"})
    cfg = SamlSettings.objects.get(workspace=world.a)
    assert (cfg.sign_authn_requests, cfg.require_encrypted_assertions) == (True, True)
    event = AuditEvent.objects.get(workspace=world.a, action="sso.sp_options_changed")
    assert event.details["after"] == {"sign_authn_requests": True, "require_encrypted_assertions": True}


def test_a_refused_step_is_shown_not_raised(world, sso_a):
    client = login_client(world.owner_a)
    response = client.post(URL, {"action": "sp_key_activate"}, follow=True)
    assert response.status_code == 200 and "no next SP key" in response.content.decode()


def test_a_manager_cannot_reach_the_key_actions(world, sso_a):
    client = login_client(world.manager_a)
    assert client.post(URL, {"action": "sp_key_prepare"}).status_code in (403, 404)
    assert states(world) == []


def test_owner_of_b_cannot_roll_the_key_of_a(world, sso_a, sso_b):
    client = login_client(world.outsider_b)
    assert client.post(URL, {"action": "sp_key_prepare"}).status_code == 404
    assert states(world) == []


def test_command_prints_certificates_and_fingerprints_never_the_private_key(world, sso_a):
    out = StringIO()
    call_command("sso_sp_key", "alpha", "prepare", "--sign-requests", stdout=out)
    text = out.getvalue()
    key = SpKey.objects.get(saml_settings__workspace=world.a)
    assert key.fingerprint_sha256 in text and "BEGIN CERTIFICATE" in text and "PRIVATE" not in text
    assert "Sign AuthnRequests: on" in text
    out = StringIO()
    call_command("sso_sp_key", "alpha", "prepare", stdout=out)
    assert "activate" in out.getvalue() and states(world) == ["active", "next"]
    call_command("sso_sp_key", "alpha", "activate", stdout=StringIO())
    out = StringIO()
    call_command("sso_sp_key", "alpha", "show", stdout=out)
    assert "retire" in out.getvalue()
    call_command("sso_sp_key", "alpha", "retire", stdout=StringIO())
    assert states(world) == ["active", "retired"]
    assert AuditEvent.objects.filter(workspace=world.a, action="sso.sp_key_prepared", actor_kind="system").count() == 2


def test_command_refuses_steps_out_of_order(world, sso_a):
    with pytest.raises(CommandError, match="no previous SP key"):
        call_command("sso_sp_key", "alpha", "retire", stdout=StringIO())
    with pytest.raises(CommandError, match="No workspace"):
        call_command("sso_sp_key", "nope", "show", stdout=StringIO())
