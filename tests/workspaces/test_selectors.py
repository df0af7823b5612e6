"""workspaces.selectors as the pages and the API use them: counts people see, the order of the deprovisioning
page, the lengths of its lists, and reads that load what the page shows in the same query."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.factories import MembershipFactory, RepositoryFactory, TeamFactory
from workspaces import selectors
from workspaces.models import DeprovisionJob, RepositoryGrant, TeamMembership


def _job(world, member, *, status="pending", created_at=None, finished_at=None, pk=None) -> DeprovisionJob:
    return DeprovisionJob.objects.create(
        pk=pk, workspace=world.a, user=member.user, membership=member, member_label=member.user.email,
        cause="scim", status=status, created_at=created_at or timezone.now(), finished_at=finished_at,
    )


class TestCounts:
    def test_a_member_sees_the_whole_member_count_of_its_teams(self, world):
        team = TeamFactory(workspace=world.a, name="Eng")
        for member in (world.member_a, world.manager_a, world.owner_a):
            TeamMembership.objects.create(team=team, membership=member)
        TeamFactory(workspace=world.a, name="Empty")
        assert {t.name: t.member_count for t in selectors.teams_visible_to(world.member_a)} == {"Eng": 3}
        assert {t.name: t.member_count for t in selectors.teams_visible_to(world.owner_a)} == {"Empty": 0, "Eng": 3}

    def test_a_team_with_a_member_in_two_repositories_grants_counts_each_member_once(self, world):
        team = TeamFactory(workspace=world.a, name="Ops")
        TeamMembership.objects.create(team=team, membership=world.member_a)
        for name in ("one", "two"):
            RepositoryGrant.objects.create(repository=RepositoryFactory(workspace=world.a, name=name), team=team,
                                           permission="read")
        assert [t.member_count for t in selectors.teams_visible_to(world.owner_a)] == [1]

    def test_deactivated_owners_are_not_counted_as_active(self, world):
        assert selectors.active_owner_count(world.a) == 1
        MembershipFactory(workspace=world.a, role="owner", is_active=False)
        assert selectors.active_owner_count(world.a) == 1
        MembershipFactory(workspace=world.a, role="owner")
        assert selectors.active_owner_count(world.a) == 2


class TestDeprovisioningPage:
    def test_failed_jobs_first_then_oldest_first_then_by_id(self, world):
        now = timezone.now()
        old = _job(world, world.member_a, created_at=now - timedelta(hours=2))
        failed = _job(world, world.manager_a, status="failed", created_at=now - timedelta(minutes=1))
        # Two created at the same instant, the higher id inserted first: the id settles the tie.
        tie_high = _job(world, world.collaborator_a, created_at=now - timedelta(hours=1), pk=9002)
        tie_low = _job(world, world.owner_a, status="running", created_at=now - timedelta(hours=1), pk=9001)
        # The newest open job, with an id below the two above: age, not id, orders them.
        newest = _job(world, world.manager_a, created_at=now, pk=8000)
        _job(world, world.member_a, status="done", created_at=now - timedelta(days=1))
        assert list(selectors.deprovision_jobs_open(world.a)) == [failed, old, tie_low, tie_high, newest]

    def test_at_most_200_open_jobs_are_listed(self, world):
        DeprovisionJob.objects.bulk_create([
            DeprovisionJob(workspace=world.a, user=world.member_a.user, membership=world.member_a, member_label="x",
                           cause="scim") for _ in range(201)
        ])
        assert len(selectors.deprovision_jobs_open(world.a)) == 200

    def test_recently_done_newest_finished_first_at_most_20(self, world):
        now = timezone.now()
        early = _job(world, world.member_a, status="done", finished_at=now - timedelta(hours=1), pk=9101)
        late = _job(world, world.manager_a, status="done", finished_at=now - timedelta(minutes=1), pk=9100)
        tie_low = _job(world, world.owner_a, status="done", finished_at=now - timedelta(minutes=30), pk=9102)
        tie_high = _job(world, world.collaborator_a, status="done", finished_at=now - timedelta(minutes=30), pk=9103)
        assert list(selectors.deprovision_jobs_recent_done(world.a)) == [late, tie_high, tie_low, early]
        for _ in range(20):
            _job(world, world.member_a, status="done", finished_at=now)
        assert len(selectors.deprovision_jobs_recent_done(world.a)) == 20


class TestReadsLoadWhatThePageShows:
    """Each read brings the rows its page shows in the same query: no query per row."""

    def test_workspaces_of_a_user(self, world, django_assert_num_queries):
        with django_assert_num_queries(1):
            assert [m.workspace.name for m in selectors.workspaces_of_user(world.owner_a.user)]

    def test_open_deprovisioning_jobs(self, world, django_assert_num_queries):
        _job(world, world.member_a)
        with django_assert_num_queries(1):
            assert [j.workspace.slug for j in selectors.deprovision_jobs_open()] == ["alpha"]

    def test_api_members_and_their_teams(self, world, django_assert_num_queries):
        team = TeamFactory(workspace=world.a, name="Eng")
        TeamMembership.objects.create(team=team, membership=world.member_a)
        with django_assert_num_queries(2):
            members = list(selectors.api_members(workspace=world.a, viewer=None))
            assert [m.user.email for m in members]

    def test_api_teams_and_their_members(self, world, django_assert_num_queries):
        team = TeamFactory(workspace=world.a, name="Eng")
        TeamMembership.objects.create(team=team, membership=world.member_a)
        with django_assert_num_queries(2):
            teams = list(selectors.api_teams(workspace=world.a, viewer=None))
            assert [link.membership.user.email for t in teams for link in t.visible_members] == ["member@alpha.test"]

    @pytest.mark.parametrize("grantee", ["team", "member"])
    def test_repository_grants_and_their_grantees(self, world, django_assert_num_queries, grantee):
        repository = RepositoryFactory(workspace=world.a, name="api")
        team = TeamFactory(workspace=world.a, name="Eng")
        RepositoryGrant.objects.create(repository=repository, permission="read",
                                       **({"team": team} if grantee == "team" else {"membership": world.member_a}))
        with django_assert_num_queries(1):
            grants = list(selectors.repository_grants_visible_to(workspace=world.a, viewer=None))
            shown = [g.team.name if g.team_id else g.membership.user.email for g in grants]
        assert shown == (["Eng"] if grantee == "team" else ["member@alpha.test"])
