"""What each audit read returns, exactly: the filters an auditor types, the pages they walk, the shape the API,
the exports and the SIEM sinks share. Called directly (the pages and the API add their own checks on top)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from datetime import timezone as dt_timezone

import pytest
from django import forms
from django.db import transaction
from django.utils import timezone

from audit import selectors
from audit.context import RequestContext, reset_request_context, set_request_context
from audit.models import AuditVerification
from audit.record import Actor, record_event
from tests.audit.helpers import frozen_now, record
from tests.factories import WorkspaceFactory

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)
ADA = Actor(kind="user", id="7", label="ada@acme.test", auth_method="saml")
BOB = Actor(kind="user", id="8", label="bob@acme.test", auth_method="password")


def at(when: datetime, workspace, action: str = "test.happened", **kw):
    with frozen_now(when):
        return record(workspace, action, **kw)


def ids(events) -> list[int]:
    return [e.pk for e in events]


@pytest.fixture
def ws():
    return WorkspaceFactory(slug="acme")


# ----------------------------------------------------------------------------- the public shape


def test_an_event_has_one_public_shape(ws):
    event = at(T0.replace(microsecond=123456), ws, "member.role_changed", actor=ADA, target_type="member",
               target_id=42, target_label="carol@acme.test", details={"from": "member", "to": "manager"})
    event.ip, event.user_agent, event.request_id = "203.0.113.9", "curl/8", "req-1"
    assert selectors.event_as_dict(event) == {
        "id": event.pk,
        "seq": event.seq,
        "created_at": "2026-11-23T12:00:00.123456Z",
        "workspace_id": ws.pk,
        "action": "member.role_changed",
        "actor": {"kind": "user", "id": "7", "label": "ada@acme.test", "auth_method": "saml"},
        "target": {"type": "member", "id": "42", "label": "carol@acme.test"},
        "ip": "203.0.113.9",
        "user_agent": "curl/8",
        "request_id": "req-1",
        "details": {"from": "member", "to": "manager"},
        "prev_hash": event.prev_hash,
        "hash": event.hash,
    }
    assert len(event.hash) == 64


def test_a_time_in_another_zone_keeps_its_offset(ws):
    event = at(T0, ws)
    event.created_at = T0.astimezone(dt_timezone(timedelta(hours=2)))
    assert selectors.event_as_dict(event)["created_at"] == "2026-11-23T14:00:00+02:00"


# ----------------------------------------------------------------------------- dates an auditor types


@pytest.mark.parametrize(("typed", "start", "end"), [
    ("2026-11-23", T0.replace(hour=0), T0.replace(hour=0) + timedelta(days=1)),  # "to" a day includes it
    (" 2026-11-23 ", T0.replace(hour=0), T0.replace(hour=0) + timedelta(days=1)),
    ("2026-11-23T14:00:00Z", T0.replace(hour=14), T0.replace(hour=14)),
    ("2026-11-23T14:00:00", T0.replace(hour=14), T0.replace(hour=14)),  # naive is UTC
    ("2026-11-23 14:00", T0.replace(hour=14), T0.replace(hour=14)),
    ("2026-11-23T14:00:00+02:00", T0.replace(hour=12), T0.replace(hour=12)),
    ("20261123T14", T0.replace(hour=14), T0.replace(hour=14)),  # ISO 8601 basic format, 11 characters
])
def test_dates_and_times_are_read_as_an_auditor_means_them(typed, start, end):
    assert selectors.FlexibleDateTimeField().clean(typed) == start
    assert selectors.FlexibleDateTimeField(end_of_day=True).clean(typed) == end


def test_a_time_without_a_zone_is_utc():
    assert selectors.FlexibleDateTimeField().clean("2026-11-23T14:00:00").tzinfo == UTC
    assert selectors.FlexibleDateTimeField().clean("2026-11-23").tzinfo == UTC


@pytest.mark.parametrize("typed", ["yesterday", "2026-13-01", "2026-11-23T25:00:00Z", "23/11/2026", "2026-11-2x"])
def test_a_date_that_cannot_be_read_says_what_to_type(typed):
    with pytest.raises(forms.ValidationError) as error:
        selectors.FlexibleDateTimeField().clean(typed)
    assert error.value.messages == [
        "Use a date like 2026-11-23 or a date-time like 2026-11-23T14:00:00Z."]


def test_no_date_is_no_bound():
    assert selectors.FlexibleDateTimeField().clean("") is None
    assert selectors.FlexibleDateTimeField().clean("   ") is None
    assert selectors.FlexibleDateTimeField().clean(None) is None
    assert selectors.FlexibleDateTimeField().required is False


def test_the_filter_form_reads_url_names_and_keeps_what_was_typed():
    form = selectors.AuditFilterForm.from_params({
        "actor": "ada@acme.test", "action": "member.*", "target": "member:42", "auth_method": "saml",
        "ip": "203.0.113.9", "q": "role", "from": "2026-11-23", "to": "2026-11-24T08:00:00Z", "ignored": "x",
    })
    assert form.is_valid(), form.errors
    assert form.cleaned_data["date_from"] == T0.replace(hour=0)
    assert form.cleaned_data["date_to"] == T0.replace(day=24, hour=8)
    assert form.active_filters() == {
        "actor": "ada@acme.test", "action": "member.*", "target": "member:42", "auth_method": "saml",
        "ip": "203.0.113.9", "q": "role", "from": "2026-11-23", "to": "2026-11-24T08:00:00Z",
    }


def test_the_form_fields_carry_their_labels():
    fields = selectors.AuditFilterForm().fields
    assert (fields["date_from"].label, fields["date_to"].label, fields["ip"].label) == ("From", "To", "IP")


def test_form_field_names_are_read_too_and_kept_as_cleaned():
    form = selectors.AuditFilterForm.from_params({"date_from": "2026-11-23", "actor": "  ada@acme.test "})
    assert form.is_valid()
    assert form.cleaned_data["date_from"] == T0.replace(hour=0)
    assert form.active_filters() == {"from": "2026-11-23", "actor": "ada@acme.test"}


def test_empty_filters_are_no_filters():
    form = selectors.AuditFilterForm.from_params({"actor": "", "from": "", "date_to": "2026-11-23", "q": None})
    assert form.is_valid()
    assert form.data == {"date_to": "2026-11-23"}
    assert form.active_filters() == {"to": "2026-11-23"}


def test_a_filter_longer_than_its_column_is_refused():
    form = selectors.AuditFilterForm.from_params({"actor": "a" * 256, "action": "b" * 65, "q": "c" * 201,
                                                  "ip": "1" * 65, "auth_method": "m" * 33, "target": "t" * 256})
    assert not form.is_valid()
    assert set(form.errors) == {"actor", "action", "q", "ip", "auth_method", "target"}
    ok = selectors.AuditFilterForm.from_params({"actor": "a" * 255, "action": "b" * 64, "q": "c" * 200,
                                                "ip": "1" * 64, "auth_method": "m" * 32, "target": "t" * 255})
    assert ok.is_valid(), ok.errors


# ----------------------------------------------------------------------------- filters


@pytest.fixture
def log(ws):
    """A small log of workspace acme, oldest first."""
    e = {}
    e["login"] = at(T0, ws, "sso.login", actor=ADA)
    e["role"] = at(T0 + timedelta(hours=1), ws, "member.role_changed", actor=ADA, target_type="member", target_id=42,
                   target_label="carol@acme.test")
    e["removed"] = at(T0 + timedelta(hours=2), ws, "member.removed", actor=BOB, target_type="member", target_id=43,
                      target_label="dave@acme.test")
    e["members"] = at(T0 + timedelta(hours=3), ws, "members.exported", actor=Actor(kind="api_key", id="8",
                      label="key 8", auth_method="api_key"), target_type="team", target_id=42, target_label="8")
    e["system"] = at(T0 + timedelta(days=1), ws, "audit.verified", target_label="audit chain: ok")
    e["ip"] = at(T0 + timedelta(days=1, hours=1), ws, "sso.login_failed")
    return e


@pytest.fixture
def filtered(ws, log):
    """The names (in ``log``) of the events the filters select."""
    names = {event.pk: name for name, event in log.items()}

    def select(**f) -> set[str]:
        return {names[pk] for pk in ids(selectors.filtered_events(ws, f))}

    return select


def test_actor_is_a_label_or_an_id(filtered, log):
    assert filtered(actor="ada@acme.test") == {"login", "role"}
    assert filtered(actor=" bob@acme.test ") == {"removed"}
    assert filtered(actor="8") == {"removed", "members"}  # bob's id, and the key labelled by id 8
    assert filtered(actor="key 8") == {"members"}
    assert filtered(actor="ada") == set()  # a label is matched whole
    assert filtered(actor="") == set(log)


def test_a_numeric_actor_is_a_label_or_an_id_and_anything_else_a_label(ws):
    numbered = at(T0, ws, actor=Actor(kind="user", id="9", label="1234", auth_method="password"))
    by_id = at(T0, ws, actor=Actor(kind="user", id="1234", label="someone", auth_method="password"))
    client = at(T0, ws, actor=Actor(kind="scim_client", id="okta", label="Okta", auth_method="bearer"))
    assert set(ids(selectors.filtered_events(ws, {"actor": "1234"}))) == {numbered.pk, by_id.pk}
    assert ids(selectors.filtered_events(ws, {"actor": "okta"})) == []  # not a number: matched as a label only
    assert ids(selectors.filtered_events(ws, {"actor": "Okta"})) == [client.pk]


def test_action_is_one_action_or_a_family(filtered, log):
    assert filtered(action="member.removed") == {"removed"}
    assert filtered(action="member.*") == {"role", "removed"}
    assert filtered(action="member") == {"role", "removed"}  # not members.exported
    assert filtered(action="member.") == set()
    assert filtered(action="member..*") == {"role", "removed"}  # a doubled dot typed before the star
    assert filtered(action="sso.*") == {"login", "ip"}
    assert filtered(action=" sso.login ") == {"login"}
    assert filtered(action="sso.log") == set()


def test_target_is_type_and_id_or_a_label(filtered):
    assert filtered(target="member:42") == {"role"}
    assert filtered(target="team:42") == {"members"}
    assert filtered(target="dave@acme.test") == {"removed"}
    assert filtered(target="audit chain: ok") == {"system"}  # a space before the colon: a label
    assert filtered(target="8") == {"members"}
    assert filtered(target="member:") == set()
    assert filtered(target=":42") == set()


def test_a_target_id_may_hold_a_colon(ws):
    pulled = at(T0, ws, "package.pulled", target_type="package", target_id="libs:1.0", target_label="libs 1.0")
    at(T0, ws, "package.pulled", target_type="package", target_id="libs", target_label="libs")
    assert ids(selectors.filtered_events(ws, {"target": "package:libs:1.0"})) == [pulled.pk]


def test_method_ip_and_dates(filtered):
    assert filtered(auth_method=" password ") == {"removed"}
    assert filtered(auth_method="api_key") == {"members"}
    assert filtered(date_from=T0 + timedelta(hours=1)) == {"role", "removed", "members", "system", "ip"}
    assert filtered(date_to=T0 + timedelta(hours=1)) == {"login"}  # the end is exclusive
    assert filtered(date_from=T0 + timedelta(hours=1), date_to=T0 + timedelta(hours=3)) == {"role", "removed"}
    assert filtered(ip="203.0.113.9") == set()


def test_ip_is_matched_exactly(ws):
    event = at(T0, ws, "sso.login")
    other = at(T0, ws, "sso.login")
    token = set_request_context(RequestContext(ip="203.0.113.9", user_agent="ua", request_id="req-42"))
    try:
        tagged = at(T0 + timedelta(minutes=1), ws, "sso.login")
    finally:
        reset_request_context(token)
    assert ids(selectors.filtered_events(ws, {"ip": " 203.0.113.9 "})) == [tagged.pk]
    assert ids(selectors.filtered_events(ws, {"ip": "203.0.113"})) == []
    assert ids(selectors.filtered_events(ws, {"q": "203.0.113.9"})) == [tagged.pk]
    assert ids(selectors.filtered_events(ws, {"q": "req-42"})) == [tagged.pk]
    assert ids(selectors.filtered_events(ws, {"q": "req-4"})) == []
    assert set(ids(selectors.filtered_events(ws, {}))) == {event.pk, other.pk, tagged.pk}


def test_text_searches_names_and_matches_ids_whole(filtered, log):
    assert filtered(q="ROLE_changed") == {"role"}
    assert filtered(q="acme.test") == {"login", "role", "removed"}  # actor and target labels
    assert filtered(q="CAROL") == {"role"}
    assert filtered(q="43") == {"removed"}  # a target id, whole
    assert filtered(q="4") == set()
    assert filtered(q="  ") == set(log)


def test_filters_combine(filtered):
    assert filtered(actor="ada@acme.test", action="member.*") == {"role"}
    assert filtered(actor="ada@acme.test", q="login") == {"login"}


# ----------------------------------------------------------------------------- order, pages, limits


def test_newest_first_and_ties_by_id(ws):
    first = at(T0, ws)
    second = at(T0, ws)  # the same instant: the later id is newer
    older = at(T0 - timedelta(seconds=1), ws)
    assert ids(selectors.filtered_events(ws, {})) == [second.pk, first.pk, older.pk]
    assert ids(selectors.recent_events(ws)) == [second.pk, first.pk, older.pk]


def test_recent_events_limit_and_target(ws):
    events = [at(T0 + timedelta(seconds=i), ws, target_type="member", target_id=i % 2 + 1) for i in range(6)]
    assert ids(selectors.recent_events(ws, limit=2)) == [events[5].pk, events[4].pk]
    assert len(selectors.recent_events(ws)) == 6
    assert ids(selectors.recent_events(ws, target=("member", 2))) == [events[5].pk, events[3].pk, events[1].pk]
    assert ids(selectors.recent_events(ws, target=("member", "1"), limit=1)) == [events[4].pk]
    assert ids(selectors.recent_events(ws, target=("team", 2))) == []


def test_recent_events_default_to_fifty(ws):
    for i in range(51):
        at(T0 + timedelta(seconds=i), ws)
    assert len(selectors.recent_events(ws)) == 50


def test_latest_verification_is_the_newest_verdict(ws):
    assert selectors.latest_verification(ws) is None
    AuditVerification.objects.create(workspace=ws, at=T0, ok=False, reason="broken")
    newest = AuditVerification.objects.create(workspace=ws, at=T0 + timedelta(hours=1), ok=True)
    AuditVerification.objects.create(workspace=ws, at=T0 - timedelta(hours=1), ok=True)
    assert selectors.latest_verification(ws) == newest
    tie = AuditVerification.objects.create(workspace=ws, at=T0 + timedelta(hours=1), ok=False)
    assert selectors.latest_verification(ws) == tie


def test_event_for_workspace(ws):
    event = at(T0, ws)
    assert selectors.event_for_workspace(ws, event.pk) == event
    assert selectors.event_for_workspace(ws, event.pk + 1000) is None


def test_pages_walk_every_event_once_newest_first(ws):
    # Same-second ties and microsecond differences both sit on page edges.
    stamps = [T0, T0, T0, T0 + timedelta(microseconds=1), T0 + timedelta(microseconds=1), T0 + timedelta(seconds=1),
              T0 - timedelta(days=1)]
    events = [at(s, ws) for s in stamps]
    expected = ids(selectors.filtered_events(ws, {}))
    assert sorted(expected) == sorted(ids(events))
    for size in (1, 2, 3, 7):
        seen, cursor, pages = [], "", 0
        while True:
            page = selectors.events_page(ws, selectors.filtered_events(ws, {}), cursor=cursor, limit=size)
            assert len(page.events) <= size
            seen += ids(page.events)
            pages += 1
            cursor = page.next_cursor
            if not cursor:
                break
        assert seen == expected, size
        assert pages == -(-len(events) // size), size  # no empty last page


def test_a_page_has_a_next_link_only_when_more_follow(ws):
    for i in range(3):
        at(T0 + timedelta(seconds=i), ws)
    qs = selectors.filtered_events(ws, {})
    assert selectors.events_page(ws, qs, limit=3).next_cursor == ""
    page = selectors.events_page(ws, qs, limit=2)
    assert page.next_cursor
    assert selectors.read_cursor(ws, page.next_cursor) == (page.events[-1].created_at, page.events[-1].pk)
    assert selectors.events_page(ws, selectors.filtered_events(WorkspaceFactory(), {})) == selectors.Page([], "")


def test_page_size_is_clamped(ws):
    for i in range(3):
        at(T0 + timedelta(seconds=i), ws)
    qs = selectors.filtered_events(ws, {})
    assert len(selectors.events_page(ws, qs, limit=0).events) == 1
    assert len(selectors.events_page(ws, qs, limit=-5).events) == 1
    assert len(selectors.events_page(ws, qs).events) == 3
    assert selectors.PAGE_SIZE == 50 and selectors.MAX_PAGE_SIZE == 500


def test_page_size_is_at_most_500(ws):
    with frozen_now(T0):
        with transaction.atomic():
            for _ in range(502):
                record_event(actor=Actor.system("test"), action="test.happened", workspace=ws)
    qs = selectors.filtered_events(ws, {})
    assert len(selectors.events_page(ws, qs, limit=10_000).events) == 500
    assert len(selectors.events_page(ws, qs).events) == 50
    assert len(selectors.events_after_seq(ws, qs, after_seq=0, limit=10_000)) == 500


def test_a_cursor_is_bound_to_its_workspace_and_cannot_be_altered(ws):
    event = at(T0.replace(microsecond=5), ws)
    cursor = selectors.make_cursor(ws, event)
    assert selectors.read_cursor(ws, cursor) == (T0.replace(microsecond=5), event.pk)
    other = WorkspaceFactory()
    for bad, where in ((cursor, other), (cursor[:-1] + ("A" if cursor[-1] != "A" else "B"), ws), ("", ws),
                       ("garbage", ws)):
        with pytest.raises(selectors.BadCursor) as error:
            selectors.read_cursor(where, bad)
        assert str(error.value) == "This page link is invalid or expired. Start again from the first page."
    forged = selectors._signer(ws)  # validly signed, badly formed
    for value in ("not-a-time|1", f"{T0.isoformat()}|x", f"{T0.isoformat()}", 5, ["x"]):
        with pytest.raises(selectors.BadCursor):
            selectors.read_cursor(ws, forged.sign_object(value, compress=False))


def test_a_cursor_keeps_microseconds(ws):
    event = at(T0, ws)  # microsecond 0 still written out, so every cursor has one format
    value = selectors._signer(ws).unsign_object(selectors.make_cursor(ws, event))
    assert value == f"2026-11-23T12:00:00.000000+00:00|{event.pk}"


def test_events_after_seq_are_oldest_first_by_chain_position(ws):
    events = [at(T0 - timedelta(seconds=i), ws) for i in range(5)]  # later appends carry earlier clocks
    qs = selectors.filtered_events(ws, {})
    assert ids(selectors.events_after_seq(ws, qs, after_seq=0, limit=3)) == ids(events[:3])
    assert ids(selectors.events_after_seq(ws, qs, after_seq=events[1].seq, limit=10)) == ids(events[2:])
    assert ids(selectors.events_after_seq(ws, qs, after_seq=events[4].seq, limit=10)) == []
    assert ids(selectors.events_after_seq(ws, qs, after_seq=0, limit=0)) == ids(events[:1])
    assert timezone.is_aware(events[0].created_at)
