"""Two web nodes behind haproxy, PgBouncer in transaction mode, Redis, two Celery workers and two beats: what holds
across nodes, and what a node's death or a rolling restart does to clients (scripts/cluster, docs/deploy.md)."""

from __future__ import annotations

import base64
import re
import threading
import time
import zlib
from urllib.parse import parse_qs, urlparse

import requests

from tests.saml.idp import build_response, idp_metadata, make_key

from .conftest import signed_in

SCIM_JSON = "application/scim+json"


def _scim(token: str) -> requests.Session:
    session = requests.Session()
    session.headers.update({"Authorization": f"Bearer {token}", "Content-Type": SCIM_JSON, "Accept": SCIM_JSON})
    return session


def _member_id(cluster, email: str) -> int:
    rows = cluster.sql("SELECT m.id FROM workspaces_membership m JOIN workspaces_user u ON u.id = m.user_id "
                       "JOIN workspaces_workspace w ON w.id = m.workspace_id WHERE w.slug = 'acme' AND u.email = %s",
                       (email,))
    return int(rows[0][0])


def _patch_active(active: bool) -> dict:
    return {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "value": {"active": active}}]}


def _wait(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_deactivation_through_node_a_is_refused_on_node_b_at_the_next_request(cluster):
    browser = signed_in(cluster.node(1), "private@acme.test")
    assert browser.get(f"{cluster.node(2)}/w/acme/", allow_redirects=False, timeout=30).status_code == 200
    scim = _scim(cluster.scim_token())
    member = _member_id(cluster, "private@acme.test")
    assert scim.patch(f"{cluster.node(1)}/scim/v2/acme/Users/{member}", json=_patch_active(False), timeout=30).status_code == 200
    refused = browser.get(f"{cluster.node(2)}/w/acme/", allow_redirects=False, timeout=30)
    assert refused.status_code in (302, 403, 404), refused.status_code  # the next request, on the other node
    assert browser.get(f"{cluster.node(1)}/w/acme/", allow_redirects=False, timeout=30).status_code != 200


def test_a_saml_assertion_replayed_on_the_other_node_is_refused(cluster, tmp_path):
    idp = "http://www.okta.com/exkCLUSTER"
    key = make_key("idp-cluster")
    metadata = tmp_path / "idp.xml"
    metadata.write_text(idp_metadata(idp, "https://idp.test/acme/sso", key))
    cluster.manage("sso_configure", "acme", "--metadata", str(metadata), "--email-domain", "acme.test")
    browser = requests.Session()
    start = browser.get(f"{cluster.node(1)}/saml/acme/login/", allow_redirects=False, timeout=30)
    assert start.status_code == 302
    saml_request = parse_qs(urlparse(start.headers["Location"]).query)["SAMLRequest"][0]
    request_xml = zlib.decompress(base64.b64decode(saml_request), -15).decode()
    request_id = re.search(r'ID="([^"]+)"', request_xml).group(1)
    response = build_response(
        sp_entity_id=f"{cluster.base}/saml/acme/metadata/", acs_url=f"{cluster.base}/saml/acme/acs/",
        idp_entity_id=idp, key=key, name_id="collab@acme.test", in_response_to=request_id,
    )
    accepted = browser.post(f"{cluster.node(1)}/saml/acme/acs/", data={"SAMLResponse": response},
                            allow_redirects=False, timeout=30)
    assert accepted.status_code == 302, accepted.text[:500]
    attacker = requests.Session()
    replayed = attacker.post(f"{cluster.node(2)}/saml/acme/acs/", data={"SAMLResponse": response},
                             allow_redirects=False, timeout=30)
    assert replayed.status_code != 302
    assert attacker.get(f"{cluster.node(2)}/w/acme/", allow_redirects=False, timeout=30).status_code != 200
    reasons = cluster.sql("SELECT details->>'reason' FROM audit_auditevent WHERE action = 'sso.login_failed' "
                          "ORDER BY id DESC LIMIT 1")
    assert reasons == [("replay",)]


def test_password_failures_count_across_nodes(cluster):
    page = requests.Session()
    for attempt in range(10):  # LOGIN_FAILURE_LIMIT, alternating nodes
        node = cluster.node(1 + attempt % 2)
        form = page.get(f"{node}/login/", timeout=30).text
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form).group(1)
        page.post(f"{node}/login/", data={"csrfmiddlewaretoken": token, "email": "manager@acme.test",
                                          "password": "wrong-password"}, headers={"Referer": f"{node}/login/"},
                  allow_redirects=False, timeout=30)
    form = page.get(f"{cluster.node(1)}/login/", timeout=30).text
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form).group(1)
    right = page.post(f"{cluster.node(1)}/login/", data={"csrfmiddlewaretoken": token, "email": "manager@acme.test",
                                                         "password": "gatehouse-demo"},
                      headers={"Referer": f"{cluster.node(1)}/login/"}, allow_redirects=False, timeout=30)
    assert right.status_code != 302  # ten failures on two nodes: the shared limit holds the right password too


def test_an_oauth_token_issued_by_one_node_works_on_the_other(cluster):
    out = cluster.shell(
        "from audit.record import Actor; from scim.services import OAuthGrant, scim_oauth_client_create; "
        "from workspaces.models import Workspace; "
        "c, s = scim_oauth_client_create(workspace=Workspace.objects.get(slug='acme'), name='Entra', "
        "actor=Actor.system('test'), grant=OAuthGrant.CLIENT_CREDENTIALS); print(c.key_id, s)"
    )
    client_id, secret = out.split()[-2:]
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    issued = requests.post(f"{cluster.node(1)}/oauth/token/", data={"grant_type": "client_credentials"},
                           headers={"Authorization": f"Basic {basic}"}, timeout=30)
    assert issued.status_code == 200, issued.text
    token = issued.json()["access_token"]
    assert _scim(token).get(f"{cluster.node(2)}/scim/v2/acme/Users?count=1", timeout=30).status_code == 200
    assert _scim(token + "x").get(f"{cluster.node(2)}/scim/v2/acme/Users?count=1", timeout=30).status_code == 401


def _create_users(cluster, scim, prefix: str, n: int) -> list[int]:
    ids = []
    for i in range(n):
        body = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": f"{prefix}{i}@acme.test",
                "name": {"givenName": "Load", "familyName": str(i)},
                "emails": [{"value": f"{prefix}{i}@acme.test", "primary": True}], "active": True}
        created = scim.post(f"{cluster.base}/scim/v2/acme/Users", json=body, timeout=30)
        assert created.status_code == 201, created.text
        ids.append(int(created.json()["id"]))
    return ids


class Load:
    """Readers through the load balancer (GET a user, GET a page of users) until stopped; every answer kept."""

    def __init__(self, cluster, scim, ids: list[int], threads: int = 4) -> None:
        self.cluster, self.scim, self.ids = cluster, scim, ids
        self.statuses: list[int] = []
        self.errors: list[str] = []
        self.broken: list[str] = []  # answers cut off by the killed node (each read again)
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(t,)) for t in range(threads)]

    def _run(self, t: int) -> None:
        session = requests.Session()
        session.headers.update(self.scim.headers)
        n = t
        while not self.stop.is_set():
            url = (f"{self.cluster.base}/scim/v2/acme/Users/{self.ids[n % len(self.ids)]}" if n % 3
                   else f"{self.cluster.base}/scim/v2/acme/Users?startIndex=1&count=20")
            try:
                self.statuses.append(session.get(url, timeout=30).status_code)
            except (requests.exceptions.ChunkedEncodingError, requests.ConnectionError) as exc:
                # The node died while sending this answer: no proxy can finish a response another process began.
                # A client reads again (GET is safe to repeat); the answer must then come whole from a live node.
                self.broken.append(repr(exc))
                try:
                    self.statuses.append(session.get(url, timeout=30).status_code)
                except requests.RequestException as again:
                    self.errors.append(repr(again))
            except requests.RequestException as exc:
                self.errors.append(repr(exc))
            n += 1

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join()


def test_killing_a_web_node_mid_load_loses_no_accepted_request_and_no_deprovisioning_job(cluster):
    scim = _scim(cluster.scim_token())
    readers = _create_users(cluster, scim, "reader", 10)
    leavers = _create_users(cluster, scim, "leaver", 40)
    answered: dict[int, int] = {}
    with Load(cluster, scim, readers) as load:
        time.sleep(0.5)
        for n, member in enumerate(leavers):
            if n == 10:
                cluster.module.stop(cluster.state["pids"]["node1"], sig=9)  # SIGKILL: no goodbye
            for _attempt in range(5):  # what an IdP does with an answer it did not get: send it again
                try:
                    status = scim.patch(f"{cluster.base}/scim/v2/acme/Users/{member}", json=_patch_active(False),
                                        timeout=30).status_code
                except requests.RequestException:
                    status = 0
                if status == 200:
                    break
            answered[member] = status
        time.sleep(1)
    assert load.errors == [] and set(load.statuses) == {200}, (load.errors[:3], sorted(set(load.statuses)))
    # At most the answers in flight on the killed node (one per reader thread) were cut off; each was read again.
    assert len(load.broken) <= len(load.threads), load.broken
    assert len(load.statuses) > 50
    assert set(answered.values()) == {200}
    inactive = cluster.sql("SELECT count(*) FROM workspaces_membership WHERE id = ANY(%s) AND NOT is_active",
                           (leavers,))
    assert inactive == [(40,)]
    _wait(lambda: cluster.sql("SELECT count(*) FROM workspaces_deprovisionjob WHERE membership_id = ANY(%s) "
                              "AND status = 'done'", (leavers,)) == [(40,)], 90, "every revocation job to finish")
    # Back in service for the next test.
    cluster.module.start_node(cluster.state, 1)
    _wait(lambda: cluster.module.server_stat(1)["status"].startswith("UP"), 30, "haproxy to see node1 up")


def test_a_rolling_restart_of_both_nodes_under_scim_load_answers_no_5xx(cluster):
    scim = _scim(cluster.scim_token())
    ids = _create_users(cluster, scim, "rolling", 10)
    writes: list[int] = []
    stop = threading.Event()

    def writer() -> None:
        session = requests.Session()
        session.headers.update(scim.headers)
        n = 0
        while not stop.is_set():
            body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "replace", "path": "title", "value": f"Title {n}"}]}
            writes.append(session.patch(f"{cluster.base}/scim/v2/acme/Users/{ids[n % len(ids)]}", json=body,
                                        timeout=30).status_code)
            n += 1

    thread = threading.Thread(target=writer)
    with Load(cluster, scim, ids) as load:
        thread.start()
        time.sleep(0.5)
        for n in (1, 2):
            cluster.module.restart_node(cluster.state, n)
        time.sleep(0.5)
        stop.set()
        thread.join()
    assert load.errors == [] and set(load.statuses) == {200}, (load.errors[:3], sorted(set(load.statuses)))
    assert writes and set(writes) == {200}, sorted(set(writes))
