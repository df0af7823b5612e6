"""scim.auth layer by layer, called directly: what an IdP is told on each refusal (the detail its admin reads,
Retry-After on a 429), whose failures count against whom (per address and workspace), and the credential cache
(a repeated request reads no credential row, writes last use at most once a minute, survives a foreign cache
value)."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from scim import credential_cache
from scim.auth import ScimAuthError, authenticate_scim_request
from scim.services import scim_credential_create
from tests.scim.credential_helpers import basic, enable_scim, owner_actor, scim_request

MALFORMED = "Missing or malformed credentials. Send 'Authorization: Bearer <token>' or HTTP Basic."
INVALID = "Invalid, expired or revoked credentials."
SCIM_OFF = ("SCIM provisioning is switched off for this workspace. An Owner can enable it on the provisioning "
            "page.")


@pytest.fixture
def bearer(world) -> str:
    enable_scim(world.a, world.b)
    return scim_credential_create(workspace=world.a, kind="bearer", name="Okta", actor=owner_actor(world.owner_a))[1]


def _refusal(authorization: str | None, *, ip: str = "203.0.113.7", slug: str = "alpha") -> ScimAuthError:
    with pytest.raises(ScimAuthError) as refused:
        authenticate_scim_request(scim_request(authorization, ip=ip, path=f"/scim/v2/{slug}/Users"), slug)
    return refused.value


def _fail_until_limited(*, ip: str, slug: str = "alpha") -> None:
    for _ in range(10):  # SCIM_AUTH_FAILURE_LIMIT per address and workspace
        assert _refusal("Bearer gs_nope_nope", ip=ip, slug=slug).status == 401
    assert _refusal("Bearer gs_nope_nope", ip=ip, slug=slug).status == 429


class TestWhatTheIdpIsTold:
    @pytest.mark.parametrize("header", [None, "", "Bearer", "Basic !!!", "Basic " + "QQ==", "Negotiate abc"])
    def test_a_missing_or_malformed_header(self, world, bearer, header):
        refused = _refusal(header)
        assert (refused.status, refused.detail, str(refused)) == (401, MALFORMED, MALFORMED)

    def test_a_wrong_secret(self, world, bearer):
        refused = _refusal(f"Bearer {bearer[:-4]}XXXX")
        assert (refused.status, refused.detail) == (401, INVALID)
        assert refused.headers.get("WWW-Authenticate", "").startswith("Bearer")

    def test_scim_switched_off(self, world, bearer):
        world.a.scim_enabled = False
        world.a.save(update_fields=["scim_enabled"])
        refused = _refusal(f"Bearer {bearer}")
        assert (refused.status, refused.detail) == (403, SCIM_OFF)

    def test_an_address_at_its_limit_is_told_when_to_retry(self, world, bearer):
        _fail_until_limited(ip="198.51.100.9")
        refused = _refusal("Bearer gs_nope_nope", ip="198.51.100.9")
        assert refused.status == 429
        assert refused.detail.startswith("Too many failed authentications. Retry after ")
        seconds = int(refused.detail.removeprefix("Too many failed authentications. Retry after ").split()[0])
        assert 1 <= seconds <= 300
        assert refused.headers["Retry-After"] == str(seconds)


    def test_a_malformed_header_from_an_address_at_its_limit_is_told_when_to_retry_too(self, world, bearer):
        _fail_until_limited(ip="198.51.100.10")
        refused = _refusal("Basic !!!", ip="198.51.100.10")
        assert refused.status == 429 and refused.headers["Retry-After"]


class TestWhoseFailuresCount:
    def test_another_address_keeps_its_own_budget(self, world, bearer):
        _fail_until_limited(ip="198.51.100.1")
        assert _refusal("Bearer gs_nope_nope", ip="198.51.100.2").status == 401

    def test_the_same_address_keeps_a_budget_per_workspace(self, world, bearer):
        _fail_until_limited(ip="198.51.100.3", slug="alpha")
        assert _refusal("Bearer gs_nope_nope", ip="198.51.100.3", slug="bravo").status == 401


class TestCredentialCache:
    def _ok(self, authorization: str) -> None:
        principal = authenticate_scim_request(scim_request(authorization), "alpha")
        assert principal.workspace.slug == "alpha"

    def test_the_first_request_reads_the_row_once_with_its_workspace(self, world, bearer):
        with CaptureQueriesContext(connection) as first:
            self._ok(f"Bearer {bearer}")
        selects = [q["sql"] for q in first.captured_queries if q["sql"].lstrip().upper().startswith("SELECT")]
        assert len(selects) == 1 and "workspaces_workspace" in selects[0]

    def test_a_repeated_request_reads_and_writes_no_credential_row(self, world, bearer):
        self._ok(f"Bearer {bearer}")  # reads the row, records the use, caches it
        for _ in range(3):
            with CaptureQueriesContext(connection) as again:
                self._ok(f"Bearer {bearer}")
            assert again.captured_queries == []

    def test_basic_credentials_are_cached_too(self, world):
        enable_scim(world.a)
        shown = scim_credential_create(workspace=world.a, kind="basic", name="Okta B", actor=owner_actor(world.owner_a))[1]
        self._ok(basic(shown))
        with CaptureQueriesContext(connection) as again:
            self._ok(basic(shown))
        assert again.captured_queries == []

    def test_the_cache_is_written_when_the_row_is_read_or_its_use_recorded_not_on_every_request(
        self, world, bearer, monkeypatch
    ):
        writes = []
        original = credential_cache.remember
        monkeypatch.setattr(credential_cache, "remember", lambda c: (writes.append(c), original(c)))
        for _ in range(4):
            self._ok(f"Bearer {bearer}")
        assert len(writes) == 2  # the row read, and its first use recorded
        assert all(w is not None and w.key_id for w in writes)

    def test_a_foreign_value_under_the_key_is_ignored(self, world, bearer):
        key_id = bearer.split("_")[1]
        cache.set(credential_cache.cache_key("bearer", key_id), {"left": "by an older release"}, timeout=30)
        self._ok(f"Bearer {bearer}")

    def test_a_key_id_longer_than_any_stored_one_finds_nothing(self, world, bearer):
        secret = bearer.split("_", 2)[2]
        assert _refusal(f"Bearer gs_{'a' * 70}_{secret}").status == 401


def test_an_oauth_token_is_resolved_with_its_client_and_workspace_in_one_read(world):
    from datetime import timedelta

    from django.utils import timezone
    from oauth2_provider.models import AccessToken

    from scim.oauth import workspace_scope
    from scim.services import OAuthGrant, scim_oauth_client_create

    enable_scim(world.a)
    credential, _ = scim_oauth_client_create(workspace=world.a, name="Entra", actor=owner_actor(world.owner_a),
                                             grant=OAuthGrant.CLIENT_CREDENTIALS)
    AccessToken.objects.create(application=credential.oauth_application, token="oauth-layer-token",
                               scope=workspace_scope(world.a.pk), expires=timezone.now() + timedelta(hours=1))
    with CaptureQueriesContext(connection) as reads:
        principal = authenticate_scim_request(scim_request("Bearer oauth-layer-token"), "alpha")
    assert principal.credential.pk == credential.pk and principal.workspace.slug == "alpha"
    credential_reads = [q["sql"] for q in reads.captured_queries
                        if q["sql"].lstrip().upper().startswith("SELECT") and "scim_scimcredential" in q["sql"]]
    assert len(credential_reads) == 1 and "oauth2_provider_accesstoken" in credential_reads[0]

