"""``manage.py scim_credential``: create a credential and print its secret once; switch SCIM on and off."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from audit.models import AuditEvent
from scim.auth import authenticate_scim_request
from scim.models import ScimCredential

from .credential_helpers import basic, scim_request


def _run(*args) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("scim_credential", *args, stdout=out, stderr=err)
    return out.getvalue().strip(), err.getvalue()


def test_command_prints_a_bearer_token_that_authenticates(world):
    token, _ = _run("alpha", "--enable", "--kind", "bearer", "--name", "Okta")
    assert token.startswith("gs_")
    assert authenticate_scim_request(scim_request(f"Bearer {token}"), "alpha").workspace == world.a
    assert token not in ScimCredential.objects.get().secret_hash


def test_command_prints_basic_key_and_secret_that_authenticate(world):
    _run("alpha", "--enable")
    key_and_secret, _ = _run("alpha", "--kind", "basic", "--name", "Okta basic")
    key_id, _, secret = key_and_secret.partition(":")
    assert key_id and secret
    assert authenticate_scim_request(scim_request(basic(key_and_secret)), "alpha").credential.key_id == key_id


def test_command_enables_and_disables_scim_with_audit(world):
    _run("alpha", "--enable")
    world.a.refresh_from_db()
    assert world.a.scim_enabled
    _run("alpha", "--disable")
    world.a.refresh_from_db()
    assert not world.a.scim_enabled
    actions = list(AuditEvent.objects.filter(workspace=world.a).values_list("action", "actor_label").order_by("seq"))
    assert actions == [("scim.enabled", "manage.py scim_credential"), ("scim.disabled", "manage.py scim_credential")]


def test_command_warns_when_scim_is_still_off(world):
    _, err = _run("bravo", "--kind", "bearer", "--name", "Okta")
    assert "--enable" in err


def test_command_revokes_by_key_id_only_in_its_workspace(world):
    _run("alpha", "--kind", "bearer", "--name", "Okta")
    credential = ScimCredential.objects.get()
    with pytest.raises(CommandError):
        _run("bravo", "--revoke", credential.key_id)
    _run("alpha", "--revoke", credential.key_id)
    credential.refresh_from_db()
    assert credential.revoked_at is not None


def test_command_refuses_an_unknown_workspace_and_incomplete_arguments(world):
    with pytest.raises(CommandError):
        _run("nope", "--enable")
    with pytest.raises(CommandError):
        _run("alpha", "--kind", "bearer")
    with pytest.raises(CommandError):
        _run("alpha")
