"""/w/<slug>/audit/: who may read, the filters, keyset pages that hold while events arrive, the event page."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from audit.context import RequestContext, reset_request_context, set_request_context
from audit.models import AuditEvent
from tests.conftest import login_client

from .helpers import as_actor, frozen_now, record


def _ids(response) -> list[int]:
    return [e.pk for e in response.context["events"]]


@pytest.fixture
def log(world):
    """A small log in workspace A (and one event in B) with known actors, actions, targets, IPs and dates."""
    owner, manager = as_actor(world.owner_a), as_actor(world.manager_a, "saml")
    token = set_request_context(RequestContext(ip="192.0.2.7", user_agent="pytest", request_id="req-abcdef12"))
    try:
        with frozen_now(datetime(2026, 3, 1, 10, 0, tzinfo=UTC)):
            e1 = record(world.a, "member.role_changed", actor=owner, target_type="member",
                        target_id=world.member_a.pk, target_label="member@alpha.test",
                        details={"before": {"role": "member"}, "after": {"role": "manager"}})
    finally:
        reset_request_context(token)
    with frozen_now(datetime(2026, 3, 5, 10, 0, tzinfo=UTC)):
        e2 = record(world.a, "team.created", actor=manager, target_type="team", target_id=7, target_label="Platform")
    with frozen_now(datetime(2026, 3, 9, 10, 0, tzinfo=UTC)):
        e3 = record(world.a, "member.deactivated", actor=manager, target_type="member",
                    target_id=world.member_a.pk, target_label="member@alpha.test")
    record(world.b, "member.role_changed", actor=as_actor(world.outsider_b))
    return e1, e2, e3


@pytest.mark.parametrize("who", ["owner_a", "manager_a"])
def test_owners_and_managers_read_the_log(world, log, who):
    response = login_client(getattr(world, who)).get("/w/alpha/audit/")
    assert response.status_code == 200
    assert _ids(response) == [log[2].pk, log[1].pk, log[0].pk]  # newest first


def test_a_member_with_the_auditor_permission_reads_the_log(world, log):
    world.member_a.is_auditor = True
    world.member_a.save()
    assert login_client(world.member_a).get("/w/alpha/audit/").status_code == 200


@pytest.mark.parametrize("who", ["member_a", "collaborator_a"])
def test_members_and_collaborators_without_the_permission_are_refused(world, log, who):
    assert login_client(getattr(world, who)).get("/w/alpha/audit/").status_code == 403


def test_an_auditor_of_workspace_b_sees_nothing_of_workspace_a(world, log):
    world.outsider_b.is_auditor = True
    world.outsider_b.save()
    client = login_client(world.outsider_b)
    assert client.get("/w/alpha/audit/").status_code == 404
    assert client.get(f"/w/alpha/audit/{log[0].pk}/").status_code == 404
    assert client.get(f"/w/bravo/audit/{log[0].pk}/").status_code == 404  # A's event under B's slug


def test_workspace_b_reads_only_its_own_events(world, log):
    response = login_client(world.outsider_b).get("/w/bravo/audit/")
    assert [e.workspace_id for e in response.context["events"]] == [world.b.pk]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"actor": "manager@alpha.test"}, [2, 1]),
        ({"action": "member.role_changed"}, [0]),
        ({"action": "member.*"}, [2, 0]),
        ({"action": "member"}, [2, 0]),
        ({"target": "Platform"}, [1]),
        ({"auth_method": "saml"}, [2, 1]),
        ({"ip": "192.0.2.7"}, [0]),
        ({"from": "2026-03-04", "to": "2026-03-09"}, [2, 1]),
        ({"from": "2026-03-04T00:00:00Z", "to": "2026-03-08"}, [1]),
        ({"q": "deactivated"}, [2]),
        ({"q": "req-abcdef12"}, [0]),
        ({"actor": "manager@alpha.test", "from": "2026-03-06"}, [2]),
    ],
)
def test_filters_narrow_the_log(world, log, params, expected):
    response = login_client(world.owner_a).get("/w/alpha/audit/", params)
    assert _ids(response) == [log[i].pk for i in expected]


def test_the_target_filter_takes_type_and_id(world, log):
    response = login_client(world.owner_a).get("/w/alpha/audit/", {"target": f"member:{world.member_a.pk}"})
    assert _ids(response) == [log[2].pk, log[0].pk]


def test_an_invalid_date_is_shown_as_a_field_error_not_a_500(world, log):
    response = login_client(world.owner_a).get("/w/alpha/audit/", {"from": "yesterday"})
    assert response.status_code == 200
    assert "Use a date like" in response.content.decode()


def test_keyset_pages_stay_correct_while_events_arrive(world):
    from audit import selectors

    events = [record(world.a, "test.event", target_label=str(i)) for i in range(120)]
    client = login_client(world.owner_a)
    first = client.get("/w/alpha/audit/")
    assert len(first.context["events"]) == selectors.PAGE_SIZE
    seen = _ids(first)
    for i in range(30):  # new events arrive between page loads
        record(world.a, "test.event", target_label=f"new{i}")
    cursor = first.context["page"].next_cursor
    while cursor:
        page = client.get("/w/alpha/audit/", {"cursor": cursor})
        seen += _ids(page)
        cursor = page.context["page"].next_cursor
    assert seen == [e.pk for e in reversed(events)]  # every old event once, in order, none repeated


def test_pages_break_ties_on_the_same_instant_by_id(world):
    from audit import selectors

    with frozen_now(datetime(2026, 1, 1, tzinfo=UTC)):
        events = [record(world.a, "test.same_instant") for _ in range(7)]
    qs = selectors.filtered_events(world.a, {})
    page1 = selectors.events_page(world.a, qs, limit=3)
    page2 = selectors.events_page(world.a, qs, cursor=page1.next_cursor, limit=3)
    page3 = selectors.events_page(world.a, qs, cursor=page2.next_cursor, limit=3)
    got = [e.pk for p in (page1, page2, page3) for e in p.events]
    assert got == [e.pk for e in reversed(events)] and page3.next_cursor == ""


def test_a_next_link_keeps_the_filters(world):
    for _ in range(55):
        record(world.a, "member.created")
    record(world.a, "team.created")
    response = login_client(world.owner_a).get("/w/alpha/audit/", {"action": "member.*"})
    assert "action=member.%2A&amp;cursor=" in response.content.decode()


def test_an_altered_cursor_is_refused_politely(world, log):
    response = login_client(world.owner_a).get("/w/alpha/audit/", {"cursor": "2026-03-09T10:00:00+00:00|999:forged"})
    assert response.status_code == 200
    assert "invalid or expired" in response.content.decode()


def test_a_cursor_from_workspace_b_is_refused_in_workspace_a(world, log):
    from audit import selectors

    b_event = AuditEvent.objects.get(workspace_id=world.b.pk)
    cursor = selectors.make_cursor(world.b, b_event)
    with pytest.raises(selectors.BadCursor):
        selectors.read_cursor(world.a, cursor)


def test_the_event_page_shows_before_and_after_and_its_chain_status(world, log):
    from audit.tasks import verify_audit_chains

    verify_audit_chains()
    response = login_client(world.owner_a).get(f"/w/alpha/audit/{log[0].pk}/")
    body = response.content.decode()
    assert response.status_code == 200
    assert "<td>role</td><td>member</td><td>manager</td>" in body
    assert "intact" in body and "first event of the chain" in body
    assert "Verified by the chain verification" in body
    assert "192.0.2.7" in body and "req-abcdef12" in body


def test_an_event_newer_than_the_last_verification_says_so(world, log):
    from audit.tasks import verify_audit_chains

    verify_audit_chains()
    later = record(world.a, "team.deleted")
    body = login_client(world.owner_a).get(f"/w/alpha/audit/{later.pk}/").content.decode()
    assert "Newer than the last verification run" in body
    assert f"links to event #{later.seq - 1}" in body


def test_a_member_without_the_permission_cannot_open_an_event(world, log):
    assert login_client(world.member_a).get(f"/w/alpha/audit/{log[0].pk}/").status_code == 403


def test_nobody_can_change_the_log_through_the_pages(world, log):
    client = login_client(world.owner_a)
    for url in ("/w/alpha/audit/", f"/w/alpha/audit/{log[0].pk}/"):
        client.post(url, {"action": "x"})
    assert AuditEvent.objects.get(pk=log[0].pk).action == "member.role_changed"
    assert not hasattr(__import__("workspaces.views_audit", fromlist=["x"]), "audit_event_delete")


def test_the_list_shows_before_and_after_as_a_field_table(world, log):
    body = login_client(world.owner_a).get("/w/alpha/audit/").content.decode()
    row = body.split(f'data-event-id="{log[0].pk}"')[1].split("</tr>\n")[0]
    assert '<table class="table changes">' in row
    assert "<td>role</td><td>member</td><td>manager</td>" in row


def test_filters_offer_known_actions_families_and_recent_actors(world, log):
    body = login_client(world.owner_a).get("/w/alpha/audit/").content.decode()
    actions = body.split('<datalist id="known-actions">')[1].split("</datalist>")[0]
    actors = body.split('<datalist id="known-actors">')[1].split("</datalist>")[0]
    assert '<option value="member.*">' in actions and '<option value="member.role_changed">' in actions
    assert '<option value="owner@alpha.test">' in actors and '<option value="manager@alpha.test">' in actors
    assert "owner@bravo.test" not in actors  # workspace B's actors are not suggested in A
    assert 'list="known-actions"' in body and "An action (member.role_changed) or a family (member.*)." in body


def test_an_empty_result_says_whether_the_filters_are_the_reason(world, log):
    from django.template.loader import render_to_string

    filtered = login_client(world.owner_a).get("/w/alpha/audit/?action=sso.*").content.decode()
    assert "No events match these filters." in filtered and "Clear the filters" in filtered
    unfiltered = render_to_string("audit/events_table.html", {"events": [], "workspace": world.a, "filtered": ""})
    assert "No events yet." in unfiltered and "match these filters" not in unfiltered


def test_the_event_page_shows_a_missing_side_as_a_dash(world):
    event = record(world.a, "member.profile_changed", actor=as_actor(world.owner_a),
                   details={"before": {}, "after": {"display_name": "Ada"}})
    body = login_client(world.owner_a).get(f"/w/alpha/audit/{event.pk}/").content.decode()
    assert "<td>display_name</td><td>—</td><td>Ada</td>" in body
