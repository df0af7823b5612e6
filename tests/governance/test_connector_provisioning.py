"""examples/connector_sync.py provisioning against the live server: grant, revoke, an idempotent retry after a
lost answer, and a re-sync that shows the change."""

from __future__ import annotations

import http.server
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from audit.models import AuditEvent
from tests.api.conftest import service_key
from tests.api.test_connector_example import run
from tests.factories import TeamFactory
from workspaces.models import TeamMembership

pytestmark = pytest.mark.django_db(transaction=True)

SCOPES = ["grants:read", "members:read", "teams:read", "roles:write", "teams:write", "members:write"]


@pytest.fixture
def key(world) -> str:
    return service_key(world.a, SCOPES, name="governance")


def test_grant_then_revoke_each_twice_changes_once(world, live_server, key):
    team = TeamFactory(workspace=world.a, name="core")
    args = ("--workspace", "alpha", "--member", "member@alpha.test")
    assert run(live_server.url, *args, "--grant", f"team:{team.pk}", key=key).stdout.strip() == (
        f"GRANTED team:{team.pk} member@alpha.test")
    assert run(live_server.url, *args, "--grant", f"team:{team.pk}", key=key).stdout.strip() == (
        f"UNCHANGED (already held) team:{team.pk} member@alpha.test")
    assert TeamMembership.objects.filter(team=team, membership=world.member_a).count() == 1
    assert run(live_server.url, *args, "--revoke", f"team:{team.pk}", key=key).stdout.startswith("REVOKED")
    assert run(live_server.url, *args, "--revoke", f"team:{team.pk}", key=key).stdout.startswith("UNCHANGED (not held)")
    assert AuditEvent.objects.filter(workspace=world.a, action="team.member_added").count() == 1
    assert AuditEvent.objects.filter(workspace=world.a, action="team.member_removed").count() == 1


@pytest.fixture
def lossy_proxy(live_server) -> Iterator[str]:
    """A proxy in front of the server that forwards the first POST, lets it take effect, then answers 502 as if the
    answer had been lost on the way back."""
    state = {"dropped": 0}

    class Proxy(http.server.BaseHTTPRequestHandler):
        def _forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
            request = urllib.request.Request(live_server.url + self.path, data=body, headers=headers, method=self.command)
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    status, payload = response.status, response.read()
            except urllib.error.HTTPError as exc:
                status, payload = exc.code, exc.read()
            if self.command == "POST" and not state["dropped"]:
                state["dropped"] += 1
                status, payload = 502, b"<html>Bad gateway</html>"
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = _forward

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    assert state["dropped"] == 1


def test_a_grant_whose_answer_was_lost_is_retried_safely(world, lossy_proxy, key):
    done = run(lossy_proxy, "--workspace", "alpha", "--member", "member@alpha.test", "--grant", "role:manager", key=key)
    assert done.returncode == 0, done.stderr
    # The first attempt took effect; the retry found it held and changed nothing.
    assert done.stdout.strip() == "UNCHANGED (already held) role:manager member@alpha.test"
    world.member_a.refresh_from_db()
    assert world.member_a.role == "manager"
    assert AuditEvent.objects.filter(workspace=world.a, action="member.role_changed").count() == 1


def test_the_whole_cycle_sync_revoke_resync_shows_the_change(world, live_server, key):
    before = run(live_server.url, "--workspace", "alpha", "--grants", key=key)
    assert "GRANT role:manager member=manager@alpha.test source=manual" in before.stdout.splitlines()
    assert run(live_server.url, "--workspace", "alpha", "--member", "manager@alpha.test", "--revoke", "role:manager",
               key=key).returncode == 0
    after = run(live_server.url, "--workspace", "alpha", "--grants", key=key).stdout.splitlines()
    assert "GRANT role:member member=manager@alpha.test source=manual" in after
    assert not any("role:manager" in line for line in after)
    roster = run(live_server.url, "--workspace", "alpha", key=key).stdout
    assert "MEMBER manager@alpha.test role=member status=active" in roster
    assert run(live_server.url, "--workspace", "alpha", "--deactivate", "manager@alpha.test",
               key=key).stdout.strip() == "DEACTIVATED manager@alpha.test"
    assert "MEMBER manager@alpha.test role=member status=disabled" in run(
        live_server.url, "--workspace", "alpha", key=key).stdout


def test_a_refusal_exits_1_with_the_apis_reason(world, live_server):
    read_only = service_key(world.a, ["grants:read", "members:read"])
    done = run(live_server.url, "--workspace", "alpha", "--member", "member@alpha.test", "--grant", "role:manager",
               key=read_only)
    assert done.returncode == 1
    assert "403" in done.stderr and "roles:write" in done.stderr
