"""The provisioning request log: what is kept (status, SCIM error, names of touched attributes) and what never is."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from django.http import HttpResponse, JsonResponse
from django.test import RequestFactory, override_settings
from django.utils import timezone

from scim.auth import authenticate_scim_request
from scim.models import ScimRequestLog
from scim.request_log import log_scim_request, prune_request_log, redact
from scim.services import scim_credential_create

from .credential_helpers import enable_scim, owner_actor


@pytest.fixture
def token_a(world):
    enable_scim(world.a)
    return scim_credential_create(workspace=world.a, kind="bearer", name="Okta", actor=owner_actor(world.owner_a))[1]


def _scim_error(status: int, detail: str, scim_type: str = "") -> JsonResponse:
    body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": str(status), "detail": detail}
    if scim_type:
        body["scimType"] = scim_type
    return JsonResponse(body, status=status, content_type="application/scim+json")


def test_an_authenticated_request_is_logged_with_its_credential_and_duration(world, token_a):
    request = RequestFactory().get("/scim/v2/alpha/Users", {"filter": 'userName eq "a@x.test"'},
                                   HTTP_AUTHORIZATION=f"Bearer {token_a}")
    request.request_id = "req-12345678"
    request.scim_started_at = time.monotonic() - 0.05
    principal = authenticate_scim_request(request, "alpha")
    entry = log_scim_request(request, "alpha", principal, HttpResponse(status=200))
    assert entry.workspace == world.a and entry.credential == principal.credential
    assert entry.auth_method == "scim_bearer" and entry.status == 200 and entry.method == "GET"
    assert entry.path.startswith("/scim/v2/alpha/Users?filter=")
    assert entry.request_id == "req-12345678" and entry.duration_ms >= 50


def test_a_failed_authentication_is_logged_for_the_workspace_without_a_credential(world):
    request = RequestFactory().get("/scim/v2/alpha/Users", HTTP_AUTHORIZATION="Bearer gs_abc_wrongsecret")
    entry = log_scim_request(request, "alpha", None, _scim_error(401, "Invalid, expired or revoked credentials."))
    assert entry.workspace == world.a and entry.credential is None and entry.status == 401
    assert entry.error_detail == "Invalid, expired or revoked credentials."


def test_nothing_is_logged_for_an_unknown_workspace(world):
    request = RequestFactory().get("/scim/v2/nope/Users")
    assert log_scim_request(request, "nope", None, _scim_error(401, "x")) is None
    assert not ScimRequestLog.objects.exists()


def test_scim_error_detail_and_type_are_kept(world, token_a):
    request = RequestFactory().post("/scim/v2/alpha/Users", data=json.dumps({"userName": "dup@x.test"}),
                                    content_type="application/scim+json")
    entry = log_scim_request(request, "alpha", None, _scim_error(409, "userName is already taken", "uniqueness"))
    assert entry.scim_type == "uniqueness" and entry.error_detail == "userName is already taken"


def test_authorization_header_password_and_attribute_values_are_never_stored(world, token_a):
    body = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "jane@x.test",
            "password": "Hunter2-very-secret", "name": {"givenName": "Jane"}}
    request = RequestFactory().post("/scim/v2/alpha/Users?access_token=leaky-token-value", data=json.dumps(body),
                                    content_type="application/scim+json", HTTP_AUTHORIZATION=f"Bearer {token_a}")
    principal = authenticate_scim_request(request, "alpha")
    entry = log_scim_request(request, "alpha", principal, HttpResponse(status=201))
    stored = json.dumps(list(ScimRequestLog.objects.filter(pk=entry.pk).values())[0], default=str)
    for secret in (token_a, "Hunter2-very-secret", "leaky-token-value", "jane@x.test", "Jane"):
        assert secret not in stored
    assert entry.summary == "attributes: name, userName"
    assert "access_token=[redacted]" in entry.path


def test_patch_operations_are_summarised_by_name_and_path_only(world):
    body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [
        {"op": "replace", "value": {"active": False}},
        {"op": "Add", "path": "members", "value": [{"value": "42"}]},
    ]}
    request = RequestFactory().patch("/scim/v2/alpha/Groups/7", data=json.dumps(body), content_type="application/scim+json")
    entry = log_scim_request(request, "alpha", None, HttpResponse(status=204))
    assert entry.summary == "replace active; Add members"


def test_a_secret_quoted_in_an_error_detail_is_redacted(world):
    request = RequestFactory().get("/scim/v2/alpha/Users")
    entry = log_scim_request(request, "alpha", None, _scim_error(400, "bad header Bearer gs_abcdef_supersecretvalue"))
    assert "supersecretvalue" not in entry.error_detail and "[redacted]" in entry.error_detail


def test_redact_removes_tokens_and_basic_credentials():
    text = redact("Authorization: Basic dXNlcjpwYXNz and gs_0123abcd_xyz and password=pw1&x=1")
    assert "dXNlcjpwYXNz" not in text and "gs_0123abcd_xyz" not in text and "pw1" not in text and "x=1" in text


def test_logging_never_raises_even_for_a_streaming_response(world):
    from django.http import StreamingHttpResponse

    request = RequestFactory().get("/scim/v2/alpha/Users")
    entry = log_scim_request(request, "alpha", None, StreamingHttpResponse(iter([b"x"]), status=500))
    assert entry.status == 500 and entry.error_detail == ""


@override_settings(SCIM_REQUEST_LOG_KEEP=5)
def test_pruning_keeps_only_the_newest_rows_of_the_workspace(world):
    for n in range(8):
        ScimRequestLog.objects.create(workspace=world.a, method="GET", path=f"/a/{n}", status=200, auth_method="bearer")
    for n in range(3):
        ScimRequestLog.objects.create(workspace=world.b, method="GET", path=f"/b/{n}", status=200, auth_method="bearer")
    assert prune_request_log(world.a.pk) == 3
    assert list(ScimRequestLog.objects.filter(workspace=world.a).values_list("path", flat=True)) == [
        "/a/7", "/a/6", "/a/5", "/a/4", "/a/3"]
    assert ScimRequestLog.objects.filter(workspace=world.b).count() == 3


@override_settings(SCIM_REQUEST_LOG_MAX_AGE_DAYS=30)
def test_pruning_drops_rows_older_than_the_maximum_age(world):
    ScimRequestLog.objects.create(workspace=world.a, method="GET", path="/old", status=200,
                                  created_at=timezone.now() - timedelta(days=31))
    ScimRequestLog.objects.create(workspace=world.a, method="GET", path="/new", status=200)
    prune_request_log(world.a.pk)
    assert list(ScimRequestLog.objects.filter(workspace=world.a).values_list("path", flat=True)) == ["/new"]


@override_settings(SCIM_REQUEST_LOG_KEEP=3, SCIM_REQUEST_LOG_UNAUTHENTICATED_KEEP=3)
def test_the_write_path_prunes_every_prune_every_th_row(world, monkeypatch):
    monkeypatch.setattr("scim.request_log.PRUNE_EVERY", 50)
    request = RequestFactory().get("/scim/v2/alpha/Users")
    for _ in range(60):
        log_scim_request(request, "alpha", None, HttpResponse(status=200))
    # At least one id in any run of 50 consecutive ids is a multiple of 50: a prune ran.
    assert ScimRequestLog.objects.filter(workspace=world.a).count() < 60


@override_settings(SCIM_REQUEST_LOG_KEEP=5, SCIM_REQUEST_LOG_UNAUTHENTICATED_KEEP=3)
def test_a_flood_of_unauthenticated_requests_never_pushes_the_idps_history_out(world, token_a, client, monkeypatch):
    monkeypatch.setattr("scim.request_log.PRUNE_EVERY", 5)
    for _ in range(4):
        assert client.get("/scim/v2/alpha/Users", HTTP_AUTHORIZATION=f"Bearer {token_a}").status_code == 200
    for n in range(60):  # junk from many addresses: 401s, then 429s once an address is throttled
        client.get("/scim/v2/alpha/Users", HTTP_AUTHORIZATION="Bearer gs_junk_x", REMOTE_ADDR=f"198.51.100.{n % 7}")
    rows = ScimRequestLog.objects.filter(workspace=world.a)
    assert rows.exclude(auth_method="").count() == 4  # every authenticated row is still there
    assert rows.filter(auth_method="").count() < 3 + 5  # junk kept to its own budget (plus rows since the last prune)
