"""Structured logs as an operator reads them: one JSON object per line, the request's id on its log lines and its
audit events, and no credential or SAML message in any line after a full SCIM, OAuth and SAML run."""

from __future__ import annotations

import base64
import io
import json
import logging
from collections.abc import Iterator

import pytest
from django.test import Client

from audit.context import RequestContext, reset_request_context, set_request_context
from audit.logs import REQUEST_ID_HEADER, JsonFormatter, RequestIdFilter, add_request_id_header, mask_secrets
from audit.models import AuditEvent
from scim.services import OAuthGrant, scim_credential_create, scim_oauth_client_create
from tests.saml.conftest import IDP_A, Sso, configure, post_acs, start_login
from tests.saml.idp import make_key
from tests.scim.credential_helpers import enable_scim, owner_actor


class Captured:
    def __init__(self, stream: io.StringIO) -> None:
        self.stream = stream

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def lines(self) -> list[dict]:
        return [json.loads(line) for line in self.text.splitlines() if line.strip()]


@pytest.fixture
def json_logs() -> Iterator[Captured]:
    """What the production handler writes: every logger's records, JSON formatted, request id filtered."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield Captured(stream)
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


class TestJsonLines:
    def test_each_record_is_one_json_object_with_its_fields(self, json_logs):
        token = set_request_context(RequestContext(request_id="req-0123456789"))
        try:
            logging.getLogger("gatehouse.test").warning("sink %s failed", "siem", extra={"attempt": 3})
        finally:
            reset_request_context(token)
        (line,) = [entry for entry in json_logs.lines() if entry["logger"] == "gatehouse.test"]
        assert line["level"] == "WARNING" and line["message"] == "sink siem failed"
        assert line["request_id"] == "req-0123456789" and line["attempt"] == 3
        assert line["time"].endswith("+00:00")

    def test_an_exception_is_part_of_its_line(self, json_logs):
        try:
            raise ValueError("broken")
        except ValueError:
            logging.getLogger("gatehouse.test").exception("failed")
        (line,) = [entry for entry in json_logs.lines() if entry["logger"] == "gatehouse.test"]
        assert "ValueError: broken" in line["exception"]
        assert len(json_logs.text.strip().splitlines()) == len(json_logs.lines())


class TestMasking:
    @pytest.mark.parametrize("raw, secret", [
        ("Authorization: Bearer gs_abc123_S3cretS3cretS3cret", "S3cretS3cretS3cret"),
        ("header Basic a2V5OnNlY3JldHNlY3JldA==", "a2V5OnNlY3JldHNlY3JldA=="),
        ("token gh_k1d2_abcdefghijklmnopqrstuvwxyz", "abcdefghijklmnopqrstuvwxyz"),
        ("issued {'access_token': 'T0k3nT0k3n', 'expires_in': 3600}", "T0k3nT0k3n"),
        ('{"refresh_token": "R3fr3sh", "scope": "scim:1"}', "R3fr3sh"),
        ("body grant_type=refresh_token&refresh_token=R3fr3shT0k3n&client_secret=Cl13ntS3cr3t", "R3fr3shT0k3n"),
        ("body grant_type=refresh_token&refresh_token=R3fr3shT0k3n&client_secret=Cl13ntS3cr3t", "Cl13ntS3cr3t"),
        ("form SAMLResponse=PHNhbWxwOlJlc3BvbnNl&RelayState=x", "PHNhbWxwOlJlc3BvbnNl"),
        ('<saml:Assertion ID="a1"><saml:NameID>ada@alpha.test</saml:NameID></saml:Assertion>', "ada@alpha.test"),
    ])
    def test_credentials_and_saml_messages_never_reach_a_line(self, raw, secret):
        assert secret not in mask_secrets(raw)

    def test_ordinary_text_is_left_alone(self):
        text = "member 42 deactivated by Okta; 3 sessions revoked (basic plan)"
        assert mask_secrets(text) == text


class TestRequestId:
    def test_a_request_s_log_lines_and_audit_events_carry_its_id(self, world, json_logs):
        client = Client(HTTP_X_REQUEST_ID="req-logs-0001")
        response = client.post("/login/", {"email": "member@alpha.test", "password": "wrong-password"})
        assert response["X-Request-ID"] == "req-logs-0001"
        assert AuditEvent.objects.filter(request_id="req-logs-0001").exists()
        # django.request logs the 404 after the middleware returned: the id still reaches its line.
        assert Client(HTTP_X_REQUEST_ID="req-logs-0002").get("/api/v1/nope").status_code == 404
        lines = [entry for entry in json_logs.lines() if entry["logger"] == "django.request"]
        assert [entry["request_id"] for entry in lines] == ["req-logs-0002"]

    def test_a_task_published_within_a_request_carries_its_id(self):
        headers: dict[str, str] = {}
        token = set_request_context(RequestContext(request_id="req-publish-01"))
        try:
            add_request_id_header(headers=headers)
        finally:
            reset_request_context(token)
        assert headers == {REQUEST_ID_HEADER: "req-publish-01"}
        outside: dict[str, str] = {}
        add_request_id_header(headers=outside)
        assert outside == {}


def test_no_credential_or_saml_message_in_the_logs_of_a_full_scim_oauth_and_saml_run(world, json_logs):
    key = make_key("idp-alpha")
    sso_a = Sso(world.a, configure(world.a, world.owner_a, IDP_A, key, email_domains=["alpha.test"]), IDP_A, key)
    enable_scim(world.a)
    actor = owner_actor(world.owner_a)
    _, bearer = scim_credential_create(workspace=world.a, kind="bearer", name="Okta", actor=actor)
    _, basic_secret = scim_credential_create(workspace=world.a, kind="basic", name="Okta B", actor=actor)
    oauth, oauth_secret = scim_oauth_client_create(
        workspace=world.a, name="Entra", actor=actor, grant=OAuthGrant.CLIENT_CREDENTIALS
    )
    scim = "/scim/v2/alpha/Users"
    user = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "new.hire@alpha.test",
            "name": {"givenName": "New", "familyName": "Hire"}, "emails": [{"value": "new.hire@alpha.test", "primary": True}],
            "active": True}
    web = Client()
    created = web.post(scim, user, content_type="application/scim+json", HTTP_AUTHORIZATION=f"Bearer {bearer}")
    assert created.status_code == 201
    basic = base64.b64encode(basic_secret.encode()).decode()  # shown once as "<key id>:<secret>"
    assert web.get(scim, HTTP_AUTHORIZATION=f"Basic {basic}").status_code == 200
    # Wrong secrets are logged as refusals: still never the secret presented.
    assert web.get(scim, HTTP_AUTHORIZATION=f"Bearer {bearer[:-4]}XXXX").status_code == 401
    oauth_basic = base64.b64encode(f"{oauth.key_id}:{oauth_secret}".encode()).decode()
    issued = web.post("/oauth/token/", {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=f"Basic {oauth_basic}")
    assert issued.status_code == 200
    access_token = issued.json()["access_token"]
    assert web.get(scim, HTTP_AUTHORIZATION=f"Bearer {access_token}").status_code == 200
    assert web.post("/oauth/token/", {"grant_type": "client_credentials", "client_id": oauth.key_id,
                                      "client_secret": oauth_secret + "x"}).status_code == 401
    browser = Client()
    rid = start_login(browser, "alpha")
    saml_response = sso_a.response(name_id="member@alpha.test", in_response_to=rid)
    assert post_acs(browser, "alpha", saml_response).status_code == 302
    # A replay is refused and logged as a refusal.
    assert post_acs(Client(), "alpha", saml_response).status_code in (400, 403)

    logged = json_logs.text
    assert logged, "the run logged nothing: the capture is not working"
    # The bearer's secret part as the product splits it (gs_<key id>_<secret>; the secret may hold "_" itself).
    for secret in (bearer, bearer.split("_", 2)[-1], basic_secret, basic, oauth_secret, oauth_basic, access_token):
        assert secret not in logged
    assert saml_response[:60] not in logged
    assert "SignatureValue" not in logged and "<saml" not in logged.lower()
