"""A backup of the database restored elsewhere still proves its audit log: ``pg_dump`` then ``pg_restore`` into a new
database, and ``manage.py verify_audit_chain`` on the copy verifies every chain; an edit made to the copy is found
(docs/deploy.md, "Backups and restore")."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from tests.deprov.harness import database_url_of_tests

from .helpers import as_actor, record

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.django_db(transaction=True)


def _psql(database: str, sql: str) -> None:
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", database, "-v", "ON_ERROR_STOP=1", "-qc", sql],
                   check=True, capture_output=True)


def _verify(database_url: str) -> subprocess.CompletedProcess:
    env = {
        "PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"), "PYTHONPATH": str(ROOT),
        "DJANGO_SETTINGS_MODULE": "config.settings", "DEBUG": "false", "SECRET_KEY": settings.SECRET_KEY,
        "DATABASE_URL": database_url, "LOG_FORMAT": "text",
    }
    return subprocess.run([sys.executable, "manage.py", "verify_audit_chain", "--no-record"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_a_restored_backup_verifies_and_an_edit_to_it_is_found(world, tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip("backs up and restores with pg_dump/pg_restore (run with DATABASE_URL=postgres://...)")
    for n in range(20):
        record(world.a, "member.role_changed", actor=as_actor(world.owner_a), target_id=str(n))
        record(world.b, "login.succeeded", actor=as_actor(world.outsider_b))
    source = database_url_of_tests()
    dump = tmp_path / "gatehouse.dump"
    subprocess.run(["pg_dump", "--format=custom", "--file", str(dump), source], check=True, capture_output=True)
    copy = f"gh_restore_{uuid.uuid4().hex[:8]}"
    subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", copy], check=True)
    try:
        restored_url = source.rsplit("/", 1)[0] + f"/{copy}"
        subprocess.run(["pg_restore", "--no-owner", "--dbname", restored_url, str(dump)], check=True,
                       capture_output=True)
        verified = _verify(restored_url)
        assert verified.returncode == 0, verified.stdout + verified.stderr
        assert "OK      alpha: 20 events verified" in verified.stdout
        assert "OK      bravo: 20 events verified" in verified.stdout
        # The append-only trigger came back with the restore: an ordinary edit is refused...
        with pytest.raises(subprocess.CalledProcessError):
            _psql(copy, "UPDATE audit_auditevent SET action = 'x' WHERE id = (SELECT min(id) FROM audit_auditevent)")
        # ...and one made past it (as a superuser can) breaks the chain, which verification names.
        _psql(copy, "SET session_replication_role = replica; "
                    "UPDATE audit_auditevent SET target_id = 'edited' WHERE id = ("
                    "SELECT min(e.id) FROM audit_auditevent e JOIN workspaces_workspace w ON w.id = e.workspace_id "
                    "WHERE w.slug = 'alpha' AND e.action = 'member.role_changed')")
        tampered = _verify(restored_url)
        assert tampered.returncode == 1
        assert "BROKEN  alpha" in tampered.stdout and "BROKEN  bravo" not in tampered.stdout
    finally:
        subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", copy], check=False)
