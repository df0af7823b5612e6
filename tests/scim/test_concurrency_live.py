"""Concurrent group PATCHes over real HTTP lose no member (the team row is locked for read-modify-write)."""

from __future__ import annotations

import threading

import pytest
import requests
from django.db import connection

from tests.factories import MembershipFactory
from workspaces.models import Team

from .conftest import SCIM_JSON, make_cred, patch_body

pytestmark = pytest.mark.django_db(transaction=True)


def test_concurrent_member_patches_on_one_group_keep_every_member(world, live_server):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: SQLite serialises writers with a file lock, so nothing runs concurrently")
    cred = make_cred(world.owner_a, "bearer")
    members = [MembershipFactory(workspace=world.a) for _ in range(40)]
    base = f"{live_server.url}/scim/v2/{world.a.slug}/"
    headers = {**cred.requests_auth, "Content-Type": SCIM_JSON}
    gid = requests.post(base + "Groups", json={"displayName": "Race"}, headers=headers).json()["id"]
    statuses: list[int] = []

    def add(chunk):
        for m in chunk:
            r = requests.patch(base + f"Groups/{gid}", json=patch_body(
                {"op": "add", "path": "members", "value": [{"value": str(m.pk)}]}), headers=headers)
            statuses.append(r.status_code)

    threads = [threading.Thread(target=add, args=(members[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(statuses) == {204}
    assert Team.objects.get(pk=gid).members.count() == 40


def test_concurrent_duplicate_user_posts_answer_201_or_409_and_each_is_logged(world, live_server):
    """Okta retries a create whose answer it lost while the first is still running: one 201, the rest 409."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: SQLite serialises writers with a file lock, so nothing runs concurrently")
    from scim.models import ScimRequestLog
    from workspaces.models import Membership

    from .conftest import okta_user

    cred = make_cred(world.owner_a, "bearer")
    url = f"{live_server.url}/scim/v2/{world.a.slug}/Users"
    headers = {**cred.requests_auth, "Content-Type": SCIM_JSON}
    logged_before = ScimRequestLog.objects.filter(workspace=world.a).count()
    statuses: list[int] = []
    rounds, parallel = 15, 4
    for n in range(rounds):
        barrier = threading.Barrier(parallel)
        body = okta_user(f"dup{n}@corp.test", external_id=f"00udup{n}")

        def post(body=body, barrier=barrier):
            barrier.wait()
            statuses.append(requests.post(url, json=body, headers=headers, timeout=30).status_code)

        threads = [threading.Thread(target=post) for _ in range(parallel)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert set(statuses) <= {201, 200, 409}, statuses
    assert statuses.count(201) == rounds
    assert Membership.objects.filter(workspace=world.a, user__email__startswith="dup").count() == rounds
    assert ScimRequestLog.objects.filter(workspace=world.a).count() - logged_before == rounds * parallel
