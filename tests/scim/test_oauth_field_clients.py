"""OAuth as the IdPs' set-up guides configure it: the scopes they send, and a refresh whose reply was lost.
Real django-oauth-toolkit endpoints over HTTP (live server), as Okta's engine calls them."""

from __future__ import annotations

from datetime import timedelta

import pytest
import requests
from django.test import override_settings
from django.utils import timezone
from oauth2_provider.models import RefreshToken

from scim.services import scim_credential_revoke

from .credential_helpers import bearer_status, owner_actor
from .oauth_helpers import REDIRECT_URI, authorize_params, code_from, hidden_fields, sign_in, token

pytestmark = [pytest.mark.django_db(transaction=True)]

CLOUDINARY_SCOPE = "openid offline provision:scim"


def _authorize(live_server, password, client_id: str, scope: str) -> requests.Response:
    session = requests.Session()
    sign_in(session, live_server.url, "owner@alpha.test", password)
    page = session.get(f"{live_server.url}/oauth/authorize/", params={**authorize_params(client_id), "scope": scope},
                       allow_redirects=False)
    return page if page.status_code != 200 else session.post(
        f"{live_server.url}/oauth/authorize/", data={**hidden_fields(page.text), "allow": "Authorize"},
        allow_redirects=False, headers={"Referer": f"{live_server.url}/oauth/authorize/"},
    )


def _tokens(live_server, password, client, scope: str = CLOUDINARY_SCOPE) -> dict:
    credential, secret = client
    code = code_from(_authorize(live_server, password, credential.key_id, scope))
    response = token(live_server.url, credential.key_id, secret, grant_type="authorization_code", code=code,
                     redirect_uri=REDIRECT_URI)
    assert response.status_code == 200, response.text
    return response.json()


def _refresh(live_server, client, refresh_token: str, **extra: str) -> requests.Response:
    credential, secret = client
    return token(live_server.url, credential.key_id, secret, grant_type="refresh_token", refresh_token=refresh_token,
                 **extra)


# ----------------------------------------------------------------------------- scopes


def test_cloudinarys_configured_scope_is_accepted_and_the_workspace_scope_issued(live_server, world, password,
                                                                                 okta_client_a):
    tokens = _tokens(live_server, password, okta_client_a)
    assert tokens["scope"] == f"scim:{world.a.pk}"
    assert bearer_status(tokens["access_token"]) == 200
    assert bearer_status(tokens["access_token"], "bravo") == 401


def test_a_refresh_repeating_the_configured_scope_keeps_the_workspace_scope(live_server, world, password, okta_client_a):
    tokens = _tokens(live_server, password, okta_client_a)
    refreshed = _refresh(live_server, okta_client_a, tokens["refresh_token"], scope=CLOUDINARY_SCOPE)
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json()["scope"] == f"scim:{world.a.pk}"
    assert bearer_status(refreshed.json()["access_token"]) == 200


def test_client_credentials_with_extra_scopes_get_the_workspace_scope(live_server, world, entra_client_a):
    credential, secret = entra_client_a
    response = token(live_server.url, credential.key_id, secret, grant_type="client_credentials",
                     scope="offline_access openid")
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == f"scim:{world.a.pk}"
    assert bearer_status(response.json()["access_token"]) == 200


def test_another_workspaces_scope_is_refused_beside_ignored_ones(live_server, world, password, okta_client_a,
                                                                 entra_client_a):
    credential, secret = entra_client_a
    response = token(live_server.url, credential.key_id, secret, grant_type="client_credentials",
                     scope=f"openid scim:{world.b.pk}")
    assert response.status_code == 400 and response.json()["error"] == "invalid_scope"
    refused = _authorize(live_server, password, okta_client_a[0].key_id, f"scim:{world.b.pk}")
    assert refused.status_code == 302 and "error=invalid_scope" in refused.headers["Location"]
    tokens = _tokens(live_server, password, okta_client_a)
    widened = _refresh(live_server, okta_client_a, tokens["refresh_token"], scope=f"scim:{world.b.pk}")
    assert widened.status_code == 400 and widened.json()["error"] == "invalid_scope"


# ----------------------------------------------------------------------------- a lost reply


def test_a_refresh_whose_reply_was_lost_can_be_repeated_and_gets_a_working_pair(live_server, world, password,
                                                                               okta_client_a):
    tokens = _tokens(live_server, password, okta_client_a)
    lost = _refresh(live_server, okta_client_a, tokens["refresh_token"])
    assert lost.status_code == 200
    retried = _refresh(live_server, okta_client_a, tokens["refresh_token"])
    assert retried.status_code == 200, retried.text
    pair = retried.json()
    assert pair["scope"] == f"scim:{world.a.pk}"
    assert bearer_status(pair["access_token"]) == 200
    assert bearer_status(lost.json()["access_token"]) == 401  # the pair the client never received is revoked
    # ... and the retried pair goes on refreshing.
    onward = _refresh(live_server, okta_client_a, pair["refresh_token"])
    assert onward.status_code == 200 and bearer_status(onward.json()["access_token"]) == 200
    # Whoever presents the unreceived refresh token intercepted it: a replay, and the family is revoked.
    assert _refresh(live_server, okta_client_a, lost.json()["refresh_token"]).status_code == 400
    assert bearer_status(onward.json()["access_token"]) == 401


def test_reuse_after_the_new_refresh_token_was_used_is_a_replay_that_revokes_the_family(live_server, world, password,
                                                                                       okta_client_a):
    tokens = _tokens(live_server, password, okta_client_a)
    received = _refresh(live_server, okta_client_a, tokens["refresh_token"]).json()
    used = _refresh(live_server, okta_client_a, received["refresh_token"]).json()
    replay = _refresh(live_server, okta_client_a, tokens["refresh_token"])
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    assert bearer_status(used["access_token"]) == 401


def test_reuse_after_the_retry_window_is_a_replay(live_server, world, password, okta_client_a):
    tokens = _tokens(live_server, password, okta_client_a)
    received = _refresh(live_server, okta_client_a, tokens["refresh_token"]).json()
    RefreshToken.objects.filter(revoked__isnull=False).update(revoked=timezone.now() - timedelta(seconds=61))
    replay = _refresh(live_server, okta_client_a, tokens["refresh_token"])
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    assert bearer_status(received["access_token"]) == 401


@override_settings(SCIM_OAUTH_REFRESH_RETRY_SECONDS=0)
def test_the_retry_window_can_be_turned_off(live_server, world, password, okta_client_a):
    tokens = _tokens(live_server, password, okta_client_a)
    assert _refresh(live_server, okta_client_a, tokens["refresh_token"]).status_code == 200
    assert _refresh(live_server, okta_client_a, tokens["refresh_token"]).status_code == 400


def test_a_revoked_client_gets_no_retry(live_server, world, password, okta_client_a):
    tokens = _tokens(live_server, password, okta_client_a)
    assert _refresh(live_server, okta_client_a, tokens["refresh_token"]).status_code == 200
    scim_credential_revoke(credential=okta_client_a[0], actor=owner_actor(world.owner_a))
    retried = _refresh(live_server, okta_client_a, tokens["refresh_token"])
    assert retried.status_code in (400, 401) and "access_token" not in retried.json()


def test_a_retry_is_refused_once_the_approving_owner_is_no_longer_an_owner(live_server, world, password, okta_client_a):
    from workspaces.models import Membership

    tokens = _tokens(live_server, password, okta_client_a)
    assert _refresh(live_server, okta_client_a, tokens["refresh_token"]).status_code == 200
    Membership.objects.filter(pk=world.owner_a.pk).update(role="member")
    retried = _refresh(live_server, okta_client_a, tokens["refresh_token"])
    assert retried.status_code == 400 and "access_token" not in retried.json()


# ----------------------------------------------------------------------------- what the Owner is told


def test_the_approval_page_says_the_access_lives_with_the_approving_owners_membership(live_server, world, password,
                                                                                     okta_client_a):
    session = requests.Session()
    sign_in(session, live_server.url, "owner@alpha.test", password)
    page = session.get(f"{live_server.url}/oauth/authorize/", params=authorize_params(okta_client_a[0].key_id))
    assert page.status_code == 200
    assert 'id="approval-lifetime"' in page.text
    assert "owner@alpha.test" in page.text and "stop working" in page.text


def _oauth_state(credential) -> tuple[str, str]:
    import re

    from tests.conftest import login_client
    from workspaces.models import Membership

    owner = Membership.objects.get(user__email="manager@alpha.test")  # stays an Owner whatever happens to owner_a
    html = login_client(owner).get("/w/alpha/settings/provisioning/").content.decode()
    row = re.search(rf'<tr data-credential="{credential.pk}".*?</tr>', html, re.S)
    assert row, html[:2000]
    found = re.search(r'class="oauth-state" data-state="(\w+)">(.*?)</span>\s*</td>', row.group(0), re.S)
    return (found.group(1), " ".join(found.group(2).split())) if found else ("", "")


def test_the_credentials_list_shows_where_each_oauth_approval_stands(live_server, world, password, okta_client_a,
                                                                      entra_client_a):
    from workspaces.models import Membership

    Membership.objects.filter(pk=world.manager_a.pk).update(role="owner")
    assert _oauth_state(okta_client_a[0])[0] == "awaiting"
    assert _oauth_state(entra_client_a[0]) == ("", "")  # client credentials: no approval to track
    tokens = _tokens(live_server, password, okta_client_a)
    state, text = _oauth_state(okta_client_a[0])
    assert state == "authorised" and "owner@alpha.test" in text
    Membership.objects.filter(pk=world.owner_a.pk).update(role="member")
    state, text = _oauth_state(okta_client_a[0])
    assert state == "owner_inactive" and "owner@alpha.test" in text and "Re-authorise" in text
    assert bearer_status(tokens["access_token"]) == 401  # what the list says is what SCIM does
    Membership.objects.filter(pk=world.owner_a.pk).update(role="owner")
    RefreshToken.objects.update(revoked=timezone.now())
    state, text = _oauth_state(okta_client_a[0])
    assert state == "lapsed" and "Re-authorise" in text
