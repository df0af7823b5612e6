"""/api/v1/workspaces/<slug>/audit-events/: session or API key, same filters, cursor and after_seq pages."""

from __future__ import annotations

import pytest
from django.db import transaction
from django.test import Client

from audit.models import AuditEvent
from tests.conftest import login_client
from workspaces.services import api_key_create, api_key_revoke, membership_deactivate

from .helpers import as_actor, record

URL = "/api/v1/workspaces/alpha/audit-events/"


def _key(world, membership=None, scopes=()):
    owner = as_actor(world.owner_a)
    actor = as_actor(membership) if membership is not None else owner
    with transaction.atomic():
        key, plain = api_key_create(workspace=membership.workspace if membership else world.a, name="siem",
                                    membership=membership, scopes=scopes, actor=actor)
    return key, plain


@pytest.fixture
def events(world):
    return [record(world.a, "member.role_changed" if i % 2 else "team.created", target_label=str(i)) for i in range(7)]


def test_a_service_key_with_audit_read_pulls_events(world, events):
    _, plain = _key(world, scopes=["audit:read"])
    response = Client().get(URL, HTTP_AUTHORIZATION=f"Bearer {plain}")
    assert response.status_code == 200
    ids = [e["id"] for e in response.json()["results"]]
    assert ids[0] == AuditEvent.objects.get(action="api_key.created").pk  # newest first
    assert ids[1:8] == [e.pk for e in reversed(events)]


def test_the_x_api_key_header_works_too(world, events):
    _, plain = _key(world, scopes=["audit:read"])
    assert Client().get(URL, HTTP_X_API_KEY=plain).status_code == 200


def test_a_service_key_without_the_scope_is_refused(world, events):
    _, plain = _key(world)
    response = Client().get(URL, HTTP_AUTHORIZATION=f"Bearer {plain}")
    assert response.status_code == 403 and "results" not in response.json()


def test_a_personal_key_of_an_auditor_reads_and_of_a_plain_member_does_not(world, events):
    _, member_plain = _key(world, membership=world.member_a)
    assert Client().get(URL, HTTP_AUTHORIZATION=f"Bearer {member_plain}").status_code == 403
    world.member_a.is_auditor = True
    world.member_a.save()
    assert Client().get(URL, HTTP_AUTHORIZATION=f"Bearer {member_plain}").status_code == 200


def test_a_key_of_workspace_b_gets_401_and_no_data_on_workspace_a(world, events):
    with transaction.atomic():
        _, plain = api_key_create(workspace=world.b, name="b", scopes=["audit:read"], actor=as_actor(world.outsider_b))
    response = Client().get(URL, HTTP_AUTHORIZATION=f"Bearer {plain}")
    assert response.status_code == 401 and "results" not in response.json()
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert Client().get("/api/v1/workspaces/bravo/audit-events/", HTTP_AUTHORIZATION=f"Bearer {plain}").status_code == 200


def test_revoked_wrong_and_empty_keys_get_401(world, events):
    key, plain = _key(world, scopes=["audit:read"])
    for header in (f"Bearer {plain}x", "Bearer gh_", "Bearer ", f"Bearer {plain[:-4]}"):
        assert Client().get(URL, HTTP_AUTHORIZATION=header).status_code == 401, header
    with transaction.atomic():
        api_key_revoke(api_key=key, actor=as_actor(world.owner_a))
    assert Client().get(URL, HTTP_AUTHORIZATION=f"Bearer {plain}").status_code == 401


def test_a_deactivated_members_personal_key_stops_at_once(world, events):
    world.manager_a.refresh_from_db()
    _, plain = _key(world, membership=world.manager_a)
    assert Client().get(URL, HTTP_AUTHORIZATION=f"Bearer {plain}").status_code == 200
    with transaction.atomic():
        membership_deactivate(membership=world.manager_a, actor=as_actor(world.owner_a))
    assert Client().get(URL, HTTP_AUTHORIZATION=f"Bearer {plain}").status_code == 401


def test_the_session_works_for_those_who_may_read(world, events):
    assert login_client(world.manager_a).get(URL).status_code == 200
    assert login_client(world.member_a).get(URL).status_code == 403
    assert login_client(world.outsider_b).get(URL).status_code == 404
    assert Client().get(URL).status_code == 401


def test_filters_are_the_same_as_the_page(world, events):
    _, plain = _key(world, scopes=["audit:read"])
    response = Client().get(URL, {"action": "member.*"}, HTTP_AUTHORIZATION=f"Bearer {plain}")
    assert {e["action"] for e in response.json()["results"]} == {"member.role_changed"}
    bad = Client().get(URL, {"from": "not-a-date"}, HTTP_AUTHORIZATION=f"Bearer {plain}")
    assert bad.status_code == 400 and "date_from" in bad.json()["errors"]


def test_cursor_pages_walk_the_whole_log_once(world, events):
    _, plain = _key(world, scopes=["audit:read"])
    seen, cursor = [], ""
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        body = Client().get(URL, params, HTTP_AUTHORIZATION=f"Bearer {plain}").json()
        seen += [e["id"] for e in body["results"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    all_ids = list(AuditEvent.objects.filter(workspace_id=world.a.pk).order_by("-created_at", "-id").values_list("pk", flat=True))
    assert seen == all_ids


def test_after_seq_pulls_oldest_first_without_gaps_for_a_siem(world, events):
    _, plain = _key(world, scopes=["audit:read"])
    body = Client().get(URL, {"after_seq": 2, "limit": 3}, HTTP_AUTHORIZATION=f"Bearer {plain}").json()
    assert [e["seq"] for e in body["results"]] == [3, 4, 5] and body["next_after_seq"] == 5
    assert Client().get(URL, {"after_seq": "x"}, HTTP_AUTHORIZATION=f"Bearer {plain}").status_code == 400


def test_the_api_cannot_change_the_log(world, events):
    _, plain = _key(world, scopes=["audit:read"])
    for method in ("post", "put", "patch", "delete"):
        assert getattr(Client(), method)(URL, HTTP_AUTHORIZATION=f"Bearer {plain}").status_code == 405
