"""A row altered by someone with database superuser rights is found and named by the verifier."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction

from audit.chain import verify_chain
from audit.models import AuditVerification
from tests.conftest import login_client

from .helpers import record


def _as_superuser(sql: str, params: list) -> None:
    """What an attacker with superuser rights can do: switch the trigger off, change a row, switch it on."""
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER audit_event_append_only")
        cursor.execute(sql, params)
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER audit_event_append_only")


@pytest.fixture
def chain(world):
    return [record(world.a, f"test.step_{i}", target_label=f"t{i}") for i in range(5)]


def test_verify_audit_chain_names_the_event_whose_content_was_altered(world, chain, capsys):
    victim = chain[2]
    _as_superuser("UPDATE audit_auditevent SET target_label = %s WHERE id = %s", ["someone-else", victim.pk])
    with pytest.raises(CommandError):
        call_command("verify_audit_chain", "alpha")
    out = capsys.readouterr().out
    assert f"event id {victim.pk} (#{victim.seq})" in out
    assert "content altered" in out


def test_a_deleted_event_shows_as_a_sequence_gap_at_the_next_event(world, chain):
    _as_superuser("DELETE FROM audit_auditevent WHERE id = %s", [chain[1].pk])
    report = verify_chain(world.a.pk)
    assert not report.ok
    assert report.broken_event_id == chain[2].pk
    assert "sequence gap" in report.reason


def test_a_removed_newest_event_shows_as_a_truncated_chain(world, chain):
    _as_superuser("DELETE FROM audit_auditevent WHERE id = %s", [chain[-1].pk])
    report = verify_chain(world.a.pk)
    assert "chain truncated" in report.reason


def test_a_rehashed_altered_event_breaks_the_link_of_the_next_one(world, chain):
    victim = chain[1]
    victim.target_label = "rewritten"
    new_hash = victim.compute_hash()
    _as_superuser("UPDATE audit_auditevent SET target_label = %s, hash = %s WHERE id = %s", ["rewritten", new_hash, victim.pk])
    report = verify_chain(world.a.pk)
    assert report.broken_event_id == chain[2].pk
    assert "link broken" in report.reason


def test_an_untouched_chain_verifies_and_the_result_is_stored(world, chain, capsys):
    call_command("verify_audit_chain", "alpha")
    assert "OK      alpha: 5 events verified" in capsys.readouterr().out
    stored = AuditVerification.objects.get(workspace_id=world.a.pk)
    assert stored.ok and stored.verified_up_to == 5


def test_the_audit_page_shows_the_first_broken_link_found_by_the_last_run(world, chain):
    _as_superuser("UPDATE audit_auditevent SET ip = %s WHERE id = %s", ["10.6.6.6", chain[3].pk])
    from audit.tasks import verify_audit_chains

    verify_audit_chains()
    body = login_client(world.owner_a).get("/w/alpha/audit/").content.decode()
    assert "chain broken" in body
    assert f"/w/alpha/audit/{chain[3].pk}/" in body
    assert "content altered" in body


def test_the_audit_page_says_up_to_which_event_the_chain_was_verified(world, chain):
    from audit.tasks import verify_audit_chains

    verify_audit_chains()
    body = login_client(world.owner_a).get("/w/alpha/audit/").content.decode()
    assert "Verified up to event #5 at" in body


def test_a_tampered_event_page_says_its_hash_does_not_match(world, chain):
    _as_superuser("UPDATE audit_auditevent SET target_label = %s WHERE id = %s", ["forged", chain[2].pk])
    body = login_client(world.owner_a).get(f"/w/alpha/audit/{chain[2].pk}/").content.decode()
    assert "does not match the event&#x27;s content" in body or "does not match the event's content" in body


def test_verification_of_one_workspace_ignores_tampering_in_another(world, chain):
    other = record(world.b, "test.other")
    _as_superuser("UPDATE audit_auditevent SET target_label = %s WHERE id = %s", ["x", other.pk])
    assert verify_chain(world.a.pk).ok
    assert not verify_chain(world.b.pk).ok
