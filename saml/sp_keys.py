"""This portal's own SAML key material: generated here, the private key protected at rest, the certificate public.

All cryptography is the ``cryptography`` package's: an RSA key, a self-signed X.509 certificate, and Fernet (AES-CBC
with HMAC-SHA256) under a key derived with HKDF, the same pattern ``audit/keys.py`` uses for SIEM sink secrets. The
Fernet key comes from ``SAML_SP_KEY_ENCRYPTION_KEY`` or, when that is empty, from ``SECRET_KEY`` (HKDF with its own
salt and purpose, never the raw secret): production sets it so ``SECRET_KEY`` can rotate without making every
workspace's SP key unreadable.
"""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.x509.oid import NameOID
from django.conf import settings

KEY_SIZE = 3072
# Long enough that nobody meets an expiry by surprise (IdPs do not check an SP certificate's dates for signatures or
# encryption; rollover is how a key is replaced).
VALIDITY_DAYS = 10 * 365


class SpKeyUnreadable(Exception):
    """The stored private key cannot be decrypted: ``SAML_SP_KEY_ENCRYPTION_KEY`` or ``SECRET_KEY`` changed."""


@dataclass(frozen=True)
class GeneratedKey:
    cert_pem: str
    key_pem: bytes
    fingerprint_sha256: str
    not_valid_after: dt.datetime


def _fernet() -> Fernet:
    material = (settings.SAML_SP_KEY_ENCRYPTION_KEY or settings.SECRET_KEY).encode("utf-8")
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"gatehouse-saml", info=b"sp-private-key-fernet").derive(material)
    return Fernet(base64.urlsafe_b64encode(key))


def protect(key_pem: bytes) -> str:
    return _fernet().encrypt(key_pem).decode("ascii")


def unprotect(token: str) -> bytes:
    try:
        return _fernet().decrypt(token.encode("ascii"))
    except InvalidToken:
        raise SpKeyUnreadable("the SP private key cannot be decrypted with the configured key") from None


def fingerprint(cert_pem: str) -> str:
    """SHA-256 of the DER certificate, as IdP consoles show it (``AB:CD:...``)."""
    cert = x509.load_pem_x509_certificate(cert_pem.encode("ascii"))
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def sha1_fingerprint(cert_pem: str) -> str:
    """SHA-1 of the DER certificate: what Entra ID and ADFS show as a certificate's thumbprint (an identifier, not a
    security check)."""
    cert = x509.load_pem_x509_certificate(cert_pem.encode("ascii"))
    return cert.fingerprint(hashes.SHA1()).hex(":").upper()  # noqa: S303 - a display identifier


def cert_b64(cert_pem: str) -> str:
    """The base64 DER body of a PEM certificate, as ``ds:X509Certificate`` carries it."""
    return "".join(line for line in cert_pem.strip().splitlines() if not line.startswith("-----"))


def generate(common_name: str, *, now: dt.datetime | None = None) -> GeneratedKey:
    """A new RSA key and a self-signed certificate naming ``common_name`` (the workspace's SP entity ID)."""
    now = now or dt.datetime.now(dt.UTC)
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_SIZE)
    # CN is at most 64 characters (RFC 5280 ub-common-name); a long entity ID goes in full into the SAN as a URI.
    subject = x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64]),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Gatehouse SAML SP"),
    ])
    not_after = now + dt.timedelta(days=VALIDITY_DAYS)
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(common_name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode("ascii")
    return GeneratedKey(
        cert_pem=cert_pem,
        key_pem=key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()),
        fingerprint_sha256=fingerprint(cert_pem),
        not_valid_after=cert.not_valid_after_utc,
    )


def load_private_key(token: str) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(unprotect(token), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise SpKeyUnreadable("the SP private key is not an RSA key")
    return key
