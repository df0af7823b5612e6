"""Schemathesis over /api/schema/ against the live server: no 5xx and no response that breaks the schema."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.factories import RepositoryFactory, TeamFactory
from workspaces.models import RepositoryGrant, TeamMembership

from .conftest import personal_key

# Every check schemathesis has, including negative_data_rejection (a request the schema forbids is refused)
# and positive_data_acceptance (a request the schema allows is accepted).
CHECKS = "all"

# Configuration: the slug pinned to the key's own workspace, so generated requests reach the views (not only
# the 401 path). A cursor is opaque and signed: no schema can tell a forged one from a real one, so on the
# paged lists (and only for positive_data_acceptance) a 400 naming the cursor is a correct answer to a
# schema-valid request; every other check keeps its default statuses there.
CONFIG = """
[parameters]
"path.slug" = "alpha"

[[operations]]
include-path-regex = "/(members|teams|repositories|audit-events|entitlements|grants|reviews|items)/$"
checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "400", "401", "403", "404", "409", "429", "5xx"]
"""


@pytest.mark.django_db(transaction=True)
def test_schemathesis_finds_no_server_errors_and_no_schema_violations(world, live_server, tmp_path: Path):
    team = TeamFactory(workspace=world.a, name="core")
    TeamMembership.objects.create(team=team, membership=world.member_a)
    repo = RepositoryFactory(workspace=world.a, name="libs", environment="staging")
    RepositoryGrant.objects.create(repository=repo, team=team, permission="write")
    key = personal_key(world.owner_a)
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    schemathesis = Path(sys.executable).with_name("schemathesis")
    command = [
        str(schemathesis), "--config-file", str(config), "run", f"{live_server.url}/api/schema/",
        "--url", live_server.url,
        "--header", f"Authorization: Bearer {key}",
        "--checks", CHECKS,
        "--max-examples", "10",
        "--phases", "examples,coverage,fuzzing",
        "--workers", "1",
        "--seed", "5",
        "--max-time", "40",
        "--generation-database", "none",
        "--no-color",
        "--suppress-health-check", "all",
        "--request-timeout", "10",
    ]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": ""}
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    print(done.stdout[-6000:])
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    summary = done.stdout.split("SUMMARY")[-1]
    # Every operation was exercised, none skipped: 8 connector reads and the access check's, audit-events, 6 of
    # governance (entitlements, grants, grant, revoke, deactivate, reactivate) and 7 of access reviews.
    assert "Tested: 22" in summary
    assert "failed" not in summary and "error" not in summary.lower()
