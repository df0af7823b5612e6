"""The sign-in policy, one decision at a time, called directly.

``workspaces.policy`` is asked by the password login (which workspaces a password session may open, whether it
stops at the second-factor step) and by the per-request grant check (does a grant issued earlier still satisfy
the workspace's policy). Through the login and the grant check other layers refuse the same requests (the
login refuses SAML-only workspaces before any grant exists; revocation timestamps drop old grants), so these
tests ask the policy itself, with one thing changed at a time, on unsaved rows (no other layer involved).
"""

from __future__ import annotations

import pytest

from workspaces import policy
from workspaces.grants import GrantMethod
from workspaces.models import Membership, User, Workspace

SSO_REQUIRED = "This workspace now requires single sign-on."
SECOND_FACTOR_REQUIRED = "This workspace now requires two-factor authentication. Sign in again to set it up."

# Methods no IdP stands behind, or that only resemble one: all held to the password rules.
NOT_IDP = [GrantMethod.PASSWORD, None, "", "api_key", "SAML", "Break_Glass", "saml "]


def workspace(*, saml_only: bool = False, require_2fa: bool = False, slug: str = "w") -> Workspace:
    return Workspace(slug=slug, name=slug, saml_only=saml_only, require_2fa=require_2fa)


def person(*, two_factor: bool) -> User:
    user = User(email="p@example.test")
    user.has_confirmed_totp = two_factor  # the annotation ``two_factor_enabled`` reads (no query)
    return user


def membership(ws: Workspace) -> Membership:
    return Membership(workspace=ws, role="member")


# ----------------------------------------------------------------------------- which methods the IdP stands behind


def test_only_saml_and_break_glass_are_idp_methods():
    assert policy.IDP_METHODS == {GrantMethod.SAML, GrantMethod.BREAK_GLASS}
    assert GrantMethod.PASSWORD not in policy.IDP_METHODS


def test_the_refusal_messages():
    assert policy.SSO_REQUIRED == SSO_REQUIRED
    assert policy.SECOND_FACTOR_REQUIRED == SECOND_FACTOR_REQUIRED


# ----------------------------------------------------------------------------- SAML-only vs password


def test_a_password_may_not_open_a_saml_only_workspace():
    assert policy.password_may_open(workspace(saml_only=True)) is False


def test_a_password_may_open_a_workspace_that_is_not_saml_only():
    assert policy.password_may_open(workspace(saml_only=False)) is True
    # 2FA is a separate rule: it does not close the workspace to passwords.
    assert policy.password_may_open(workspace(require_2fa=True)) is True


def test_split_for_password_keeps_order_and_names_the_sso_only_workspaces():
    open_1, closed_1, open_2, closed_2 = (
        workspace(slug="open-1"),
        workspace(slug="closed-1", saml_only=True),
        workspace(slug="open-2", require_2fa=True),
        workspace(slug="closed-2", saml_only=True, require_2fa=True),
    )
    memberships = [membership(w) for w in (open_1, closed_1, open_2, closed_2)]
    allowed, sso_only = policy.split_for_password(iter(memberships))  # any iterable, read once
    assert [m.workspace.slug for m in allowed] == ["open-1", "open-2"]
    assert allowed == [memberships[0], memberships[2]]
    assert [w.slug for w in sso_only] == ["closed-1", "closed-2"]
    assert sso_only[0] is closed_1 and sso_only[1] is closed_2


def test_split_for_password_of_nothing_is_nothing():
    assert policy.split_for_password([]) == ([], [])


# ----------------------------------------------------------------------------- 2FA required vs present (login)


def test_a_password_needs_a_second_factor_exactly_where_2fa_is_required():
    assert policy.password_needs_second_factor(workspace(require_2fa=True)) is True
    assert policy.password_needs_second_factor(workspace(require_2fa=False)) is False
    # SAML-only is a separate rule: it does not by itself ask for a second factor.
    assert policy.password_needs_second_factor(workspace(saml_only=True)) is False


def test_second_factor_is_due_for_a_person_with_2fa_even_where_no_workspace_requires_it():
    assert policy.second_factor_due(person(two_factor=True), [membership(workspace())]) is True
    assert policy.second_factor_due(person(two_factor=True), []) is True


def test_second_factor_is_due_when_any_one_allowed_workspace_requires_it():
    allowed = [membership(workspace(slug="plain")), membership(workspace(slug="strict", require_2fa=True))]
    assert policy.second_factor_due(person(two_factor=False), allowed) is True
    assert policy.second_factor_due(person(two_factor=False), list(reversed(allowed))) is True


def test_second_factor_is_not_due_without_2fa_anywhere():
    plain = [membership(workspace(slug="one")), membership(workspace(slug="two"))]
    assert policy.second_factor_due(person(two_factor=False), plain) is False
    assert policy.second_factor_due(person(two_factor=False), []) is False


# ----------------------------------------------------------------------------- the grant against the policy now


def grant(method, *, mfa=None) -> dict:
    g = {"method": method, "at": 1.0, "exp": None}
    if mfa is not None:
        g["mfa"] = mfa
    return g


def test_a_password_grant_opens_a_workspace_without_either_rule():
    assert policy.grant_policy_problem(grant(GrantMethod.PASSWORD, mfa=False), workspace()) == ""
    assert policy.grant_policy_problem(grant(GrantMethod.PASSWORD), workspace()) == ""


def test_a_password_grant_is_refused_by_a_saml_only_workspace_even_with_a_second_factor():
    assert policy.grant_policy_problem(grant(GrantMethod.PASSWORD, mfa=True), workspace(saml_only=True)) == (
        SSO_REQUIRED
    )


def test_saml_only_is_reported_before_2fa():
    ws = workspace(saml_only=True, require_2fa=True)
    assert policy.grant_policy_problem(grant(GrantMethod.PASSWORD, mfa=False), ws) == SSO_REQUIRED


@pytest.mark.parametrize("method", [GrantMethod.SAML, GrantMethod.BREAK_GLASS])
def test_idp_grants_open_a_saml_only_workspace(method):
    assert policy.grant_policy_problem(grant(method), workspace(saml_only=True)) == ""


@pytest.mark.parametrize("method", [GrantMethod.SAML, GrantMethod.BREAK_GLASS])
def test_idp_grants_need_no_second_factor_here(method):
    # The IdP is in charge of factors for SSO; a break-glass code is its own proof.
    ws = workspace(saml_only=True, require_2fa=True)
    assert policy.grant_policy_problem(grant(method, mfa=False), ws) == ""
    assert policy.grant_policy_problem(grant(method), workspace(require_2fa=True)) == ""


@pytest.mark.parametrize("method", NOT_IDP)
def test_an_unknown_or_missing_method_is_held_to_saml_only(method):
    assert policy.grant_policy_problem(grant(method, mfa=True), workspace(saml_only=True)) == SSO_REQUIRED


def test_a_grant_without_a_method_key_is_held_to_the_password_rules():
    assert policy.grant_policy_problem({"mfa": True}, workspace(saml_only=True)) == SSO_REQUIRED
    assert policy.grant_policy_problem({}, workspace(require_2fa=True)) == SECOND_FACTOR_REQUIRED
    assert policy.grant_policy_problem({}, workspace()) == ""


@pytest.mark.parametrize("method", NOT_IDP)
def test_an_unknown_or_missing_method_is_held_to_2fa(method):
    ws = workspace(require_2fa=True)
    assert policy.grant_policy_problem(grant(method, mfa=False), ws) == SECOND_FACTOR_REQUIRED
    assert policy.grant_policy_problem(grant(method), ws) == SECOND_FACTOR_REQUIRED  # no "mfa" at all
    assert policy.grant_policy_problem(grant(method, mfa=True), ws) == ""


def test_2fa_required_is_satisfied_only_by_a_second_factor_recorded_on_the_grant():
    ws = workspace(require_2fa=True)
    assert policy.grant_policy_problem(grant(GrantMethod.PASSWORD, mfa=True), ws) == ""
    for absent in (False, None, 0, ""):
        assert policy.grant_policy_problem(grant(GrantMethod.PASSWORD, mfa=absent), ws) == SECOND_FACTOR_REQUIRED
