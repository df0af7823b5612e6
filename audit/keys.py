"""Keys the audit log signs and encrypts with, derived in one place.

Two purposes, two keys, never the raw SECRET_KEY itself:
- retention checkpoints are signed with HMAC-SHA256 under ``AUDIT_CHECKPOINT_KEY`` (or a key
  derived from ``SECRET_KEY`` with HKDF when that setting is empty);
- sink HMAC secrets are stored encrypted with Fernet under ``AUDIT_SINK_KEY`` (or a key derived
  from ``SECRET_KEY``). Rotating ``SECRET_KEY`` without setting these would invalidate old
  checkpoints and make sink secrets unreadable: production sets both explicitly.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings


def _derive(info: bytes, configured: str) -> bytes:
    material = (configured or settings.SECRET_KEY).encode("utf-8")
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"gatehouse-audit", info=info).derive(material)


def checkpoint_key() -> bytes:
    return _derive(b"checkpoint-hmac", getattr(settings, "AUDIT_CHECKPOINT_KEY", ""))


def sign_checkpoint(payload: bytes) -> str:
    return hmac.new(checkpoint_key(), payload, hashlib.sha256).hexdigest()


def checkpoint_signature_ok(payload: bytes, signature: str) -> bool:
    return hmac.compare_digest(sign_checkpoint(payload), signature or "")


def _fernet() -> Fernet:
    return Fernet(base64.urlsafe_b64encode(_derive(b"sink-secret-fernet", getattr(settings, "AUDIT_SINK_KEY", ""))))


def encrypt_sink_secret(secret: str) -> str:
    return _fernet().encrypt(secret.encode("utf-8")).decode("ascii")


def decrypt_sink_secret(token: str) -> str:
    return _fernet().decrypt(token.encode("ascii")).decode("utf-8")


def sign_body(secret: str, body: bytes) -> str:
    """Value of the ``X-Gatehouse-Signature`` header: ``sha256=<hex HMAC of the raw body>``."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
