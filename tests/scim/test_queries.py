"""Filters, paging, sorting and attribute selection on Users and Groups."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from .conftest import okta_user, patch_body


@pytest.fixture
def people(scim_a):
    ids = {}
    for i, (user, given, family) in enumerate([
        ("Alice@Corp.test", "Alice", "Archer"), ("bob@corp.test", "Bob", "Baker"), ("carol@other.test", "Carol", "Cole"),
    ]):
        r = scim_a.post("Users", okta_user(user, given=given, family=family, external_id=f"ext-{i}"))
        assert r.status_code == 201
        ids[given] = r.json()["id"]
    scim_a.patch(f"Users/{ids['Carol']}", patch_body({"op": "replace", "value": {"active": False}}))
    return ids


def names(scim_a, text: str, resource: str = "Users") -> list[str]:
    sort = "userName" if resource == "Users" else "displayName"
    r = scim_a.get(f"{resource}?filter={quote(text)}&sortBy={sort}")
    assert r.status_code == 200, r.content
    key = "userName" if resource == "Users" else "displayName"
    return [u[key] for u in r.json()["Resources"]]


@pytest.mark.parametrize("text,expected", [
    ('userName eq "alice@corp.test"', ["Alice@Corp.test"]),
    ('userName ne "alice@corp.test" and externalId pr', ["bob@corp.test", "carol@other.test"]),
    ('userName co "CORP"', ["Alice@Corp.test", "bob@corp.test"]),
    ('userName sw "ali"', ["Alice@Corp.test"]),
    ('userName ew "other.test"', ["carol@other.test"]),
    ('userName gt "b" and userName lt "c"', ["bob@corp.test"]),
    ('userName ge "bob@corp.test" and userName le "bob@corp.test"', ["bob@corp.test"]),
    ('externalId eq "ext-1"', ["bob@corp.test"]),
    ('externalId eq "EXT-1"', []),
    ('emails.value eq "BOB@corp.test"', ["bob@corp.test"]),
    ('emails[type eq "work"].value eq "carol@other.test"', ["carol@other.test"]),
    ('emails[type eq "home"].value eq "carol@other.test"', []),
    ('name.givenName eq "alice" or name.familyName eq "Baker"', ["Alice@Corp.test", "bob@corp.test"]),
    ('displayName sw "Carol"', ["carol@other.test"]),
    ('active eq false', ["carol@other.test"]),
    ('externalId pr and not (active eq true)', ["carol@other.test"]),
    ('(userName sw "a" or userName sw "b") and active eq true', ["Alice@Corp.test", "bob@corp.test"]),
    ('meta.lastModified gt "2000-01-01T00:00:00Z" and userName sw "bob"', ["bob@corp.test"]),
    ('meta.lastModified lt "2000-01-01T00:00:00Z"', []),
    ('urn:ietf:params:scim:schemas:core:2.0:User:userName eq "bob@corp.test"', ["bob@corp.test"]),
])
def test_user_filters(scim_a, people, text, expected):
    assert names(scim_a, f'({text}) and externalId sw "ext-"') == expected


def test_group_filters_on_display_name_external_id_and_members(scim_a, people):
    scim_a.post("Groups", {"displayName": "Engineering", "externalId": "g-1", "members": [{"value": people["Alice"]}]})
    scim_a.post("Groups", {"displayName": "Sales", "externalId": "g-2"})
    assert names(scim_a, 'displayName eq "engineering"', "Groups") == ["Engineering"]
    assert names(scim_a, 'externalId eq "g-2"', "Groups") == ["Sales"]
    assert names(scim_a, f'members.value eq "{people["Alice"]}"', "Groups") == ["Engineering"]
    assert names(scim_a, 'displayName sw "S" or displayName sw "E"', "Groups") == ["Engineering", "Sales"]


def test_paging_reports_totals_and_clamps_count(scim_a, people, settings):
    settings.SCIM_MAX_RESULTS = 3
    r = scim_a.get("Users?startIndex=2&count=50").json()
    assert r["totalResults"] == 8 and r["itemsPerPage"] == 3 and r["startIndex"] == 2
    r = scim_a.get("Users?startIndex=0&count=2").json()
    assert r["startIndex"] == 1 and r["itemsPerPage"] == 2
    r = scim_a.get("Users?count=0").json()
    assert r["totalResults"] == 8 and r["Resources"] == []
    r = scim_a.get("Users?startIndex=100").json()
    assert r["totalResults"] == 8 and r["Resources"] == []
    spc = scim_a.get("ServiceProviderConfig").json()
    assert spc["filter"] == {"supported": True, "maxResults": 3}


def test_paging_with_a_bad_count_is_400(scim_a):
    r = scim_a.get("Users?count=lots")
    assert r.status_code == 400 and r.json()["scimType"] == "invalidValue"


def test_sorting_by_username_both_ways(scim_a, people):
    asc = [u["userName"] for u in scim_a.get('Users?filter=externalId sw "ext-"&sortBy=userName').json()["Resources"]]
    desc = [u["userName"] for u in scim_a.get(
        'Users?filter=externalId sw "ext-"&sortBy=userName&sortOrder=descending').json()["Resources"]]
    assert asc == ["Alice@Corp.test", "bob@corp.test", "carol@other.test"] and desc == asc[::-1]


def test_attributes_and_excluded_attributes(scim_a, people):
    doc = scim_a.get(f"Users/{people['Bob']}?attributes=userName,name.givenName").json()
    assert doc == {"schemas": doc["schemas"], "id": people["Bob"], "userName": "bob@corp.test", "name": {"givenName": "Bob"}}
    doc = scim_a.get(f"Users/{people['Bob']}?excludedAttributes=groups,emails,name.familyName").json()
    assert "groups" not in doc and "emails" not in doc and doc["name"] == {"givenName": "Bob"}


def test_discovery_documents(scim_a):
    spc = scim_a.get("ServiceProviderConfig").json()
    assert spc["patch"]["supported"] and spc["etag"]["supported"] and spc["sort"]["supported"]
    assert {s["type"] for s in spc["authenticationSchemes"]} == {"oauthbearertoken", "httpbasic"}
    types = scim_a.get("ResourceTypes").json()
    assert {t["id"] for t in types["Resources"]} == {"User", "Group"}
    assert scim_a.get("ResourceTypes/User").json()["schema"] == "urn:ietf:params:scim:schemas:core:2.0:User"
    schemas = scim_a.get("Schemas").json()
    ids = {s["id"] for s in schemas["Resources"]}
    assert "urn:ietf:params:scim:schemas:extension:gatehouse:2.0:User" in ids
    gh = scim_a.get("Schemas/urn:ietf:params:scim:schemas:extension:gatehouse:2.0:User").json()
    assert {a["name"] for a in gh["attributes"]} == {"role", "allowedEnvironments"}


def test_json_content_type_is_accepted(scim_a):
    r = scim_a.client.post(
        scim_a.base + "Users", data=okta_user("json@corp.test"), content_type="application/json",
        HTTP_AUTHORIZATION=scim_a.cred.header,
    )
    assert r.status_code == 201 and r["Content-Type"] == "application/scim+json"


def test_post_search_takes_a_search_request_body(scim_a, people):
    r = scim_a.post("Users/.search", {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "filter": 'userName sw "bob"', "attributes": ["userName"], "startIndex": 1, "count": 10,
    })
    assert r.status_code == 200
    assert r.json()["Resources"] == [{"schemas": r.json()["Resources"][0]["schemas"], "id": people["Bob"], "userName": "bob@corp.test"}]


def test_root_search_across_resource_types_is_501(scim_a):
    r = scim_a.post(".search", {"filter": 'userName eq "x"'})
    assert r.status_code == 501 and r.json()["status"] == "501"
