"""SCIM fixtures: workspace A and B with SCIM on, a bearer and a Basic credential each, and helpers."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client

from scim.services import OAuthGrant, scim_credential_create, scim_oauth_client_create
from workspaces.services import actor_for_membership

SCIM_JSON = "application/scim+json"


@dataclass
class Cred:
    kind: str
    secret: str

    @property
    def header(self) -> str:
        if self.kind == "bearer":
            return f"Bearer {self.secret}"
        return "Basic " + base64.b64encode(self.secret.encode()).decode()

    @property
    def requests_auth(self) -> dict[str, str]:
        return {"Authorization": self.header}


def make_cred(membership, kind: str, name: str = "Okta") -> Cred:
    workspace = membership.workspace
    workspace.scim_enabled = True
    workspace.save(update_fields=["scim_enabled"])
    _, shown = scim_credential_create(
        workspace=workspace, kind=kind, name=f"{name} {kind}", actor=actor_for_membership(membership, "password")
    )
    return Cred(kind, shown)


@pytest.fixture
def bearer_a(world) -> Cred:
    return make_cred(world.owner_a, "bearer")


@pytest.fixture
def basic_a(world) -> Cred:
    return make_cred(world.owner_a, "basic")


@pytest.fixture
def bearer_b(world) -> Cred:
    return make_cred(world.outsider_b, "bearer")


class ScimClient:
    """Django test client speaking SCIM to one workspace with one credential."""

    def __init__(self, slug: str, cred: Cred) -> None:
        self.client = Client()
        self.base = f"/scim/v2/{slug}/"
        self.cred = cred

    def call(self, method: str, path: str, body: Any = None, raw: bytes | None = None, **headers: str):
        extra = {"HTTP_AUTHORIZATION": self.cred.header}
        extra.update({f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()})
        if method.upper() == "GET":
            return self.client.get(self.base + path, **extra)
        data = raw if raw is not None else (json.dumps(body) if body is not None else "")
        return getattr(self.client, method.lower())(self.base + path, data=data, content_type=SCIM_JSON, **extra)

    def get(self, path: str, **headers: str):
        extra = {"HTTP_AUTHORIZATION": self.cred.header}
        extra.update({f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()})
        return self.client.get(self.base + path, **extra)

    def post(self, path: str, body: Any, **h: str):
        return self.call("POST", path, body, **h)

    def put(self, path: str, body: Any, **h: str):
        return self.call("PUT", path, body, **h)

    def patch(self, path: str, body: Any, **h: str):
        return self.call("PATCH", path, body, **h)

    def delete(self, path: str, **h: str):
        return self.call("DELETE", path, **h)


@pytest.fixture
def scim_a(world, bearer_a) -> ScimClient:
    return ScimClient(world.a.slug, bearer_a)


@pytest.fixture
def scim_b(world, bearer_b) -> ScimClient:
    return ScimClient(world.b.slug, bearer_b)


def okta_user(username: str, given: str = "Test", family: str = "User", external_id: str = "00u1") -> dict[str, Any]:
    """The body Okta documents for POST /Users (developer.okta.com SCIM 2.0 guide)."""
    return {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": username,
        "name": {"givenName": given, "familyName": family},
        "emails": [{"primary": True, "value": username, "type": "work"}],
        "displayName": f"{given} {family}",
        "locale": "en-US",
        "externalId": external_id,
        "groups": [],
        "password": "1mz050nq",
        "active": True,
    }


def patch_body(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": list(operations)}


@pytest.fixture
def okta_client_a(world):
    """An authorization-code OAuth client of workspace A, as an Owner creates it on the provisioning page."""
    from .credential_helpers import enable_scim, owner_actor
    from .oauth_helpers import REDIRECT_URI

    enable_scim(world.a, world.b)
    return scim_oauth_client_create(
        workspace=world.a, name="Okta OAuth", actor=owner_actor(world.owner_a),
        grant=OAuthGrant.AUTHORIZATION_CODE, redirect_uris=REDIRECT_URI,
    )


@pytest.fixture
def entra_client_a(world):
    """A client-credentials OAuth client of workspace A (Entra ID's mode)."""
    from .credential_helpers import enable_scim, owner_actor

    enable_scim(world.a, world.b)
    return scim_oauth_client_create(
        workspace=world.a, name="Entra", actor=owner_actor(world.owner_a), grant=OAuthGrant.CLIENT_CREDENTIALS,
    )
