"""/w/<slug>/settings/provisioning/requests/: the whole provisioning log, filterable and paged, Owners only;
the provisioning page shows the last ten and links to it."""

from __future__ import annotations

import pytest

from scim.models import ScimRequestLog
from scim.request_log import REQUEST_LOG_PAGE
from tests.conftest import login_client

URL = "/w/alpha/settings/provisioning/requests/"


def _log(world, workspace=None, **kw) -> ScimRequestLog:
    row = {"method": "GET", "path": "/scim/v2/alpha/Users", "status": 200, **kw}
    return ScimRequestLog.objects.create(workspace=workspace or world.a, **row)


def _ids(response) -> list[int]:
    return [r.pk for r in response.context["requests"]]


@pytest.fixture
def owner(world):
    return login_client(world.owner_a)


def test_filters_by_outcome_method_status_and_path(world, owner):
    ok = _log(world)
    conflict = _log(world, method="POST", status=409, scim_type="uniqueness")
    refused = _log(world, method="PATCH", path="/scim/v2/alpha/Users/17", status=401)
    group = _log(world, method="PATCH", path="/scim/v2/alpha/Groups/3", status=204)
    assert _ids(owner.get(URL)) == [group.pk, refused.pk, conflict.pk, ok.pk]  # newest first
    assert _ids(owner.get(URL, {"outcome": "failed"})) == [refused.pk, conflict.pk]
    assert _ids(owner.get(URL, {"outcome": "ok"})) == [group.pk, ok.pk]
    assert _ids(owner.get(URL, {"outcome": "unauthenticated"})) == [refused.pk]
    assert _ids(owner.get(URL, {"method": "PATCH"})) == [group.pk, refused.pk]
    assert _ids(owner.get(URL, {"status": "409"})) == [conflict.pk]
    assert _ids(owner.get(URL, {"path": "groups"})) == [group.pk]
    assert _ids(owner.get(URL, {"path": "Users/17", "outcome": "failed"})) == [refused.pk]
    assert "No request matches these filters." in owner.get(URL, {"status": "500"}).content.decode()


def test_pages_follow_each_other_and_keep_the_filters(world, owner):
    rows = [_log(world, status=400 if n % 2 else 201) for n in range(2 * REQUEST_LOG_PAGE + 6)]
    failed = [r.pk for r in reversed(rows) if r.status == 400]
    seen: list[int] = []
    response = owner.get(URL, {"outcome": "failed"})
    while True:
        seen += _ids(response)
        if not response.context["next_url"]:
            break
        assert "outcome=failed" in response.context["next_url"]
        response = owner.get(URL + response.context["next_url"])
    assert seen == failed


def test_only_this_workspaces_requests_are_shown(world, owner):
    _log(world, workspace=world.b, path="/scim/v2/bravo/Users")
    mine = _log(world)
    assert _ids(owner.get(URL)) == [mine.pk]


@pytest.mark.parametrize("query", [{"before": "abc"}, {"before": "9" * 40}, {"status": "abc"}, {"method": "TRACE"}])
def test_odd_parameters_never_break_the_page(owner, query):
    assert owner.get(URL, query).status_code == 200


@pytest.mark.parametrize("who", ["manager_a", "member_a", "collaborator_a"])
def test_only_owners_read_the_log(world, who):
    assert login_client(getattr(world, who)).get(URL).status_code == 403


def test_the_provisioning_page_shows_the_last_ten_and_links_to_the_log(world, owner):
    rows = [_log(world) for _ in range(12)]
    response = owner.get("/w/alpha/settings/provisioning/")
    assert _ids(response) == [r.pk for r in reversed(rows)][:10]
    assert 'href="/w/alpha/settings/provisioning/requests/" id="all-requests"' in response.content.decode()
