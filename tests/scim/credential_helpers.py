"""Shared set-up for the SCIM credential and OAuth tests (not a conftest: the SCIM endpoint tests own that)."""

from __future__ import annotations

import base64

from django.test import RequestFactory

from workspaces.services import actor_for_membership


def owner_actor(membership):
    return actor_for_membership(membership, "password")


def scim_request(authorization: str | None, *, ip: str = "203.0.113.7", path: str = "/scim/v2/alpha/Users"):
    extra = {"REMOTE_ADDR": ip}
    if authorization is not None:
        extra["HTTP_AUTHORIZATION"] = authorization
    return RequestFactory().get(path, **extra)


def basic(key_and_secret: str) -> str:
    return "Basic " + base64.b64encode(key_and_secret.encode()).decode()


def enable_scim(*workspaces) -> None:
    for ws in workspaces:
        ws.scim_enabled = True
        ws.save(update_fields=["scim_enabled"])


def bearer_status(access_token: str, slug: str = "alpha") -> int:
    """What ``authenticate_scim_request`` answers a SCIM request carrying this bearer token: 200 or the status."""
    from scim.auth import ScimAuthError, authenticate_scim_request

    try:
        authenticate_scim_request(scim_request(f"Bearer {access_token}"), slug)
    except ScimAuthError as exc:
        return exc.status
    return 200
