"""Cloudinary's Okta set-up, on Gatehouse: SCIM in Okta's OAuth 2 mode with the scope Cloudinary's guide configures
(``openid offline provision:scim``), a ``role`` attribute carrying Cloudinary's seven role values, and SAML sending
the same ``role``. The workspace maps those values with the Cloudinary preset (``manage.py role_map --preset``).

Also what an OAuth client meets in the field: a refresh whose reply was lost is repeated, and an unknown role value
is refused naming the accepted ones.
"""

from __future__ import annotations

import requests
from django.core.management import call_command

from tests.scim.conftest import okta_user
from tests.scim.oauth_helpers import REDIRECT_URI, authorize_params, code_from, hidden_fields, sign_in, token

SCOPE = "openid offline provision:scim"


def _oauth(s, password) -> tuple[str, str, str, str]:
    """Okta's "Authenticate with Gatehouse": the Owner approves; returns the client's id, secret and the pair."""
    from scim.services import OAuthGrant, scim_oauth_client_create

    credential, secret = scim_oauth_client_create(
        workspace=s.world.a, name="Cloudinary Okta", actor=s.owner_actor(), grant=OAuthGrant.AUTHORIZATION_CODE,
        redirect_uris=REDIRECT_URI,
    )
    browser = requests.Session()
    sign_in(browser, s.base, "owner@alpha.test", password)
    page = browser.get(f"{s.base}/oauth/authorize/", params={**authorize_params(credential.key_id), "scope": SCOPE})
    assert page.status_code == 200 and "Accept access" in page.text
    approved = browser.post(f"{s.base}/oauth/authorize/", data={**hidden_fields(page.text), "allow": "Authorize"},
                            allow_redirects=False, headers={"Referer": f"{s.base}/oauth/authorize/"})
    r = token(s.base, credential.key_id, secret, grant_type="authorization_code", code=code_from(approved),
              redirect_uri=REDIRECT_URI)
    assert r.status_code == 200, r.text
    assert r.json()["scope"] == f"scim:{s.world.a.pk}"
    return credential.key_id, secret, r.json()["access_token"], r.json()["refresh_token"]


def test_roles_by_oauth_scim_and_saml_with_the_cloudinary_vocabulary(setup_factory, password):
    s = setup_factory("bearer", role_attribute="role")
    call_command("role_map", "alpha", "--preset", "cloudinary")
    client_id, secret, access, refresh = _oauth(s, password)
    s.scim.headers["Authorization"] = f"Bearer {access}"

    assert s.lookup("mia@alpha.test") == []
    body = okta_user("mia@alpha.test", given="Mia", family="Wong", external_id="00u2mia")
    body["role"] = "media_library_user"
    body["product_environments"] = ["prod-eu"]
    body["costCenter"] = "Media"  # mapped in the customer's Okta, of no use to Gatehouse: ignored
    r = s.post("Users", body)
    assert r.status_code == 201, r.text
    uid = r.json()["id"]
    assert s.member(uid).role == "collaborator" and s.member(uid).allowed_environments == ["prod-eu"]
    assert "costCenter" not in s.member(uid).profile

    # A value Cloudinary has that nothing maps: refused, and the answer names what is accepted.
    r = s.patch(f"Users/{uid}", {"op": "replace", "path": "role", "value": "janitor"})
    assert r.status_code == 400 and r.json()["scimType"] == "invalidValue"
    assert "media_library_user" in r.json()["detail"] and "technical_admin" in r.json()["detail"]
    r = s.patch(f"Users/{uid}", {"op": "replace", "value": {"role": "admin"}})
    assert r.status_code == 200 and s.member(uid).role == "manager"

    # SAML carries the role too, through the same mapping.
    browser = s.login("mia@alpha.test", attributes={"role": ["technical_admin"]})
    assert browser.acs.status_code == 302 and s.signed_in(browser)
    assert s.member(uid).role == "manager"
    assert s.login("mia@alpha.test", attributes={"role": ["reports"]}).acs.status_code == 302
    assert s.member(uid).role == "member"

    # Renamed in Okta: the same member signs in under the new email.
    r = s.patch(f"Users/{uid}", {"op": "replace", "path": "userName", "value": "mia.wong@alpha.test"},
                {"op": "replace", "path": 'emails[type eq "work"].value', "value": "mia.wong@alpha.test"})
    assert r.status_code == 200, r.text
    assert s.login("mia.wong@alpha.test", attributes={"role": ["reports"]}).acs.status_code == 302
    assert s.login("mia@alpha.test", attributes={"role": ["reports"]}).acs.status_code == 403

    # Okta refreshes; the reply is lost; it asks again with the same refresh token and carries on.
    lost = token(s.base, client_id, secret, grant_type="refresh_token", refresh_token=refresh, scope=SCOPE)
    assert lost.status_code == 200
    again = token(s.base, client_id, secret, grant_type="refresh_token", refresh_token=refresh, scope=SCOPE)
    assert again.status_code == 200, again.text
    s.scim.headers["Authorization"] = f"Bearer {again.json()['access_token']}"
    assert s.get(f"Users/{uid}").status_code == 200
