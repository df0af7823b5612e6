"""End to end, as a customer's set-up runs: a live server, SCIM over real HTTP as the IdP sends it, SAML logins with
real signed assertions from the test IdP posted by a browser-like session, and the connector API read with a key.

Each module under ``tests/seeds/`` replays one set-up guide's sequence (the guide and what it implies are named in
its docstring), including a rename at the IdP and an attribute mapping Gatehouse does not use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
import requests

from saml.models import IssuedAuthnRequest
from tests.saml.conftest import IDP_A, Sso, configure
from tests.saml.idp import make_key
from tests.scim.conftest import SCIM_JSON, make_cred
from tests.scim.oauth_helpers import oauth_access_token
from workspaces import services as ws
from workspaces.models import Membership

pytestmark = pytest.mark.django_db(transaction=True)


@dataclass
class Setup:
    """One customer's workspace (``alpha``) with its IdP, reached the way the IdP and its people reach it."""

    world: Any
    base: str
    scim: requests.Session
    sso: Sso

    # -- SCIM

    def url(self, path: str) -> str:
        return f"{self.base}/scim/v2/alpha/{path}"

    def get(self, path: str, **params: Any) -> requests.Response:
        return self.scim.get(self.url(path), params=params or None)

    def post(self, path: str, body: dict[str, Any]) -> requests.Response:
        return self.scim.post(self.url(path), json=body)

    def put(self, path: str, body: dict[str, Any]) -> requests.Response:
        return self.scim.put(self.url(path), json=body)

    def patch(self, path: str, *operations: dict[str, Any]) -> requests.Response:
        return self.scim.patch(self.url(path), json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": list(operations)})

    def lookup(self, username: str) -> list[dict[str, Any]]:
        """Okta's (and Entra's) lookup before a create."""
        r = self.get("Users", filter=f'userName eq "{username}"', startIndex=1, count=100)
        assert r.status_code == 200, r.text
        return r.json()["Resources"]

    # -- SAML, as a browser does it

    def login(self, email: str, *, name_id: str | None = None, groups: tuple[str, ...] = (),
              attributes: dict[str, list[str]] | None = None) -> requests.Session:
        """SP-initiated login through the real endpoints; returns the browser session (check ``.signed_in``)."""
        browser = requests.Session()
        start = browser.get(f"{self.base}/saml/alpha/login/", allow_redirects=False)
        assert start.status_code == 302 and "SAMLRequest=" in start.headers["Location"]
        rid = IssuedAuthnRequest.objects.filter(workspace=self.world.a).latest("created_at").request_id
        response = self.sso.response(name_id=name_id or email, in_response_to=rid, groups=groups,
                                     attributes={"email": [email], **(attributes or {})})
        browser.acs = browser.post(f"{self.base}/saml/alpha/acs/", data={"SAMLResponse": response},  # type: ignore[attr-defined]
                                   allow_redirects=False)
        return browser

    def signed_in(self, browser: requests.Session) -> bool:
        """The session reaches the workspace home (what the person sees after the IdP)."""
        return browser.get(f"{self.base}/w/alpha/", allow_redirects=False).status_code == 200

    # -- the connector API

    def api(self, key: str, path: str = "") -> requests.Response:
        return requests.get(f"{self.base}/api/v1/workspaces/alpha/{path}",
                            headers={"Authorization": f"Bearer {key}"}, timeout=30)

    # -- reads for assertions

    def member(self, scim_id: str | int) -> Membership:
        return Membership.objects.select_related("user").get(pk=int(scim_id))

    def owner_actor(self):
        return ws.actor_for_membership(self.world.owner_a, "password")


def _session(headers: dict[str, str], user_agent: str) -> requests.Session:
    session = requests.Session()
    session.headers.update({**headers, "Content-Type": SCIM_JSON, "Accept": SCIM_JSON, "User-Agent": user_agent})
    return session


@pytest.fixture
def setup_factory(world, live_server, password):
    """``setup_factory(auth, user_agent, **sso_settings)``: auth is ``bearer``, ``basic`` or ``oauth`` (Okta's
    authorization-code mode, approved by the Owner through the real pages)."""

    def make(auth: str = "bearer", user_agent: str = "Okta SCIM Client 1.0.0", **sso_settings: Any) -> Setup:
        if auth == "oauth":
            headers = {"Authorization": "Bearer " + oauth_access_token(live_server.url, world, password,
                                                                         grant="authorization_code")}
        else:
            headers = make_cred(world.owner_a, auth, name="IdP").requests_auth
        key = make_key("idp-alpha")
        sso_settings.setdefault("email_attribute", "email")
        cfg = configure(world.a, world.owner_a, IDP_A, key, email_domains=["alpha.test"], **sso_settings)
        return Setup(world=world, base=live_server.url, scim=_session(headers, user_agent),
                     sso=Sso(world.a, cfg, IDP_A, key))

    return make
