"""A real signed, Okta-shaped response logs a member into this workspace, and only this one."""

from __future__ import annotations

import time
from datetime import timedelta

from django.test import Client

from audit.models import AuditEvent
from workspaces.access import SESSION_KEY

from .conftest import post_acs, start_login


def test_valid_response_logs_the_member_in_and_lands_on_the_page_first_asked_for(world, sso_a):
    client = Client()
    request_id = start_login(client, "alpha", next_url="/w/alpha/api-keys/")
    response = post_acs(client, "alpha", sso_a.response(name_id="member@alpha.test", in_response_to=request_id))
    assert response.status_code == 302
    assert response["Location"] == "/w/alpha/api-keys/"
    assert client.get("/w/alpha/api-keys/").status_code == 200
    event = AuditEvent.objects.get(workspace=world.a, action="sso.login_succeeded")
    assert event.actor_label == "member@alpha.test" and event.auth_method == "saml"


def test_saml_grant_is_for_this_workspace_only(world, sso_a):
    client = Client()
    request_id = start_login(client, "alpha")
    post_acs(client, "alpha", sso_a.response(name_id="member@alpha.test", in_response_to=request_id))
    grants = client.session[SESSION_KEY]
    assert list(grants) == [str(world.a.pk)]
    assert grants[str(world.a.pk)]["method"] == "saml"


def test_session_not_on_or_after_caps_the_grant(world, sso_a):
    client = Client()
    request_id = start_login(client, "alpha")
    post_acs(client, "alpha", sso_a.response(
        name_id="member@alpha.test", in_response_to=request_id, session_valid_for=timedelta(minutes=30)))
    exp = client.session[SESSION_KEY][str(world.a.pk)]["exp"]
    assert time.time() + 29 * 60 < exp <= time.time() + 30 * 60 + 1


def test_grant_past_session_not_on_or_after_no_longer_opens_the_workspace(world, sso_a):
    client = Client()
    request_id = start_login(client, "alpha")
    post_acs(client, "alpha", sso_a.response(name_id="member@alpha.test", in_response_to=request_id))
    session = client.session
    session[SESSION_KEY][str(world.a.pk)]["exp"] = time.time() - 1
    session.save()
    assert client.get("/w/alpha/").status_code == 403


def test_saml_login_to_b_never_opens_a_for_the_same_person(world, sso_a, sso_b):
    from tests.factories import MembershipFactory

    MembershipFactory(workspace=world.b, user=world.member_a.user, role="member")
    client = Client()
    request_id = start_login(client, "bravo")
    response = post_acs(client, "bravo", sso_b.response(name_id="member@alpha.test", in_response_to=request_id))
    assert response.status_code == 302
    assert client.get("/w/bravo/").status_code == 200
    assert client.get("/w/alpha/").status_code == 403


def test_saml_login_to_a_never_opens_b_for_the_same_person(world, sso_a, sso_b):
    from tests.factories import MembershipFactory

    MembershipFactory(workspace=world.b, user=world.member_a.user, role="member")
    client = Client()
    request_id = start_login(client, "alpha")
    post_acs(client, "alpha", sso_a.response(name_id="member@alpha.test", in_response_to=request_id))
    assert client.get("/w/alpha/").status_code == 200
    assert client.get("/w/bravo/").status_code == 403


def test_login_as_another_person_starts_a_fresh_session(world, sso_a):
    from tests.conftest import login_client

    client = login_client(world.owner_a)
    old_key = client.session.session_key
    request_id = start_login(client, "alpha")
    post_acs(client, "alpha", sso_a.response(name_id="member@alpha.test", in_response_to=request_id))
    assert client.session.session_key != old_key
    assert int(client.session["_auth_user_id"]) == world.member_a.user_id
    # The owner's password grant did not survive into the member's session.
    assert client.session[SESSION_KEY][str(world.a.pk)]["method"] == "saml"


def test_idp_initiated_login_follows_a_local_relay_state(world, sso_a):
    sso_a.cfg.idp_initiated = True
    sso_a.cfg.save()
    client = Client()
    response = post_acs(client, "alpha", sso_a.response(name_id="member@alpha.test"), relay_state="/w/alpha/api-keys/")
    assert response["Location"] == "/w/alpha/api-keys/"


def test_idp_initiated_login_ignores_an_absolute_relay_state(world, sso_a):
    sso_a.cfg.idp_initiated = True
    sso_a.cfg.save()
    for target in ("https://evil.test/", "//evil.test/x", "/\\evil.test", "javascript:alert(1)"):
        client = Client()
        response = post_acs(client, "alpha", sso_a.response(name_id="member@alpha.test"), relay_state=target)
        assert response["Location"] == "/w/alpha/", target


def test_sp_initiated_login_drops_a_non_local_next(world, sso_a):
    client = Client()
    request_id = start_login(client, "alpha", next_url="https://evil.test/")
    response = post_acs(client, "alpha", sso_a.response(name_id="member@alpha.test", in_response_to=request_id))
    assert response["Location"] == "/w/alpha/"


def test_response_with_an_xml_declaration_as_okta_sends_it_is_accepted(world, sso_a):
    from .idp import encode

    client = Client()
    request_id = start_login(client, "alpha")
    raw = sso_a.response(name_id="member@alpha.test", in_response_to=request_id, as_bytes=True)
    response = post_acs(client, "alpha", encode(b'<?xml version="1.0" encoding="UTF-8"?>\n' + raw))
    assert response.status_code == 302 and response["Location"] == "/w/alpha/"


def test_the_login_redirect_and_a_refusal_page_are_never_cached(world, sso_a):
    client = Client()
    redirect = client.get("/saml/alpha/login/")
    refused = post_acs(client, "alpha", "not base64 at all")
    assert redirect.status_code == 302 and refused.status_code == 403
    for response in (redirect, refused):
        assert response["Cache-Control"] == "max-age=0, no-cache, no-store, must-revalidate, private"
