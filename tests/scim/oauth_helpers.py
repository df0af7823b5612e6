"""Drive django-oauth-toolkit's real endpoints over HTTP with ``requests`` (as Okta's engine does)."""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import parse_qs, urlparse

import requests

REDIRECT_URI = "https://idp.example.test/oauth/callback"


class _HiddenInputs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag, attrs) -> None:
        a = dict(attrs)
        if tag == "input" and a.get("type") == "hidden" and a.get("name"):
            self.fields[a["name"]] = a.get("value") or ""


def hidden_fields(html: str) -> dict[str, str]:
    parser = _HiddenInputs()
    parser.feed(html)
    return parser.fields


def sign_in(session: requests.Session, base: str, email: str, password: str) -> None:
    """Through the real login page, CSRF and all."""
    session.get(f"{base}/login/")
    r = session.post(
        f"{base}/login/",
        data={"email": email, "password": password, "csrfmiddlewaretoken": session.cookies["csrftoken"]},
        allow_redirects=False,
    )
    assert r.status_code == 302, r.text[:500]


def authorize_params(client_id: str, state: str = "okta-state-123") -> dict[str, str]:
    return {"response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT_URI, "state": state}


def approve(session: requests.Session, base: str, client_id: str, *, allow: bool = True) -> requests.Response:
    """GET the approval page, then POST its form (\"Accept access\" or \"Deny\")."""
    page = session.get(f"{base}/oauth/authorize/", params=authorize_params(client_id), allow_redirects=False)
    assert page.status_code == 200, page.text[:500]
    assert "Accept access" in page.text
    data = hidden_fields(page.text)
    if allow:
        data["allow"] = "Authorize"
    return session.post(f"{base}/oauth/authorize/", data=data, allow_redirects=False,
                        headers={"Referer": f"{base}/oauth/authorize/"})


def code_from(response: requests.Response) -> str:
    assert response.status_code == 302, response.text[:500]
    location = urlparse(response.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT_URI
    query = parse_qs(location.query)
    assert query["state"] == ["okta-state-123"]
    return query["code"][0]


def token(base: str, client_id: str, client_secret: str, **data: str) -> requests.Response:
    """The token endpoint with HTTP Basic client authentication (RFC 6749 2.3.1)."""
    return requests.post(f"{base}/oauth/token/", data=data, auth=(client_id, client_secret), timeout=30)


def oauth_access_token(base: str, world, password: str, *, grant: str) -> str:
    """A real OAuth 2 access token for workspace A's SCIM, obtained the way the IdP gets it.

    ``authorization_code``: Okta's "Authenticate with …": the Owner signs in and presses "Accept access".
    ``client_credentials``: Entra ID's mode: the client's id and secret buy a token directly.
    """
    from scim.services import OAuthGrant, scim_oauth_client_create

    from .credential_helpers import enable_scim, owner_actor

    enable_scim(world.a)
    if grant == "authorization_code":
        credential, secret = scim_oauth_client_create(
            workspace=world.a, name="Okta OAuth", actor=owner_actor(world.owner_a),
            grant=OAuthGrant.AUTHORIZATION_CODE, redirect_uris=REDIRECT_URI,
        )
        session = requests.Session()
        sign_in(session, base, world.owner_a.user.email, password)
        code = code_from(approve(session, base, credential.key_id))
        response = token(base, credential.key_id, secret, grant_type="authorization_code", code=code,
                         redirect_uri=REDIRECT_URI)
    else:
        credential, secret = scim_oauth_client_create(
            workspace=world.a, name="Entra OAuth", actor=owner_actor(world.owner_a),
            grant=OAuthGrant.CLIENT_CREDENTIALS,
        )
        response = token(base, credential.key_id, secret, grant_type="client_credentials")
    assert response.status_code == 200, response.text
    return response.json()["access_token"]
