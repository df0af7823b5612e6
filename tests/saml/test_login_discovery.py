"""/login/ finds a workspace's SSO by email domain and offers "Log in with SSO"."""

from __future__ import annotations

from django.test import Client


def test_login_page_offers_log_in_with_sso(world):
    assert b"Log in with SSO" in Client().get("/login/").content


def test_email_domain_leads_to_its_workspace_idp(world, sso_a):
    response = Client().post("/saml/discover/", {"email": "someone@ALPHA.test", "next": "/w/alpha/api-keys/"})
    assert response.status_code == 302
    assert response["Location"] == "/saml/alpha/login/?next=%2Fw%2Falpha%2Fapi-keys%2F"


def test_email_domain_of_b_leads_to_b_only(world, sso_a, sso_b):
    response = Client().post("/saml/discover/", {"email": "someone@bravo.test"})
    assert response["Location"] == "/saml/bravo/login/"


def test_unknown_domain_says_so_on_the_login_page(world, sso_a):
    response = Client().post("/saml/discover/", {"email": "someone@elsewhere.test"})
    assert response.status_code == 200
    assert b"No single sign-on is set up for that email domain" in response.content


def test_a_non_local_next_is_dropped(world, sso_a):
    response = Client().post("/saml/discover/", {"email": "a@alpha.test", "next": "https://evil.test/"})
    assert response["Location"] == "/saml/alpha/login/"
