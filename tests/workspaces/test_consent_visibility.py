"""Nothing of an account is visible to a workspace that attached it until the person accepts (issue 15, item 4): not
its 2FA status (API roster, workspace 2FA page, 2FA events), not its last sign-in. An Owner pending consent does not
govern the workspace either.

Dana is a member of workspace B with her own password and 2FA. Workspace A's Owner adds her by email.
"""

from __future__ import annotations

import pytest

from audit.models import AuditEvent
from tests.api.conftest import ApiClient, service_key
from tests.conftest import login_client
from tests.consent_helpers import DANA, dana_in_b, sent_token
from workspaces.models import Membership
from workspaces.services import actor_for_membership, membership_add, two_factor_disable, user_actor


@pytest.fixture
def dana(world) -> Membership:
    return dana_in_b(world)


def _pending_in_a(world, dana, capture) -> Membership:
    with capture(execute=True):
        return membership_add(workspace=world.a, email=DANA, actor=actor_for_membership(world.owner_a, "password"))


# ----------------------------------------------------------------------------- nothing of the account visible


def test_the_api_roster_shows_no_2fa_status_or_last_login_for_a_pending_member(
    world, dana, django_capture_on_commit_callbacks
):
    pending = _pending_in_a(world, dana, django_capture_on_commit_callbacks)
    Membership.objects.filter(pk=pending.pk).update(last_login_at="2026-01-01T00:00:00Z")  # whatever it holds
    api = ApiClient(service_key(world.a, ["members:read"]))
    [row] = [m for m in api.get("/api/v1/workspaces/alpha/members/").json()["results"] if m["email"] == DANA]
    assert (row["two_factor_enabled"], row["last_login"], row["consent_pending"]) == (None, None, True)
    detail = api.get(f"/api/v1/workspaces/alpha/members/{pending.pk}/").json()
    assert (detail["two_factor_enabled"], detail["last_login"]) == (None, None)


def test_workspace_b_still_sees_its_own_members_2fa_status(world, dana):
    api = ApiClient(service_key(world.b, ["members:read"]))
    [row] = [m for m in api.get("/api/v1/workspaces/bravo/members/").json()["results"] if m["email"] == DANA]
    assert (row["two_factor_enabled"], row["consent_pending"]) == (True, False)


def test_the_member_page_shows_a_pending_member_as_invited_without_a_last_login(
    world, dana, django_capture_on_commit_callbacks
):
    pending = _pending_in_a(world, dana, django_capture_on_commit_callbacks)
    owner = login_client(world.owner_a)
    page = owner.get(f"/w/alpha/members/{pending.pk}/").content.decode()
    assert "invited" in page and "Last login" not in page
    home = owner.get("/w/alpha/").content.decode()
    assert 'id="invitations"' in home and DANA in home


def test_the_workspace_2fa_page_does_not_count_a_pending_member(world, dana, django_capture_on_commit_callbacks):
    _pending_in_a(world, dana, django_capture_on_commit_callbacks)
    response = login_client(world.owner_a).get("/w/alpha/settings/two-factor/")
    assert response.context["with_2fa"] == 0
    assert response.context["active_members"] == Membership.objects.filter(workspace=world.a).count() - 1


def test_turning_2fa_off_is_not_recorded_in_a_pending_workspace(world, dana, django_capture_on_commit_callbacks):
    _pending_in_a(world, dana, django_capture_on_commit_callbacks)
    two_factor_disable(user=dana.user, actor=user_actor(dana.user, "password"))
    assert AuditEvent.objects.filter(workspace=world.b, action="2fa.disabled").exists()
    assert not AuditEvent.objects.filter(workspace=world.a, action__startswith="2fa.").exists()


def test_after_the_person_accepts_the_workspace_sees_the_member_like_any_other(
    world, dana, django_capture_on_commit_callbacks
):
    _pending_in_a(world, dana, django_capture_on_commit_callbacks)
    client = login_client(dana, world.b)
    response = client.post(f"/invitations/{sent_token(DANA)}/")
    assert response.status_code == 302
    api = ApiClient(service_key(world.a, ["members:read"]))
    [row] = [m for m in api.get("/api/v1/workspaces/alpha/members/").json()["results"] if m["email"] == DANA]
    assert (row["two_factor_enabled"], row["consent_pending"]) == (True, False)
    assert login_client(dana, world.a).get("/w/alpha/").status_code == 200


def test_workspace_b_cannot_see_a_pending_invitation_of_workspace_a(world, dana, django_capture_on_commit_callbacks):
    _pending_in_a(world, dana, django_capture_on_commit_callbacks)
    home = login_client(world.outsider_b).get("/w/bravo/").content.decode()
    assert 'id="invitations"' not in home


def test_an_owner_pending_consent_does_not_count_as_another_active_owner(
    world, dana, django_capture_on_commit_callbacks
):
    from workspaces.exceptions import LastOwnerError
    from workspaces.services import membership_change_role

    owner = actor_for_membership(world.owner_a, "password")
    with django_capture_on_commit_callbacks(execute=True):
        membership_add(workspace=world.a, email=DANA, role="owner", actor=owner)
    with pytest.raises(LastOwnerError):
        membership_change_role(membership=world.owner_a, role="member", actor=owner)
