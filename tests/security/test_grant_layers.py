"""The grant check, one layer at a time: each test leaves every other layer passing, so it fails when its own
layer alone is removed.

In the running product several layers refuse the same request (deactivating a member also stamps
``credentials_valid_after``; logins refuse disabled accounts): these tests call ``grant_problem`` and
``access_workspace`` directly, with exactly one thing wrong, so no other layer masks the one under test.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.backends.db import SessionStore
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.test import RequestFactory

from workspaces import access, grants
from workspaces.roles import Cap

NOW = 1_900_000_000.0  # a fixed clock for the grant check and the grants it reads (time.time())

DEACTIVATED = "Your membership in this workspace is deactivated."
DISABLED = "Your account is disabled."
NO_GRANT = "This session has not signed in to this workspace."
EXPIRED = "Your sign-in for this workspace has expired."
REVOKED = "Your sign-in for this workspace was revoked."
PREDATES = "Your sign-in for this workspace predates your current membership."
SAML_ONLY = "This workspace now requires single sign-on."
NEEDS_2FA = "This workspace now requires two-factor authentication. Sign in again to set it up."


@pytest.fixture
def clock(monkeypatch):
    monkeypatch.setattr(access, "time", SimpleNamespace(time=lambda: NOW))
    monkeypatch.setattr(grants, "time", SimpleNamespace(time=lambda: NOW))
    return NOW


def at(seconds: float):
    from datetime import UTC, datetime

    return datetime.fromtimestamp(seconds, tz=UTC)


@pytest.fixture
def member(world, clock):
    """An active member of an active account, made well before every grant below."""
    m = world.member_a
    m.created_at = at(NOW - 3600)
    m.credentials_valid_after = None
    return m


def grant(method: str = access.GrantMethod.PASSWORD, *, at_: float = NOW - 60, exp: float | None = None, mfa=False):
    return {"method": method, "at": at_, "exp": exp, "mfa": mfa}


def problem(g, membership, workspace=None) -> str:
    return access.grant_problem(g, workspace or membership.workspace, membership)


# ----------------------------------------------------------------------------- the baseline


def test_a_fresh_grant_of_an_active_member_opens_the_workspace(member):
    assert problem(grant(), member) == ""


def test_no_membership_is_refused(world, clock):
    assert access.grant_problem(grant(), world.a, None) == "not a member"


# ----------------------------------------------------------------------------- membership active


def test_deactivated_membership_is_refused_even_with_a_fresh_grant(member):
    member.is_active = False  # and credentials_valid_after left unset, so the revocation layer stays silent
    assert problem(grant(), member) == DEACTIVATED


# ----------------------------------------------------------------------------- consent


def test_a_membership_pending_consent_is_refused_even_with_a_fresh_saml_grant(member):
    member.consent_pending_since = at(NOW - 60)
    reason = problem(grant(access.GrantMethod.SAML), member)
    assert reason == (f"You have not joined this workspace yet. Accept the invitation sent to {member.user.email} "
                      "(an Owner can resend it).")


def test_a_refusal_says_whether_consent_is_what_is_missing(world, clock):
    assert access.NoGrant(world.a, "no grant").consent_pending is False  # by default: signing in again may help
    assert access.NoGrant(world.a, "x", consent_pending=True).consent_pending is True
    world.member_a.consent_pending_since = at(NOW - 60)
    world.member_a.save(update_fields=["consent_pending_since"])
    with pytest.raises(access.NoGrant) as refused:
        access.access_workspace(request_for(world.member_a.user, live(world.a)), "alpha")
    assert refused.value.consent_pending is True
    world.member_a.consent_pending_since = None
    world.member_a.is_active = False
    world.member_a.save(update_fields=["consent_pending_since", "is_active"])
    with pytest.raises(access.NoGrant) as deactivated:
        access.access_workspace(request_for(world.member_a.user, live(world.a)), "alpha")
    assert deactivated.value.consent_pending is False


def test_marking_a_grant_recorded_without_a_grant_changes_nothing(world, clock):
    request = request_for(world.member_a.user, {})
    grants.mark_grant_recorded(request, world.a.pk)  # no grant for this workspace: nothing to mark, no error
    assert request.session.get(access.SESSION_KEY) == {}


def test_an_accepted_membership_is_not_refused_for_consent(member):
    member.consent_pending_since = None
    assert problem(grant(access.GrantMethod.SAML), member) == ""


# ----------------------------------------------------------------------------- account active


def test_disabled_account_is_refused_even_with_a_fresh_grant(member):
    member.user.is_active = False
    assert problem(grant(), member) == DISABLED


# ----------------------------------------------------------------------------- a grant at all


def test_missing_grant_is_refused(member):
    assert problem(None, member) == NO_GRANT
    assert problem({}, member) == NO_GRANT


# ----------------------------------------------------------------------------- expiry


def test_expired_grant_is_refused(member):
    assert problem(grant(exp=NOW - 1), member) == EXPIRED


def test_grant_expiring_this_very_second_is_refused(member):
    assert problem(grant(exp=NOW), member) == EXPIRED  # SessionNotOnOrAfter is exclusive


def test_grant_expiring_later_or_never_is_accepted(member):
    assert problem(grant(exp=NOW + 1), member) == ""
    assert problem(grant(exp=None), member) == ""


# ----------------------------------------------------------------------------- revocation time


def test_grant_issued_before_credentials_were_revoked_is_refused(member):
    member.credentials_valid_after = at(NOW - 30)
    assert problem(grant(at_=NOW - 31), member) == REVOKED


def test_grant_issued_at_or_after_the_revocation_is_accepted(member):
    member.credentials_valid_after = at(NOW - 30)
    assert problem(grant(at_=NOW - 30), member) == ""
    assert problem(grant(at_=NOW - 29), member) == ""


def test_grant_without_an_issue_time_is_refused_after_a_revocation(member):
    member.credentials_valid_after = at(NOW - 30)
    g = grant()
    del g["at"]
    assert problem(g, member) == REVOKED


# ----------------------------------------------------------------------------- membership older than the grant


def test_grant_from_an_earlier_membership_is_refused(member):
    member.created_at = at(NOW - 10)
    assert problem(grant(at_=NOW - 11), member) == PREDATES


def test_grant_issued_when_the_membership_was_created_is_accepted(member):
    member.created_at = at(NOW - 10)
    assert problem(grant(at_=NOW - 10), member) == ""


def test_grant_without_an_issue_time_is_refused_for_a_membership(member):
    g = grant()
    del g["at"]
    assert problem(g, member) == PREDATES


# ----------------------------------------------------------------------------- SAML-only


def test_password_grant_is_refused_once_the_workspace_is_saml_only(member):
    member.workspace.saml_only = True
    assert problem(grant(access.GrantMethod.PASSWORD), member) == SAML_ONLY


def test_saml_and_break_glass_grants_open_a_saml_only_workspace(member):
    member.workspace.saml_only = True
    assert problem(grant(access.GrantMethod.SAML), member) == ""
    assert problem(grant(access.GrantMethod.BREAK_GLASS), member) == ""


def test_password_grant_opens_a_workspace_that_is_not_saml_only(member):
    member.workspace.saml_only = False
    assert problem(grant(access.GrantMethod.PASSWORD), member) == ""


# ----------------------------------------------------------------------------- 2FA requirement


def test_password_grant_without_a_second_factor_is_refused_when_2fa_is_required(member):
    member.workspace.require_2fa = True
    assert problem(grant(access.GrantMethod.PASSWORD, mfa=False), member) == NEEDS_2FA
    g = grant(access.GrantMethod.PASSWORD)
    del g["mfa"]
    assert problem(g, member) == NEEDS_2FA


def test_password_grant_with_a_second_factor_is_accepted_when_2fa_is_required(member):
    member.workspace.require_2fa = True
    assert problem(grant(access.GrantMethod.PASSWORD, mfa=True), member) == ""


def test_saml_grant_needs_no_second_factor_here(member):
    member.workspace.require_2fa = True  # the IdP is in charge of factors for SSO
    assert problem(grant(access.GrantMethod.SAML, mfa=False), member) == ""


def test_password_grant_without_a_second_factor_is_accepted_when_2fa_is_not_required(member):
    member.workspace.require_2fa = False
    assert problem(grant(access.GrantMethod.PASSWORD, mfa=False), member) == ""


# ----------------------------------------------------------------------------- grants in the session


def request_for(user, grants: dict | None = None):
    request = RequestFactory().get("/w/alpha/")
    request.user = user
    request.session = SessionStore()
    if grants is not None:
        request.session[access.SESSION_KEY] = grants
    return request


def test_grant_workspace_records_method_time_expiry_and_second_factor(world, clock):
    request = request_for(world.member_a.user)
    access.grant_workspace(request, world.a, access.GrantMethod.SAML, expires_at=NOW + 5)
    access.grant_workspace(request, world.b, access.GrantMethod.PASSWORD, mfa=True)
    assert request.session[access.SESSION_KEY] == {
        str(world.a.pk): {"method": "saml", "at": NOW, "exp": NOW + 5, "mfa": False},
        str(world.b.pk): {"method": "password", "at": NOW, "exp": None, "mfa": True},
    }
    assert access.granted_workspace_ids(request) == {world.a.pk, world.b.pk}


def test_second_factor_marks_every_grant_of_the_session(world, clock):
    request = request_for(world.member_a.user)
    access.mark_grants_second_factor(request)
    assert access.SESSION_KEY not in request.session  # nothing to mark: nothing written
    access.grant_workspace(request, world.a, access.GrantMethod.PASSWORD)
    access.grant_workspace(request, world.b, access.GrantMethod.PASSWORD)
    access.mark_grants_second_factor(request)
    assert all(g["mfa"] is True for g in request.session[access.SESSION_KEY].values())


def test_revoke_grant_removes_only_that_workspace(world, clock):
    request = request_for(world.member_a.user)
    access.grant_workspace(request, world.a, access.GrantMethod.PASSWORD)
    access.grant_workspace(request, world.b, access.GrantMethod.PASSWORD)
    access.revoke_grant(request, world.a.pk)
    assert access.granted_workspace_ids(request) == {world.b.pk}
    access.revoke_grant(request, world.a.pk)  # already gone: harmless
    assert access.granted_workspace_ids(request) == {world.b.pk}


# ----------------------------------------------------------------------------- access_workspace


def live(member_or_ws, method=access.GrantMethod.PASSWORD) -> dict:
    pk = getattr(member_or_ws, "workspace_id", None) or member_or_ws.pk
    return {str(pk): {"method": method, "at": NOW + 1, "exp": None, "mfa": False}}


def test_access_workspace_opens_for_a_live_grant(world, clock):
    request = request_for(world.member_a.user, live(world.member_a, access.GrantMethod.SAML))
    result = access.access_workspace(request, "alpha")
    assert result.workspace == world.a
    assert result.membership == world.member_a
    assert result.method == "saml"


def test_access_workspace_is_404_for_anonymous_and_outsiders(world, clock):
    with pytest.raises(Http404, match="^No such workspace$"):
        access.access_workspace(request_for(AnonymousUser(), {}), "alpha")
    # A grant for workspace B opens nothing in A, and an outsider learns nothing about A.
    with pytest.raises(Http404, match="^No such workspace$"):
        access.access_workspace(request_for(world.outsider_b.user, live(world.a)), "alpha")
    with pytest.raises(Http404, match="^No such workspace$"):
        access.access_workspace(request_for(world.member_a.user, live(world.a)), "no-such-workspace")


def test_access_workspace_reads_member_workspace_and_account_in_one_query(world, clock,
                                                                          django_assert_num_queries):
    request = request_for(world.member_a.user, live(world.a))
    with django_assert_num_queries(1):
        result = access.access_workspace(request, "alpha")
        assert result.workspace.slug == "alpha" and result.membership.user.is_active


def test_access_workspace_refuses_a_grant_of_another_workspace(world, clock):
    request = request_for(world.member_a.user, live(world.b))
    with pytest.raises(access.NoGrant) as refused:
        access.access_workspace(request, "alpha")
    assert refused.value.reason == NO_GRANT
    assert str(refused.value) == NO_GRANT
    assert refused.value.workspace == world.a


def test_access_workspace_drops_a_grant_that_no_longer_opens(world, clock):
    world.member_a.is_active = False
    world.member_a.save(update_fields=["is_active"])
    request = request_for(world.member_a.user, {**live(world.a), **live(world.b)})
    with pytest.raises(access.NoGrant) as refused:
        access.access_workspace(request, "alpha")
    assert refused.value.reason == DEACTIVATED
    assert access.granted_workspace_ids(request) == {world.b.pk}


def test_access_workspace_refuses_a_role_without_the_capability(world, clock):
    request = request_for(world.member_a.user, live(world.a))
    with pytest.raises(PermissionDenied, match="^Your role in this workspace does not allow this page\\.$") as refused:
        access.access_workspace(request, "alpha", need=Cap.SETTINGS_MANAGE)
    assert not isinstance(refused.value, access.NoGrant)
    assert access.granted_workspace_ids(request) == {world.a.pk}  # the grant itself stays
    assert access.access_workspace(request_for(world.owner_a.user, live(world.a)), "alpha",
                                   need=Cap.SETTINGS_MANAGE).membership == world.owner_a


def test_access_workspace_default_need_is_workspace_view(world, clock, monkeypatch):
    asked = []
    monkeypatch.setattr(access, "can", lambda m, cap: asked.append(cap) or True)
    access.access_workspace(request_for(world.member_a.user, live(world.a)), "alpha")
    assert asked == [Cap.WORKSPACE_VIEW]


def test_workspace_view_redirects_anonymous_to_login_and_sets_access(world, clock):
    @access.workspace_view(need=Cap.MEMBERS_LIST)
    def view(request, slug):
        return HttpResponse(f"{request.access.membership.pk}:{slug}")

    anonymous = view(request_for(AnonymousUser(), {}), "alpha")
    assert anonymous.status_code == 302
    assert anonymous["Location"] == "/login/?next=%2Fw%2Falpha%2F"
    assert view(request_for(world.member_a.user, live(world.a)), "alpha").content.decode() == (
        f"{world.member_a.pk}:alpha"
    )
    with pytest.raises(PermissionDenied):
        view(request_for(world.collaborator_a.user, live(world.a)), "alpha")


def test_workspace_access_actor_and_capabilities_follow_the_membership(world, clock):
    result = access.access_workspace(request_for(world.member_a.user, live(world.a)), "alpha")
    assert result.actor.membership == world.member_a
    assert result.actor.auth_method == "password"
    assert result.can(Cap.MEMBERS_LIST) and not result.can(Cap.TEAM_MANAGE)
    assert result.caps["members_list"] is True and result.caps["team_manage"] is False


# ----------------------------------------------------------------------------- where a password sign-in is recorded


def test_an_unrecorded_grant_is_recorded_once_in_the_workspace_it_opens(world, clock):
    from audit.models import AuditEvent

    request = request_for(world.member_a.user)
    access.grant_workspace(request, world.a, access.GrantMethod.PASSWORD, record_on_first_use=True)
    access.grant_workspace(request, world.b, access.GrantMethod.PASSWORD, record_on_first_use=True)
    request.session[access.SESSION_KEY] = {k: {**g, "at": NOW - 60} for k, g in
                                           request.session[access.SESSION_KEY].items()}
    world.member_a.created_at = at(NOW - 3600)
    world.member_a.save(update_fields=["created_at"])
    access.access_workspace(request, "alpha")
    access.access_workspace(request, "alpha")
    assert list(AuditEvent.objects.filter(action="auth.login_succeeded").values_list("workspace__slug", flat=True)) \
        == ["alpha"]
    assert "unrecorded" not in request.session[access.SESSION_KEY][str(world.a.pk)]
    assert request.session[access.SESSION_KEY][str(world.b.pk)]["unrecorded"] is True
