"""Connector API list parameters mean one thing each: an empty text filter is no filter (the schema allows
""), a parameter given twice or an empty number or boolean is a 400 naming it, never quietly ignored."""

from __future__ import annotations

import pytest

from .conftest import ApiClient, personal_key

MEMBERS = "/api/v1/workspaces/alpha/members/"
AUDIT = "/api/v1/workspaces/alpha/audit-events/"


@pytest.fixture
def owner_client(world):
    return ApiClient(personal_key(world.owner_a))


def test_an_empty_text_filter_lists_as_if_left_out(owner_client):
    everyone = owner_client.get(MEMBERS).json()["results"]
    assert owner_client.get(MEMBERS + "?email=&role=&visibility=").json()["results"] == everyone
    assert len(everyone) > 1


@pytest.mark.parametrize("query", ["?team=1&team=2", "?role=member&role=owner", "?page_size=1&page_size=2"])
def test_a_parameter_given_twice_is_refused_by_name(owner_client, query):
    response = owner_client.get(MEMBERS + query)
    name = query[1:].split("=")[0]
    assert response.status_code == 400
    assert response.json()["errors"] == {name: ["Give this parameter once."]}


@pytest.mark.parametrize("name", ["active", "team"])
def test_an_empty_boolean_or_id_is_refused_not_ignored(owner_client, name):
    response = owner_client.get(f"{MEMBERS}?{name}=")
    assert response.status_code == 400
    assert name in response.json()["errors"]


def test_active_left_out_lists_deactivated_members_too(owner_client, world):
    world.member_a.is_active = False
    world.member_a.save(update_fields=["is_active"])
    emails = {m["email"]: m["active"] for m in owner_client.get(MEMBERS).json()["results"]}
    assert emails["member@alpha.test"] is False and emails["owner@alpha.test"] is True
    only_inactive = owner_client.get(MEMBERS + "?active=false").json()["results"]
    assert [m["email"] for m in only_inactive] == ["member@alpha.test"]


@pytest.mark.parametrize("query", ["?after_seq=", "?limit=", "?action=a&action=b"])
def test_audit_events_refuse_empty_numbers_and_repeated_parameters(owner_client, query):
    response = owner_client.get(AUDIT + query)
    assert response.status_code == 400
    assert query[1:].split("=")[0] in response.json()["errors"]
