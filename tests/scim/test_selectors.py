"""The SCIM reads called directly, where the handlers' own checks would hide a wrong answer: the userName lookup
that also finds members the directory has not linked, ids at the edges of what an id can be, reads of many
members at once, and the ids a group PATCH names."""

from __future__ import annotations

import pytest
from django.db import connection

from scim import selectors
from tests.factories import MembershipFactory, TeamFactory, UserFactory, WorkspaceFactory
from workspaces.models import TeamMembership

pytestmark = pytest.mark.django_db


@pytest.fixture
def ws():
    return WorkspaceFactory(slug="acme")


def member(workspace, email: str, *, scim_username: str = "", is_active: bool = True):
    return MembershipFactory(workspace=workspace, user=UserFactory(email=email), scim_username=scim_username,
                             is_active=is_active)


# ----------------------------------------------------------------------------- the userName lookup


def test_an_unlinked_member_is_found_by_email_in_its_own_workspace_only(ws):
    other = WorkspaceFactory(slug="other")
    user = UserFactory(email="ada@acme.test")
    theirs = MembershipFactory(workspace=other, user=user)  # the same person, unlinked, in another workspace first
    mine = MembershipFactory(workspace=ws, user=user)
    assert [m.pk for m in selectors.members_by_username(ws, "ADA@acme.test")] == [mine.pk]
    assert [m.pk for m in selectors.members_by_username(other, "ada@acme.test")] == [theirs.pk]


def test_a_linked_member_is_found_by_its_user_name_not_by_its_email(ws):
    linked = member(ws, "ada@acme.test", scim_username="00u1ada")
    assert selectors.members_by_username(ws, "ada@acme.test") == []
    assert [m.pk for m in selectors.members_by_username(ws, "00U1ADA")] == [linked.pk]


def test_the_lookup_returns_the_member_with_its_user(ws, django_assert_num_queries):
    found = member(ws, "ada@acme.test", scim_username="ada@acme.test")
    with django_assert_num_queries(1):
        [hit] = selectors.members_by_username(ws, "ada@acme.test")
        assert hit.user.email == "ada@acme.test" and hit.pk == found.pk
    with django_assert_num_queries(1):
        assert selectors.scim_user_by_username(ws, "ADA@acme.test").user.email == "ada@acme.test"
    with django_assert_num_queries(1):
        assert selectors.membership_by_email(ws, "ADA@ACME.test").user.email == "ada@acme.test"


# ----------------------------------------------------------------------------- ids


@pytest.mark.parametrize(("rid", "pk"), [
    ("0", 0), ("127", 127), (str(2**63 - 1), 2**63 - 1),
    (str(2**63), None), (str(2**64), None), ("9" * 19, None), ("01", None), ("1 ", None), ("", None),
])
def test_a_resource_id_is_a_member_id_below_two_to_the_63(rid, pk):
    assert selectors.resource_pk(rid) == pk


def test_ids_a_group_patch_names_are_found_or_named_unknown(ws):
    a, b = member(ws, "a@acme.test"), member(ws, "b@acme.test")
    found, unknown = selectors.members_by_ids(ws, [str(a.pk), "abc", str(b.pk), "999999", None])
    assert sorted(m.pk for m in found) == sorted([a.pk, b.pk])
    assert unknown == ["abc", "None", "999999"]
    assert selectors.members_by_ids(ws, ["x"]) == ([], ["x"])


# ----------------------------------------------------------------------------- many members at once


@pytest.mark.parametrize("count", [1, 10, 11, 100, 101, 129])
def test_members_are_read_by_ids_whatever_their_number(ws, count):
    members = [member(ws, f"m{i}@acme.test") for i in range(count)]
    wanted = [m.pk for m in members]
    assert sorted(m.pk for m in selectors.members_by_pks(ws, wanted)) == sorted(wanted)
    assert sorted(m.pk for m in selectors.members_by_pks(ws, list(reversed(wanted)))) == sorted(wanted)


# ----------------------------------------------------------------------------- groups


def test_a_members_groups_come_in_name_order(ws):
    # On PostgreSQL they are read in the member's own statement, elsewhere in one query per page: same order.
    ada = member(ws, "ada@acme.test", scim_username="ada@acme.test")
    for name in ("zeta", "Alpha", "mu"):
        TeamMembership.objects.create(team=TeamFactory(workspace=ws, name=name), membership=ada)
    read = selectors.scim_user(ws, str(ada.pk), groups=True)
    groups = selectors.groups_from_row(read)
    if groups is None:
        groups = selectors.groups_of_members([ada.pk])[ada.pk]
    assert [name for _, name in groups] == sorted(["zeta", "Alpha", "mu"])
    assert [name for _, name in selectors.groups_of_members([ada.pk])[ada.pk]] == sorted(["zeta", "Alpha", "mu"])


def _for_write(ws, m, groups):
    # The test's own transaction holds the row lock (a write handler's transaction, in serving).
    return selectors.scim_user_for_write(ws, str(m.pk), groups=groups)


# Every member read a SCIM handler makes, with ``groups`` as the handler asks: (workspace, member, groups) -> member.
MEMBER_READS = {
    "scim_user": lambda ws, m, groups: selectors.scim_user(ws, str(m.pk), groups=groups),
    "members_by_pks": lambda ws, m, groups: selectors.members_by_pks(ws, [m.pk], groups=groups)[0],
    "members_by_username": lambda ws, m, groups: selectors.members_by_username(ws, m.user.email, groups=groups)[0],
    "scim_user_for_write": _for_write,
}
_DEFAULTS = {
    "scim_user": lambda ws, m: selectors.scim_user(ws, str(m.pk)),
    "members_by_pks": lambda ws, m: selectors.members_by_pks(ws, [m.pk])[0],
    "members_by_username": lambda ws, m: selectors.members_by_username(ws, m.user.email)[0],
    "scim_user_for_write": lambda ws, m: _for_write_default(ws, m),
}


def _for_write_default(ws, m):
    return selectors.scim_user_for_write(ws, str(m.pk))


@pytest.mark.parametrize("linked", [True, False], ids=["linked", "unlinked"])
@pytest.mark.parametrize("read", sorted(MEMBER_READS))
def test_on_postgresql_a_read_asked_for_teams_carries_them_in_its_own_statement(ws, read, linked,
                                                                               django_assert_num_queries):
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL reads a member's teams in the member's statement (JSONB); SQLite reads them in one "
                    "query per page, tested through the handlers")
    ada = member(ws, "ada@acme.test", scim_username="ada@acme.test" if linked else "")
    TeamMembership.objects.create(team=TeamFactory(workspace=ws, name="eng"), membership=ada)
    TeamMembership.objects.create(team=TeamFactory(workspace=ws, name="Alpha"), membership=ada)
    # An unlinked member found by userName costs two more statements (no linked match, its email, then the member).
    statements = 3 if read == "members_by_username" and not linked else 1
    with django_assert_num_queries(statements):
        got = MEMBER_READS[read](ws, ada, True)
    assert got.pk == ada.pk
    assert [name for _, name in selectors.groups_from_row(got)] == ["Alpha", "eng"]


@pytest.mark.parametrize("read", sorted(MEMBER_READS))
def test_a_read_not_asked_for_teams_does_not_read_them(ws, read):
    # GET /Users?attributes=userName and every write's own read: the teams' subquery runs per row, so only when asked.
    ada = member(ws, "ada@acme.test", scim_username="ada@acme.test")
    TeamMembership.objects.create(team=TeamFactory(workspace=ws, name="eng"), membership=ada)
    for got in (MEMBER_READS[read](ws, ada, False), _DEFAULTS[read](ws, ada)):
        assert got.pk == ada.pk and selectors.groups_from_row(got) is None


@pytest.mark.django_db(transaction=True)
def test_a_group_is_read_without_a_lock_outside_a_transaction():
    # GET /Groups/{id} runs in autocommit: a row lock there is an error on PostgreSQL.
    team = TeamFactory(workspace=WorkspaceFactory(slug="locks"), name="eng")
    assert selectors.scim_group(team.workspace, str(team.pk)) == team
