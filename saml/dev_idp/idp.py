"""The development IdP: its key pair, its pysaml2 configuration, its metadata and its signed responses."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from django.conf import settings
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.config import IdPConfig
from saml2.metadata import entity_descriptor
from saml2.saml import NAME_FORMAT_BASIC, NAMEID_FORMAT_EMAILADDRESS, NameID
from saml2.server import Server
from saml2.sigver import RSA_OAEP_MGF1P, get_pem_wrapped_unwrapped, make_temp, pre_encryption_part
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

from ..models import SamlSettings
from ..selectors import sp_keys_for
from ..sp import sp_metadata_xml

KEY_NAME = "idp-key.pem"
CERT_NAME = "idp-cert.pem"
AES256_CBC = "http://www.w3.org/2001/04/xmlenc#aes256-cbc"
CERT_DAYS = 3650  # a development key: nobody rotates it, and an expired one would only stop the demo


class DevIdpRefused(Exception):
    """The AuthnRequest cannot be answered (unreadable, not for this IdP, unknown ACS)."""


@dataclass(frozen=True)
class PendingRequest:
    """What the IdP read from an AuthnRequest: where and to whom the answer goes."""

    request_id: str
    acs_url: str
    sp_entity_id: str


def key_dir() -> Path:
    return Path(settings.DATA_DIR) / "dev-idp"


def ensure_key() -> tuple[Path, Path]:
    """The IdP's key and certificate files, generated once (the key readable by this user only)."""
    directory = key_dir()
    key_path, cert_path = directory / KEY_NAME, directory / CERT_NAME
    if key_path.exists() and cert_path.exists():
        return key_path, cert_path
    directory.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Gatehouse development IdP")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=CERT_DAYS))
        .sign(key, hashes.SHA256())
    )
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


def entity_id(slug: str) -> str:
    return f"{settings.PUBLIC_BASE_URL}/dev-idp/{slug}/metadata/"


def sso_url(slug: str) -> str:
    return f"{settings.PUBLIC_BASE_URL}/dev-idp/{slug}/sso/"


def _config(slug: str, sp_metadata: str | None) -> IdPConfig:
    key_path, cert_path = ensure_key()
    conf = IdPConfig()
    conf.load({
        "entityid": entity_id(slug),
        "xmlsec_binary": settings.SAML_XMLSEC1_BINARY,
        "key_file": str(key_path),
        "cert_file": str(cert_path),
        "metadata": {"inline": [sp_metadata]} if sp_metadata else {},
        "signing_algorithm": SIG_RSA_SHA256,
        "digest_algorithm": DIGEST_SHA256,
        "service": {
            "idp": {
                "name": f"Gatehouse development IdP ({slug})",
                "endpoints": {"single_sign_on_service": [(sso_url(slug), BINDING_HTTP_REDIRECT)]},
                "name_id_format": [NAMEID_FORMAT_EMAILADDRESS],
                "want_authn_requests_signed": False,
                # Attribute names as Okta sends them (firstName, lastName), not mapped to OIDs.
                "policy": {"default": {"lifetime": {"minutes": 5}, "name_form": NAME_FORMAT_BASIC}},
            },
        },
    })
    return conf


def metadata_xml(slug: str) -> str:
    """The IdP metadata a workspace is configured with: entity ID, SSO URL (Redirect), signing certificate."""
    descriptor = entity_descriptor(_config(slug, None))
    # pysaml2 lists every algorithm the xmlsec1 binary knows (MD5 included) as supported; this IdP signs with
    # RSA-SHA256 only, so it advertises nothing it would not use.
    descriptor.extensions = None
    return str(descriptor.to_string().decode())


class _DevServer(Server):
    """pysaml2's IdP, encrypting assertions with AES-256-CBC: its default content cipher is Triple DES, which
    Gatehouse refuses (``weak_algorithm``), and ``create_authn_response`` offers no argument to change it."""

    def _encrypt_assertion(self, encrypt_cert: Any, sp_entity_id: str, response: Any, node_xpath: Any = None) -> Any:
        certs = self.metadata.certs(sp_entity_id, "any", "encryption")
        if not certs:
            return response
        wrapped, unwrapped = get_pem_wrapped_unwrapped(certs[0][1])  # the SP's first published encryption key
        cert_file = make_temp(wrapped.encode("ascii"), decode=False, delete_tmpfiles=self.config.delete_tmpfiles)
        template = pre_encryption_part(msg_enc=AES256_CBC, key_enc=RSA_OAEP_MGF1P, encrypt_cert=unwrapped)
        return self.sec.encrypt_assertion(response, cert_file.name, template, key_type="aes-256",
                                          node_xpath=node_xpath)


def _server(slug: str, cfg: SamlSettings | None) -> Server:
    """pysaml2's IdP, knowing this workspace's SP by the SP metadata Gatehouse publishes."""
    return _DevServer(config=_config(slug, sp_metadata_xml(slug, cfg, sp_keys_for(cfg))))


def read_request(slug: str, cfg: SamlSettings | None, saml_request: str) -> PendingRequest:
    """Parse a Redirect-binding AuthnRequest and find its ACS in the SP metadata."""
    server = _server(slug, cfg)
    try:
        parsed = server.parse_authn_request(saml_request, BINDING_HTTP_REDIRECT)
        args = server.response_args(parsed.message, [BINDING_HTTP_POST])
    except Exception as exc:  # pysaml2 raises many types for one reason: not a request this IdP can answer
        raise DevIdpRefused(f"{type(exc).__name__}: {exc}") from None
    return PendingRequest(request_id=args["in_response_to"], acs_url=args["destination"],
                          sp_entity_id=args["sp_entity_id"])


def signed_response(slug: str, cfg: SamlSettings | None, pending: PendingRequest, *, email: str,
                    first_name: str = "", last_name: str = "") -> str:
    """A SAML Response for ``email``, Response and Assertion both signed (RSA-SHA256), as Okta sends them. When the
    SP metadata publishes an encryption certificate (the workspace has an SP key), the signed assertion is encrypted
    to it (RSA-OAEP, AES-CBC) before the Response is signed, as an IdP configured from that metadata does."""
    server = _server(slug, cfg)
    identity = {"firstName": [first_name] if first_name else [], "lastName": [last_name] if last_name else []}
    response = server.create_authn_response(
        identity={k: v for k, v in identity.items() if v},
        in_response_to=pending.request_id,
        destination=pending.acs_url,
        sp_entity_id=pending.sp_entity_id,
        name_id=NameID(format=NAMEID_FORMAT_EMAILADDRESS, text=email),
        authn={"class_ref": "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"},
        sign_response=True,
        sign_assertion=True,
        # Asked for only with a certificate: asked for without one, pysaml2 leaves the assertion unsigned.
        encrypt_assertion=server.has_encrypt_cert_in_metadata(pending.sp_entity_id),
        encrypt_assertion_self_contained=True,
        sign_alg=SIG_RSA_SHA256,
        digest_alg=DIGEST_SHA256,
    )
    return str(response)
