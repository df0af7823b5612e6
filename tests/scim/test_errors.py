"""RFC 7644 §3.12 errors: the right status and scimType, never a 500, and nothing half-written."""

from __future__ import annotations

import json

import pytest

from audit.models import AuditEvent
from workspaces.models import Membership, Team

from .conftest import okta_user, patch_body

ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


def assert_error(r, status: int, scim_type: str | None = None) -> dict:
    assert r.status_code == status, r.content
    body = r.json()
    assert body["schemas"] == [ERROR] and body["status"] == str(status) and body["detail"]
    if scim_type:
        assert body["scimType"] == scim_type
    return body


def test_a_case_variant_username_is_409_uniqueness(scim_a):
    assert scim_a.post("Users", okta_user("Dup.User@corp.test", external_id="x1")).status_code == 201
    assert_error(scim_a.post("Users", okta_user("dup.user@CORP.test", external_id="x2")), 409, "uniqueness")
    assert Membership.objects.filter(scim_username__iexact="dup.user@corp.test").count() == 1


def test_renaming_a_user_onto_another_username_is_409(scim_a):
    a = scim_a.post("Users", okta_user("a@corp.test", external_id="1")).json()["id"]
    scim_a.post("Users", okta_user("b@corp.test", external_id="2"))
    r = scim_a.patch(f"Users/{a}", patch_body({"op": "replace", "path": "userName", "value": "B@corp.test"}))
    assert_error(r, 409, "uniqueness")


def test_a_retried_post_with_the_same_external_id_returns_the_existing_user(scim_a):
    first = scim_a.post("Users", okta_user("retry@corp.test", external_id="00uRETRY"))
    again = scim_a.post("Users", okta_user("retry@corp.test", external_id="00uRETRY"))
    assert first.status_code == 201 and again.status_code == 200
    assert first.json()["id"] == again.json()["id"]


def test_a_duplicate_group_display_name_is_409(scim_a):
    assert scim_a.post("Groups", {"displayName": "Eng"}).status_code == 201
    assert_error(scim_a.post("Groups", {"displayName": "ENG"}), 409, "uniqueness")


def test_malformed_json_is_400_invalid_syntax(scim_a):
    assert_error(scim_a.call("POST", "Users", raw=b'{"userName": '), 400, "invalidSyntax")


def test_a_json_array_body_is_400(scim_a):
    assert_error(scim_a.call("POST", "Users", raw=b"[1,2]"), 400, "invalidSyntax")


@pytest.mark.parametrize("field,value", [
    ("active", "maybe"), ("userName", 42), ("name", "Jane"), ("emails", "a@b.c"), ("displayName", ["x"]),
])
def test_wrong_types_are_400(scim_a, field, value):
    body = {**okta_user("types@corp.test"), field: value}
    assert_error(scim_a.post("Users", body), 400)


def test_an_unknown_role_is_400(scim_a):
    assert_error(scim_a.post("Users", {**okta_user("r@corp.test"), "role": "emperor"}), 400, "invalidValue")


def test_scim_cannot_grant_owner_by_default(world, scim_a):
    r = scim_a.post("Users", {**okta_user("o@corp.test"), "role": "owner"})
    assert_error(r, 403)
    assert not Membership.objects.filter(scim_username="o@corp.test").exists()


def test_scim_may_grant_owner_when_the_workspace_allows_it(world, scim_a):
    world.a.scim_may_grant_owner = True
    world.a.save()
    r = scim_a.post("Users", {**okta_user("o@corp.test"), "role": "owner"})
    assert r.status_code == 201 and Membership.objects.get(pk=r.json()["id"]).role == "owner"


def test_a_patch_that_fails_half_way_writes_nothing(scim_a):
    uid = scim_a.post("Users", okta_user("half@corp.test")).json()["id"]
    events = AuditEvent.objects.count()
    r = scim_a.patch(f"Users/{uid}", patch_body(
        {"op": "replace", "path": "name.givenName", "value": "Changed"},
        {"op": "replace", "path": "role", "value": "owner"},
    ))
    assert_error(r, 403)
    m = Membership.objects.get(pk=uid)
    assert m.given_name == "Test" and m.role == "member" and AuditEvent.objects.count() == events


def test_a_group_patch_with_one_unknown_member_adds_none(world, scim_a):
    gid = scim_a.post("Groups", {"displayName": "G"}).json()["id"]
    r = scim_a.patch(f"Groups/{gid}", patch_body({"op": "add", "path": "members", "value": [
        {"value": str(world.member_a.pk)}, {"value": "999999"},
    ]}))
    assert_error(r, 400, "invalidValue")
    assert Team.objects.get(pk=gid).members.count() == 0


@pytest.mark.parametrize("text", [
    'userName eq "a"; DROP TABLE workspaces_membership;--',
    'userName eq "unterminated',
    "(" * 300 + 'userName eq "a"' + ")" * 300,
    " or ".join(['userName eq "a"'] * 60),
    'userName eq "' + "x" * 3000 + '"',
    "userName zz \"a\"",
    "",
    'meta.lastModified gt "not-a-date"',
    'active eq "perhaps"',
])
def test_hostile_or_broken_filters_are_400_invalid_filter(scim_a, text):
    from urllib.parse import quote

    assert_error(scim_a.get(f"Users?filter={quote(text)}"), 400, "invalidFilter")


def test_a_filter_on_an_unmapped_attribute_is_400_not_an_empty_list(scim_a):
    assert_error(scim_a.get('Users?filter=nickName eq "x"'), 400, "invalidFilter")
    assert_error(scim_a.get('Users?filter=userName eq "x" and title eq "y"'), 400, "invalidFilter")
    assert_error(scim_a.get('Groups?filter=description eq "x"'), 400, "invalidFilter")


def test_an_oversize_body_is_413(scim_a, settings):
    settings.SCIM_MAX_BODY_BYTES = 1000
    body = {**okta_user("big@corp.test"), "title": "x" * 2000}
    assert_error(scim_a.post("Users", body), 413)


def test_a_stale_if_match_is_412_and_changes_nothing(scim_a):
    created = scim_a.post("Users", okta_user("etag@corp.test")).json()
    uid, version = created["id"], created["meta"]["version"]
    ok = scim_a.patch(f"Users/{uid}", patch_body({"op": "replace", "path": "title", "value": "One"}), if_match=version)
    assert ok.status_code == 200 and ok["ETag"] != version
    stale = scim_a.patch(f"Users/{uid}", patch_body({"op": "replace", "path": "title", "value": "Two"}), if_match=version)
    assert_error(stale, 412)
    assert scim_a.get(f"Users/{uid}").json()["title"] == "One"


@pytest.mark.parametrize("op", [
    {"op": "explode", "path": "title", "value": "x"},
    {"op": "remove"},
    {"op": "replace", "path": "emails[type eq \"work\"", "value": "x"},
    {"op": "replace", "value": "not-an-object"},
    {"op": "remove", "path": "userName"},
])
def test_bad_patch_operations_are_400(scim_a, op):
    uid = scim_a.post("Users", okta_user("ops@corp.test")).json()["id"]
    r = scim_a.patch(f"Users/{uid}", patch_body(op))
    assert r.status_code == 400, r.content
    assert r.json()["scimType"] in {"invalidSyntax", "noTarget", "invalidPath", "invalidValue", "mutability"}


def test_a_patch_without_operations_is_400(scim_a):
    uid = scim_a.post("Users", okta_user("noops@corp.test")).json()["id"]
    assert_error(scim_a.patch(f"Users/{uid}", {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"]}), 400, "invalidSyntax")


def test_unknown_ids_and_endpoints_are_404(scim_a):
    assert_error(scim_a.get("Users/999999"), 404)
    assert_error(scim_a.get("Users/not-a-number"), 404)
    assert_error(scim_a.get("Groups/999999"), 404)
    assert_error(scim_a.get("Bulk"), 404)


def test_scim_switched_off_is_403(world, scim_a):
    world.a.scim_enabled = False
    world.a.save()
    assert_error(scim_a.get("Users"), 403)


def test_errors_do_not_leak_database_text(scim_a):
    scim_a.post("Users", okta_user("leak@corp.test", external_id="1"))
    body = scim_a.post("Users", okta_user("LEAK@corp.test", external_id="2")).json()
    assert "IntegrityError" not in json.dumps(body) and "constraint" not in body["detail"].lower()


def test_an_auth_refusal_with_retry_after_keeps_the_header(scim_a, monkeypatch):
    from scim.auth import ScimAuthError
    from scim.protocol import router

    def refuse(request, slug):
        exc = ScimAuthError(429, "Too many failed attempts. Try again later.")
        exc.retry_after = 30
        raise exc

    monkeypatch.setattr(router, "authenticate_scim_request", refuse)
    r = scim_a.get("Users")
    assert_error(r, 429)
    assert r["Retry-After"] == "30"


def test_the_after_request_hook_sees_every_response_with_its_principal(scim_a, monkeypatch):
    from scim import hooks

    seen = []
    monkeypatch.setattr(hooks, "after_scim_request", lambda request, slug, principal, response: seen.append(
        (slug, principal.credential.name if principal else None, response.status_code)))
    scim_a.get("Users")
    scim_a.get("Users/999999")
    scim_a.cred = type(scim_a.cred)("bearer", "gs_nope_nope")
    scim_a.get("Users")
    assert seen == [("alpha", "Okta bearer", 200), ("alpha", "Okta bearer", 404), ("alpha", None, 401)]


def test_a_failing_hook_does_not_change_the_answer(scim_a, monkeypatch):
    from scim import hooks

    def boom(*args):
        raise RuntimeError("log store down")

    monkeypatch.setattr(hooks, "after_scim_request", boom)
    assert scim_a.get("Users").status_code == 200
