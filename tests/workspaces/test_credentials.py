"""The shared credential rules (workspaces.credentials): token parsing, constant-time comparison, last-used writes."""

from __future__ import annotations

import base64
from datetime import timedelta

from django.utils import timezone

from workspaces.credentials import (
    LAST_USED_EVERY,
    authorization,
    challenge,
    decode_basic,
    hash_secret,
    record_use,
    secret_matches,
    split_token,
    www_authenticate,
)
from workspaces.models import ApiKey
from workspaces.services import actor_for_membership, api_key_create


def test_a_prefixed_token_splits_into_its_public_id_and_the_whole_token_to_hash():
    assert split_token("gh_abc_s3cret", "gh_") == ("abc", "gh_abc_s3cret")


def test_malformed_tokens_have_no_public_id():
    for raw in ("gs_abc_s3cret", "gh_abc", "gh__s3cret", "gh_abc_", "", "abc_s3cret"):
        assert split_token(raw, "gh_") == ("", "")
    assert split_token("gh_" + "x" * 17 + "_s3cret", "gh_", max_id_length=16) == ("", "")


def test_the_authorization_header_is_read_case_insensitively():
    assert authorization("  BEARER  tok ") == ("bearer", "tok")
    assert authorization("") == ("", "")


def test_basic_credentials_decode_or_are_refused():
    assert decode_basic(base64.b64encode(b"id:pa:ss").decode()) == ("id", "pa:ss")
    assert decode_basic(base64.b64encode(b"no-colon").decode()) is None
    assert decode_basic("not base64!") is None
    assert decode_basic(base64.b64encode(b"\xff:x").decode()) is None


def test_a_secret_matches_only_its_own_hash():
    assert secret_matches("s3cret", hash_secret("s3cret"))
    assert not secret_matches("guess", hash_secret("s3cret"))


def test_nothing_matches_a_missing_or_empty_hash_not_even_the_empty_secret():
    assert not secret_matches("", None)
    assert not secret_matches("", "")
    assert not secret_matches("anything", None)


def test_last_used_is_written_at_most_once_a_minute(world):
    key, _ = api_key_create(
        workspace=world.a, membership=world.owner_a, name="ci", actor=actor_for_membership(world.owner_a, "password")
    )
    now = timezone.now()
    assert record_use(key, now) is True
    assert ApiKey.objects.get(pk=key.pk).last_used_at == now
    assert record_use(key, now + LAST_USED_EVERY - timedelta(seconds=1)) is False
    assert ApiKey.objects.get(pk=key.pk).last_used_at == now
    later = now + LAST_USED_EVERY
    assert record_use(key, later) is True
    assert key.last_used_at == later == ApiKey.objects.get(pk=key.pk).last_used_at


def test_challenges_quote_their_parameters():
    assert challenge("Bearer", realm="gatehouse-api") == 'Bearer realm="gatehouse-api"'
    assert www_authenticate(challenge("Bearer", realm="SCIM"), challenge("Basic", realm="SCIM", charset="UTF-8")) == (
        'Bearer realm="SCIM", Basic realm="SCIM", charset="UTF-8"'
    )
    assert challenge("Basic", realm='a"b\\c') == 'Basic realm="a\\"b\\\\c"'
