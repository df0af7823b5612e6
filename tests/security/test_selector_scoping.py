"""Tenant scoping of every selector a view, API endpoint or SCIM handler calls.

Workspace B holds look-alike rows of workspace A's: the same person (one user, a membership in each), the
same SCIM userName and externalId, a team called "Engineering", a repository called "api", the same audit
labels, a SCIM credential called "Okta". Each selector, asked for A (and by A's viewer), must return none of
B's rows, including when it is handed B's ids directly. Called directly: through the views, the access layer
(``workspaces.access``) would refuse the request first and hide a selector that lost its workspace filter.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from audit import selectors as audit_selectors
from audit.models import AuditEvent, AuditVerification
from saml import selectors as saml_selectors
from saml.models import BreakGlassCode, GroupMapping, SamlSettings
from scim import credential_selectors
from scim import selectors as scim_selectors
from scim.models import ScimCredential
from workspaces import domains, selectors
from workspaces.models import (
    ApiKey,
    DeprovisionJob,
    DomainClaim,
    Membership,
    Repository,
    RepositoryGrant,
    Team,
    TeamMembership,
)

from ..audit.helpers import record
from ..conftest import World
from ..factories import MembershipFactory, RepositoryFactory, TeamFactory, UserFactory

SHARED_EMAIL = "shared@lookalike.test"
SHARED_USERNAME = "Shared@IdP.test"


@dataclass
class Twins:
    """Look-alike rows: ``*_a`` in workspace A, ``*_b`` in workspace B."""

    w: World
    member_a: Membership
    member_b: Membership
    team_a: Team
    team_b: Team
    repo_a: Repository
    repo_b: Repository
    event_a: AuditEvent
    event_b: AuditEvent
    credential_a: ScimCredential
    credential_b: ScimCredential


def _lookalike_member(workspace, user) -> Membership:
    return MembershipFactory(
        workspace=workspace, user=user, role="member", scim_username=SHARED_USERNAME, external_id="00u-shared",
        display_name="Shared Person",
    )


def _lookalike_team(workspace, member: Membership) -> Team:
    team = TeamFactory(workspace=workspace, name="Engineering")
    TeamMembership.objects.create(team=team, membership=member)
    return team


def _lookalike_repository(workspace, team: Team, member: Membership) -> Repository:
    repo = RepositoryFactory(workspace=workspace, name="api")
    RepositoryGrant.objects.create(repository=repo, team=team)
    RepositoryGrant.objects.create(repository=repo, membership=member)
    return repo


@pytest.fixture
def twins(world: World) -> Twins:
    user = UserFactory(email=SHARED_EMAIL)
    member_a, member_b = _lookalike_member(world.a, user), _lookalike_member(world.b, user)
    team_a, team_b = _lookalike_team(world.a, member_a), _lookalike_team(world.b, member_b)
    repo_a = _lookalike_repository(world.a, team_a, member_a)
    repo_b = _lookalike_repository(world.b, team_b, member_b)
    # The collaborator of A is granted A's repository directly; B's twin repository grants B's owner.
    RepositoryGrant.objects.create(repository=repo_a, membership=world.collaborator_a)
    RepositoryGrant.objects.create(repository=repo_b, membership=world.outsider_b)
    TeamMembership.objects.create(team=team_b, membership=world.outsider_b)
    for ws, owner, tag in ((world.a, world.owner_a, "a"), (world.b, world.outsider_b, "b")):
        ApiKey.objects.create(workspace=ws, membership=None, name="sync", prefix=f"svc{tag}", key_hash=f"s{tag}" * 32)
        ApiKey.objects.create(workspace=ws, membership=owner, name="laptop", prefix=f"own{tag}", key_hash=f"o{tag}" * 32)
    for ws, member, status in ((world.a, member_a, "pending"), (world.b, member_b, "pending"),
                               (world.a, member_a, "done"), (world.b, member_b, "done")):
        DeprovisionJob.objects.create(
            workspace=ws, user=user, membership=member, member_label=SHARED_EMAIL, cause="deactivated", status=status,
            finished_at=timezone.now() if status == "done" else None,
        )
    events = [
        record(ws, "member.created", target_type="member", target_id=str(member_a.pk), target_label=SHARED_EMAIL)
        for ws in (world.a, world.b)
    ]
    credentials = [
        ScimCredential.objects.create(workspace=ws, kind="bearer", name="Okta", key_id=f"okta-{ws.slug}",
                                      secret_hash=ws.slug[0] * 64)
        for ws in (world.a, world.b)
    ]
    return Twins(world, member_a, member_b, team_a, team_b, repo_a, repo_b, *events, *credentials)


def _b_member_ids(t: Twins) -> set[int]:
    return set(Membership.objects.filter(workspace=t.w.b).values_list("pk", flat=True))


VIEWERS = ["owner_a", "manager_a", "member_a", "collaborator_a"]


# ----------------------------------------------------------------------------- workspaces.selectors (views, API)


@pytest.mark.parametrize("viewer", VIEWERS)
def test_members_visible_to_a_viewer_of_a_include_no_member_of_b(twins, viewer):
    rows = selectors.members_visible_to(getattr(twins.w, viewer))
    assert rows.exists()
    assert not {m.pk for m in rows} & _b_member_ids(twins)


@pytest.mark.parametrize("viewer", VIEWERS)
def test_member_for_viewer_does_not_find_the_look_alike_member_of_b_by_id(twins, viewer):
    assert selectors.member_for_viewer(getattr(twins.w, viewer), twins.member_b.pk) is None


def test_member_for_viewer_finds_the_look_alike_member_of_a_by_id(twins):
    assert selectors.member_for_viewer(twins.w.owner_a, twins.member_a.pk) == twins.member_a


@pytest.mark.parametrize("viewer", VIEWERS)
def test_teams_visible_to_a_viewer_of_a_include_no_team_of_b(twins, viewer):
    assert twins.team_b.pk not in {t.pk for t in selectors.teams_visible_to(getattr(twins.w, viewer))}


def test_teams_visible_to_the_team_member_of_a_include_its_own_team_only(twins):
    assert [t.pk for t in selectors.teams_visible_to(twins.member_a)] == [twins.team_a.pk]


@pytest.mark.parametrize("viewer", VIEWERS)
def test_team_for_viewer_does_not_find_the_look_alike_team_of_b_by_id(twins, viewer):
    assert selectors.team_for_viewer(getattr(twins.w, viewer), twins.team_b.pk) is None


def test_team_members_of_b_s_team_seen_by_a_viewer_of_a_are_none(twins):
    assert list(selectors.team_members(twins.team_b, twins.w.owner_a)) == []


def test_team_members_of_a_s_team_are_a_s_twin_only(twins):
    assert list(selectors.team_members(twins.team_a, twins.w.owner_a)) == [twins.member_a]


@pytest.mark.parametrize("viewer", VIEWERS)
def test_repositories_visible_to_a_viewer_of_a_include_no_repository_of_b(twins, viewer):
    rows = list(selectors.repositories_visible_to(getattr(twins.w, viewer)))
    assert [r.pk for r in rows] == [twins.repo_a.pk]
    grants = [g for r in rows for g in r.visible_grants]
    assert all(g.repository_id == twins.repo_a.pk for g in grants)


@pytest.mark.parametrize("viewer", VIEWERS)
def test_api_keys_for_a_viewer_of_a_include_no_key_of_b(twins, viewer):
    assert {k.workspace_id for k in selectors.api_keys_for(getattr(twins.w, viewer))} <= {twins.w.a.pk}


def test_api_keys_for_the_owner_of_a_are_a_s_service_key_and_own_key(twins):
    assert {k.prefix for k in selectors.api_keys_for(twins.w.owner_a)} == {"svca", "owna"}


@pytest.mark.parametrize("viewer", [None, *VIEWERS])
def test_api_members_of_a_include_no_member_of_b_nor_b_s_teams(twins, viewer):
    rows = list(selectors.api_members(workspace=twins.w.a, viewer=viewer and getattr(twins.w, viewer)))
    assert rows
    assert not {m.pk for m in rows} & _b_member_ids(twins)
    assert twins.team_b.pk not in {link.team_id for m in rows for link in m.visible_teams}


def test_api_members_of_a_for_a_viewer_of_b_are_none(twins):
    assert list(selectors.api_members(workspace=twins.w.a, viewer=twins.w.outsider_b)) == []


@pytest.mark.parametrize("viewer", [None, *VIEWERS])
def test_api_teams_of_a_include_no_team_of_b_nor_b_s_members(twins, viewer):
    rows = list(selectors.api_teams(workspace=twins.w.a, viewer=viewer and getattr(twins.w, viewer)))
    assert twins.team_b.pk not in {t.pk for t in rows}
    assert not {link.membership_id for t in rows for link in t.visible_members} & _b_member_ids(twins)


def test_api_teams_of_a_for_a_viewer_of_b_are_none(twins):
    assert list(selectors.api_teams(workspace=twins.w.a, viewer=twins.w.outsider_b)) == []


@pytest.mark.parametrize("viewer", [None, *VIEWERS])
def test_api_repositories_of_a_include_no_repository_of_b_nor_its_grants(twins, viewer):
    rows = list(selectors.api_repositories(workspace=twins.w.a, viewer=viewer and getattr(twins.w, viewer)))
    assert [r.pk for r in rows] == [twins.repo_a.pk]
    assert all(g.repository_id == twins.repo_a.pk for r in rows for g in r.visible_grants)


def test_api_repositories_of_a_for_a_viewer_of_b_are_none(twins):
    assert list(selectors.api_repositories(workspace=twins.w.a, viewer=twins.w.outsider_b)) == []


@pytest.mark.parametrize("viewer", [None, *VIEWERS])
def test_repository_grants_visible_in_a_include_no_grant_of_b(twins, viewer):
    grants = selectors.repository_grants_visible_to(workspace=twins.w.a, viewer=viewer and getattr(twins.w, viewer))
    assert {g.repository_id for g in grants} <= {twins.repo_a.pk}


def test_repository_grants_visible_in_a_to_a_viewer_of_b_are_none(twins):
    assert list(selectors.repository_grants_visible_to(workspace=twins.w.a, viewer=twins.w.outsider_b)) == []


def test_workspaces_of_a_user_are_its_own_memberships_only(twins):
    assert [m.pk for m in selectors.workspaces_of_user(twins.w.owner_a.user)] == [twins.w.owner_a.pk]


def test_active_owner_count_of_a_counts_none_of_b_s_owners(twins):
    assert selectors.active_owner_count(twins.w.a) == 1


def test_deprovision_counts_of_a_count_a_s_jobs_only(twins):
    counts = selectors.deprovision_counts(twins.w.a)
    assert (counts["pending"], counts["done"]) == (1, 1)


def test_open_deprovision_jobs_of_a_are_a_s_only(twins):
    assert {j.workspace_id for j in selectors.deprovision_jobs_open(twins.w.a)} == {twins.w.a.pk}


def test_finished_deprovision_jobs_of_a_are_a_s_only(twins):
    assert {j.workspace_id for j in selectors.deprovision_jobs_recent_done(twins.w.a)} == {twins.w.a.pk}


# ----------------------------------------------------------------------------- scim.selectors (SCIM handlers)


def test_scim_users_of_a_include_no_member_of_b(twins):
    assert not {m.pk for m in scim_selectors.scim_users(twins.w.a)} & _b_member_ids(twins)


@pytest.mark.parametrize("groups", [False, True])
def test_scim_members_by_pks_of_a_do_not_find_b_s_look_alike(twins, groups):
    found = scim_selectors.members_by_pks(twins.w.a, [twins.member_b.pk, twins.member_a.pk], groups=groups)
    assert [m.pk for m in found] == [twins.member_a.pk]


@pytest.mark.parametrize("groups", [False, True])
def test_scim_user_of_a_does_not_find_b_s_look_alike_by_id(twins, groups):
    assert scim_selectors.scim_user(twins.w.a, str(twins.member_b.pk), groups=groups) is None


@pytest.mark.parametrize("groups", [False, True])
def test_scim_user_of_a_with_groups_lists_a_s_team_only(twins, groups):
    member = scim_selectors.scim_user(twins.w.a, str(twins.member_a.pk), groups=groups)
    assert scim_selectors.groups_from_row(member) in (None, [(twins.team_a.pk, "Engineering")])


@pytest.mark.parametrize("groups", [False, True])
def test_scim_members_by_username_in_a_find_a_s_member_not_b_s(twins, groups):
    found = scim_selectors.members_by_username(twins.w.a, SHARED_USERNAME.upper(), groups=groups)
    assert [m.pk for m in found] == [twins.member_a.pk]


def test_scim_user_by_username_in_a_is_a_s_member_not_b_s(twins):
    assert scim_selectors.scim_user_by_username(twins.w.a, SHARED_USERNAME) == twins.member_a


def test_membership_by_email_in_a_is_a_s_membership_not_b_s(twins):
    assert scim_selectors.membership_by_email(twins.w.a, SHARED_EMAIL.upper()) == twins.member_a


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("groups", [False, True])
def test_scim_user_for_write_in_a_does_not_lock_b_s_look_alike(twins, groups):
    with transaction.atomic():
        assert scim_selectors.scim_user_for_write(twins.w.a, str(twins.member_b.pk), groups=groups) is None
        assert scim_selectors.scim_user_for_write(twins.w.a, str(twins.member_a.pk), groups=groups) == twins.member_a


def test_scim_members_by_ids_in_a_report_b_s_look_alike_as_unknown(twins):
    found, unknown = scim_selectors.members_by_ids(twins.w.a, [str(twins.member_b.pk), str(twins.member_a.pk)])
    assert ([m.pk for m in found], unknown) == ([twins.member_a.pk], [str(twins.member_b.pk)])


@pytest.mark.parametrize("after_first", [False, True])
def test_scim_member_ids_in_order_of_a_include_no_member_of_b(twins, after_first):
    after = min(m.user_id for m in Membership.objects.filter(workspace=twins.w.a)) if after_first else None
    ids = scim_selectors.member_ids_in_order(twins.w.a, after_user_id=after, limit=100, offset=0)
    assert ids
    assert not set(ids) & _b_member_ids(twins)


def test_scim_groups_of_a_include_no_team_of_b(twins):
    assert [t.pk for t in scim_selectors.scim_groups(twins.w.a)] == [twins.team_a.pk]


@pytest.mark.parametrize("for_update", [False, True])
def test_scim_group_of_a_does_not_find_b_s_look_alike_team_by_id(twins, for_update):
    with transaction.atomic():
        assert scim_selectors.scim_group(twins.w.a, str(twins.team_b.pk), for_update=for_update) is None


def test_scim_group_by_name_in_a_is_a_s_team_not_b_s(twins):
    assert scim_selectors.scim_group_by_name(twins.w.a, " engineering ") == twins.team_a


def test_groups_of_a_s_members_are_a_s_teams_only(twins):
    # Takes ids, not a workspace: the callers pass ids of rows a scoped selector returned.
    assert scim_selectors.groups_of_members([twins.member_a.pk]) == {twins.member_a.pk: [(twins.team_a.pk, "Engineering")]}


def test_members_of_a_s_groups_are_a_s_members_only(twins):
    assert scim_selectors.members_of_groups([twins.team_a.pk]) == {twins.team_a.pk: [(twins.member_a.pk, "Shared Person")]}


# ----------------------------------------------------------------------------- scim.credential_selectors (provisioning page)


def test_scim_credentials_of_a_include_no_credential_of_b(twins):
    assert [c.pk for c in credential_selectors.credentials_of(twins.w.a)] == [twins.credential_a.pk]


def test_scim_credential_of_a_does_not_find_b_s_look_alike_by_id(twins):
    assert credential_selectors.credential_of(twins.w.a, twins.credential_b.pk) is None


# ----------------------------------------------------------------------------- audit.selectors (audit page, API, exports)


def test_recent_events_of_a_include_no_event_of_b(twins):
    assert twins.event_b.pk not in {e.pk for e in audit_selectors.recent_events(twins.w.a)}


def test_recent_events_of_a_about_a_target_include_no_event_of_b_about_the_same_id(twins):
    events = audit_selectors.recent_events(twins.w.a, target=("member", twins.member_a.pk))
    assert [e.pk for e in events] == [twins.event_a.pk]


@pytest.mark.parametrize("filters", [{}, {"q": "shared"}, {"action": "member.*"}, {"target": SHARED_EMAIL}])
def test_filtered_events_of_a_include_no_event_of_b(twins, filters):
    assert twins.event_b.pk not in {e.pk for e in audit_selectors.filtered_events(twins.w.a, filters)}


def test_event_for_workspace_a_does_not_find_b_s_event_by_id(twins):
    assert audit_selectors.event_for_workspace(twins.w.a, twins.event_b.pk) is None


def test_latest_verification_of_a_is_not_b_s(twins):
    AuditVerification.objects.create(workspace=twins.w.b, at=timezone.now(), ok=False, reason="broken")
    assert audit_selectors.latest_verification(twins.w.a) is None


def test_events_page_of_a_refuses_a_cursor_minted_in_b(twins):
    cursor = audit_selectors.make_cursor(twins.w.b, twins.event_b)
    with pytest.raises(audit_selectors.BadCursor):
        audit_selectors.events_page(twins.w.a, audit_selectors.filtered_events(twins.w.a, {}), cursor=cursor)


def test_events_page_of_a_includes_no_event_of_b(twins):
    page = audit_selectors.events_page(twins.w.a, audit_selectors.filtered_events(twins.w.a, {}))
    assert twins.event_b.pk not in {e.pk for e in page.events}


def test_events_after_seq_of_a_include_no_event_of_b(twins):
    events = audit_selectors.events_after_seq(
        twins.w.a, audit_selectors.filtered_events(twins.w.a, {}), after_seq=0, limit=500
    )
    assert twins.event_b.pk not in {e.pk for e in events}


# ----------------------------------------------------------------------------- saml.selectors (SAML views)


def _saml_settings(workspace, domain: str, verified: bool = True) -> SamlSettings:
    cfg = SamlSettings.objects.create(workspace=workspace, idp_entity_id="https://idp.lookalike.test")
    DomainClaim.objects.create(workspace=workspace, domain=domain, token="t" * 32,
                               verified_at=timezone.now() if verified else None)
    return cfg


def test_saml_settings_of_a_are_not_b_s(twins):
    _saml_settings(twins.w.b, "bravo.test")
    assert saml_selectors.saml_settings_for(twins.w.a) is None
    assert saml_selectors.saml_settings_by_slug(twins.w.a.slug) == (twins.w.a, None)


def test_sso_workspace_for_an_email_is_the_workspace_claiming_its_domain(twins):
    _saml_settings(twins.w.a, "alpha.test")
    _saml_settings(twins.w.b, "bravo.test")
    assert saml_selectors.sso_workspace_for_email("someone@ALPHA.test") == twins.w.a
    assert saml_selectors.sso_workspace_for_email("someone@bravo.test") == twins.w.b


def test_sso_workspace_for_an_email_ignores_a_claim_not_verified(twins):
    _saml_settings(twins.w.b, "alpha.test", verified=False)
    assert saml_selectors.sso_workspace_for_email("someone@alpha.test") is None


def test_a_verified_domain_of_b_is_not_verified_for_a(twins):
    _saml_settings(twins.w.b, "bravo.test")
    assert domains.email_domain_verified(twins.w.b.pk, "x@bravo.test")
    assert not domains.email_domain_verified(twins.w.a.pk, "x@bravo.test")
    assert domains.verified_workspace_for_email("x@bravo.test") == twins.w.b.pk


def test_domain_claims_of_a_include_no_claim_of_b(twins):
    _saml_settings(twins.w.b, "bravo.test", verified=False)
    assert list(selectors.domain_claims_of(twins.w.a)) == []


def test_group_mappings_of_a_include_no_mapping_of_b(twins):
    GroupMapping.objects.create(workspace=twins.w.b, idp_group="Engineering", team=twins.team_b)
    assert list(saml_selectors.group_mappings_for(twins.w.a)) == []


def test_group_sync_preview_of_a_includes_no_team_member_of_b(twins):
    GroupMapping.objects.create(workspace=twins.w.b, idp_group="Engineering", team=twins.team_b)
    assert list(saml_selectors.group_sync_preview(twins.w.a)) == []


def test_break_glass_codes_left_in_a_count_none_of_b(twins):
    BreakGlassCode.objects.create(workspace=twins.w.b, code_hash="b" * 64)
    assert saml_selectors.break_glass_codes_left(twins.w.a) == 0


def test_recent_break_glass_uses_in_a_include_none_of_b(twins):
    BreakGlassCode.objects.create(workspace=twins.w.b, code_hash="b" * 64, used_at=timezone.now() - timedelta(days=1),
                                  used_by=twins.member_b.user)
    assert list(saml_selectors.recent_break_glass_uses(twins.w.a)) == []


def test_active_owner_for_an_email_in_a_is_not_b_s_owner(twins):
    assert saml_selectors.active_owner_for_email(twins.w.a, twins.w.outsider_b.user.email) is None


# ----------------------------------------------------------------------------- the same reads return A's rows
# (an emptied workspace filter would pass the tests above: these pin what A's reads do return)


def _a_grants(t: Twins) -> set[int]:
    return set(RepositoryGrant.objects.filter(repository=t.repo_a).values_list("pk", flat=True))


def test_api_members_of_a_for_a_service_key_are_every_member_of_a_with_a_s_teams(twins):
    rows = {m.pk: m for m in selectors.api_members(workspace=twins.w.a, viewer=None)}
    assert set(rows) == set(Membership.objects.filter(workspace=twins.w.a).values_list("pk", flat=True))
    assert [link.team_id for link in rows[twins.member_a.pk].visible_teams] == [twins.team_a.pk]


@pytest.mark.parametrize("viewer", [None, "owner_a"])
def test_api_teams_of_a_are_a_s_team_with_a_s_twin_member(twins, viewer):
    rows = list(selectors.api_teams(workspace=twins.w.a, viewer=viewer and getattr(twins.w, viewer)))
    assert [(t.pk, [link.membership_id for link in t.visible_members]) for t in rows] == [
        (twins.team_a.pk, [twins.member_a.pk])
    ]


@pytest.mark.parametrize("viewer", [None, "owner_a"])
def test_api_repositories_of_a_carry_every_grant_of_a_s_repository(twins, viewer):
    rows = list(selectors.api_repositories(workspace=twins.w.a, viewer=viewer and getattr(twins.w, viewer)))
    assert {g.pk for g in rows[0].visible_grants} == _a_grants(twins)


@pytest.mark.parametrize("viewer", [None, "owner_a"])
def test_repository_grants_visible_in_a_are_every_grant_of_a_s_repository(twins, viewer):
    grants = selectors.repository_grants_visible_to(workspace=twins.w.a, viewer=viewer and getattr(twins.w, viewer))
    assert {g.pk for g in grants} == _a_grants(twins)


def test_repositories_visible_to_the_owner_of_a_carry_every_grant_of_a_s_repository(twins):
    rows = list(selectors.repositories_visible_to(twins.w.owner_a))
    assert {g.pk for g in rows[0].visible_grants} == _a_grants(twins)


def test_repositories_visible_to_the_collaborator_of_a_carry_its_own_grant_only(twins):
    rows = list(selectors.repositories_visible_to(twins.w.collaborator_a))
    assert [g.membership_id for g in rows[0].visible_grants] == [twins.w.collaborator_a.pk]


def test_open_deprovision_jobs_of_a_are_a_s_pending_job(twins):
    assert [j.status for j in selectors.deprovision_jobs_open(twins.w.a)] == ["pending"]


def test_finished_deprovision_jobs_of_a_are_a_s_done_job(twins):
    assert [j.status for j in selectors.deprovision_jobs_recent_done(twins.w.a)] == ["done"]


# ----------------------------------------------------------------------------- consent: the account stays B's


def test_the_roster_of_a_hides_the_2fa_status_of_a_member_pending_consent_that_b_sees(twins):
    from django_otp.plugins.otp_totp.models import TOTPDevice

    TOTPDevice.objects.create(user=twins.member_a.user, name="phone", confirmed=True)
    Membership.objects.filter(pk=twins.member_a.pk).update(consent_pending_since=timezone.now())
    in_a = selectors.api_members(workspace=twins.w.a, viewer=None).get(pk=twins.member_a.pk)
    in_b = selectors.api_members(workspace=twins.w.b, viewer=None).get(pk=twins.member_b.pk)
    assert in_a.has_confirmed_totp is None and selectors.member_two_factor(in_a) is None
    assert in_b.has_confirmed_totp is True and selectors.member_two_factor(in_b) is True
    in_a.has_confirmed_totp = True  # even a row annotated some other way says nothing while pending
    assert selectors.member_two_factor(in_a) is None and selectors.member_last_login(in_a) is None


def test_invitation_reads_of_a_include_no_invitation_of_b(twins):
    from workspaces.credentials import hash_secret
    from workspaces.models import Invitation

    for ws, member in ((twins.w.a, twins.member_a), (twins.w.b, twins.member_b)):
        Invitation.objects.create(workspace=ws, membership=member, email=SHARED_EMAIL,
                                  token_hash=hash_secret(f"token-{ws.slug}"), expires_at=timezone.now() + timedelta(hours=1))
    assert {i.workspace_id for i in selectors.invitations_open(twins.w.a)} == {twins.w.a.pk}
    # A token resolves to its own workspace's invitation only; its stored hash is not a token.
    assert selectors.invitation_by_token("token-alpha").membership == twins.member_a
    assert selectors.invitation_by_token("token-bravo").membership == twins.member_b
    assert selectors.invitation_by_token(hash_secret("token-alpha")) is None
