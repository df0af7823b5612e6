"""SIEM sinks: outbox in the event's transaction, ordered at-least-once delivery to a real loopback receiver."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db import connection, connections, transaction

from audit.delivery import SIGNATURE_HEADER, deliver_sink, due_sink_ids
from audit.exceptions import AuditSettingRefused
from audit.models import AuditEvent, AuditOutbox, AuditSink
from audit.services import audit_sink_create, audit_sink_delete, audit_sink_update
from tests.conftest import NEVER_CACHE, login_client

from .helpers import as_actor, frozen_now, record


class Receiver:
    """A SIEM on loopback: collects JSON Lines bodies; can be down (port closed) and come back on the same port."""

    def __init__(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.bodies: list[tuple[bytes, dict[str, str]]] = []
        self.server: ThreadingHTTPServer | None = None
        self.fail_with: int | None = None
        self.delay = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/ingest"

    def up(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if receiver.delay:
                    time.sleep(receiver.delay)
                if receiver.fail_with:
                    self.send_response(receiver.fail_with)
                    self.end_headers()
                    return
                receiver.bodies.append((body, dict(self.headers)))
                self.send_response(202)
                self.end_headers()

            def log_message(self, *args):
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def down(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def events(self) -> list[dict]:
        return [json.loads(line) for body, _ in self.bodies for line in body.decode().splitlines()]


@pytest.fixture
def receiver(outbound_to_loopback):
    """A receiver on this machine, which the test allows the outbound client to reach (plain http, 127.0.0.0/8)."""
    r = Receiver()
    yield r
    r.down()


def _sink(world, url: str):
    with transaction.atomic():
        sink, secret = audit_sink_create(workspace=world.a, name="SIEM", url=url, actor=as_actor(world.owner_a))
    return sink, secret


def test_receiver_down_for_a_while_then_up_gets_every_event_in_order_without_gaps(world, receiver, settings):
    settings.AUDIT_SINK_BATCH = 4
    sink, secret = _sink(world, receiver.url)  # the receiver is not listening yet: it is down
    for i in range(5):
        record(world.a, "member.role_changed", target_label=f"m{i}")
    first = deliver_sink(sink.pk)
    assert not first.ok and first.error == "could not deliver: Could not connect: connection failed."
    sink.refresh_from_db()
    assert sink.consecutive_failures == 1 and sink.next_attempt_at is not None
    assert deliver_sink(sink.pk).skipped  # backing off: no attempt before next_attempt_at
    for i in range(5, 9):
        record(world.a, "member.role_changed", target_label=f"m{i}")  # more events while it is down
    assert not deliver_sink(sink.pk, force=True).ok
    sink.refresh_from_db()
    assert sink.consecutive_failures == 2

    receiver.up()
    result = deliver_sink(sink.pk, force=True)
    assert result.ok and result.delivered == 10  # sink_created + 9
    seqs = [e["seq"] for e in receiver.events()]
    assert seqs == list(range(seqs[0], seqs[0] + 10))  # order kept, no gaps
    expected = list(AuditEvent.objects.filter(workspace_id=world.a.pk, seq__gte=seqs[0]).order_by("seq").values_list("pk", flat=True))
    assert [e["id"] for e in receiver.events()] == expected  # nothing lost; ids for de-duplication
    assert len(receiver.bodies) == 3  # batches of 4
    for body, headers in receiver.bodies:
        mac = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        assert headers[SIGNATURE_HEADER] == f"sha256={mac}"
    sink.refresh_from_db()
    assert sink.last_delivered_seq == seqs[-1] and sink.consecutive_failures == 0 and sink.last_error == ""
    assert not AuditOutbox.objects.filter(sink=sink).exists()


def test_a_receiver_error_keeps_the_batch_and_it_is_sent_again(world, receiver):
    receiver.up()
    receiver.fail_with = 503
    sink, _ = _sink(world, receiver.url)
    record(world.a, "member.created")
    result = deliver_sink(sink.pk)
    assert not result.ok and result.error == "could not deliver: the receiver answered HTTP 503"
    assert AuditOutbox.objects.filter(sink=sink).count() == 2
    receiver.fail_with = None
    assert deliver_sink(sink.pk, force=True).delivered == 2
    assert [e["action"] for e in receiver.events()] == ["audit.sink_created", "member.created"]


def test_backoff_doubles_with_each_failure_up_to_the_ceiling(settings):
    from audit.delivery import backoff_seconds

    settings.AUDIT_SINK_MAX_BACKOFF = 60
    assert [backoff_seconds(n) for n in (1, 2, 3, 4, 7, 20)] == [1, 2, 4, 8, 60, 60]


def test_the_outbox_row_is_written_in_the_events_transaction_and_rolls_back_with_it(world, receiver):
    sink, _ = _sink(world, receiver.url)
    before = AuditOutbox.objects.filter(sink=sink).count()
    with pytest.raises(RuntimeError), transaction.atomic():
        record(world.a, "member.created")
        assert AuditOutbox.objects.filter(sink=sink).count() == before + 1
        raise RuntimeError("the change failed")
    assert AuditOutbox.objects.filter(sink=sink).count() == before


def test_a_paused_sink_queues_nothing_and_events_of_other_workspaces_never_reach_it(world, receiver):
    sink, _ = _sink(world, receiver.url)
    record(world.b, "member.created")
    assert AuditOutbox.objects.filter(sink=sink).count() == 1  # only its own sink_created
    with transaction.atomic():
        audit_sink_update(sink=sink, is_active=False, actor=as_actor(world.owner_a))
    count = AuditOutbox.objects.filter(sink=sink).count()
    record(world.a, "member.created")
    assert AuditOutbox.objects.filter(sink=sink).count() == count


def test_due_sinks_are_those_with_queued_events_and_no_pending_backoff(world, receiver):
    sink, _ = _sink(world, receiver.url)
    assert due_sink_ids() == [sink.pk]
    deliver_sink(sink.pk)  # receiver down -> backoff
    assert due_sink_ids() == []


def test_sink_urls_must_be_https_and_not_internal(world):
    for url in (
        "http://siem.example.com/in", "ftp://siem.example.com/", "https://user:pw@siem.example.com/", "nonsense",
        "http://[::1]:9/in", "https://127.0.0.1:8000/admin", "https://localhost/in", "https://10.0.0.5/in",
        "https://169.254.169.254/latest/meta-data/", "https://[::ffff:127.0.0.1]/in",
    ):
        with pytest.raises(AuditSettingRefused), transaction.atomic():
            audit_sink_create(workspace=world.a, name="x", url=url, actor=as_actor(world.owner_a))
    assert not AuditSink.objects.exists()


def test_plain_http_to_an_allowed_network_is_a_development_setting(world, outbound_to_loopback):
    sink, _ = _sink(world, "http://[::1]:9/in")
    assert sink.url == "http://[::1]:9/in"


def test_only_owners_manage_sinks(world):
    # The right is checked where the request enters (the sinks page), not by audit, which knows no roles.
    for who in (world.manager_a, world.member_a):
        response = login_client(who).post("/w/alpha/audit/sinks/", {"action": "create", "name": "x", "url": "https://siem.example.com/"})
        assert response.status_code == 403
    assert not AuditSink.objects.exists()


def test_the_secret_is_stored_encrypted_not_in_clear(world):
    sink, secret = _sink(world, "https://siem.example.com/in")
    stored = AuditSink.objects.get(pk=sink.pk).secret_encrypted
    assert secret.startswith("whsec_") and secret not in stored


def test_owner_creates_a_sink_on_the_sinks_page_and_sees_its_secret_once(world):
    client = login_client(world.owner_a)
    response = client.post("/w/alpha/audit/sinks/", {"action": "create", "name": "Splunk", "url": "https://splunk.example.com/hec"})
    body = response.content.decode()
    assert response.status_code == 200 and "whsec_" in body
    assert response["Cache-Control"] == NEVER_CACHE
    assert "whsec_" not in client.get("/w/alpha/audit/sinks/").content.decode()
    assert AuditEvent.objects.filter(action="audit.sink_created", actor_label="owner@alpha.test").exists()


def test_owner_sees_delivery_status_and_lag_on_the_audit_page(world, receiver):
    sink, _ = _sink(world, receiver.url)
    record(world.a, "member.created")
    deliver_sink(sink.pk)
    body = login_client(world.owner_a).get("/w/alpha/audit/").content.decode()
    assert 'id="sink-status"' in body and "2 events" in body and "failing (1)" in body and "could not deliver: Could not connect: connection failed." in body


def test_managers_and_auditors_do_not_see_sinks(world):
    _sink(world, "https://siem.example.com/in")
    assert 'id="sink-status"' not in login_client(world.manager_a).get("/w/alpha/audit/").content.decode()
    assert login_client(world.manager_a).get("/w/alpha/audit/sinks/").status_code == 403


def test_owner_pauses_and_deletes_a_sink_and_both_are_audited(world):
    sink, _ = _sink(world, "https://siem.example.com/in")
    client = login_client(world.owner_a)
    assert client.post("/w/alpha/audit/sinks/", {"action": "pause", "sink": sink.pk}).status_code == 302
    assert client.post("/w/alpha/audit/sinks/", {"action": "delete", "sink": sink.pk, "confirmed": "yes"}).status_code == 302
    assert not AuditSink.objects.filter(pk=sink.pk).exists()
    assert AuditEvent.objects.filter(action__in=["audit.sink_updated", "audit.sink_deleted"]).count() == 2


def test_an_owner_of_another_workspace_cannot_touch_this_workspaces_sink(world):
    sink, _ = _sink(world, "https://siem.example.com/in")
    client = login_client(world.outsider_b)
    assert client.post("/w/bravo/audit/sinks/", {"action": "delete", "sink": sink.pk}).status_code == 404
    assert client.post("/w/alpha/audit/sinks/", {"action": "delete", "sink": sink.pk}).status_code == 404
    assert AuditSink.objects.filter(pk=sink.pk).exists()


def test_delete_via_service_records_what_was_still_undelivered(world):
    sink, _ = _sink(world, "https://siem.example.com/in")
    with transaction.atomic():
        audit_sink_delete(sink=sink, actor=as_actor(world.owner_a))
    assert AuditEvent.objects.get(action="audit.sink_deleted").details["undelivered"] == 1


@pytest.mark.django_db(transaction=True)
def test_a_slow_receiver_never_blocks_changes_in_the_workspace(world, receiver):
    """Delivery holds the sink row while it waits on the receiver; recording events must not wait for it."""
    if connection.vendor != "postgresql":
        pytest.skip(f"needs PostgreSQL: row locks and lock_timeout (this run uses {connection.vendor})")
    import time as _time

    receiver.delay = 2.0
    receiver.up()
    sink, _ = _sink(world, receiver.url)
    done = threading.Event()

    def deliver():
        try:
            deliver_sink(sink.pk)
        finally:
            connections.close_all()
            done.set()

    worker = threading.Thread(target=deliver)
    worker.start()
    _time.sleep(0.5)  # the worker now holds the sink row and waits on the receiver
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL lock_timeout = '300ms'")
        record(world.a, "member.created")  # would raise "lock timeout" with a plain FOR UPDATE
    assert not done.is_set()  # the delivery was still in flight
    worker.join(10)
    assert AuditOutbox.objects.filter(sink=sink).count() == 1  # the new event is queued for the next batch


def test_a_sink_with_events_waiting_over_a_minute_is_behind_not_ok(world, receiver):
    from datetime import timedelta

    from django.utils import timezone

    from audit.delivery import sink_statuses

    sink, _ = _sink(world, receiver.url)
    receiver.up()
    deliver_sink(sink.pk)  # the sink is ok: nothing waits
    assert [s.state for s in sink_statuses(world.a)] == ["ok"]
    record(world.a, "member.created")
    assert [s.state for s in sink_statuses(world.a)] == ["ok"]  # one event, just queued: not yet behind
    with frozen_now(timezone.now() + timedelta(seconds=61)):
        statuses = sink_statuses(world.a)
        assert [s.state for s in statuses] == ["behind"] and statuses[0].behind == 1
        body = login_client(world.owner_a).get("/w/alpha/audit/").content.decode()
    assert 'data-state="behind"' in body and "1 waiting, oldest" in body
