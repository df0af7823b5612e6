"""POST access-check: the decision from role, team and direct grants and allowed environments, and its audit event."""

from __future__ import annotations

import pytest

from audit.models import AuditEvent
from tests.factories import RepositoryFactory, TeamFactory
from workspaces.models import ApiKey, Membership, RepositoryGrant, TeamMembership

from .conftest import ApiClient, personal_key, service_key

pytestmark = pytest.mark.django_db

URL = "/api/v1/workspaces/alpha/access-check"


@pytest.fixture
def repos(world):
    core = TeamFactory(workspace=world.a, name="core")
    TeamMembership.objects.create(team=core, membership=world.member_a)
    libs = RepositoryFactory(workspace=world.a, name="libs", environment="staging")
    RepositoryGrant.objects.create(repository=libs, team=core, permission="write")
    tools = RepositoryFactory(workspace=world.a, name="tools")
    RepositoryGrant.objects.create(repository=tools, membership=world.collaborator_a, permission="read")
    RepositoryGrant.objects.create(repository=tools, team=core, permission="read")
    RepositoryGrant.objects.create(repository=tools, membership=world.member_a, permission="admin")
    RepositoryFactory(workspace=world.a, name="vault", environment="production")
    RepositoryFactory(workspace=world.b, name="bravo-only")
    return world


def check(membership: Membership, repository: str, action: str) -> dict:
    response = ApiClient(personal_key(membership)).post(URL, {"repository": repository, "action": action})
    assert response.status_code == 200, response.content
    return response.json()


def last_event() -> AuditEvent:
    return AuditEvent.objects.order_by("-id").first()


def test_team_write_grant_allows_push(repos):
    assert check(repos.member_a, "libs", "push")["allowed"] is True


def test_team_write_grant_does_not_allow_delete(repos):
    answer = check(repos.member_a, "libs", "delete")
    assert answer["allowed"] is False
    assert "needs admin" in answer["reason"]


def test_direct_admin_grant_beats_the_teams_read_grant(repos):
    answer = check(repos.member_a, "tools", "delete")
    assert (answer["allowed"], answer["permission"]) == (True, "admin")
    assert "direct grant" in answer["reason"]


def test_collaborator_direct_read_grant_allows_pull_but_not_push(repos):
    assert check(repos.collaborator_a, "tools", "pull")["allowed"] is True
    assert check(repos.collaborator_a, "tools", "push")["allowed"] is False


def test_member_without_any_grant_is_denied(repos):
    answer = check(repos.private_member_a, "libs", "pull")
    assert answer["allowed"] is False and "No grant" in answer["reason"]


def test_owner_role_allows_delete_without_any_grant(repos):
    answer = check(repos.owner_a, "vault", "delete")
    assert answer["allowed"] is True and "role owner" in answer["reason"]


def test_manager_role_allows_push_without_any_grant(repos):
    assert check(repos.manager_a, "vault", "push")["allowed"] is True


def test_repository_name_is_matched_case_insensitively(repos):
    assert check(repos.member_a, "LIBS", "pull")["repository"] == "libs"


def test_unknown_repository_is_denied(repos):
    answer = check(repos.owner_a, "nope", "pull")
    assert answer == {"allowed": False, "reason": "No repository named 'nope' in this workspace.", "repository": None, "action": "pull", "permission": ""}


def test_repository_of_workspace_b_is_unknown_in_workspace_a(repos):
    answer = check(repos.owner_a, "bravo-only", "pull")
    assert answer["allowed"] is False and answer["repository"] is None


def test_repository_of_workspace_b_is_found_by_workspace_b(repos):
    response = ApiClient(personal_key(repos.outsider_b)).post(
        "/api/v1/workspaces/bravo/access-check", {"repository": "bravo-only", "action": "pull"}
    )
    assert response.json()["allowed"] is True


def test_allowed_environments_refuse_a_repository_outside_them(repos):
    Membership.objects.filter(pk=repos.member_a.pk).update(allowed_environments=["production"])
    answer = check(repos.member_a, "libs", "pull")
    assert answer["allowed"] is False and "allowed environments" in answer["reason"]


def test_allowed_environments_admit_the_repository_environment(repos):
    Membership.objects.filter(pk=repos.member_a.pk).update(allowed_environments=["staging"])
    assert check(repos.member_a, "libs", "push")["allowed"] is True


def test_allowed_environments_admit_the_repository_name(repos):
    Membership.objects.filter(pk=repos.member_a.pk).update(allowed_environments=["tools"])
    assert check(repos.member_a, "tools", "pull")["allowed"] is True


def test_allowed_environments_limit_owners_too(repos):
    Membership.objects.filter(pk=repos.owner_a.pk).update(allowed_environments=["staging"])
    assert check(repos.owner_a, "vault", "pull")["allowed"] is False


def test_allowed_pull_is_audited_as_package_pulled_with_identity_key_and_repository(repos):
    check(repos.member_a, "libs", "pull")
    event = last_event()
    key = ApiKey.objects.get(membership=repos.member_a)
    assert event.action == "package.pulled"
    assert event.workspace_id == repos.a.pk
    assert (event.actor_kind, event.actor_id, event.actor_label, event.auth_method) == (
        "user", str(repos.member_a.user_id), "member@alpha.test", "api_key"
    )
    assert (event.target_type, event.target_label) == ("repository", "libs")
    assert event.details["api_key"] == {"id": key.pk, "prefix": key.prefix}
    assert event.details["member"] == "member@alpha.test"


@pytest.mark.parametrize("action,event", [("push", "package.pushed"), ("delete", "package.deleted")])
def test_allowed_push_and_delete_are_audited_by_their_verb(repos, action, event):
    check(repos.owner_a, "libs", action)
    assert last_event().action == event


def test_denied_check_is_audited_as_package_denied_with_its_reason(repos):
    answer = check(repos.collaborator_a, "tools", "push")
    event = last_event()
    assert event.action == "package.denied"
    assert event.details["reason"] == answer["reason"]
    assert event.details["action"] == "push"


def test_unknown_repository_check_is_audited_with_the_requested_name(repos):
    check(repos.member_a, "ghost", "pull")
    event = last_event()
    assert (event.action, event.target_label, event.target_id) == ("package.denied", "ghost", "")


def test_every_call_writes_one_event(repos):
    client = ApiClient(personal_key(repos.member_a))
    before = AuditEvent.objects.filter(action__startswith="package.").count()
    for action in ("pull", "push", "delete"):
        client.post(URL, {"repository": "libs", "action": action})
    assert AuditEvent.objects.filter(action__startswith="package.").count() == before + 3


def test_collaborator_asking_about_an_unknown_name_learns_nothing_about_existence(repos):
    assert check(repos.collaborator_a, "vault", "pull")["reason"] == check(repos.collaborator_a, "ghost", "pull")["reason"].replace("ghost", "vault")


def test_invalid_action_is_400_and_not_audited(repos):
    before = AuditEvent.objects.count()
    response = ApiClient(personal_key(repos.member_a)).post(URL, {"repository": "libs", "action": "steal"})
    assert response.status_code == 400
    assert AuditEvent.objects.count() == before + 1  # only the key's creation


def test_personal_key_cannot_check_for_someone_else(repos):
    response = ApiClient(personal_key(repos.member_a)).post(
        URL, {"repository": "libs", "action": "pull", "member": "owner@alpha.test"}
    )
    # A well-formed request this kind of key may not make: refused as a permission (403), saying what to use.
    assert response.status_code == 403
    assert "service key with access:check" in response.json()["detail"]


def test_service_key_with_access_check_scope_checks_a_named_member(repos):
    client = ApiClient(service_key(repos.a, ["access:check"]))
    response = client.post(URL, {"repository": "libs", "action": "push", "member": "member@alpha.test"})
    assert response.json()["allowed"] is True
    event = last_event()
    assert (event.actor_kind, event.auth_method, event.details["member"]) == ("api_key", "api_key", "member@alpha.test")


def test_service_key_cannot_check_a_member_of_workspace_b(repos):
    client = ApiClient(service_key(repos.a, ["access:check"]))
    response = client.post(URL, {"repository": "libs", "action": "pull", "member": "owner@bravo.test"})
    assert response.status_code == 404


def test_service_key_without_access_check_scope_is_403(repos):
    client = ApiClient(service_key(repos.a, ["members:read"]))
    response = client.post(URL, {"repository": "libs", "action": "pull", "member": "member@alpha.test"})
    assert response.status_code == 403


def test_deactivated_member_cannot_be_checked_by_a_service_key(repos):
    Membership.objects.filter(pk=repos.member_a.pk).update(is_active=False)
    client = ApiClient(service_key(repos.a, ["access:check"]))
    response = client.post(URL, {"repository": "libs", "action": "pull", "member": "member@alpha.test"})
    assert response.status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"repository": "libs", "action": "steal"},
        {"repository": "", "action": "pull"},
        {"repository": "x" * 101, "action": "pull"},
        {"repository": "li\x00bs", "action": "pull"},
        {"repository": 7, "action": "pull"},
        {"repository": "libs"},
        {"repository": "libs", "action": "pull", "extra": 1},
        ["libs", "pull"],
    ],
    ids=["unknown-action", "blank", "too-long", "nul", "number", "no-action", "extra-key", "not-an-object"],
)
def test_bad_bodies_get_the_same_answers_as_the_serializer_gives(repos, body):
    """The fast path for plain bodies must not change what anything else gets: a 400 naming the field,
    or (an extra key) the answer the serializer's validation allows; never a 500, never a different verdict."""
    from workspaces.api.serializers import AccessCheckRequestSerializer

    response = ApiClient(personal_key(repos.member_a)).post(URL, body)
    serializer = AccessCheckRequestSerializer(data=body)
    if serializer.is_valid():
        assert response.status_code == 200, response.content
    else:
        assert response.status_code == 400, response.content
        assert set(serializer.errors) <= set(str(response.content, "utf-8").replace('"', " ").split()) | {"non_field_errors"}


def test_a_padded_repository_name_is_trimmed_like_the_serializer_does(repos):
    assert check(repos.member_a, "  libs ", "push")["allowed"] is True


@pytest.mark.parametrize("prepared", [True, False], ids=["prepared", "unprepared"])
@pytest.mark.django_db(transaction=True)
def test_the_check_is_two_statements_the_key_with_its_decision_prepared_once_per_connection(prepared, repos, settings):
    """Planning the key lookup and the decision cost more than running them: on PostgreSQL the key and
    the decision's inputs are ONE server-side prepared statement (PostgreSQL's own list of the session's
    statements is the proof) and the audit append the other, unless DB_PREPARED_STATEMENTS is off for a
    pooler that cannot keep them. The answers are the same either way."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    if connection.vendor != "postgresql":
        pytest.skip(f"needs PostgreSQL: server-side prepared statements (this run uses {connection.vendor})")
    settings.DB_PREPARED_STATEMENTS = prepared
    key = personal_key(repos.member_a)
    connection.close()  # a new session: nothing prepared by earlier work
    answers = [ApiClient(key).post(URL, {"repository": "libs", "action": "push"}).json() for _ in range(3)]
    assert [a["allowed"] for a in answers] == [True, True, True]
    with CaptureQueriesContext(connection) as queries:
        assert ApiClient(key).post(URL, {"repository": "libs", "action": "push"}).json()["allowed"] is True
    assert len(queries) == 2, [q["sql"][:80] for q in queries]
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        statements = [row[0] for row in cursor.fetchall()]
    key_with_decision = [s for s in statements if "workspaces_apikey" in s and "workspaces_repositorygrant" in s]
    appends = [s for s in statements if "audit_auditchainhead" in s]
    assert (len(key_with_decision), len(appends)) == ((1, 1) if prepared else (0, 0)), statements


MEMBERS = ["owner_a", "manager_a", "member_a", "private_member_a", "collaborator_a"]


@pytest.mark.parametrize("who", MEMBERS)
def test_the_answer_read_with_the_key_is_the_answer_read_alone(repos, who):
    """The check reads the decision's inputs with the key (PostgreSQL); the service reads them on its own:
    the same answer, for every role, repository (other workspace's, unknown, other case) and action."""
    from workspaces.package_access import package_access_decision

    membership = getattr(repos, who)
    membership.allowed_environments = ["staging", "tools"] if who == "member_a" else []
    membership.save(update_fields=["allowed_environments"])
    client = ApiClient(personal_key(membership))
    for repository in ["libs", "tools", "vault", "LIBS", "bravo-only", "nope"]:
        for action in ["pull", "push", "delete"]:
            answer = client.post(URL, {"repository": repository, "action": action}).json()
            alone = package_access_decision(membership=membership, repository_name=repository, action=action)
            assert (answer["allowed"], answer["reason"], answer["permission"]) == (
                alone.allowed, alone.reason, alone.permission
            ), (who, repository, action)
