"""Service keys from the API keys page, ``manage.py create_api_key``, and the locally served API docs."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from tests.conftest import login_client
from workspaces.models import ApiKey

from .conftest import ApiClient

pytestmark = pytest.mark.django_db


def test_owner_creates_a_scoped_service_key_on_the_api_keys_page(world):
    client = login_client(world.owner_a)
    response = client.post("/w/alpha/api-keys/", {"action": "create", "name": "governance", "kind": "service", "scopes": ["members:read", "teams:read"]})
    plain = re.search(rb'data-testid="new-key">([^<]+)<', response.content).group(1).decode()
    key = ApiKey.objects.get(name="governance")
    assert key.is_service_key and key.scopes == ["members:read", "teams:read"]
    assert ApiClient(plain).get("/api/v1/workspaces/alpha/members/").status_code == 200
    assert ApiClient(plain).get("/api/v1/workspaces/alpha/repositories/").status_code == 403


def test_service_key_without_scopes_is_refused_on_the_page(world):
    client = login_client(world.owner_a)
    response = client.post("/w/alpha/api-keys/", {"action": "create", "name": "bare", "kind": "service"})
    assert b"at least one scope" in response.content
    assert not ApiKey.objects.filter(name="bare").exists()


def test_manager_asking_for_a_service_key_gets_a_personal_key(world):
    client = login_client(world.manager_a)
    client.post("/w/alpha/api-keys/", {"action": "create", "name": "mine", "kind": "service", "scopes": ["members:read"]})
    key = ApiKey.objects.get(name="mine")
    assert key.membership_id == world.manager_a.pk and key.scopes == []


def test_create_api_key_command_prints_a_working_personal_key_once(world):
    out, err = StringIO(), StringIO()
    call_command("create_api_key", "alpha", "MEMBER@alpha.test", "--name", "ci", stdout=out, stderr=err)
    plain = out.getvalue().strip()
    assert plain.startswith("gh_") and plain not in err.getvalue()
    assert ApiKey.objects.get(name="ci").membership_id == world.member_a.pk
    assert ApiClient(plain).get("/api/v1/workspaces/alpha/").status_code == 200


def test_create_api_key_command_refuses_a_member_of_another_workspace(world):
    with pytest.raises(CommandError):
        call_command("create_api_key", "alpha", "owner@bravo.test", "--name", "x", stdout=StringIO(), stderr=StringIO())


def test_openapi_schema_is_public_and_describes_the_api(world):
    response = Client().get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    schema = response.json()
    assert "/api/v1/workspaces/{slug}/access-check" in schema["paths"]
    assert set(schema["components"]["securitySchemes"]) == {"bearerApiKey", "headerApiKey"}
    # Every operation of the key-authenticated API tells clients how to send the key (either header),
    # the access check included (it authenticates with its own subclass, which also reads its decision).
    for path, operations in schema["paths"].items():
        if path.startswith("/api/v1/") and not path.endswith("/audit-events/"):
            for method, operation in operations.items():
                assert operation.get("security") == [{"bearerApiKey": []}, {"headerApiKey": []}], (method, path)


@pytest.mark.parametrize("path", ["/api/docs/", "/api/redoc/"])
def test_api_docs_load_their_assets_from_local_static_files_only(world, path):
    html = Client().get(path).content.decode()
    assets = re.findall(r'(?:src|href)="([^"]+\.(?:js|css))"', html)
    assert assets, html
    assert all(a.startswith("/static/drf_spectacular_sidecar/") for a in assets), assets
    assert "cdn." not in html and "unpkg" not in html and "jsdelivr" not in html


def test_unknown_api_path_is_a_json_404(world):
    response = Client().get("/api/v1/nothing-here/")
    assert response.status_code == 404 and response.json() == {"detail": "Not found."}
