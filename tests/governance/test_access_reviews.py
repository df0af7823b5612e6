"""Access reviews: a snapshot of the grants in scope, decisions, completion through the same services, evidence."""

from __future__ import annotations

import hashlib
import json

import pytest

from audit.models import AuditEvent
from tests.factories import MembershipFactory, RepositoryFactory, TeamFactory
from workspaces import review_export
from workspaces.exceptions import NotAllowed, NotFound, ServiceError
from workspaces.models import RepositoryGrant, TeamMembership, TeamSource
from workspaces.services import (
    ReviewCompleted,
    access_review_complete,
    access_review_decide,
    access_review_start,
    actor_for_membership,
)

pytestmark = pytest.mark.django_db


def owner(world):
    return actor_for_membership(world.owner_a, "password")


def decide_all(review, actor, revoke=lambda item: False):
    for item in review.items.all():
        access_review_decide(item=item, decision="revoke" if revoke(item) else "keep", actor=actor)


def test_a_workspace_review_snapshots_every_grant_and_later_changes_do_not_alter_it(world):
    team = TeamFactory(workspace=world.a, name="core")
    TeamMembership.objects.create(team=team, membership=world.member_a)
    repo = RepositoryFactory(workspace=world.a, name="app")
    RepositoryGrant.objects.create(repository=repo, team=team, permission="write")
    review = access_review_start(workspace=world.a, actor=owner(world), name="Q4", scope_kind="workspace")
    entitlements = sorted(review.items.values_list("entitlement", "principal_label"))
    assert ("role:owner", "owner@alpha.test") in entitlements
    assert (f"team:{team.pk}", "member@alpha.test") in entitlements
    assert (f"repository:{repo.pk}:write", "core") in entitlements
    assert review.items.count() == 5 + 1 + 1  # five role grants, one team membership, one repository grant
    assert not review.items.filter(principal_label="owner@bravo.test").exists()
    TeamMembership.objects.all().delete()
    assert review.items.filter(entitlement=f"team:{team.pk}").count() == 1


def test_a_team_review_covers_only_that_teams_members(world):
    team = TeamFactory(workspace=world.a)
    other = TeamFactory(workspace=world.a)
    TeamMembership.objects.create(team=team, membership=world.member_a)
    TeamMembership.objects.create(team=other, membership=world.manager_a)
    review = access_review_start(workspace=world.a, actor=owner(world), name="team", scope_kind="team",
                                 scope_id=team.pk)
    assert list(review.items.values_list("entitlement", "principal_label")) == [(f"team:{team.pk}", "member@alpha.test")]


def test_scope_of_another_workspace_is_not_found(world):
    team_b = TeamFactory(workspace=world.b)
    with pytest.raises(NotFound):
        access_review_start(workspace=world.a, actor=owner(world), name="x", scope_kind="team", scope_id=team_b.pk)


def test_only_owners_and_auditors_run_reviews(world):
    with pytest.raises(NotAllowed):
        access_review_start(workspace=world.a, actor=actor_for_membership(world.manager_a, "password"), name="x",
                            scope_kind="workspace")
    world.member_a.is_auditor = True
    world.member_a.save()
    review = access_review_start(workspace=world.a, actor=actor_for_membership(world.member_a, "password"),
                                 name="audit", scope_kind="workspace")
    assert review.items.exists()


def test_completion_needs_every_grant_decided(world):
    review = access_review_start(workspace=world.a, actor=owner(world), name="Q4", scope_kind="workspace")
    with pytest.raises(ServiceError, match="5 grants are still undecided"):
        access_review_complete(review=review, actor=owner(world))


def test_completion_applies_revocations_through_the_services_and_records_refusals_with_their_reason(world):
    team = TeamFactory(workspace=world.a)
    TeamMembership.objects.create(team=team, membership=world.member_a)
    pushed = MembershipFactory(workspace=world.a, scim_username="p@alpha.test", user__email="p@alpha.test")
    pushed_team = TeamFactory(workspace=world.a, scim_managed=True)
    TeamMembership.objects.create(team=pushed_team, membership=pushed, source=TeamSource.SCIM)
    actor = owner(world)
    review = access_review_start(workspace=world.a, actor=actor, name="Q4", scope_kind="workspace")
    decide_all(review, actor, revoke=lambda i: i.kind == "team" or i.entitlement == "role:owner")
    done = access_review_complete(review=review, actor=actor)
    outcomes = {(i.entitlement, i.principal_label): (i.outcome, i.outcome_detail) for i in done.items.all()}
    assert outcomes[(f"team:{team.pk}", "member@alpha.test")] == ("revoked", "")
    assert not TeamMembership.objects.filter(team=team).exists()
    refused, reason = outcomes[(f"team:{pushed_team.pk}", "p@alpha.test")]
    assert refused == "refused" and "identity provider" in reason
    assert outcomes[("role:owner", "owner@alpha.test")][0] == "refused"  # the last active Owner stays
    assert outcomes[("role:member", "member@alpha.test")] == ("kept", "")
    world.owner_a.refresh_from_db()
    assert world.owner_a.role == "owner"
    event = AuditEvent.objects.get(workspace=world.a, action="access_review.completed")
    assert (event.details["revoked"], event.details["refused"], event.details["kept"]) == (1, 2, 5)
    assert event.details["export_sha256"] == hashlib.sha256(review_export.export_json(done)).hexdigest()
    assert AuditEvent.objects.filter(workspace=world.a, action="team.member_removed").count() == 1


def test_a_completed_reviews_decisions_are_final(world):
    actor = owner(world)
    review = access_review_start(workspace=world.a, actor=actor, name="Q4", scope_kind="workspace")
    decide_all(review, actor)
    access_review_complete(review=review, actor=actor)
    with pytest.raises(ReviewCompleted):
        access_review_decide(item=review.items.first(), decision="revoke", actor=actor)
    with pytest.raises(ReviewCompleted):
        access_review_complete(review=review, actor=actor)


def test_each_decision_change_is_audited_once(world):
    actor = owner(world)
    review = access_review_start(workspace=world.a, actor=actor, name="Q4", scope_kind="workspace")
    item = review.items.first()
    assert access_review_decide(item=item, decision="revoke", actor=actor, note="left the company")
    assert not access_review_decide(item=item, decision="revoke", actor=actor, note="left the company")
    assert AuditEvent.objects.filter(action="access_review.decided").count() == 1


def test_the_json_export_holds_the_review_and_every_item(world):
    actor = owner(world)
    review = access_review_start(workspace=world.a, actor=actor, name="Q4", scope_kind="workspace")
    doc = json.loads(review_export.export_json(review))
    assert doc["review"]["name"] == "Q4" and doc["review"]["counts"]["items"] == 5
    assert sorted(i["principal"]["label"] for i in doc["items"]) == sorted(
        ["owner@alpha.test", "manager@alpha.test", "member@alpha.test", "private@alpha.test", "collab@alpha.test"])
    assert review_export.export_json(review) == review_export.export_json(review)  # deterministic
