"""Field ownership: what a member's identity provider manages is read-only in the portal (page, command), with the
reason shown; an Owner may detach the member, after which the portal owns it and the IdP's changes are not applied
(except a deactivation). SCIM requests as Okta sends them."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from audit.models import AuditEvent
from scim.models import ScimRequestLog
from tests.conftest import login_client
from tests.scim.conftest import ScimClient, make_cred, okta_user, patch_body
from workspaces import services as ws
from workspaces.exceptions import IdpOwned, NotAllowed
from workspaces.models import Membership, Team, TeamMembership

pytestmark = pytest.mark.django_db


@pytest.fixture
def scim(world):
    return ScimClient("alpha", make_cred(world.owner_a, "bearer"))


def _page(world, member, who=None):
    return login_client(who or world.owner_a).get(f"/w/alpha/members/{member.pk}/")


def _post(world, member, who=None, **data):
    return login_client(who or world.owner_a).post(f"/w/alpha/members/{member.pk}/", {"confirmed": "yes", **data})


def _scim_member(scim, username="ada@alpha.test", **extra) -> Membership:
    body = {**okta_user(username), **extra}
    response = scim.post("Users", body)
    assert response.status_code == 201, response.content
    return Membership.objects.get(pk=response.json()["id"])


def test_a_role_the_idp_set_cannot_be_changed_in_the_portal_and_the_page_says_why(world, scim):
    ada = _scim_member(scim, role="manager")
    assert ada.role == "manager" and ada.role_from_idp
    page = _page(world, ada).content.decode()
    assert 'id="managed-by"' in page and 'id="role-owned"' in page and 'name="action" value="role"' not in page
    _post(world, ada, action="role", role="member")
    ada.refresh_from_db()
    assert ada.role == "manager"
    with pytest.raises(CommandError, match="managed by your identity provider"):
        call_command("member", "alpha", "ada@alpha.test", "--role", "member")
    # The IdP itself still may.
    scim.patch(f"Users/{ada.pk}", patch_body({"op": "replace", "path": "role", "value": "collaborator"}))
    ada.refresh_from_db()
    assert ada.role == "collaborator"


def test_a_role_the_idp_never_sent_stays_the_portals(world, scim):
    ada = _scim_member(scim)
    assert not ada.role_from_idp
    assert 'id="role-owned"' not in _page(world, ada).content.decode()
    _post(world, ada, action="role", role="manager")
    ada.refresh_from_db()
    assert ada.role == "manager" and not ada.role_from_idp


def test_the_portal_may_always_deactivate_but_not_reactivate_what_scim_deactivated(world, scim):
    ada = _scim_member(scim)
    _post(world, ada, action="deactivate")
    ada.refresh_from_db()
    assert not ada.is_active  # removing access is never refused
    scim.patch(f"Users/{ada.pk}", patch_body({"op": "replace", "value": {"active": False}}))
    page = _page(world, ada).content.decode()
    assert 'id="reactivate-owned"' in page
    _post(world, ada, action="reactivate")
    ada.refresh_from_db()
    assert not ada.is_active
    with pytest.raises(NotAllowed):
        ws.membership_reactivate(membership=ada, actor=ws.actor_for_membership(world.owner_a, "password"))


def test_members_the_portal_added_are_the_portals(world):
    page = _page(world, world.member_a).content.decode()
    assert 'id="managed-by"' not in page and 'name="action" value="role"' in page


def test_the_members_list_marks_who_the_idp_manages(world, scim):
    import re

    _scim_member(scim)
    html = login_client(world.owner_a).get("/w/alpha/").content.decode()
    rows = dict(re.findall(r'<tr data-member="([^"]+)">(.*?)</tr>', html, re.S))
    assert 'class="badge managed"' in rows["ada@alpha.test"] and ">SCIM<" in rows["ada@alpha.test"]
    assert 'class="badge managed"' not in rows["member@alpha.test"]


def test_a_team_membership_a_scim_group_pushed_cannot_be_removed_in_the_portal(world, scim):
    ada = _scim_member(scim)
    group = scim.post("Groups", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Eng",
                                 "members": [{"value": str(ada.pk)}]})
    assert group.status_code == 201, group.content
    team = Team.objects.get(workspace=world.a, name="Eng")
    # The IdP owns the member list of a team its push created: the portal adds nobody (GitHub's team sync rule)...
    with pytest.raises(IdpOwned, match="SCIM group push"):
        ws.team_add_member(team=team, membership=world.member_a, actor=ws.actor_for_membership(world.owner_a, "password"))
    client = login_client(world.owner_a)
    page = client.get(f"/w/alpha/teams/{team.pk}/").content.decode()
    assert 'data-testid="team-owned"' in page and 'value="add"' not in page
    # ...but a member added by hand before the team was pushed stays removable in the portal.
    TeamMembership.objects.create(team=team, membership=world.member_a, source="manual")
    page = client.get(f"/w/alpha/teams/{team.pk}/").content.decode()
    assert page.count('class="managed-reason"') == 1 and "a SCIM group" in page
    client.post(f"/w/alpha/teams/{team.pk}/", {"action": "remove", "member": ada.pk})
    assert TeamMembership.objects.filter(team=team, membership=ada).exists()
    client.post(f"/w/alpha/teams/{team.pk}/", {"action": "remove", "member": world.member_a.pk})
    assert not TeamMembership.objects.filter(team=team, membership=world.member_a).exists()


def test_an_owner_detaches_a_member_and_the_portal_owns_it_from_then_on(world, scim):
    ada = _scim_member(scim, role="manager")
    group = scim.post("Groups", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Eng",
                                 "members": [{"value": str(ada.pk)}]}).json()
    # A Manager may not detach; the page offers it to Owners only.
    assert 'id="detach-form"' not in _page(world, ada, world.manager_a).content.decode()
    _post(world, ada, world.manager_a, action="detach")
    ada.refresh_from_db()
    assert ada.detached_at is None
    assert 'id="detach-form"' in _page(world, ada).content.decode()
    _post(world, ada, action="detach")
    ada.refresh_from_db()
    assert ada.detached_at is not None and not ada.role_from_idp
    event = AuditEvent.objects.get(action="member.detached")
    assert event.details["from"] == "SCIM" and event.details["teams_now_manual"] == ["Eng"]
    assert 'id="detached"' in _page(world, ada).content.decode()

    _post(world, ada, action="role", role="collaborator")
    ada.refresh_from_db()
    assert ada.role == "collaborator"
    # The IdP's changes are no longer applied, and the provisioning log says so ...
    response = scim.patch(f"Users/{ada.pk}", patch_body(
        {"op": "replace", "path": "name.familyName", "value": "Byron"},
        {"op": "replace", "path": "role", "value": "manager"},
    ))
    assert response.status_code == 200
    ada.refresh_from_db()
    assert ada.family_name == "User" and ada.role == "collaborator"
    log = ScimRequestLog.objects.filter(method="PATCH").latest("id")
    assert "detached" in log.summary
    scim.patch(f"Groups/{group['id']}", patch_body({"op": "remove", "path": f'members[value eq "{ada.pk}"]'}))
    assert TeamMembership.objects.filter(membership=ada, team__name="Eng").exists()
    # ... except removing access.
    scim.patch(f"Users/{ada.pk}", patch_body({"op": "replace", "value": {"active": False}}))
    ada.refresh_from_db()
    assert not ada.is_active
    _post(world, ada, action="reactivate")
    ada.refresh_from_db()
    assert ada.is_active  # the portal owns the active state now


def test_detach_by_command_and_only_for_members_the_idp_manages(world, scim):
    _scim_member(scim)
    call_command("member", "alpha", "ada@alpha.test", "--detach")
    assert Membership.objects.get(user__email="ada@alpha.test").detached_at is not None
    with pytest.raises(CommandError, match="not managed by the identity provider"):
        call_command("member", "alpha", "member@alpha.test", "--detach")
