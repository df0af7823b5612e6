"""Secrets we issue (API keys, SCIM credentials, OAuth client secrets) and how a presented one is checked.

What the API key check (``workspaces.api.authentication``) and the SCIM credential check (``scim.auth``)
share, stated once:

* ``hash_secret``: what is stored of a secret;
* ``authorization`` / ``decode_basic`` / ``split_token``: reading the ``Authorization`` header and a
  presented token (``<prefix><public id>_<secret>``) into the public id the row is found by and the
  secret that is hashed;
* ``secret_matches``: the constant-time comparison, which hashes and compares even when no row was
  found, so timing does not tell which ids exist;
* ``record_use``: the "last used" write, at most once a minute per credential;
* ``challenge`` / ``www_authenticate``: the ``WWW-Authenticate`` header of a 401.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from django.utils import timezone

# "Last used" is for humans: at most one write a minute per credential keeps it off the hot path.
LAST_USED_EVERY = timedelta(minutes=1)


def hash_secret(secret: str) -> str:
    """SHA-256 of a server-generated 256-bit secret (no dictionary exists to attack it)."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


# Compared against when no credential was found: the same work as a real comparison.
_NO_SUCH_HASH = hash_secret("")


class Presented(NamedTuple):
    """A presented token: the public id its row is found by ("" when the token is not of the expected
    shape) and the secret whose hash is compared."""

    public_id: str
    secret: str


_NOTHING = Presented("", "")


def authorization(header: str) -> tuple[str, str]:
    """An ``Authorization`` header as (scheme in lower case, credentials), both stripped."""
    scheme, _, value = header.strip().partition(" ")
    return scheme.lower(), value.strip()


def decode_basic(value: str) -> tuple[str, str] | None:
    """HTTP Basic credentials (RFC 7617) as (user id, password); None when not valid base64 UTF-8
    or without a colon."""
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    user_id, sep, password = decoded.partition(":")
    return (user_id, password) if sep else None


def split_token(raw: str, prefix: str, *, max_id_length: int | None = None) -> Presented:
    """``<prefix><public id>_<secret>`` -> (public id, the whole token: what is hashed and stored).

    Anything else (another prefix, an empty part, an id longer than ``max_id_length``) -> ("", "").
    """
    if not raw.startswith(prefix):
        return _NOTHING
    public_id, sep, secret = raw[len(prefix):].partition("_")
    if not (sep and public_id and secret) or (max_id_length is not None and len(public_id) > max_id_length):
        return _NOTHING
    return Presented(public_id, raw)


def secret_matches(secret: str, stored_hash: str | None) -> bool:
    """Whether ``secret`` hashes to ``stored_hash``, compared in constant time.

    ``stored_hash`` None or empty (no such credential, or one without a secret) never matches, and
    costs the same hashing and comparison as a real one, so timing does not reveal which ids exist.
    """
    matched = hmac.compare_digest(hash_secret(secret), stored_hash or _NO_SUCH_HASH)
    return matched and bool(stored_hash)


def record_use(credential: Any, now: datetime | None = None) -> bool:
    """Write the credential's ``last_used_at`` when it is unset or at least ``LAST_USED_EVERY`` old.

    One ``UPDATE`` of that column only (no ``save()``, no signals); the instance gets the new value too.
    True when written.
    """
    now = now or timezone.now()
    if credential.last_used_at is not None and now - credential.last_used_at < LAST_USED_EVERY:
        return False
    type(credential)._default_manager.filter(pk=credential.pk).update(last_used_at=now)
    credential.last_used_at = now
    return True


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def challenge(scheme: str, *, realm: str, **params: str) -> str:
    """One challenge (RFC 7235 section 4.1): ``Bearer realm="gatehouse-api"``; ``params`` follow the realm
    as quoted strings (``charset="UTF-8"`` for Basic, RFC 7617 section 2.1)."""
    pairs = [f"realm={_quoted(realm)}", *(f"{name}={_quoted(value)}" for name, value in params.items())]
    return f"{scheme} {', '.join(pairs)}"


def www_authenticate(*challenges: str) -> str:
    """The ``WWW-Authenticate`` value offering each challenge, in order of preference."""
    return ", ".join(challenges)
