"""Okta's lookup before a create (``filter=userName eq "..."``) answers exactly as the general filter does."""

from __future__ import annotations

from urllib.parse import quote

from .conftest import okta_user


def _filter(scim, text: str, extra: str = "") -> dict:
    response = scim.get(f"Users?filter={quote(text)}{extra}")
    assert response.status_code == 200, response.content
    return response.json()


def test_username_lookup_is_case_insensitive_and_matches_the_general_filter(world, scim_a):
    created = scim_a.post("Users", okta_user("Jane.Doe@alpha.test")).json()
    fast = _filter(scim_a, 'userName eq "jane.doe@ALPHA.test"')
    general = _filter(scim_a, 'userName eq "jane.doe@ALPHA.test" and userName pr')
    assert fast == general
    assert fast["totalResults"] == 1 and fast["Resources"][0]["id"] == created["id"]


def test_username_lookup_honours_attributes(world, scim_a):
    scim_a.post("Users", okta_user("jane@alpha.test"))
    doc = _filter(scim_a, 'userName eq "jane@alpha.test"', "&attributes=userName")
    assert doc["totalResults"] == 1 and set(doc["Resources"][0]) == {"id", "schemas", "userName"}


def test_username_lookup_finds_nothing_for_an_unknown_name(world, scim_a):
    assert _filter(scim_a, 'userName eq "nobody@alpha.test"') == {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": 0,
        "itemsPerPage": 0,
        "startIndex": 1,
        "Resources": [],
    }


def test_username_lookup_does_not_see_a_member_the_directory_deleted(world, scim_a):
    created = scim_a.post("Users", okta_user("gone@alpha.test")).json()
    assert scim_a.delete(f"Users/{created['id']}").status_code == 204
    assert _filter(scim_a, 'userName eq "gone@alpha.test"')["totalResults"] == 0


def test_username_lookup_never_finds_another_workspaces_member(world, scim_a, scim_b):
    scim_b.post("Users", okta_user("bob@bravo.test"))
    assert _filter(scim_b, 'userName eq "bob@bravo.test"')["totalResults"] == 1
    assert _filter(scim_a, 'userName eq "bob@bravo.test"')["totalResults"] == 0
