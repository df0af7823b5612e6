"""What a deprovisioning job revokes: the workspace's grant in every session, personal API keys, OAuth tokens."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.contrib.sessions.models import Session
from django.test import Client

from audit.models import AuditEvent
from audit.record import Actor
from tests.conftest import login_client
from tests.factories import MembershipFactory
from workspaces import services
from workspaces.access import SESSION_KEY
from workspaces.models import ApiKey, DeprovisionJob, DeprovisionStatus, Membership, UserSession
from workspaces.services import actor_for_membership

from .harness import run_job

SYSTEM = Actor.system("deprovisioning")


@pytest.fixture
def member_in_both(world):
    """member@alpha.test is also a Member of workspace B."""
    return MembershipFactory(workspace=world.b, user=world.member_a.user, role="member")


def _grants(client: Client) -> dict:
    session = Session.objects.get(session_key=client.session.session_key)
    return session.get_decoded().get(SESSION_KEY, {})


def _key(membership: Membership) -> ApiKey:
    key, _ = services.api_key_create(
        workspace=membership.workspace, membership=membership, name="ci",
        actor=actor_for_membership(membership, "password"),
    )
    return key


def _deactivate_and_run(world, membership: Membership) -> DeprovisionJob:
    services.membership_deactivate(membership=membership, actor=actor_for_membership(world.owner_a, "password"))
    job = DeprovisionJob.objects.get(membership=membership)
    assert run_job(job.pk) == "done"
    job.refresh_from_db()
    return job


def test_login_indexes_the_session_and_logout_forgets_it(world):
    user = world.member_a.user
    user.set_password("a-fresh-password-for-this-test")  # not the factories' cached hash (hasher settings vary)
    user.save(update_fields=["password"])
    client = Client()
    assert client.post("/login/", {"email": "member@alpha.test", "password": "a-fresh-password-for-this-test"}).status_code == 302
    key = client.session.session_key
    assert UserSession.objects.filter(user=world.member_a.user, session_key=key).exists()
    client.post("/logout/")
    assert not UserSession.objects.filter(session_key=key).exists()


def test_every_session_of_the_member_loses_the_workspace_grant(world, member_in_both):
    laptop, phone = login_client(world.member_a, world.a, world.b), login_client(world.member_a, world.a)
    job = _deactivate_and_run(world, world.member_a)
    assert job.result["sessions"] == 2
    assert str(world.a.pk) not in _grants(laptop)
    assert str(world.a.pk) not in _grants(phone)


def test_the_grant_for_another_workspace_stays(world, member_in_both):
    laptop = login_client(world.member_a, world.a, world.b)
    _deactivate_and_run(world, world.member_a)
    assert str(world.b.pk) in _grants(laptop)
    assert laptop.get("/w/bravo/").status_code == 200


def test_other_peoples_sessions_are_untouched(world):
    other = login_client(world.manager_a)
    login_client(world.member_a)
    _deactivate_and_run(world, world.member_a)
    assert str(world.a.pk) in _grants(other)


def test_personal_api_keys_in_that_workspace_are_revoked(world):
    key = _key(world.member_a)
    job = _deactivate_and_run(world, world.member_a)
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert job.result["api_keys"] == 1


def test_the_members_keys_in_another_workspace_stay_live(world, member_in_both):
    key_b = _key(member_in_both)
    _deactivate_and_run(world, world.member_a)
    key_b.refresh_from_db()
    assert key_b.revoked_at is None


def test_the_audit_event_lists_what_was_revoked_in_the_members_workspace(world):
    login_client(world.member_a)
    _key(world.member_a)
    job = _deactivate_and_run(world, world.member_a)
    event = AuditEvent.objects.get(action="member.credentials_revoked")
    assert event.workspace_id == world.a.pk
    assert (event.target_type, event.target_id, event.target_label) == ("member", str(world.member_a.pk), "member@alpha.test")
    assert event.details == {"sessions": 1, "api_keys": 1, "oauth_tokens": 0, "cause": "deactivated", "job": job.pk}


def test_running_a_job_again_revokes_nothing_more_and_records_nothing_more(world):
    login_client(world.member_a)
    _key(world.member_a)
    job = _deactivate_and_run(world, world.member_a)
    assert run_job(job.pk) == "skipped"
    job.refresh_from_db()
    assert job.result == {"sessions": 1, "api_keys": 1, "oauth_tokens": 0}
    assert AuditEvent.objects.filter(action="member.credentials_revoked").count() == 1


def test_credentials_issued_after_a_reactivation_are_not_revoked_by_an_older_job(world):
    owner = actor_for_membership(world.owner_a, "password")
    services.membership_deactivate(membership=world.member_a, actor=owner)
    services.membership_reactivate(membership=Membership.objects.get(pk=world.member_a.pk), actor=owner)
    member = Membership.objects.get(pk=world.member_a.pk)
    new_key = _key(member)
    new_session = login_client(member)
    job = DeprovisionJob.objects.get()
    assert run_job(job.pk) == "done"
    new_key.refresh_from_db()
    assert new_key.revoked_at is None
    assert new_session.get("/w/alpha/").status_code == 200


def test_a_removed_members_sessions_lose_the_grant(world):
    client = login_client(world.member_a)
    services.membership_remove(membership=world.member_a, actor=actor_for_membership(world.owner_a, "password"))
    job = DeprovisionJob.objects.get()
    assert run_job(job.pk) == "done"
    assert str(world.a.pk) not in _grants(client)
    assert DeprovisionJob.objects.get().status == DeprovisionStatus.DONE


def test_oauth_tokens_of_the_member_are_revoked(world):
    if not apps.is_installed("oauth2_provider"):
        pytest.skip("django-oauth-toolkit (oauth2_provider) is not in INSTALLED_APPS on this branch: no OAuth tokens exist")
    from datetime import timedelta

    from django.utils import timezone
    from oauth2_provider.models import get_access_token_model, get_application_model, get_refresh_token_model

    app = get_application_model().objects.create(
        name="cli", client_type="confidential", authorization_grant_type="authorization-code",
        user=world.member_a.user, redirect_uris="https://cli.example/cb",
    )
    access = get_access_token_model().objects.create(
        user=world.member_a.user, application=app, token="a-token", expires=timezone.now() + timedelta(hours=1),
    )
    get_refresh_token_model().objects.create(user=world.member_a.user, application=app, token="r-token", access_token=access)
    job = _deactivate_and_run(world, world.member_a)
    assert job.result["oauth_tokens"] == 2
    assert not get_access_token_model().objects.filter(user=world.member_a.user).exists()
    assert not get_refresh_token_model().objects.filter(user=world.member_a.user, revoked__isnull=True).exists()
