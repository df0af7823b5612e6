"""Repeated authentication failures are answered with 429 and a Retry-After, in the shared cache."""

from __future__ import annotations

import time

import pytest
from django.test import override_settings

from scim.auth import ScimAuthError, authenticate_scim_request
from scim.services import scim_credential_create

from .credential_helpers import basic, enable_scim, owner_actor, scim_request

LIMITS = {"SCIM_AUTH_FAILURE_LIMIT": 3, "SCIM_AUTH_FAILURE_IP_LIMIT": 5, "SCIM_AUTH_FAILURE_WINDOW": 120}


@pytest.fixture(autouse=True)
def _mid_window(monkeypatch):
    """Fixed windows restart every counter at their boundary: a test whose failures straddled one
    (a slow machine, a hashed secret per failure) would see its counts reset. Pin the limiter's
    clock to the middle of a window; each test still gets its own counters (the cache is emptied)."""
    window = LIMITS["SCIM_AUTH_FAILURE_WINDOW"]
    pinned = (int(time.time() // window) + 0.5) * window
    monkeypatch.setattr("config.ratelimit._now", lambda: pinned)


def _fail(request, slug: str = "alpha") -> ScimAuthError:
    with pytest.raises(ScimAuthError) as exc:
        authenticate_scim_request(request, slug)
    return exc.value


@pytest.fixture
def bearer_a(world):
    enable_scim(world.a, world.b)
    return scim_credential_create(workspace=world.a, kind="bearer", name="Okta", actor=owner_actor(world.owner_a))


@override_settings(**LIMITS)
def test_repeated_failures_from_one_ip_get_429_with_retry_after(world, bearer_a):
    for _ in range(3):
        assert _fail(scim_request("Bearer wrong", ip="198.51.100.1")).status == 401
    error = _fail(scim_request("Bearer wrong", ip="198.51.100.1"))
    assert error.status == 429
    assert 1 <= error.retry_after <= 120
    assert error.headers == {"Retry-After": str(error.retry_after)}


@override_settings(**LIMITS)
def test_a_blocked_ip_still_gets_429_for_bad_credentials_but_a_valid_credential_gets_in(world, bearer_a):
    """The failures counted against an address may be a stranger's (addresses are shared): a valid credential
    is never refused because of them."""
    _, token = bearer_a
    for _ in range(3):
        _fail(scim_request("Bearer wrong", ip="198.51.100.2"))
    assert _fail(scim_request("Bearer wrong", ip="198.51.100.2")).status == 429
    assert _fail(scim_request("", ip="198.51.100.2")).status == 429
    assert authenticate_scim_request(scim_request(f"Bearer {token}", ip="198.51.100.2"), "alpha").workspace == world.a


@override_settings(**LIMITS)
def test_failures_from_one_ip_do_not_block_another_ip(world, bearer_a):
    _, token = bearer_a
    for _ in range(4):
        _fail(scim_request("Bearer wrong", ip="198.51.100.3"))
    assert authenticate_scim_request(scim_request(f"Bearer {token}", ip="198.51.100.4"), "alpha").workspace == world.a


@override_settings(**LIMITS)
def test_failures_against_one_workspace_do_not_block_the_same_ip_on_another_workspace(world, bearer_a):
    # Okta's provisioning engine shares egress IPs between its customers.
    b_credential, b_token = scim_credential_create(
        workspace=world.b, kind="bearer", name="Okta B", actor=owner_actor(world.outsider_b)
    )
    for _ in range(3):
        _fail(scim_request("Bearer wrong", ip="198.51.100.5"), "alpha")
    assert _fail(scim_request("Bearer wrong", ip="198.51.100.5"), "alpha").status == 429
    assert authenticate_scim_request(scim_request(f"Bearer {b_token}", ip="198.51.100.5"), "bravo").credential == b_credential


@override_settings(**LIMITS)
def test_one_ip_failing_across_many_workspaces_is_limited_too(world, bearer_a):
    for slug in ("s1", "s2", "s3", "s4", "s5"):
        assert _fail(scim_request("Bearer wrong", ip="198.51.100.6"), slug).status == 401
    assert _fail(scim_request("Bearer wrong", ip="198.51.100.6"), "s6").status == 429


@override_settings(**LIMITS)
def test_a_stranger_failing_with_the_idps_key_id_never_locks_the_idp_out(world, bearer_a):
    """Key ids are visible (a bearer token's prefix, a Basic user name): failures are counted per address,
    never per key id, so a stranger replaying the IdP's key id with guesses from many addresses changes nothing
    for the IdP."""
    enable_scim(world.a)
    _, key_and_secret = scim_credential_create(
        workspace=world.a, kind="basic", name="Basic", actor=owner_actor(world.owner_a)
    )
    key_id = key_and_secret.split(":")[0]
    _, token = bearer_a
    bearer_key_id = token.split("_")[1]
    for n in range(30):
        _fail(scim_request(basic(f"{key_id}:guess{n}"), ip=f"192.0.2.{n % 10 + 1}"))
        _fail(scim_request(f"Bearer gs_{bearer_key_id}_guess{n}", ip=f"192.0.2.{n % 10 + 1}"))
    assert authenticate_scim_request(scim_request(basic(key_and_secret), ip="203.0.113.9"), "alpha").workspace == world.a
    assert authenticate_scim_request(scim_request(f"Bearer {token}", ip="203.0.113.9"), "alpha").workspace == world.a


@override_settings(**LIMITS)
def test_successful_requests_do_not_count_towards_the_limit(world, bearer_a):
    _, token = bearer_a
    for _ in range(10):
        authenticate_scim_request(scim_request(f"Bearer {token}", ip="198.51.100.7"), "alpha")


@override_settings(**LIMITS)
def test_scim_switched_off_403_does_not_count_as_a_failure(world, bearer_a):
    _, token = bearer_a
    world.a.scim_enabled = False
    world.a.save(update_fields=["scim_enabled"])
    for _ in range(5):
        assert _fail(scim_request(f"Bearer {token}", ip="198.51.100.8")).status == 403


def test_401_errors_carry_a_www_authenticate_challenge(world, bearer_a):
    error = _fail(scim_request("Bearer wrong", ip="198.51.100.9"))
    assert error.status == 401 and error.retry_after is None
    assert "Bearer" in error.headers["WWW-Authenticate"]
