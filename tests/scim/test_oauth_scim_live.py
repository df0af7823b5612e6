"""OAuth tokens and auth failures through the real SCIM endpoint on the live server, and what the
provisioning page then shows of those requests."""

from __future__ import annotations

import pytest
import requests
from django.test import override_settings

from scim.models import ScimRequestLog
from scim.services import OAuthGrant, scim_oauth_client_create

from ..conftest import login_client
from .credential_helpers import enable_scim, owner_actor
from .oauth_helpers import token

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture
def entra_a(world):
    enable_scim(world.a, world.b)
    return scim_oauth_client_create(workspace=world.a, name="Entra", actor=owner_actor(world.owner_a),
                                    grant=OAuthGrant.CLIENT_CREDENTIALS)


def _access_token(live_server, entra_a) -> str:
    credential, secret = entra_a
    response = token(live_server.url, credential.key_id, secret, grant_type="client_credentials")
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def test_client_credentials_token_lists_users_of_its_workspace_and_is_refused_on_the_other(live_server, world, entra_a):
    access = _access_token(live_server, entra_a)
    headers = {"Authorization": f"Bearer {access}", "Accept": "application/scim+json"}
    own = requests.get(f"{live_server.url}/scim/v2/alpha/Users", params={"startIndex": 1, "count": 2},
                       headers=headers, timeout=30)
    assert own.status_code == 200, own.text
    assert own.json()["totalResults"] >= 1
    other = requests.get(f"{live_server.url}/scim/v2/bravo/Users", headers=headers, timeout=30)
    assert other.status_code == 401
    assert "WWW-Authenticate" in other.headers
    assert "owner@bravo.test" not in other.text


@override_settings(SCIM_AUTH_FAILURE_LIMIT=3, SCIM_AUTH_FAILURE_WINDOW=120)
def test_repeated_failures_on_the_scim_endpoint_get_429_with_retry_after(live_server, world, entra_a):
    for _ in range(3):
        r = requests.get(f"{live_server.url}/scim/v2/alpha/Users", headers={"Authorization": "Bearer wrong"}, timeout=30)
        assert r.status_code == 401
    blocked = requests.get(f"{live_server.url}/scim/v2/alpha/Users", headers={"Authorization": "Bearer wrong"}, timeout=30)
    assert blocked.status_code == 429
    assert 1 <= int(blocked.headers["Retry-After"]) <= 120
    assert blocked.json()["status"] == "429"


def test_scim_requests_appear_on_the_provisioning_page_without_the_token(live_server, world, entra_a):
    access = _access_token(live_server, entra_a)
    requests.get(f"{live_server.url}/scim/v2/alpha/Users", params={"filter": 'userName eq "nobody@alpha.test"'},
                 headers={"Authorization": f"Bearer {access}"}, timeout=30)
    requests.get(f"{live_server.url}/scim/v2/alpha/Users", headers={"Authorization": "Bearer wrong"}, timeout=30)
    rows = list(ScimRequestLog.objects.filter(workspace=world.a).order_by("id"))
    assert [(r.status, r.auth_method) for r in rows] == [(200, "oauth"), (401, "")]
    assert rows[0].credential == entra_a[0] and rows[0].duration_ms is not None
    html = login_client(world.owner_a).get("/w/alpha/settings/provisioning/").content.decode()
    assert "nobody@alpha.test" in html  # the filter, for debugging Okta's lookups
    assert "Invalid, expired or revoked credentials." in html
    assert access not in html
