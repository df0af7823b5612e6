"""/w/<slug>/members/: search, filters and keyset pages over the members the viewer may see."""

from __future__ import annotations

import re

import pytest
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.conftest import login_client
from tests.factories import MembershipFactory
from workspaces.selectors import MEMBERS_PAGE_SIZE

URL = "/w/alpha/members/"


def _emails(response) -> list[str]:
    return [m.email for m in response.context["members"]]


def _rows(html: str) -> dict[str, str]:
    return dict(re.findall(r'<tr data-member="([^"]+)">(.*?)</tr>', html, re.S))


@pytest.fixture
def owner(world):
    return login_client(world.owner_a)


def test_owners_see_everyone_in_email_order_with_the_workspace_counts(world, owner):
    world.member_a.is_active = False
    world.member_a.save(update_fields=["is_active"])
    response = owner.get(URL)
    assert _emails(response) == sorted(
        ["collab@alpha.test", "manager@alpha.test", "member@alpha.test", "owner@alpha.test", "private@alpha.test"]
    )
    assert "4 active, 1 deactivated." in response.content.decode()


def test_a_member_sees_public_members_and_itself_and_no_workspace_counts(world):
    response = login_client(world.member_a).get(URL)
    assert "private@alpha.test" not in _emails(response)
    assert "member@alpha.test" in _emails(response)
    assert 'id="member-counts"' not in response.content.decode()  # a count would reveal private members


def test_search_matches_part_of_an_email_or_a_name_case_insensitively(world, owner):
    world.manager_a.display_name = "Grace Hopper"
    world.manager_a.save(update_fields=["display_name"])
    assert _emails(owner.get(URL, {"q": "HOPP"})) == ["manager@alpha.test"]
    assert _emails(owner.get(URL, {"q": "collab@"})) == ["collab@alpha.test"]
    assert _emails(owner.get(URL, {"q": "nobody"})) == []
    assert "No members match." in owner.get(URL, {"q": "nobody"}).content.decode()


def test_filters_by_role_status_two_factor_source_and_sso_link(world, owner):
    world.member_a.scim_username = "member@alpha.test"
    world.member_a.save(update_fields=["scim_username"])
    world.manager_a.saml_subject = "00u-manager"
    world.manager_a.save(update_fields=["saml_subject"])
    world.collaborator_a.is_active = False
    world.collaborator_a.save(update_fields=["is_active"])
    TOTPDevice.objects.create(user=world.private_member_a.user, name="phone", confirmed=True)
    TOTPDevice.objects.create(user=world.owner_a.user, name="unconfirmed", confirmed=False)

    assert _emails(owner.get(URL, {"role": "manager"})) == ["manager@alpha.test"]
    assert _emails(owner.get(URL, {"status": "deactivated"})) == ["collab@alpha.test"]
    assert _emails(owner.get(URL, {"two_factor": "on"})) == ["private@alpha.test"]
    assert "owner@alpha.test" in _emails(owner.get(URL, {"two_factor": "off"}))  # an unconfirmed device is not 2FA
    assert _emails(owner.get(URL, {"source": "scim"})) == ["member@alpha.test"]
    assert _emails(owner.get(URL, {"source": "saml"})) == ["manager@alpha.test"]
    assert "member@alpha.test" not in _emails(owner.get(URL, {"source": "portal"}))
    assert _emails(owner.get(URL, {"sso": "linked"})) == ["manager@alpha.test"]
    assert _emails(owner.get(URL, {"role": "member", "status": "active", "sso": "unlinked"})) == [
        "member@alpha.test", "private@alpha.test"
    ]


def test_a_detached_member_counts_as_portal_managed(world, owner):
    world.member_a.scim_username = "member@alpha.test"
    world.member_a.detached_at = timezone.now()
    world.member_a.save(update_fields=["scim_username", "detached_at"])
    assert "member@alpha.test" in _emails(owner.get(URL, {"source": "portal"}))
    assert "member@alpha.test" not in _emails(owner.get(URL, {"source": "scim"}))


def test_columns_show_two_factor_last_sign_in_and_source(world, owner):
    TOTPDevice.objects.create(user=world.member_a.user, name="phone", confirmed=True)
    world.member_a.last_login_at = timezone.now()
    world.member_a.scim_username = "member@alpha.test"
    world.member_a.save(update_fields=["last_login_at", "scim_username"])
    rows = _rows(owner.get(URL).content.decode())
    assert '<span class="badge ok">on</span>' in rows["member@alpha.test"]
    assert "0\xa0minutes ago" in rows["member@alpha.test"] and ">SCIM</span>" in rows["member@alpha.test"]
    assert "never" in rows["owner@alpha.test"] and '<td class="source">portal</td>' in rows["owner@alpha.test"]


def test_pages_follow_each_other_without_gaps_or_repeats_and_keep_the_filters(world, owner):
    for n in range(MEMBERS_PAGE_SIZE + 7):
        MembershipFactory(workspace=world.a, user__email=f"eng{n:03d}@alpha.test")
    seen: list[str] = []
    response = owner.get(URL, {"q": "eng"})
    while True:
        seen += _emails(response)
        next_url = response.context["next_url"]
        if not next_url:
            break
        assert "q=eng" in next_url
        response = owner.get(URL + next_url)
    assert seen == [f"eng{n:03d}@alpha.test" for n in range(MEMBERS_PAGE_SIZE + 7)]


def test_another_workspaces_member_id_as_anchor_shows_the_first_page(world, owner):
    response = owner.get(URL, {"after": world.outsider_b.pk})
    assert _emails(response)[0] == "collab@alpha.test"


@pytest.mark.parametrize("query", [{"after": "abc"}, {"after": "9" * 40}, {"role": "emperor"}])
def test_odd_parameters_never_break_the_page(owner, query):
    response = owner.get(URL, query)
    assert response.status_code == 200


def test_an_unknown_role_is_shown_as_a_field_error(owner):
    body = owner.get(URL, {"role": "emperor"}).content.decode()
    assert "Select a valid choice." in body


def test_the_home_page_shows_the_first_members_and_links_to_the_members_page(world, owner):
    for n in range(12):
        MembershipFactory(workspace=world.a, user__email=f"eng{n:03d}@alpha.test")
    body = owner.get("/w/alpha/").content.decode()
    assert len(_rows(body)) == 10
    assert 'id="all-members" href="/w/alpha/members/"' in body and "All members" in body


def test_workspace_b_cannot_list_workspace_a(world):
    assert login_client(world.outsider_b).get(URL).status_code in (403, 404)


# ----------------------------------------------------------------------------- removing, with confirmation


def test_deactivating_asks_first_and_nothing_changes_until_confirmed(world, owner):
    url = f"/w/alpha/members/{world.member_a.pk}/"
    page = owner.post(url, {"action": "deactivate"})
    body = page.content.decode()
    assert page.status_code == 200 and 'id="confirm"' in body and "Deactivate member@alpha.test?" in body
    assert '<input type="hidden" name="action" value="deactivate">' in body
    world.member_a.refresh_from_db()
    assert world.member_a.is_active
    assert owner.post(url, {"action": "deactivate", "confirmed": "yes"}).status_code == 302
    world.member_a.refresh_from_db()
    assert not world.member_a.is_active


def test_an_owner_removes_a_member_after_confirming_and_it_is_audited(world, owner):
    from audit.models import AuditEvent
    from workspaces.models import Membership

    url = f"/w/alpha/members/{world.member_a.pk}/"
    ask = owner.post(url, {"action": "remove"}).content.decode()
    assert "Remove member@alpha.test from" in ask and "Their account stays" in ask
    assert Membership.objects.filter(pk=world.member_a.pk).exists()
    response = owner.post(url, {"action": "remove", "confirmed": "yes"})
    assert response.status_code == 302 and response["Location"] == "/w/alpha/members/"
    assert not Membership.objects.filter(pk=world.member_a.pk).exists()
    assert AuditEvent.objects.filter(workspace=world.a, action="member.removed", actor_label="owner@alpha.test").count() == 1


def test_the_last_active_owner_cannot_be_removed(world, owner):
    from workspaces.models import Membership

    response = owner.post(f"/w/alpha/members/{world.owner_a.pk}/", {"action": "remove", "confirmed": "yes"}, follow=True)
    assert Membership.objects.filter(pk=world.owner_a.pk).exists()
    assert "Owner" in response.content.decode()


def test_a_manager_cannot_remove_an_owner(world):
    from workspaces.models import Membership

    login_client(world.manager_a).post(f"/w/alpha/members/{world.owner_a.pk}/", {"action": "remove", "confirmed": "yes"})
    assert Membership.objects.filter(pk=world.owner_a.pk).exists()


def test_deleting_a_team_asks_first(world, owner):
    from tests.factories import TeamFactory
    from workspaces.models import Team

    team = TeamFactory(workspace=world.a, name="core")
    body = owner.post(f"/w/alpha/teams/{team.pk}/", {"action": "delete"}).content.decode()
    assert "Delete the team core?" in body and Team.objects.filter(pk=team.pk).exists()
    owner.post(f"/w/alpha/teams/{team.pk}/", {"action": "delete", "confirmed": "yes"})
    assert not Team.objects.filter(pk=team.pk).exists()


def test_a_member_pending_consent_shows_invited_and_nothing_of_its_account(world, owner):
    TOTPDevice.objects.create(user=world.member_a.user, name="phone", confirmed=True)
    world.member_a.consent_pending_since = timezone.now()
    world.member_a.last_login_at = timezone.now()
    world.member_a.save(update_fields=["consent_pending_since", "last_login_at"])
    response = owner.get(URL)
    row = _rows(response.content.decode())["member@alpha.test"]
    assert ">invited</span>" in row and ">unknown</span>" in row and "ago" not in row
    assert "4 active, 0 deactivated, 1 invited." in response.content.decode()
    # The two-factor filters cannot tell its state either way; the invited filter finds it.
    assert "member@alpha.test" not in _emails(owner.get(URL, {"two_factor": "on"}))
    assert "member@alpha.test" not in _emails(owner.get(URL, {"two_factor": "off"}))
    assert _emails(owner.get(URL, {"status": "invited"})) == ["member@alpha.test"]
    assert "member@alpha.test" not in _emails(owner.get(URL, {"status": "active"}))


@pytest.mark.parametrize("url, data, title", [
    ("/w/alpha/settings/provisioning/", {"action": "disable"}, "Turn SCIM provisioning off?"),
    ("/w/alpha/api-keys/", {"action": "revoke", "key": "KEY"}, "Revoke the API key"),
    ("/w/alpha/settings/provisioning/", {"action": "revoke", "credential": "CRED"}, "Revoke the SCIM credential"),
    ("/w/alpha/audit/sinks/", {"action": "delete", "sink": "SINK"}, "Delete the SIEM sink"),
])
def test_revoking_and_turning_off_ask_first_and_change_nothing_until_confirmed(world, owner, url, data, title):
    from audit.models import AuditSink
    from scim.models import ScimCredential
    from scim.services import scim_credential_create, scim_set_enabled
    from workspaces.models import ApiKey, Workspace
    from workspaces.services import actor_for_membership, api_key_create

    actor = actor_for_membership(world.owner_a, "password")
    scim_set_enabled(workspace=world.a, enabled=True, actor=actor)
    key, _ = api_key_create(workspace=world.a, name="ci", membership=world.owner_a, scopes=[], actor=actor)
    credential, _ = scim_credential_create(workspace=world.a, name="Okta", kind="bearer", actor=actor)
    sink = AuditSink.objects.create(workspace=world.a, name="SIEM", url="https://siem.example/", secret_encrypted="x",
                                    created_at=timezone.now())
    ids = {"KEY": key.pk, "CRED": credential.pk, "SINK": sink.pk}
    body = owner.post(url, {k: ids.get(v, v) for k, v in data.items()}).content.decode()
    assert 'id="confirm"' in body and title in body
    assert Workspace.objects.get(pk=world.a.pk).scim_enabled
    assert ApiKey.objects.get(pk=key.pk).revoked_at is None
    assert ScimCredential.objects.get(pk=credential.pk).revoked_at is None
    assert AuditSink.objects.filter(pk=sink.pk).exists()
