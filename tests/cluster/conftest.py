"""The multi-node cluster (scripts/cluster): started once for this directory's tests, stopped after them.

The tests talk to it as clients do (HTTP through haproxy, or to one node directly), run ``manage.py`` with the
cluster's environment, and read its database with psycopg. They need this machine's PostgreSQL, haproxy and
PgBouncer (``bash scripts/test`` installs them); without PostgreSQL they are skipped with the reason.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import requests
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def _cluster_module(directory: Path, database: str):
    os.environ["CLUSTER_DIR"] = str(directory)
    os.environ["CLUSTER_DB"] = database
    spec = importlib.util.spec_from_file_location("gatehouse_cluster", ROOT / "scripts" / "cluster.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class Cluster:
    module: object
    state: dict
    database: str

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.state['ports']['haproxy']}"

    def node(self, n: int) -> str:
        return f"http://127.0.0.1:{self.state['ports']['nodes'][n - 1]}"

    def manage(self, *args: str) -> str:
        done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=self.module.app_env(self.state),
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def shell(self, code: str) -> str:
        return self.manage("shell", "-c", code)

    def sql(self, query: str, params: tuple = ()) -> list[tuple]:
        with psycopg.connect(f"{self.module.PG}/{self.database}", autocommit=True) as conn:
            return conn.execute(query, params).fetchall()

    def scim_token(self, slug: str = "acme") -> str:
        self.manage("scim_credential", slug, "--enable")
        out = self.manage("scim_credential", slug, "--kind", "bearer", "--name", "Okta")
        return re.search(r"\bgs_\S+", out).group(0)

    def refresh(self) -> None:
        self.state = json.loads((Path(self.state["dir"]) / "state.json").read_text())


def signed_in(base: str, email: str, password: str = "gatehouse-demo") -> requests.Session:
    """A browser session signed in with a password through ``base`` (a node or the load balancer)."""
    session = requests.Session()
    page = session.get(f"{base}/login/", timeout=30)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    done = session.post(f"{base}/login/", data={"csrfmiddlewaretoken": token, "email": email, "password": password},
                        headers={"Referer": f"{base}/login/"}, allow_redirects=False, timeout=30)
    assert done.status_code == 302, done.text[:500]
    return session


@pytest.fixture(scope="session")
def cluster(django_db_blocker) -> Iterator[Cluster]:
    with django_db_blocker.unblock():
        vendor = connection.vendor
    if vendor != "postgresql":
        pytest.skip("the cluster runs on this machine's PostgreSQL (run with DATABASE_URL=postgres://..., as .ci/run does)")
    directory = Path(tempfile.mkdtemp(prefix="gatehouse-cluster-"))
    database = f"gatehouse_cluster_test_{os.getpid()}"
    module = _cluster_module(directory, database)
    env = {**os.environ, "CLUSTER_DIR": str(directory), "CLUSTER_DB": database}
    started = subprocess.run([sys.executable, str(ROOT / "scripts" / "cluster.py"), "up"], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=300)
    if started.returncode != 0:
        subprocess.run([sys.executable, str(ROOT / "scripts" / "cluster.py"), "down"], cwd=ROOT, env=env, timeout=120)
        raise AssertionError(f"scripts/cluster up failed:\n{started.stdout[-3000:]}\n{started.stderr[-3000:]}")
    try:
        yield Cluster(module, json.loads((directory / "state.json").read_text()), database)
    finally:
        subprocess.run([sys.executable, str(ROOT / "scripts" / "cluster.py"), "down"], cwd=ROOT, env=env,
                       capture_output=True, timeout=120)
        shutil.rmtree(directory, ignore_errors=True)
