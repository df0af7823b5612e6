"""The named world (healthchecks' alice/bob/charlie): workspace A with one member per role, workspace B beside it."""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest
from django.test import Client

from workspaces.access import GrantMethod, grant_workspace
from workspaces.models import Membership, Workspace

from .factories import TEST_PASSWORD, MembershipFactory, WorkspaceFactory

pytest_plugins = ["tests.loopback", "tests.dns_server"]  # loopback_server, outbound_to_loopback; dns


@dataclass
class World:
    a: Workspace
    b: Workspace
    owner_a: Membership
    manager_a: Membership
    member_a: Membership
    private_member_a: Membership
    collaborator_a: Membership
    outsider_b: Membership


@pytest.fixture
def world(db) -> World:
    a = WorkspaceFactory(slug="alpha", name="Alpha Inc")
    b = WorkspaceFactory(slug="bravo", name="Bravo Ltd")
    return World(
        a=a,
        b=b,
        owner_a=MembershipFactory(workspace=a, role="owner", user__email="owner@alpha.test"),
        manager_a=MembershipFactory(workspace=a, role="manager", user__email="manager@alpha.test"),
        member_a=MembershipFactory(workspace=a, role="member", user__email="member@alpha.test"),
        private_member_a=MembershipFactory(
            workspace=a, role="member", visibility="private", user__email="private@alpha.test"
        ),
        collaborator_a=MembershipFactory(workspace=a, role="collaborator", user__email="collab@alpha.test"),
        outsider_b=MembershipFactory(workspace=b, role="owner", user__email="owner@bravo.test"),
    )


NEVER_CACHE = "max-age=0, no-cache, no-store, must-revalidate, private"  # what never_cache sends


def login_client(membership: Membership, *workspaces: Workspace, method: str = GrantMethod.PASSWORD) -> Client:
    """A test client whose session is signed in as the member and holds grants for ``workspaces``
    (default: the membership's own workspace)."""
    client = Client()
    client.force_login(membership.user, backend="workspaces.auth_backends.EmailBackend")
    session = client.session

    class _Req:  # grant_workspace only needs .session
        pass

    req = _Req()
    req.session = session
    for ws in workspaces or (membership.workspace,):
        grant_workspace(req, ws, method)
    session.save()
    return client


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix: None) -> None:
    """With GATEHOUSE_TEST_DB_PER_PROCESS set (scripts/mutation on PostgreSQL), each pytest process gets its own
    test database: mutmut runs mutants in parallel forked processes, which would otherwise share one name.
    GATEHOUSE_TEST_DB_TEMPLATE names an already migrated database to copy it from."""
    if os.environ.get("GATEHOUSE_TEST_DB_PER_PROCESS"):
        from django.conf import settings

        db = settings.DATABASES["default"]
        # Set, not appended: forked processes inherit the settings of the process that forked them.
        db.setdefault("TEST", {})["NAME"] = f"test_{db['NAME']}_{os.getpid()}"
        # A migrated template (triggers included) makes each process's database a file copy, not a migrate.
        template = os.environ.get("GATEHOUSE_TEST_DB_TEMPLATE")
        if template:
            db["TEST"]["TEMPLATE"] = template


@pytest.fixture(autouse=True)
def _fresh_per_process_state_under_mutmut():
    """Under the mutation check (scripts/mutation) each test starts without the per-process plans and caches.

    mutmut runs every mutant in a process forked from one that has already run the tests, so statements compiled
    once per process (config.db.CompiledQuery) and the caches beside them (config.db.process_cache) were built by the original code: a
    mutated builder would never run and its mutant would survive whatever the tests assert.
    """
    if os.environ.get("MUTANT_UNDER_TEST"):
        from config.db import forget_compiled_plans

        forget_compiled_plans()
    yield


@pytest.fixture(autouse=True)
def _empty_cache():
    """Each test starts with an empty cache (Redis in CI keeps counters such as login throttles between runs)."""
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture
def password() -> str:
    return TEST_PASSWORD
