"""OAuth 2 for SCIM clients against the live server: Okta's "Authenticate with…" then "Accept access",
the token endpoint, refresh, and the client-credentials grant (Entra ID). Tokens are then presented
to ``authenticate_scim_request`` exactly as a SCIM request would carry them."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest
import requests
from django.test import Client, override_settings

from audit.models import AuditEvent
from scim.auth import authenticate_scim_request
from scim.services import OAuthGrant, scim_credential_revoke, scim_oauth_client_create
from workspaces.access import GrantMethod, grant_workspace
from workspaces.models import Membership

from ..factories import MembershipFactory
from .credential_helpers import bearer_status, enable_scim, owner_actor, scim_request
from .oauth_helpers import REDIRECT_URI, approve, authorize_params, code_from, sign_in, token

pytestmark = [pytest.mark.django_db(transaction=True)]


def _issue_tokens(live_server, world, password, client) -> dict:
    credential, secret = client
    session = requests.Session()
    sign_in(session, live_server.url, "owner@alpha.test", password)
    code = code_from(approve(session, live_server.url, credential.key_id))
    response = token(live_server.url, credential.key_id, secret,
                     grant_type="authorization_code", code=code, redirect_uri=REDIRECT_URI)
    assert response.status_code == 200, response.text
    return response.json()


def test_owner_approves_the_client_and_the_token_works_on_scim_for_that_workspace(live_server, world, password, okta_client_a):
    credential, _ = okta_client_a
    tokens = _issue_tokens(live_server, world, password, okta_client_a)
    assert tokens["token_type"] == "Bearer"
    assert tokens["scope"] == f"scim:{world.a.pk}"
    assert tokens["refresh_token"]
    principal = authenticate_scim_request(scim_request(f"Bearer {tokens['access_token']}"), "alpha")
    assert principal.workspace == world.a
    assert principal.credential == credential
    assert principal.auth_method == "oauth"
    assert principal.actor.auth_method == "oauth"
    approval = AuditEvent.objects.get(workspace=world.a, action="scim.oauth_authorized")
    assert approval.actor_label == "owner@alpha.test" and approval.target_id == str(credential.pk)


def test_access_token_of_workspace_a_is_refused_on_workspace_b(live_server, world, password, okta_client_a):
    tokens = _issue_tokens(live_server, world, password, okta_client_a)
    assert bearer_status(tokens["access_token"], "bravo") == 401


def test_refresh_token_gives_a_new_working_access_token_and_cannot_be_replayed(live_server, world, password, okta_client_a):
    credential, secret = okta_client_a
    tokens = _issue_tokens(live_server, world, password, okta_client_a)
    refreshed = token(live_server.url, credential.key_id, secret,
                      grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text
    new = refreshed.json()
    assert new["access_token"] != tokens["access_token"] and new["scope"] == f"scim:{world.a.pk}"
    assert bearer_status(new["access_token"], "alpha") == 200
    assert bearer_status(new["access_token"], "bravo") == 401
    # Once the new refresh token is used, the old one is a replay (a lost reply's retry: test_oauth_field_clients).
    newer = token(live_server.url, credential.key_id, secret, grant_type="refresh_token", refresh_token=new["refresh_token"])
    assert newer.status_code == 200, newer.text
    replay = token(live_server.url, credential.key_id, secret,
                   grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    assert bearer_status(newer.json()["access_token"], "alpha") == 401  # the whole family is revoked


def test_member_who_is_not_an_owner_cannot_approve(live_server, world, password, okta_client_a):
    credential, _ = okta_client_a
    session = requests.Session()
    sign_in(session, live_server.url, "manager@alpha.test", password)
    page = session.get(f"{live_server.url}/oauth/authorize/", params=authorize_params(credential.key_id),
                       allow_redirects=False)
    assert page.status_code == 403
    assert "Accept access" not in page.text


def test_session_without_a_grant_for_the_workspace_cannot_approve(live_server, world, okta_client_a):
    credential, _ = okta_client_a
    # Signed in (as the Owner!) but this session never authenticated for workspace A.
    client = Client()
    client.force_login(world.owner_a.user, backend="workspaces.auth_backends.EmailBackend")
    session = requests.Session()
    session.cookies.set("sessionid", client.cookies["sessionid"].value)
    page = session.get(f"{live_server.url}/oauth/authorize/", params=authorize_params(credential.key_id),
                       allow_redirects=False)
    assert page.status_code == 403
    assert "Accept access" not in page.text
    assert "Sign in to Alpha Inc" in page.text


def test_session_granted_only_for_another_workspace_cannot_approve(live_server, world, okta_client_a):
    credential, _ = okta_client_a
    # The same person is also an Owner in B, and this session holds only B's grant.
    MembershipFactory(workspace=world.b, user=world.owner_a.user, role="owner")
    client = Client()
    client.force_login(world.owner_a.user, backend="workspaces.auth_backends.EmailBackend")
    store = client.session

    class _Req:
        session = store

    grant_workspace(_Req, world.b, GrantMethod.PASSWORD)
    store.save()
    session = requests.Session()
    session.cookies.set("sessionid", client.cookies["sessionid"].value)
    page = session.get(f"{live_server.url}/oauth/authorize/", params=authorize_params(credential.key_id),
                       allow_redirects=False)
    assert page.status_code == 403 and "Accept access" not in page.text


def test_owner_of_another_workspace_cannot_see_the_approval_page(live_server, world, password, okta_client_a):
    credential, _ = okta_client_a
    session = requests.Session()
    sign_in(session, live_server.url, "owner@bravo.test", password)
    page = session.get(f"{live_server.url}/oauth/authorize/", params=authorize_params(credential.key_id),
                       allow_redirects=False)
    assert page.status_code == 404


def test_anonymous_visitor_is_sent_to_sign_in_and_back(live_server, world, okta_client_a):
    credential, _ = okta_client_a
    page = requests.get(f"{live_server.url}/oauth/authorize/", params=authorize_params(credential.key_id),
                        allow_redirects=False, timeout=30)
    assert page.status_code == 302
    location = urlparse(page.headers["Location"])
    assert location.path == "/login/"
    assert parse_qs(location.query)["next"][0].startswith("/oauth/authorize/?")


def test_denying_access_redirects_with_access_denied_and_issues_no_code(live_server, world, password, okta_client_a):
    credential, _ = okta_client_a
    session = requests.Session()
    sign_in(session, live_server.url, "owner@alpha.test", password)
    response = approve(session, live_server.url, credential.key_id, allow=False)
    assert response.status_code == 302
    query = parse_qs(urlparse(response.headers["Location"]).query)
    assert query["error"] == ["access_denied"] and "code" not in query
    assert AuditEvent.objects.filter(workspace=world.a, action="scim.oauth_denied").count() == 1


def test_client_credentials_grant_issues_a_token_limited_to_the_workspace(live_server, world, entra_client_a):
    credential, secret = entra_client_a
    response = token(live_server.url, credential.key_id, secret, grant_type="client_credentials")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["scope"] == f"scim:{world.a.pk}" and "refresh_token" not in body
    principal = authenticate_scim_request(scim_request(f"Bearer {body['access_token']}"), "alpha")
    assert principal.credential == credential and principal.auth_method == "oauth"
    assert bearer_status(body["access_token"], "bravo") == 401


def test_client_of_workspace_a_cannot_ask_for_workspace_b_scope(live_server, world, entra_client_a):
    credential, secret = entra_client_a
    response = token(live_server.url, credential.key_id, secret, grant_type="client_credentials",
                     scope=f"scim:{world.b.pk}")
    assert response.status_code == 400 and response.json()["error"] == "invalid_scope"


def test_wrong_client_secret_gets_no_token(live_server, world, entra_client_a):
    credential, _ = entra_client_a
    response = token(live_server.url, credential.key_id, "not-the-secret", grant_type="client_credentials")
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"


def test_client_credentials_client_cannot_use_the_authorization_code_flow(live_server, world, password):
    enable_scim(world.a)
    credential, _ = scim_oauth_client_create(
        workspace=world.a, name="Entra", actor=owner_actor(world.owner_a),
        grant=OAuthGrant.CLIENT_CREDENTIALS, redirect_uris=REDIRECT_URI,
    )
    session = requests.Session()
    sign_in(session, live_server.url, "owner@alpha.test", password)
    page = session.get(f"{live_server.url}/oauth/authorize/", params=authorize_params(credential.key_id),
                       allow_redirects=False)
    # The redirect URI is registered, so DOT answers on it: this client may not use response_type=code.
    assert page.status_code == 302
    assert parse_qs(urlparse(page.headers["Location"]).query)["error"] == ["unauthorized_client"]


def test_revoked_client_gets_no_token_and_its_tokens_stop_working(live_server, world, entra_client_a):
    credential, secret = entra_client_a
    issued = token(live_server.url, credential.key_id, secret, grant_type="client_credentials").json()
    scim_credential_revoke(credential=credential, actor=owner_actor(world.owner_a))
    assert bearer_status(issued["access_token"], "alpha") == 401
    again = token(live_server.url, credential.key_id, secret, grant_type="client_credentials")
    assert again.status_code == 401 and again.json()["error"] == "invalid_client"


def test_token_dies_when_the_approving_owner_is_no_longer_an_owner(live_server, world, password, okta_client_a):
    credential, secret = okta_client_a
    tokens = _issue_tokens(live_server, world, password, okta_client_a)
    Membership.objects.filter(pk=world.owner_a.pk).update(role="member")
    assert bearer_status(tokens["access_token"], "alpha") == 401
    refreshed = token(live_server.url, credential.key_id, secret,
                      grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert refreshed.status_code == 400


def test_only_checksums_of_oauth_tokens_and_a_hash_of_the_client_secret_are_stored(live_server, world, password, okta_client_a):
    from oauth2_provider.models import AccessToken, Application, RefreshToken

    credential, secret = okta_client_a
    tokens = _issue_tokens(live_server, world, password, okta_client_a)
    assert not AccessToken.objects.filter(token=tokens["access_token"]).exists()
    assert AccessToken.objects.filter(application__scim_credential=credential).values_list("token", flat=True).get() == ""
    assert not RefreshToken.objects.filter(token=tokens["refresh_token"]).exists()
    assert Application.objects.get(pk=credential.oauth_application_id).client_secret != secret


def test_approval_prompt_auto_cannot_skip_the_owners_decision(live_server, world, password, okta_client_a):
    credential, _ = okta_client_a
    _issue_tokens(live_server, world, password, okta_client_a)  # the Owner approved once already
    session = requests.Session()
    sign_in(session, live_server.url, "owner@alpha.test", password)
    page = session.get(f"{live_server.url}/oauth/authorize/",
                       params={**authorize_params(credential.key_id), "approval_prompt": "auto"},
                       allow_redirects=False)
    assert page.status_code == 200 and "Accept access" in page.text


@override_settings(SCIM_AUTH_FAILURE_LIMIT=3, SCIM_AUTH_FAILURE_IP_LIMIT=10, SCIM_AUTH_FAILURE_WINDOW=120)
def test_repeated_wrong_client_secrets_get_429_with_retry_after_at_the_token_endpoint(live_server, world, entra_client_a):
    credential, secret = entra_client_a
    for _ in range(3):
        assert token(live_server.url, credential.key_id, "wrong", grant_type="client_credentials").status_code == 401
    blocked = token(live_server.url, credential.key_id, secret, grant_type="client_credentials")
    assert blocked.status_code == 429
    assert 1 <= int(blocked.headers["Retry-After"]) <= 120
    assert blocked.json()["error"] == "temporarily_unavailable"


@override_settings(SCIM_AUTH_FAILURE_LIMIT=3, SCIM_AUTH_FAILURE_IP_LIMIT=10, SCIM_AUTH_FAILURE_WINDOW=120)
def test_a_stranger_failing_with_the_client_id_elsewhere_never_locks_the_idp_out_of_the_token_endpoint(
    world, entra_client_a, monkeypatch
):
    """Client ids are not secret: failures count per (address, client id) and per address, never per client id."""
    import base64
    import time

    monkeypatch.setattr("config.ratelimit._now", lambda: (int(time.time() // 120) + 0.5) * 120)
    credential, secret = entra_client_a

    def basic_for(client_secret: str) -> str:
        return "Basic " + base64.b64encode(f"{credential.key_id}:{client_secret}".encode()).decode()

    client = Client()
    for n in range(12):
        client.post("/oauth/token/", {"grant_type": "client_credentials"},
                    HTTP_AUTHORIZATION=basic_for("wrong"), REMOTE_ADDR=f"198.51.100.{n % 4 + 1}")
    response = client.post("/oauth/token/", {"grant_type": "client_credentials"},
                           HTTP_AUTHORIZATION=basic_for(secret), REMOTE_ADDR="203.0.113.20")
    assert response.status_code == 200, response.content
