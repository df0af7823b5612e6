"""The provisioning page: Owners only, secret shown once with no-store, credentials of this workspace only."""

from __future__ import annotations

from django.test import override_settings

from scim.models import ScimCredential, ScimRequestLog
from scim.services import scim_credential_create

from ..conftest import NEVER_CACHE, login_client
from .credential_helpers import owner_actor

URL = "/w/alpha/settings/provisioning/"


@override_settings(PUBLIC_BASE_URL="https://gatehouse.example.com")
def test_owner_sees_the_scim_base_url_and_oauth_endpoints(world):
    response = login_client(world.owner_a).get(URL)
    assert response.status_code == 200
    assert "https://gatehouse.example.com/scim/v2/alpha/" in response.content.decode()
    assert "https://gatehouse.example.com/oauth/token/" in response.content.decode()
    assert f"scim:{world.a.pk}" in response.content.decode()
    assert response["Cache-Control"] == NEVER_CACHE


def test_manager_is_refused_the_page(world):
    assert login_client(world.manager_a).get(URL).status_code == 403


def test_owner_of_another_workspace_gets_404(world):
    assert login_client(world.outsider_b).get(URL).status_code == 404


def test_owner_sees_the_provisioning_link_and_a_manager_does_not(world):
    assert URL in login_client(world.owner_a).get("/w/alpha/").content.decode()
    assert URL not in login_client(world.manager_a).get("/w/alpha/").content.decode()


def test_owner_switches_scim_on_and_off(world):
    client = login_client(world.owner_a)
    assert client.post(URL, {"action": "enable"}).status_code == 302
    world.a.refresh_from_db()
    assert world.a.scim_enabled
    client.post(URL, {"action": "disable", "confirmed": "yes"})
    world.a.refresh_from_db()
    assert not world.a.scim_enabled


def test_new_bearer_token_is_shown_once_and_then_only_its_prefix(world):
    client = login_client(world.owner_a)
    response = client.post(URL, {"action": "create", "kind": "bearer", "name": "Okta"})
    assert response.status_code == 200 and response["Cache-Control"] == NEVER_CACHE
    credential = ScimCredential.objects.get(workspace=world.a)
    html = response.content.decode()
    start = html.index('data-testid="new-secret">') + len('data-testid="new-secret">')
    token = html[start:html.index("</pre>", start)]
    assert token.startswith(f"gs_{credential.key_id}_") and len(token) > 40
    again = client.get(URL).content.decode()
    assert token not in again
    assert f"gs_{credential.key_id}_…" in again


def test_new_oauth_client_shows_client_id_and_secret_once(world):
    client = login_client(world.owner_a)
    response = client.post(URL, {"action": "create", "kind": "oauth", "name": "Okta OAuth",
                                  "grant": "authorization-code", "redirect_uris": "https://idp.example.test/cb"})
    credential = ScimCredential.objects.get(workspace=world.a, kind="oauth")
    html = response.content.decode()
    assert credential.key_id in html and 'data-testid="new-secret"' in html
    assert 'data-testid="new-secret"' not in client.get(URL).content.decode()


def test_oauth_client_without_redirect_uri_shows_the_error_on_the_form(world):
    response = login_client(world.owner_a).post(URL, {"action": "create", "kind": "oauth", "name": "Okta",
                                                      "grant": "authorization-code", "redirect_uris": ""})
    assert response.status_code == 200
    assert "redirect URI" in response.content.decode()
    assert not ScimCredential.objects.exists()


def test_owner_rotates_a_credential_and_sees_the_replacement_once(world):
    old, _ = scim_credential_create(workspace=world.a, kind="bearer", name="Okta", actor=owner_actor(world.owner_a))
    response = login_client(world.owner_a).post(URL, {"action": "rotate", "credential": old.pk})
    assert response.status_code == 200
    new = ScimCredential.objects.get(rotated_from=old)
    assert f"gs_{new.key_id}_" in response.content.decode()
    old.refresh_from_db()
    assert old.expires_at is not None


def test_owner_revokes_a_credential(world):
    credential, _ = scim_credential_create(workspace=world.a, kind="bearer", name="Okta", actor=owner_actor(world.owner_a))
    assert login_client(world.owner_a).post(URL, {"action": "revoke", "credential": credential.pk, "confirmed": "yes"}).status_code == 302
    credential.refresh_from_db()
    assert credential.revoked_at is not None


def test_workspace_b_credential_cannot_be_revoked_or_rotated_through_workspace_a(world):
    credential_b, _ = scim_credential_create(workspace=world.b, kind="bearer", name="B", actor=owner_actor(world.outsider_b))
    client = login_client(world.owner_a)
    assert client.post(URL, {"action": "revoke", "credential": credential_b.pk}).status_code == 404
    assert client.post(URL, {"action": "rotate", "credential": credential_b.pk}).status_code == 404
    credential_b.refresh_from_db()
    assert credential_b.revoked_at is None and credential_b.expires_at is None


def test_workspace_b_credentials_are_not_listed_on_workspace_a(world):
    credential_b, _ = scim_credential_create(workspace=world.b, kind="bearer", name="Bravo secret name", actor=owner_actor(world.outsider_b))
    html = login_client(world.owner_a).get(URL).content.decode()
    assert "Bravo secret name" not in html and credential_b.key_id not in html


def test_recent_requests_of_this_workspace_are_listed_with_their_error(world):
    ScimRequestLog.objects.create(workspace=world.a, method="POST", path="/scim/v2/alpha/Users", status=409,
                                  scim_type="uniqueness", error_detail="userName is taken")
    ScimRequestLog.objects.create(workspace=world.b, method="GET", path="/scim/v2/bravo/Users?filter=bravo-only", status=200)
    html = login_client(world.owner_a).get(URL).content.decode()
    assert "userName is taken" in html and "uniqueness" in html
    assert "bravo-only" not in html


def test_a_new_basic_credential_is_shown_as_the_username_and_password_okta_asks_for(world):
    client = login_client(world.owner_a)
    html = client.post(URL, {"action": "create", "kind": "basic", "name": "Okta Basic"}).content.decode()
    credential = ScimCredential.objects.get(workspace=world.a)

    def testid(name: str) -> str:
        start = html.index(f'data-testid="{name}">') + len(f'data-testid="{name}">')
        return html[start:html.index("</", start)]

    username, password = testid("new-basic-username"), testid("new-basic-password")
    assert username == credential.key_id and len(password) > 30
    assert testid("new-secret") == f"{username}:{password}"
    assert 'data-copy="new-basic-username"' in html and 'data-copy="new-basic-password"' in html


def test_the_setup_guides_give_okta_and_entra_their_values(world):
    html = login_client(world.owner_a).get(URL).content.decode()
    okta = html.split('id="guide-okta"')[1].split("</details>")[0]
    entra = html.split('id="guide-entra"')[1].split("</details>")[0]
    assert '<code id="okta-base-url">http' in okta and "/scim/v2/alpha/</code>" in okta
    assert '<code id="okta-unique-id">userName</code>' in okta and "Basic Auth" in okta and "OAuth 2" in okta
    assert '<code id="entra-tenant-url">' in entra and "/scim/v2/alpha/</code>" in entra and "Secret Token" in entra
