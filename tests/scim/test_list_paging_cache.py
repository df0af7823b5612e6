"""The unfiltered Users list keeps exact totals and pages while its count and cursors are cached.

``scim.list_cache`` remembers the count and, per startIndex, where the page starts (a keyset cursor).
Every test here pages the way Okta imports (startIndex 1, 3, 5, ... in order), changes the members,
and compares with what a fresh listing says: a cache that missed a change fails them.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from workspaces.services import actor_for_membership, membership_add, membership_deactivate, membership_remove

from .conftest import okta_user

pytestmark = pytest.mark.usefixtures("_list_cache_on")


@pytest.fixture
def _list_cache_on():
    with override_settings(SCIM_LIST_CACHE=True):
        yield


def _page(scim, start: int, count: int = 2) -> dict:
    response = scim.get(f"Users?startIndex={start}&count={count}")
    assert response.status_code == 200, response.content
    return response.json()


def _walk(scim, count: int = 2) -> tuple[list[str], set[int]]:
    """Page through like an IdP import: ids in order and every totalResults seen."""
    ids, totals, start = [], set(), 1
    while True:
        doc = _page(scim, start, count)
        totals.add(doc["totalResults"])
        ids += [r["id"] for r in doc["Resources"]]
        if not doc["Resources"]:
            return ids, totals
        start += len(doc["Resources"])


def _fresh(scim) -> list[str]:
    return [r["id"] for r in _page(scim, 1, 200)["Resources"]]


def test_paging_twice_returns_every_member_once_with_an_exact_total(world, scim_a):
    expected = _fresh(scim_a)
    assert len(expected) == 5
    assert _walk(scim_a) == (expected, {5})
    assert _walk(scim_a) == (expected, {5})  # the second walk is served from the cursors


def test_a_repeated_page_is_served_without_count_or_offset(world, scim_a):
    _walk(scim_a)
    with CaptureQueriesContext(connection) as queries:
        doc = _page(scim_a, 3)
    assert doc["totalResults"] == 5 and len(doc["Resources"]) == 2
    member_sql = [q["sql"] for q in queries if "workspaces_membership" in q["sql"]]
    assert not any("COUNT(" in sql.upper() or "OFFSET" in sql.upper() for sql in member_sql)


def test_a_member_created_by_the_directory_is_counted_and_listed_at_once(world, scim_a):
    _walk(scim_a)
    created = scim_a.post("Users", okta_user("new.person@alpha.test"))
    assert created.status_code == 201
    ids, totals = _walk(scim_a)
    assert totals == {6} and ids == _fresh(scim_a) and created.json()["id"] in ids


def test_a_member_added_in_the_portal_is_counted_and_listed_at_once(world, scim_a):
    _walk(scim_a)
    added = membership_add(
        workspace=world.a, email="late@alpha.test", actor=actor_for_membership(world.owner_a, "password")
    )
    ids, totals = _walk(scim_a)
    assert totals == {6} and str(added.pk) in ids and ids == _fresh(scim_a)


def test_a_member_deleted_by_the_directory_shifts_later_pages_at_once(world, scim_a):
    before, _ = _walk(scim_a)
    assert scim_a.delete(f"Users/{before[1]}").status_code == 204
    ids, totals = _walk(scim_a)
    assert totals == {4} and ids == [before[0], *before[2:]]
    assert _page(scim_a, 3)["Resources"][0]["id"] == before[3]


def test_a_member_removed_in_the_portal_disappears_from_count_and_pages(world, scim_a):
    before, _ = _walk(scim_a)
    removed = str(world.manager_a.pk)
    membership_remove(membership=world.manager_a, actor=actor_for_membership(world.owner_a, "password"))
    ids, totals = _walk(scim_a)
    assert totals == {4} and ids == [i for i in before if i != removed]


def test_deactivating_a_member_the_directory_never_linked_removes_it_from_the_list(world, scim_a):
    before, _ = _walk(scim_a)
    membership_deactivate(membership=world.member_a, actor=actor_for_membership(world.owner_a, "password"))
    ids, totals = _walk(scim_a)
    assert totals == {4} and str(world.member_a.pk) not in ids


def test_workspace_b_keeps_its_own_count_and_pages(world, scim_a, scim_b):
    _walk(scim_a)
    ids, totals = _walk(scim_b)
    assert totals == {1} and ids == [str(world.outsider_b.pk)]
    assert _page(scim_b, 3)["Resources"] == [] and _page(scim_b, 3)["totalResults"] == 1
