"""Redis stopped mid-run: every limiter and cache degrades safely. Sign-in, break-glass, SCIM and the OAuth
token endpoint keep answering (never a 5xx), with a real redis-server stopped between two rounds of requests."""

from __future__ import annotations

import base64
import logging

import pytest
from django.test import Client

from saml.models import SamlSettings
from scim.services import OAuthGrant, scim_credential_create, scim_oauth_client_create
from tests.deprov.harness import RedisServer
from tests.saml.conftest import IDP_B, configure
from tests.saml.idp import make_key
from tests.scim.credential_helpers import enable_scim, owner_actor
from workspaces.services import actor_for_membership


@pytest.fixture
def redis_cache(tmp_path, settings):
    server = RedisServer(tmp_path)
    server.start()
    settings.CACHES = {"default": {
        "BACKEND": "config.cache.ReusingRedisCache", "LOCATION": server.url,
        "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
    }}
    yield server
    server.stop()


def _round(world, password, bearer, oauth_id, oauth_secret) -> list[tuple[str, int]]:
    """What each kind of client gets, wrong and right."""
    web = Client()
    answers = [
        ("wrong password", web.post("/login/", {"email": "member@alpha.test", "password": "nope"}).status_code),
        ("right password", web.post("/login/", {"email": "member@alpha.test", "password": password}).status_code),
        ("workspace page", web.get("/w/alpha/").status_code),
        ("break-glass wrong", Client().post("/saml/bravo/break-glass/", {
            "email": "owner@bravo.test", "password": "nope", "code": "x" * 12}).status_code),
        ("SCIM valid token", Client().get("/scim/v2/alpha/Users", HTTP_AUTHORIZATION=f"Bearer {bearer}").status_code),
        ("SCIM bad token", Client().get("/scim/v2/alpha/Users", HTTP_AUTHORIZATION="Bearer gs_nope_nope").status_code),
    ]
    basic = "Basic " + base64.b64encode(f"{oauth_id}:{oauth_secret}".encode()).decode()
    answers.append(("OAuth token", Client().post("/oauth/token/", {"grant_type": "client_credentials"},
                                                HTTP_AUTHORIZATION=basic).status_code))
    return answers


EXPECTED = [
    ("wrong password", 200), ("right password", 302), ("workspace page", 200), ("break-glass wrong", 200),
    ("SCIM valid token", 200), ("SCIM bad token", 401), ("OAuth token", 200),
]


def test_everything_keeps_answering_when_redis_stops_mid_run(world, password, redis_cache, caplog):
    from django.utils import timezone

    from saml import services as saml_services

    enable_scim(world.a)
    _, bearer = scim_credential_create(workspace=world.a, kind="bearer", name="Okta", actor=owner_actor(world.owner_a))
    credential, oauth_secret = scim_oauth_client_create(
        workspace=world.a, name="Entra", actor=owner_actor(world.owner_a), grant=OAuthGrant.CLIENT_CREDENTIALS,
    )
    configure(world.b, world.outsider_b, IDP_B, make_key("idp-bravo"), email_domains=["bravo.test"])
    SamlSettings.objects.filter(workspace=world.b).update(last_test_succeeded_at=timezone.now())
    saml_services.saml_only_set(workspace=world.b, actor=actor_for_membership(world.outsider_b, "saml"), enabled=True)

    assert _round(world, password, bearer, credential.key_id, oauth_secret) == EXPECTED
    redis_cache.stop()
    with caplog.at_level(logging.WARNING):
        assert _round(world, password, bearer, credential.key_id, oauth_secret) == EXPECTED
    assert "cache unavailable" in caplog.text
