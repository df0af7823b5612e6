"""Access reviews over the connector API: start, decide, complete, export; scopes and workspaces kept apart."""

from __future__ import annotations

import csv
import io

import pytest

from tests.api.conftest import ApiClient, all_pages, personal_key, service_key
from tests.factories import TeamFactory
from workspaces.models import TeamMembership

pytestmark = pytest.mark.django_db


def url(tail: str = "", slug: str = "alpha") -> str:
    return f"/api/v1/workspaces/{slug}/{tail}"


def put(client: ApiClient, path: str, body: dict):
    return client.client.put(path, body, content_type="application/json", headers=client.headers)


def test_the_whole_review_over_the_api(world):
    team = TeamFactory(workspace=world.a, name="core")
    TeamMembership.objects.create(team=team, membership=world.member_a)
    client = ApiClient(service_key(world.a, ["reviews:write", "teams:write"]))
    started = client.post(url("reviews/"), {"name": "Q4 core", "scope": "team", "scope_id": team.pk})
    assert started.status_code == 201, started.content
    review = started.json()
    assert review["counts"]["items"] == 1 and review["status"] == "open"
    items = all_pages(client, url(f"reviews/{review['id']}/items/"))
    assert [(i["entitlement"], i["principal"]["label"]) for i in items] == [(f"team:{team.pk}", "member@alpha.test")]
    decided = put(client, url(f"reviews/{review['id']}/items/{items[0]['id']}/"), {"decision": "revoke",
                                                                                   "note": "moved teams"})
    assert decided.status_code == 200 and decided.json()["decision"] == "revoke"
    done = client.post(url(f"reviews/{review['id']}/complete/"), {})
    assert done.status_code == 200, done.content
    assert done.json()["counts"]["outcomes"]["revoked"] == 1 and done.json()["export_sha256"]
    assert not TeamMembership.objects.filter(team=team).exists()
    exported = client.get(url(f"reviews/{review['id']}/export/"))
    assert exported.json()["items"][0]["outcome"] == "revoked"
    rows = list(csv.DictReader(io.StringIO(client.get(url(f"reviews/{review['id']}/export/"),
                                                      format="csv").content.decode())))
    assert rows[0]["note"] == "moved teams" and rows[0]["outcome"] == "revoked"
    assert put(client, url(f"reviews/{review['id']}/items/{items[0]['id']}/"),
                 {"decision": "keep"}).status_code == 409


def test_completion_needs_the_scope_of_each_kind_it_revokes(world):
    client = ApiClient(service_key(world.a, ["reviews:write"]))
    review = client.post(url("reviews/"), {"name": "roles"}).json()
    for item in all_pages(client, url(f"reviews/{review['id']}/items/")):
        decision = "revoke" if item["principal"]["label"] == "member@alpha.test" else "keep"
        assert put(client, url(f"reviews/{review['id']}/items/{item['id']}/"), {"decision": decision}).status_code == 200
    response = client.post(url(f"reviews/{review['id']}/complete/"), {})
    assert response.status_code == 403 and "roles:write" in response.json()["detail"]
    world.member_a.refresh_from_db()
    assert world.member_a.role == "member"


def test_read_scope_reads_and_cannot_change(world):
    writer = ApiClient(service_key(world.a, ["reviews:write"]))
    review = writer.post(url("reviews/"), {"name": "Q4"}).json()
    reader = ApiClient(service_key(world.a, ["reviews:read"]))
    assert reader.get(url(f"reviews/{review['id']}/")).status_code == 200
    response = reader.post(url("reviews/"), {"name": "mine"})
    assert response.status_code == 403 and "reviews:write" in response.json()["detail"]
    assert ApiClient(service_key(world.a, ["grants:read"])).get(url("reviews/")).status_code == 403


def test_a_members_personal_key_is_refused_and_an_owners_works(world):
    assert ApiClient(personal_key(world.member_a)).get(url("reviews/")).status_code == 403
    assert ApiClient(personal_key(world.owner_a)).post(url("reviews/"), {"name": "Q4"}).status_code == 201


def test_another_workspaces_reviews_are_invisible(world):
    review = ApiClient(service_key(world.a, ["reviews:write"])).post(url("reviews/"), {"name": "Q4"}).json()
    other = ApiClient(service_key(world.b, ["reviews:write"]))
    assert other.get(url(f"reviews/{review['id']}/", slug="bravo")).status_code == 404
    assert other.get(url("reviews/", slug="bravo")).json()["results"] == []
    assert other.get(url("reviews/")).status_code == 401


@pytest.mark.parametrize("body", [{}, {"name": ""}, {"name": "x", "scope": "galaxy"}, {"name": "x", "scope": "team"}])
def test_bad_start_requests_are_400(world, body):
    response = ApiClient(service_key(world.a, ["reviews:write"])).post(url("reviews/"), body)
    assert response.status_code == 400, response.content
