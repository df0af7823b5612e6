"""The unfiltered Users list pages from its database index (``scim.list_index``) with exact totals.

The index keeps the count and the user id of every ``SCIM_LIST_ANCHOR_EVERY``-th visible member;
here the stride is 2 or 3 so a handful of members spans several anchors. Pages are compared with
what ``COUNT(*)`` and ``OFFSET`` paging says (``SCIM_LIST_INDEX=False``), after every kind of
change to the members: an index that missed a change fails them.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import override_settings

from scim import list_index
from scim.models import ScimListIndex
from tests.factories import MembershipFactory, WorkspaceFactory
from workspaces.models import Membership, Workspace
from workspaces.services import (
    actor_for_membership,
    membership_add,
    membership_deactivate,
    membership_reactivate,
    membership_remove,
)

from .conftest import okta_user, patch_body


@pytest.fixture(autouse=True, params=[2, 3], ids=["stride2", "stride3"])
def stride(request):
    with override_settings(SCIM_LIST_ANCHOR_EVERY=request.param):
        yield request.param


@pytest.fixture
def crowd(world):
    """Workspace A with 11 SCIM-visible members: the world's 5 and 6 more (two of them linked, one of those inactive)."""
    extra = [MembershipFactory(workspace=world.a) for _ in range(4)]
    extra.append(MembershipFactory(workspace=world.a, scim_username="linked@alpha.test"))
    extra.append(MembershipFactory(workspace=world.a, scim_username="gone@alpha.test", is_active=False))
    MembershipFactory(workspace=world.a, is_active=False)  # neither active nor linked: not a SCIM User
    return extra


def _page(scim, start: int, count: int = 2) -> dict:
    response = scim.get(f"Users?startIndex={start}&count={count}")
    assert response.status_code == 200, response.content
    return response.json()


def _ids_total(doc: dict) -> tuple[list[str], int]:
    return [r["id"] for r in doc["Resources"]], doc["totalResults"]


def _offset_page(scim, start: int, count: int) -> tuple[list[str], int]:
    with override_settings(SCIM_LIST_INDEX=False):
        return _ids_total(_page(scim, start, count))


def _walk(scim, count: int = 2) -> tuple[list[str], set[int]]:
    """Page through like an IdP import (startIndex 1, 1+count, ...): ids in order and every totalResults seen."""
    ids, totals, start = [], set(), 1
    while True:
        doc = _page(scim, start, count)
        totals.add(doc["totalResults"])
        ids += [r["id"] for r in doc["Resources"]]
        if not doc["Resources"]:
            return ids, totals
        start += len(doc["Resources"])


def _fresh(scim) -> list[str]:
    """Every member, in order, from COUNT(*)/OFFSET paging (no index)."""
    ids, total = _offset_page(scim, 1, 200)
    assert total == len(ids)
    return ids


def _version(workspace: Workspace) -> int:
    return ScimListIndex.objects.get(workspace=workspace).version


def _owner(world):
    return actor_for_membership(world.owner_a, "password")


# ----------------------------------------------------------------------------- paging


@pytest.mark.parametrize("count", [1, 2, 3, 5])
def test_an_import_walk_returns_every_member_once_with_an_exact_total(world, crowd, scim_a, count):
    expected = _fresh(scim_a)
    assert len(expected) == 11
    assert _walk(scim_a, count) == (expected, {11})
    assert _walk(scim_a, count) == (expected, {11})  # the second walk reads the index it built


def test_every_start_index_gives_the_page_offset_paging_gives(world, crowd, scim_a):
    for count in (1, 2, 4):
        for start in range(1, 15):
            assert _ids_total(_page(scim_a, start, count)) == _offset_page(scim_a, start, count), (start, count)


def test_a_page_past_the_end_is_empty_with_the_exact_total(world, crowd, scim_a):
    assert _ids_total(_page(scim_a, 12, 2)) == ([], 11)
    assert _ids_total(_page(scim_a, 1000, 2)) == ([], 11)
    assert _ids_total(_page(scim_a, 5, 0)) == ([], 11)


def test_a_built_index_serves_a_deep_page_in_three_statements_without_count(world, crowd, scim_a, stride):
    _walk(scim_a)  # builds the index
    statements: list[tuple[str, list]] = []

    def record(execute, sql, params, many, context):
        statements.append((sql.upper(), list(params or ())))
        return execute(sql, params, many, context)

    # Not CaptureQueriesContext: the test client's request_started signal empties connection.queries.
    with connection.execute_wrapper(record):
        doc = _page(scim_a, 8, 2)
    assert _ids_total(doc) == _offset_page(scim_a, 8, 2)
    # The list's statements (authentication and the request log are not the list's): the index row,
    # the page's ids after an anchor, the page's members.
    listed = [(sql, params) for sql, params in statements if "SCIM_SCIMLISTINDEX" in sql or "WORKSPACES_MEMBERSHIP" in sql]
    assert len(listed) == 3, listed
    assert not any("COUNT(" in sql or "ROW_NUMBER" in sql or "ARRAY_AGG" in sql for sql, _ in listed)
    page_sql, page_params = listed[1]
    assert page_sql.endswith("LIMIT %S OFFSET %S") and page_params[-2:] == [2, (8 - 1) % stride]


def test_the_index_is_rebuilt_when_the_stride_changes(world, crowd, scim_a):
    expected = _fresh(scim_a)
    _walk(scim_a)
    with override_settings(SCIM_LIST_ANCHOR_EVERY=4):
        assert _walk(scim_a, 3) == (expected, {11})
        assert ScimListIndex.objects.get(workspace=world.a).stride == 4


def test_a_build_counts_the_visible_members_and_takes_every_strideth_user_id(world, crowd, stride):
    user_ids = sorted(Membership.objects.filter(workspace=world.a).exclude(is_active=False, scim_username="")
                      .values_list("user_id", flat=True))
    assert list_index._build(world.a, stride) == list_index.ListIndex(11, stride, tuple(user_ids[stride - 1::stride]))
    assert list_index._build(WorkspaceFactory(), stride) == list_index.ListIndex(0, stride, ())


def test_anchors_memoised_for_another_stride_are_not_reused(world, crowd, stride):
    expected = list_index._build(world.a, stride)
    assert list_index.current(world.a) == expected  # memoised here: (version, stride)
    version = _version(world.a)
    # Another process, with another stride, stored its build of the same version.
    other = list_index._build(world.a, stride + 1)
    assert list_index._store(world.a.pk, version, other)
    with override_settings(SCIM_LIST_ANCHOR_EVERY=stride + 1):
        assert list_index.current(world.a) == other


def test_an_empty_workspace_has_no_pages(db):
    assert list_index.page(WorkspaceFactory(), 1, 10) == ([], 0)


def test_workspace_b_keeps_its_own_count_and_pages(world, crowd, scim_a, scim_b):
    _walk(scim_a)
    b_version = _version(world.b) if ScimListIndex.objects.filter(workspace=world.b).exists() else None
    ids, totals = _walk(scim_b)
    assert totals == {1} and ids == [str(world.outsider_b.pk)]
    assert _ids_total(_page(scim_b, 3)) == ([], 1)
    scim_a.post("Users", okta_user("new.person@alpha.test"))
    assert b_version is None or _version(world.b) == b_version
    assert _walk(scim_b) == ([str(world.outsider_b.pk)], {1})


# ----------------------------------------------------------------------------- changes between pages


def test_a_member_created_by_the_directory_is_counted_and_listed_at_once(world, crowd, scim_a):
    _walk(scim_a)
    created = scim_a.post("Users", okta_user("new.person@alpha.test"))
    assert created.status_code == 201
    ids, totals = _walk(scim_a)
    assert totals == {12} and ids == _fresh(scim_a) and created.json()["id"] in ids


def test_a_member_added_in_the_portal_is_counted_and_listed_at_once(world, crowd, scim_a):
    _walk(scim_a)
    added = membership_add(workspace=world.a, email="late@alpha.test", actor=_owner(world))
    ids, totals = _walk(scim_a)
    assert totals == {12} and str(added.pk) in ids and ids == _fresh(scim_a)


def test_a_member_deleted_by_the_directory_shifts_later_pages_at_once(world, crowd, scim_a):
    before, _ = _walk(scim_a)
    assert scim_a.delete(f"Users/{before[1]}").status_code == 204
    ids, totals = _walk(scim_a)
    assert totals == {10} and ids == [before[0], *before[2:]]
    assert _ids_total(_page(scim_a, 3)) == (before[3:5], 10)


def test_a_member_removed_in_the_portal_disappears_from_count_and_pages(world, crowd, scim_a):
    before, _ = _walk(scim_a)
    removed = str(world.manager_a.pk)
    membership_remove(membership=world.manager_a, actor=_owner(world))
    ids, totals = _walk(scim_a)
    assert totals == {10} and ids == [i for i in before if i != removed]


def test_deactivating_and_reactivating_a_member_the_directory_never_linked_changes_the_list(world, crowd, scim_a):
    before, _ = _walk(scim_a)
    membership_deactivate(membership=world.member_a, actor=_owner(world))
    ids, totals = _walk(scim_a)
    assert totals == {10} and str(world.member_a.pk) not in ids and ids == _fresh(scim_a)
    membership_reactivate(membership=world.member_a, actor=_owner(world))
    assert _walk(scim_a) == (before, {11})


def test_deactivating_a_member_the_directory_links_does_not_bump_the_version(world, crowd, scim_a):
    created = scim_a.post("Users", okta_user("linked.person@alpha.test")).json()
    before, _ = _walk(scim_a)
    version = _version(world.a)
    off = scim_a.patch(f"Users/{created['id']}", patch_body({"op": "replace", "value": {"active": False}}))
    assert off.status_code == 200 and off.json()["active"] is False
    assert _version(world.a) == version
    ids, totals = _walk(scim_a)
    assert (ids, totals) == (before, {12}) and ids == _fresh(scim_a)  # still a SCIM User, inactive
    on = scim_a.patch(f"Users/{created['id']}", patch_body({"op": "replace", "path": "active", "value": True}))
    assert on.status_code == 200 and _version(world.a) == version
    linked = Membership.objects.get(pk=crowd[4].pk)
    membership_deactivate(membership=linked, actor=_owner(world))  # from the portal too
    assert _version(world.a) == version and _walk(scim_a) == (before, {12})


def test_an_activity_change_is_judged_by_the_stored_link_not_the_instance(world, crowd, scim_a):
    _walk(scim_a)
    member = Membership.objects.get(pk=world.member_a.pk)
    member.scim_username = "stale@alpha.test"  # never saved: the row is not linked
    version = _version(world.a)
    membership_deactivate(membership=member, actor=_owner(world))
    assert _version(world.a) != version
    ids, totals = _walk(scim_a)
    assert totals == {10} and str(member.pk) not in ids


def test_a_member_moved_to_another_workspace_leaves_one_list_and_joins_the_other(world, crowd, scim_a, scim_b):
    _walk(scim_a)
    _walk(scim_b)
    moved = Membership.objects.get(pk=world.member_a.pk)
    moved.workspace = world.b
    moved.save()
    assert _walk(scim_a)[1] == {10} and str(moved.pk) not in _walk(scim_a)[0]
    assert _walk(scim_b) == (sorted([str(world.outsider_b.pk), str(moved.pk)], key=lambda i: Membership.objects.get(
        pk=i).user_id), {2})
    moved.workspace = world.a
    moved.save(update_fields=["workspace"])
    assert _walk(scim_a) == (_fresh(scim_a), {11}) and _walk(scim_b)[1] == {1}


def test_members_bulk_created_are_listed_at_once(world, crowd, scim_a):
    _walk(scim_a)
    users = [MembershipFactory.build(workspace=world.a).user for _ in range(3)]
    for user in users:
        user.save()
    Membership.objects.bulk_create([Membership(workspace=world.a, user=u) for u in users])  # no signals, no call
    ids, totals = _walk(scim_a)
    assert totals == {14} and ids == _fresh(scim_a)


def test_deleting_a_workspace_deletes_its_index_and_creates_none(world, crowd, scim_b):
    _walk(scim_b)
    workspace_id = world.b.pk
    Workspace.objects.filter(pk=workspace_id).delete()  # its memberships go first, each sending post_delete
    assert not ScimListIndex.objects.filter(workspace_id=workspace_id).exists()


# ----------------------------------------------------------------------------- the race guard


def test_a_build_is_not_stored_when_the_members_changed_while_it_ran(world, crowd, scim_a, monkeypatch):
    _walk(scim_a)
    membership_deactivate(membership=world.member_a, actor=_owner(world))  # the index is now behind
    real_build = list_index._build
    moved = []

    def build_then_change(workspace, stride):
        built = real_build(workspace, stride)
        if not moved:  # a change commits after the version was read, before the build is stored
            moved.append(membership_add(workspace=world.a, email="racer@alpha.test", actor=_owner(world)))
        return built

    monkeypatch.setattr(list_index, "_build", build_then_change)
    ids, total = _ids_total(_page(scim_a, 1, 50))
    assert total == 10 and str(world.member_a.pk) not in ids  # answered from the build it made
    row = ScimListIndex.objects.get(workspace=world.a)
    assert row.built_version != row.version  # ... but did not store it
    monkeypatch.undo()
    ids, totals = _walk(scim_a)
    assert totals == {11} and str(moved[0].pk) in ids and ids == _fresh(scim_a)


def test_a_slow_build_of_an_older_version_never_replaces_a_newer_one(world, crowd, scim_a):
    list_index.current(world.a)
    old_version = _version(world.a)
    slow = list_index._build(world.a, 2)  # a request read old_version, then built slowly ...
    membership_deactivate(membership=world.member_a, actor=_owner(world))
    newer = list_index.current(world.a)  # ... while another request built and stored the next version
    assert newer.total == 10
    assert list_index._store(world.a.pk, old_version, slow) is False
    row = ScimListIndex.objects.get(workspace=world.a)
    assert row.built_version == row.version != old_version and row.total == 10
    assert _walk(scim_a) == (_fresh(scim_a), {10})
