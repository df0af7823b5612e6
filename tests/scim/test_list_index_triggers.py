"""The SCIM Users list index hears every change of the visible member set, whatever made it.

The bump is a database trigger (``scim.list_index_triggers``), so the ORM's ``save()``,
``QuerySet.update()``, ``bulk_create`` and ``delete()`` (which send different signals or none) all
move ``ScimListIndex.version``, and nobody calls anything. Each case also checks the other way: a
write that leaves the visible set as it was does not bump (SCIM deactivations of linked members
must not invalidate the index). Run on SQLite and, with ``DATABASE_URL``, on PostgreSQL.
"""

from __future__ import annotations

import pytest
from django.db import connection

from scim import list_index, list_index_triggers
from scim.models import ScimListIndex
from tests.factories import MembershipFactory, UserFactory, WorkspaceFactory
from workspaces.models import Membership, Workspace


def _version(workspace: Workspace) -> int:
    return ScimListIndex.objects.get(workspace=workspace).version


def _count(workspace: Workspace) -> int:
    return list_index.current(workspace).total


@pytest.fixture
def ws(db) -> Workspace:
    return WorkspaceFactory()


def test_every_trigger_is_installed(db):
    assert list_index_triggers.installed(connection) == set(list_index_triggers._NAMES)


def test_a_new_workspace_has_its_index_row_at_once(db):
    workspace = WorkspaceFactory()
    assert ScimListIndex.objects.filter(workspace=workspace).exists()
    assert Workspace.objects.bulk_create([Workspace(slug="bulk-ws", name="Bulk")])
    assert ScimListIndex.objects.filter(workspace__slug="bulk-ws").exists()


def test_save_of_a_new_member_bumps(ws):
    before, total = _version(ws), _count(ws)
    MembershipFactory(workspace=ws)
    assert _version(ws) != before and _count(ws) == total + 1


def test_bulk_create_bumps(ws):
    total = _count(ws)
    before = _version(ws)
    users = [UserFactory() for _ in range(3)]
    Membership.objects.bulk_create([Membership(workspace=ws, user=u) for u in users])
    assert _version(ws) != before and _count(ws) == total + 3


def test_bulk_create_of_members_nobody_sees_does_not_bump(ws):
    _count(ws)
    before = _version(ws)
    Membership.objects.bulk_create([Membership(workspace=ws, user=UserFactory(), is_active=False)])
    assert _version(ws) == before


def test_queryset_update_that_deactivates_unlinked_members_bumps(ws):
    MembershipFactory.create_batch(2, workspace=ws)
    assert _count(ws) == 2
    before = _version(ws)
    Membership.objects.filter(workspace=ws).update(is_active=False)
    assert _version(ws) != before and _count(ws) == 0
    before = _version(ws)
    Membership.objects.filter(workspace=ws).update(is_active=True)
    assert _version(ws) != before and _count(ws) == 2


def test_queryset_update_that_unlinks_inactive_members_bumps(ws):
    MembershipFactory(workspace=ws, is_active=False, scim_username="gone@x.test")
    assert _count(ws) == 1
    before = _version(ws)
    Membership.objects.filter(workspace=ws).update(scim_username="")
    assert _version(ws) != before and _count(ws) == 0


def test_deactivating_a_linked_member_does_not_bump_by_save_or_update(ws):
    member = MembershipFactory(workspace=ws, scim_username="linked@x.test")
    _count(ws)
    before = _version(ws)
    member.is_active = False
    member.save()
    Membership.objects.filter(pk=member.pk).update(is_active=True)
    member.save(update_fields=["is_active"])
    assert _version(ws) == before and _count(ws) == 1


def test_a_write_of_other_fields_does_not_bump(ws):
    member = MembershipFactory(workspace=ws)
    _count(ws)
    before = _version(ws)
    Membership.objects.filter(pk=member.pk).update(display_name="Someone", role="manager")
    member.display_name = "Someone else"
    member.save()
    assert _version(ws) == before


def test_save_with_update_fields_bumps_when_visibility_flips(ws):
    member = MembershipFactory(workspace=ws)
    _count(ws)
    before = _version(ws)
    member.is_active = False
    member.save(update_fields=["is_active"])
    assert _version(ws) != before and _count(ws) == 0


def test_a_member_given_another_user_bumps(ws):
    member = MembershipFactory(workspace=ws)
    _count(ws)
    before = _version(ws)
    Membership.objects.filter(pk=member.pk).update(user=UserFactory())
    assert _version(ws) != before


def test_a_member_moved_by_update_bumps_both_workspaces(ws):
    other = WorkspaceFactory()
    member = MembershipFactory(workspace=ws)
    assert (_count(ws), _count(other)) == (1, 0)
    before, other_before = _version(ws), _version(other)
    Membership.objects.filter(pk=member.pk).update(workspace=other)
    assert _version(ws) != before and _version(other) != other_before
    assert (_count(ws), _count(other)) == (0, 1)


def test_delete_of_one_member_bumps(ws):
    member = MembershipFactory(workspace=ws)
    _count(ws)
    before = _version(ws)
    member.delete()
    assert _version(ws) != before and _count(ws) == 0


def test_queryset_delete_bumps_and_spares_other_workspaces(ws):
    other = WorkspaceFactory()
    MembershipFactory.create_batch(2, workspace=ws)
    MembershipFactory(workspace=other)
    _count(ws), _count(other)
    before, other_before = _version(ws), _version(other)
    Membership.objects.filter(workspace=ws).delete()
    assert _version(ws) != before and _count(ws) == 0
    assert _version(other) == other_before and _count(other) == 1


def test_deleting_a_workspace_with_members_leaves_no_index_row(ws):
    MembershipFactory.create_batch(2, workspace=ws)
    _count(ws)
    workspace_id = ws.pk
    ws.delete()
    assert not ScimListIndex.objects.filter(workspace_id=workspace_id).exists()


def test_a_workspace_that_lost_its_row_gets_one_on_the_next_list(ws):
    MembershipFactory(workspace=ws)
    ScimListIndex.objects.filter(workspace=ws).delete()
    assert _count(ws) == 1


def test_triggers_dropped_by_a_table_rebuild_come_back_after_migrate(db):
    list_index_triggers.uninstall(connection)
    assert not list_index_triggers.installed(connection)
    list_index_triggers.reinstall_after_migrate(sender=None, using=connection.alias)
    assert list_index_triggers.installed(connection) == set(list_index_triggers._NAMES)
