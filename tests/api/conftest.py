"""Keys and clients for the connector API tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client

from audit.record import Actor
from workspaces.models import Membership, Workspace
from workspaces.services import api_key_create

SETUP = Actor.system("test set-up")


def personal_key(membership: Membership, name: str = "test key") -> str:
    _, plain = api_key_create(workspace=membership.workspace, membership=membership, name=name, actor=SETUP)
    return plain


def service_key(workspace: Workspace, scopes: list[str], name: str = "connector") -> str:
    _, plain = api_key_create(workspace=workspace, membership=None, name=name, scopes=scopes, actor=SETUP)
    return plain


class ApiClient:
    """GET/POST JSON with a key (Bearer by default, or X-Api-Key)."""

    def __init__(self, key: str | None, header: str = "bearer") -> None:
        self.client = Client()
        self.headers = {}
        if key is not None:
            self.headers = {"Authorization": f"Bearer {key}"} if header == "bearer" else {"X-Api-Key": key}

    def get(self, path: str, **params):
        return self.client.get(path, params, headers=self.headers)

    def post(self, path: str, body: dict):
        return self.client.post(path, body, content_type="application/json", headers=self.headers)


@pytest.fixture
def api() -> Callable[..., ApiClient]:
    return ApiClient


def all_pages(client: ApiClient, path: str, **params) -> list[dict]:
    """Follow ``next`` links to the end, as a connector does."""
    results: list[dict] = []
    response = client.get(path, **params)
    while True:
        assert response.status_code == 200, response.content
        body = response.json()
        results.extend(body["results"])
        if not body["next"]:
            return results
        response = client.client.get(body["next"], headers=client.headers)

