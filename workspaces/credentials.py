"""Secrets we issue (API keys, SCIM credentials, OAuth client secrets): hashing, in one place."""

from __future__ import annotations

import hashlib


def hash_secret(secret: str) -> str:
    """SHA-256 of a server-generated 256-bit secret (no dictionary exists to attack it)."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()
