"""API keys are stored only as hashes; the plain key is shown once."""

from __future__ import annotations

import io
import re

from django.core.management import call_command
from django.db import connection

from tests.conftest import login_client
from workspaces import services
from workspaces.credentials import hash_secret
from workspaces.models import ApiKey
from workspaces.services import actor_for_membership


def _all_text_in_the_api_key_table() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM workspaces_apikey")
        return " ".join(str(v) for row in cursor.fetchall() for v in row)


def test_a_key_is_stored_only_as_its_hash(world):
    key, plain = services.api_key_create(
        workspace=world.a, membership=world.member_a, name="laptop", actor=actor_for_membership(world.member_a, "password")
    )
    assert plain.startswith(f"gh_{key.prefix}_")
    stored = _all_text_in_the_api_key_table()
    secret_part = plain.split("_", 2)[2]
    assert secret_part not in stored
    assert key.key_hash == hash_secret(plain)


def test_the_ui_shows_the_key_once_then_only_its_prefix(world):
    client = login_client(world.member_a)
    created = client.post("/w/alpha/api-keys/", {"action": "create", "name": "laptop"})
    body = created.content.decode()
    plain = re.search(r'data-testid="new-key">(gh_[^<]+)<', body).group(1)
    assert "no-store" in created["Cache-Control"]
    key = ApiKey.objects.get(name="laptop")
    assert key.membership == world.member_a and key.key_hash == hash_secret(plain)

    again = client.get("/w/alpha/api-keys/").content.decode()
    assert plain not in again
    assert f"gh_{key.prefix}" in again


def test_a_member_cannot_create_a_service_key_by_posting_the_kind(world):
    client = login_client(world.member_a)
    client.post("/w/alpha/api-keys/", {"action": "create", "name": "sneaky", "kind": "service"})
    assert ApiKey.objects.get(name="sneaky").membership == world.member_a


def test_a_key_can_be_revoked_and_the_revocation_is_audited(world):
    key, _ = services.api_key_create(
        workspace=world.a, membership=world.member_a, name="old", actor=actor_for_membership(world.member_a, "password")
    )
    client = login_client(world.member_a)
    client.post("/w/alpha/api-keys/", {"action": "revoke", "key": key.pk, "confirmed": "yes"})
    key.refresh_from_db()
    assert key.revoked_at is not None
    from audit.models import AuditEvent

    event = AuditEvent.objects.get(action="api_key.revoked")
    assert (event.target_id, event.actor_label) == (str(key.pk), "member@alpha.test")


def test_another_members_key_cannot_be_revoked_by_id(world):
    key, _ = services.api_key_create(
        workspace=world.a, membership=world.manager_a, name="mgr", actor=actor_for_membership(world.manager_a, "password")
    )
    client = login_client(world.member_a)
    assert client.post("/w/alpha/api-keys/", {"action": "revoke", "key": key.pk}).status_code == 404
    key.refresh_from_db()
    assert key.revoked_at is None


def test_deactivation_revokes_the_members_keys_through_the_task(world):
    key, _ = services.api_key_create(
        workspace=world.a, membership=world.member_a, name="ci", actor=actor_for_membership(world.member_a, "password")
    )
    from django.test import TestCase

    with TestCase.captureOnCommitCallbacks(execute=True):
        services.membership_deactivate(membership=world.member_a, actor=actor_for_membership(world.owner_a, "password"))
    key.refresh_from_db()
    assert key.revoked_at is not None
    from audit.models import AuditEvent

    event = AuditEvent.objects.get(action="member.credentials_revoked")
    assert event.details["api_keys"] == 1


def test_create_api_key_command_prints_the_key_once(world):
    out, err = io.StringIO(), io.StringIO()
    call_command("create_api_key", "alpha", "MEMBER@alpha.test", "--name", "deploy", stdout=out, stderr=err)
    plain = out.getvalue().strip()
    assert ApiKey.objects.get(name="deploy").key_hash == hash_secret(plain)
    assert "only its hash is stored" in err.getvalue()
