"""One policy decides which sign-ins open a workspace: the password login and the per-request check agree.

Where the two used to differ, the stricter reading holds: only a grant known to come through the
workspace's IdP (SAML, break-glass) is exempt from the password rules; any other grant is held to them.
"""

from __future__ import annotations

import pytest

from tests.conftest import login_client
from workspaces.access import grant_problem
from workspaces.authn import password_login
from workspaces.grants import GrantMethod
from workspaces.models import Workspace
from workspaces.policy import SECOND_FACTOR_REQUIRED, SSO_REQUIRED, grant_policy_problem


def _set(world, **flags) -> Workspace:
    Workspace.objects.filter(pk=world.a.pk).update(**flags)
    world.a.refresh_from_db()
    return world.a


@pytest.mark.parametrize("method", [GrantMethod.PASSWORD, "", None, "api_key", "Password"])
def test_a_grant_not_known_to_come_from_the_idp_does_not_open_a_saml_only_workspace(world, method):
    workspace = _set(world, saml_only=True)
    assert grant_policy_problem({"method": method, "mfa": True}, workspace) == SSO_REQUIRED


def test_a_grant_without_a_method_does_not_open_a_saml_only_workspace_on_the_next_request(world):
    client = login_client(world.member_a, method="")
    _set(world, saml_only=True)
    assert client.get("/w/alpha/").status_code == 403


@pytest.mark.parametrize("method", [GrantMethod.SAML, GrantMethod.BREAK_GLASS])
def test_idp_grants_open_a_saml_only_workspace(world, method):
    workspace = _set(world, saml_only=True)
    assert grant_policy_problem({"method": method}, workspace) == ""


@pytest.mark.parametrize("method", [GrantMethod.PASSWORD, "", "api_key"])
def test_a_non_idp_grant_without_a_second_factor_does_not_open_a_workspace_requiring_2fa(world, method):
    workspace = _set(world, require_2fa=True)
    assert grant_policy_problem({"method": method, "mfa": False}, workspace) == SECOND_FACTOR_REQUIRED
    assert grant_policy_problem({"method": method, "mfa": True}, workspace) == ""


def test_the_request_check_asks_the_policy(world):
    workspace = _set(world, saml_only=True)
    grant = {"method": GrantMethod.PASSWORD, "at": 1e12, "exp": None}
    assert grant_problem(grant, workspace, world.member_a) == SSO_REQUIRED


def test_the_password_login_asks_the_same_policy(world, rf, password):
    _set(world, saml_only=True)
    request = rf.post("/login/")
    request.session = login_client(world.member_a).session
    result = password_login(request, "member@alpha.test", password)
    assert not result.ok and [w.pk for w in result.sso_required] == [world.a.pk]
