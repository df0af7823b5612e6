"""Concurrent directory writes in one workspace over real HTTP: no deadlock, and the list stays exact.

Creating a member bumps the Users list index before its audit event; deleting one records the
deactivation's event before unlinking. Both lock the index row before the audit chain head
(``scim/list_index.py``): in the other order, concurrent POSTs and DELETEs deadlock on PostgreSQL.
"""

from __future__ import annotations

import threading

import pytest
import requests
from django.db import connection
from django.test import override_settings

from .conftest import SCIM_JSON, make_cred, okta_user

pytestmark = pytest.mark.django_db(transaction=True)


def test_concurrent_creates_and_deletes_neither_deadlock_nor_skew_the_list(world, live_server):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: SQLite serialises writers with a file lock, so nothing runs concurrently")
    cred = make_cred(world.owner_a, "bearer")
    base = f"{live_server.url}/scim/v2/{world.a.slug}/"
    headers = {**cred.requests_auth, "Content-Type": SCIM_JSON}
    doomed = [
        requests.post(base + "Users", json=okta_user(f"doomed{i}@alpha.test"), headers=headers).json()["id"]
        for i in range(12)
    ]
    statuses: list[int] = []

    def churn(worker: int) -> None:
        for i in range(6):
            created = requests.post(base + "Users", json=okta_user(f"new{worker}-{i}@alpha.test"), headers=headers)
            statuses.append(created.status_code)
            if worker % 2 and i < 6:
                statuses.append(requests.delete(base + f"Users/{doomed[(worker // 2) * 6 + i]}", headers=headers)
                                .status_code)
            statuses.append(requests.get(base + "Users?startIndex=3&count=2", headers=headers).status_code)

    with override_settings(SCIM_LIST_ANCHOR_EVERY=2):
        threads = [threading.Thread(target=churn, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert set(statuses) <= {200, 201, 204}, statuses
        listed = requests.get(base + "Users?startIndex=1&count=200", headers=headers).json()
        with override_settings(SCIM_LIST_INDEX=False):
            counted = requests.get(base + "Users?startIndex=1&count=200", headers=headers).json()
    # The world's 5, 12 created then deleted, 24 created.
    assert listed["totalResults"] == counted["totalResults"] == 5 + 24
    assert [r["id"] for r in listed["Resources"]] == [r["id"] for r in counted["Resources"]]
