"""The connector API's DRF authentication class, called directly: who ``request.user`` and ``request.auth`` are for
a personal key and a service key, what an empty key is told, and which slug of the URL the key is held to.

Through the endpoints the permission classes refuse most of the same requests again, so a wrong user or a lost
slug would go unnoticed there; here the class is the only layer.
"""

from __future__ import annotations

import pytest
from django.test import RequestFactory
from rest_framework import exceptions
from rest_framework.request import Request

from tests.api.conftest import SETUP
from workspaces.api.authentication import ApiKeyAuthentication, ApiPrincipal, ServiceKeyUser, resolve_api_key
from workspaces.models import ApiKey
from workspaces.services import api_key_create


def drf_request(key: str | None = None, *, slug: str | None = None, header: str = "bearer") -> Request:
    headers = {}
    if key is not None:
        headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"} if header == "bearer" else {"HTTP_X_API_KEY": key}
    request = Request(RequestFactory().get("/api/v1/", **headers))
    request.parser_context = {"kwargs": {"slug": slug} if slug is not None else {}}
    return request


def test_a_personal_key_is_its_members_user(world):
    row, plain = api_key_create(workspace=world.a, membership=world.manager_a, name="mine", actor=SETUP)
    user, principal = ApiKeyAuthentication().authenticate(drf_request(plain, slug="alpha"))
    assert user == world.manager_a.user
    assert isinstance(principal, ApiPrincipal)
    assert (principal.api_key.pk, principal.workspace, principal.membership) == (row.pk, world.a, world.manager_a)
    assert not principal.is_service_key


def test_a_service_key_is_no_person(world):
    row, plain = api_key_create(workspace=world.a, membership=None, name="connector", scopes=["members:read"],
                                actor=SETUP)
    user, principal = ApiKeyAuthentication().authenticate(drf_request(plain, header="x-api-key"))
    assert isinstance(user, ServiceKeyUser)
    assert user.api_key.pk == row.pk and principal.api_key.pk == row.pk
    assert str(user) == f"service key {row.prefix}"
    assert (user.is_authenticated, user.is_anonymous, user.is_staff, user.is_superuser, user.pk) == (
        True, False, False, False, None)
    assert principal.membership is None and principal.is_service_key


def test_the_slug_of_the_url_must_be_the_keys_workspace(world):
    _, plain = api_key_create(workspace=world.a, membership=world.manager_a, name="mine", actor=SETUP)
    with pytest.raises(exceptions.AuthenticationFailed) as refused:
        ApiKeyAuthentication().authenticate(drf_request(plain, slug="bravo"))
    assert str(refused.value.detail) == "Invalid, expired or revoked API key."
    # No slug in the URL (the key's own workspace is implied): accepted.
    assert ApiKeyAuthentication().authenticate(drf_request(plain))[1].workspace == world.a


def test_no_key_is_no_authentication_and_an_empty_key_is_named(world):
    assert ApiKeyAuthentication().authenticate(drf_request()) is None
    for header in ("bearer", "x-api-key"):
        with pytest.raises(exceptions.AuthenticationFailed) as refused:
            ApiKeyAuthentication().authenticate(drf_request("", header=header))
        assert str(refused.value.detail) == "Empty API key."


def test_the_challenge_names_the_scheme_and_realm(world):
    assert ApiKeyAuthentication().authenticate_header(drf_request()) == 'Bearer realm="gatehouse-api"'
    assert ApiKey.objects.count() == 0


def test_the_key_read_with_an_access_decision_is_the_same_principal(world):
    # On PostgreSQL the key and the access check's decision row are one statement; the principal is the same.
    row, plain = api_key_create(workspace=world.a, membership=world.manager_a, name="mine", actor=SETUP)
    for repository in (None, "libs"):
        principal = resolve_api_key(plain, "alpha", repository=repository)
        assert (principal.api_key.pk, principal.workspace, principal.membership) == (row.pk, world.a, world.manager_a)
        assert principal.membership.user == world.manager_a.user
