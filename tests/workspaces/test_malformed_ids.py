"""Malformed ids in forms and URLs are a 404 ("No such ..."), never a server error.

Owners' forms post row ids (a team member to remove, a grant, a key, a sink, a mapping, a credential, a 2FA
device); URLs carry them too. Anything that is not a plain number that fits an id column matches nothing.
"""

from __future__ import annotations

import pytest

from saml.models import GroupMapping
from tests.conftest import login_client
from tests.factories import RepositoryFactory, TeamFactory

MALFORMED = ["abc", "1 OR 1=1", "٣", "-1", "1.5", "9" * 30, "1" * 5000, "\x00", ""]


@pytest.fixture
def owner(world):
    return login_client(world.owner_a)


@pytest.mark.parametrize("value", MALFORMED)
def test_owner_forms_answer_404_for_a_malformed_id(world, owner, value):
    team = TeamFactory(workspace=world.a)
    repo = RepositoryFactory(workspace=world.a)
    posts = [
        (f"/w/alpha/teams/{team.pk}/", {"action": "remove", "member": value}),
        (f"/w/alpha/repositories/{repo.pk}/", {"action": "revoke", "grant": value}),
        ("/w/alpha/api-keys/", {"action": "revoke", "key": value}),
        ("/w/alpha/audit/sinks/", {"action": "delete", "sink": value}),
        ("/w/alpha/settings/group-sync/", {"action": "delete", "mapping": value}),
        ("/w/alpha/settings/provisioning/", {"action": "revoke", "credential": value}),
    ]
    for url, data in posts:
        response = owner.post(url, data)
        assert response.status_code == 404, (url, data, response.status_code)
    assert not GroupMapping.objects.exists()


@pytest.mark.parametrize("value", ["9" * 19, "9" * 30, "1" * 5000])
def test_an_id_too_large_for_the_database_in_a_url_is_404(world, owner, value):
    for url in (f"/w/alpha/members/{value}/", f"/w/alpha/teams/{value}/", f"/w/alpha/repositories/{value}/",
                f"/w/alpha/audit/{value}/"):
        assert owner.get(url).status_code == 404, url
