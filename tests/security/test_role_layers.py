"""Roles and capabilities, one rule at a time: the matrix cell by cell, the auditor flag, the deactivated member,
the target rules (only Owners touch Owners) and what a directory may grant."""

from __future__ import annotations

import pytest

from workspaces import roles
from workspaces.roles import Cap, Role

C = Cap
EXPECTED = {
    Role.OWNER: set(Cap),
    Role.MANAGER: set(Cap) - {C.MEMBER_MAKE_OWNER, C.MEMBER_SET_AUDITOR, C.APIKEY_SERVICE, C.SETTINGS_MANAGE,
                              C.REVIEW_MANAGE},
    Role.MEMBER: {C.WORKSPACE_VIEW, C.MEMBERS_LIST, C.REPOSITORIES_LIST, C.APIKEY_OWN},
    Role.COLLABORATOR: {C.WORKSPACE_VIEW, C.APIKEY_OWN},
}


class M:
    """A membership as ``can`` reads it (role, active, auditor): no database needed."""

    def __init__(self, role: str, *, is_active: bool = True, is_auditor: bool = False) -> None:
        self.role, self.is_active, self.is_auditor = role, is_active, is_auditor


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("cap", list(Cap))
def test_matrix_cell(role, cap):
    assert roles.can(M(role), cap) is (cap in EXPECTED[role])


@pytest.mark.parametrize("role", list(Role))
def test_deactivated_member_has_no_capability(role):
    assert not any(roles.can(M(role, is_active=False, is_auditor=True), cap) for cap in Cap)


def test_no_membership_has_no_capability():
    assert not any(roles.can(None, cap) for cap in Cap)


def test_unknown_role_has_no_capability():
    assert not any(roles.can(M("superuser"), cap) for cap in Cap)


def test_auditor_flag_adds_the_audit_log_and_access_reviews_and_nothing_else():
    auditor = M(Role.COLLABORATOR, is_auditor=True)
    assert roles.can(auditor, Cap.AUDIT_VIEW) and roles.can(auditor, Cap.REVIEW_MANAGE)
    assert {cap for cap in Cap if roles.can(auditor, cap)} == (
        EXPECTED[Role.COLLABORATOR] | {Cap.AUDIT_VIEW, Cap.REVIEW_MANAGE})


def test_capabilities_lists_every_cap_with_template_keys():
    caps = roles.capabilities(M(Role.MEMBER))
    assert caps == {c.value.replace(".", "_"): c in EXPECTED[Role.MEMBER] for c in Cap}


@pytest.mark.parametrize(("actor", "target", "allowed"), [
    (Role.OWNER, Role.OWNER, True),
    (Role.OWNER, Role.MEMBER, True),
    (Role.MANAGER, Role.OWNER, False),
    (Role.MANAGER, Role.MANAGER, True),
    (Role.MANAGER, Role.COLLABORATOR, True),
    (Role.MEMBER, Role.COLLABORATOR, False),
    (Role.COLLABORATOR, Role.COLLABORATOR, False),
])
def test_may_manage_member(actor, target, allowed):
    assert roles.may_manage_member(M(actor), M(target)) is allowed


def test_deactivated_owner_manages_nobody():
    assert roles.may_manage_member(M(Role.OWNER, is_active=False), M(Role.MEMBER)) is False
    assert roles.may_manage_member(None, M(Role.MEMBER)) is False


@pytest.mark.parametrize(("actor", "target", "new_role", "allowed"), [
    (Role.OWNER, Role.MEMBER, Role.OWNER, True),
    (Role.OWNER, Role.OWNER, Role.MEMBER, True),
    (Role.MANAGER, Role.MEMBER, Role.OWNER, False),  # only Owners make Owners
    (Role.MANAGER, Role.OWNER, Role.MEMBER, False),  # ... and unmake them
    (Role.MANAGER, Role.MEMBER, Role.MANAGER, True),
    (Role.MANAGER, Role.COLLABORATOR, Role.MEMBER, True),
    (Role.MEMBER, Role.COLLABORATOR, Role.MEMBER, False),
])
def test_may_change_role(actor, target, new_role, allowed):
    assert roles.may_change_role(M(actor), M(target), new_role) is allowed


class W:
    def __init__(self, scim_may_grant_owner: bool) -> None:
        self.scim_may_grant_owner = scim_may_grant_owner


@pytest.mark.parametrize("role", [Role.MANAGER, Role.MEMBER, Role.COLLABORATOR])
def test_directory_may_grant_the_lower_roles(role):
    assert roles.directory_may_grant(W(False), role) is True


def test_directory_may_grant_owner_only_when_the_workspace_allows_it():
    assert roles.directory_may_grant(W(False), Role.OWNER) is False
    assert roles.directory_may_grant(W(True), Role.OWNER) is True


def test_directory_never_grants_an_unknown_role():
    assert roles.directory_may_grant(W(True), "admin") is False
    assert roles.directory_may_grant(W(True), "") is False


def test_role_rank_orders_the_roles():
    assert sorted(Role, key=roles.ROLE_RANK.__getitem__) == [
        Role.COLLABORATOR, Role.MEMBER, Role.MANAGER, Role.OWNER]
    assert roles.ROLE_RANK[Role.COLLABORATOR] == 0 and roles.ROLE_RANK[Role.OWNER] == 3
