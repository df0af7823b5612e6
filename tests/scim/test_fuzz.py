"""Arbitrary JSON thrown at SCIM (Hypothesis): every answer is a 2xx or a 4xx with the SCIM error schema, never
a 5xx, whatever the body, the PATCH operations or the filter. An identity provider's odd request gets a clear
error; it never breaks the server."""

from __future__ import annotations

import itertools
import json
from urllib.parse import quote

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import ScimClient, okta_user

_SEQ = itertools.count()
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                        HealthCheck.too_slow])

text = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=300),
    st.sampled_from(["", " ", "\x00", "a\x00b", "\u202e", "x" * 300, "a@b.c", "nope", "@", "1" * 5000]),
)
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(min_value=10**20, max_value=10**40),
                    st.floats(allow_nan=False), text)
json_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(text, inner, max_size=4)), max_leaves=12)
attribute_names = st.one_of(text, st.sampled_from([
    "userName", "name", "emails", "active", "externalId", "displayName", "title", "groups", "roles", "role",
    "addresses", "phoneNumbers", "password", "schemas", "id", "meta", "costCenter", ENTERPRISE,
    "urn:ietf:params:scim:schemas:extension:gatehouse:2.0:User", "urn:example:custom:2.0:User",
]))


def _assert_answered(response) -> None:
    assert response.status_code < 500, (response.status_code, response.content[:500])
    if response.status_code >= 400:
        body = json.loads(response.content)
        assert ERROR_SCHEMA in body.get("schemas", []), body


@FUZZ
@given(body=st.one_of(json_values, st.dictionaries(attribute_names, json_values, max_size=8)))
def test_any_post_body_is_answered(scim_a: ScimClient, body):
    _assert_answered(scim_a.post("Users", body))


@FUZZ
@given(changes=st.dictionaries(attribute_names, json_values, max_size=6))
def test_an_okta_user_with_any_attribute_changed_is_answered(scim_a: ScimClient, changes):
    body = {**okta_user("fuzz@alpha.test"), **changes}
    _assert_answered(scim_a.post("Users", body))


@FUZZ
@given(operations=st.lists(st.fixed_dictionaries(
    {"op": st.one_of(st.sampled_from(["add", "replace", "remove", "Replace", "Add"]), text)},
    optional={"path": st.one_of(attribute_names, st.sampled_from([
        "name.givenName", 'emails[type eq "work"].value', "emails[primary eq true]", "members",
        f"{ENTERPRISE}:department", 'members[value eq "1"]', "active"])), "value": json_values},
), max_size=4), raw_ops=json_values)
def test_any_patch_is_answered(scim_a: ScimClient, operations, raw_ops):
    n = next(_SEQ)  # a user of its own per example: an earlier example may have renamed or removed its user
    created = scim_a.post("Users", okta_user(f"patched{n}@alpha.test", external_id=f"00upatch{n}"))
    assert created.status_code == 201, created.content
    uid = json.loads(created.content)["id"]
    body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": operations}
    _assert_answered(scim_a.patch(f"Users/{uid}", body))
    _assert_answered(scim_a.patch(f"Users/{uid}", {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                                                  "Operations": raw_ops}))
    _assert_answered(scim_a.put(f"Users/{uid}", {**okta_user(f"patched{n}@alpha.test"), **(
        raw_ops if isinstance(raw_ops, dict) else {})}))


@FUZZ
@given(filter_=st.one_of(text, st.builds(lambda a, op, v: f"{a} {op} {v}", attribute_names,
                                            st.sampled_from(["eq", "co", "sw", "pr", "gt", "ne", "xx"]),
                                            st.one_of(text, st.integers().map(str), st.just('"a@b"')))),
       start=st.one_of(st.integers(), text), count=st.one_of(st.integers(), text), resource=st.sampled_from(["Users", "Groups"]))
def test_any_list_query_is_answered(scim_a: ScimClient, filter_, start, count, resource):
    query = f"filter={quote(str(filter_))}&startIndex={quote(str(start))}&count={quote(str(count))}"
    _assert_answered(scim_a.get(f"{resource}?{query}"))


@FUZZ
@given(resource_id=st.one_of(text, st.integers(), st.integers(min_value=2**63 - 5, max_value=2**70)))
def test_any_resource_id_is_answered(scim_a: ScimClient, resource_id):
    path = quote(str(resource_id), safe="")
    for method in ("GET", "DELETE"):
        _assert_answered(scim_a.call(method, f"Users/{path}"))
    _assert_answered(scim_a.call("GET", f"Groups/{path}"))


class TestValuesThatMustBeRefused:
    """Found by the fuzzing above or by hand; each answered 500 or was accepted."""

    def test_a_nul_anywhere_in_the_body_is_400(self, scim_a: ScimClient):
        for body in ({**okta_user("nul@alpha.test"), "displayName": "a\x00b"},
                     {**okta_user("nul@alpha.test"), "urn:example:custom:2.0:User": {"x\x00": 1}}):
            response = scim_a.post("Users", body)
            assert response.status_code == 400 and "NUL" in json.loads(response.content)["detail"]

    def test_a_nul_in_a_filter_or_an_id_is_answered_not_stored(self, scim_a: ScimClient):
        response = scim_a.get("Users?filter=" + quote('userName eq "a\x00b"'))
        assert response.status_code == 400 and json.loads(response.content)["scimType"] == "invalidFilter"
        assert scim_a.get("Users/1%00").status_code == 404

    def test_control_characters_in_a_used_attribute_are_400(self, scim_a: ScimClient):
        response = scim_a.post("Users", {**okta_user("ctl@alpha.test"), "displayName": "Bell\x07"})
        assert response.status_code == 400 and json.loads(response.content)["scimType"] == "invalidValue"

    def test_a_login_email_that_is_no_address_is_400(self, scim_a: ScimClient):
        body = okta_user("someone@alpha.test")
        body["emails"] = [{"value": "nope", "primary": True}]
        response = scim_a.post("Users", body)
        assert response.status_code == 400 and "is not an email address" in json.loads(response.content)["detail"]
        for not_an_address in ("a" * 60 + "@" + ("b" * 60 + ".") * 4 + "test", "x@" + "a" * 64 + ".test", "x@y@z.test"):
            body["emails"] = [{"value": not_an_address, "primary": True}]
            assert scim_a.post("Users", body).status_code == 400, not_an_address

    def test_a_number_too_long_to_read_is_400(self, scim_a: ScimClient):
        raw = b'{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "n@alpha.test", "x": ' + b"1" * 5000 + b"}"
        response = scim_a.call("POST", "Users", raw=raw)
        assert response.status_code == 400 and json.loads(response.content)["scimType"] == "invalidValue"

    def test_a_url_no_scim_route_matches_answers_a_scim_404(self, scim_a: ScimClient):
        response = scim_a.get("Users/a%0Ab")
        assert response.status_code == 404 and ERROR_SCHEMA in json.loads(response.content)["schemas"]
