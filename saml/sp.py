"""This portal as a SAML service provider of one workspace: its URLs and a pysaml2 client pinned to that IdP."""

from __future__ import annotations

import threading
from typing import Any
from xml.sax.saxutils import quoteattr

from django.conf import settings
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.client import Saml2Client
from saml2.config import SPConfig
from saml2.cryptography.asymmetric import hashes
from saml2.saml import NAMEID_FORMAT_EMAILADDRESS
from saml2.sigver import RSACrypto, RSASigner
from saml2.xmldsig import SIG_RSA_SHA256

from . import sp_keys
from .metadata import BINDING_REDIRECT
from .models import SamlSettings, SpKey, SpKeyState
from .verifier import InProcessVerifier


def sp_entity_id(slug: str) -> str:
    return f"{settings.PUBLIC_BASE_URL}/saml/{slug}/metadata/"


def acs_url(slug: str) -> str:
    return f"{settings.PUBLIC_BASE_URL}/saml/{slug}/acs/"


def login_url(slug: str) -> str:
    return f"{settings.PUBLIC_BASE_URL}/saml/{slug}/login/"


def idp_metadata_xml(cfg: SamlSettings) -> str:
    """Metadata built from what the admin validated: this IdP's entity ID and pinned certificates only."""
    keys = "".join(
        '<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>'
        f"{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"
        for cert in cfg.certificates
    )
    ssos = "".join(
        f"<md:SingleSignOnService Binding={quoteattr(u['binding'])} Location={quoteattr(u['location'])}/>"
        for u in cfg.sso_urls
    )
    return (
        '<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" '
        f'xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID={quoteattr(cfg.idp_entity_id)}>'
        '<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">'
        f"{keys}{ssos}</md:IDPSSODescriptor></md:EntityDescriptor>"
    )


class _NoPopulation:
    """pysaml2 keeps every identity it sees in process memory; we keep nothing there."""

    def add_information_about_person(self, session_info: Any) -> None:
        return None


class GatehouseClient(Saml2Client):
    def __init__(self, config: SPConfig) -> None:
        super().__init__(config)
        self.users = _NoPopulation()


def _sp_config(cfg: SamlSettings, slug: str) -> SPConfig:
    conf = SPConfig()
    conf.load({
        "entityid": sp_entity_id(slug),
        "xmlsec_binary": settings.SAML_XMLSEC1_BINARY,
        "metadata": {"inline": [idp_metadata_xml(cfg)]},
        "accepted_time_diff": cfg.clock_skew_seconds,
        "service": {
            "sp": {
                "name": f"Gatehouse {slug}",
                "endpoints": {"assertion_consumer_service": [(acs_url(slug), BINDING_HTTP_POST)]},
                "allow_unsolicited": cfg.idp_initiated,
                "authn_requests_signed": False,
                "want_assertions_signed": False,
                "want_response_signed": False,
                # One of the two must be signed; which one is checked again by the ACS.
                "want_assertions_or_response_signed": True,
                "only_use_keys_in_metadata": True,
                "name_id_format": [NAMEID_FORMAT_EMAILADDRESS],
                "name_id_format_allow_create": False,
                "allow_unknown_attributes": True,
            }
        },
        "only_use_keys_in_metadata": True,
    })
    return conf


_local = threading.local()


def client_for(cfg: SamlSettings, slug: str, *, in_process: bool = True) -> GatehouseClient:
    """A pysaml2 client for this workspace's IdP, cached per thread and settings version.

    With ``in_process`` the security context's verifier is python-xmlsec (see verifier.py); without it
    the stock ``xmlsec1`` fork (kept for the benchmark).
    """
    cache = getattr(_local, "clients", None)
    if cache is None:
        cache = _local.clients = {}
    # Everything the client is built from is in the key: a changed setting can never meet a stale client.
    key = (cfg.pk, idp_metadata_xml(cfg), cfg.idp_initiated, cfg.allow_sha1, cfg.clock_skew_seconds, slug,
           in_process, settings.PUBLIC_BASE_URL)
    client = cache.get(key)
    if client is None:
        if len(cache) > 64:
            cache.clear()
        client = GatehouseClient(_sp_config(cfg, slug))
        if in_process:
            client.sec.crypto = InProcessVerifier(allow_sha1=cfg.allow_sha1, xmlsec_binary=settings.SAML_XMLSEC1_BINARY)
        cache[key] = client
    if in_process:
        client.sec.crypto.reset()
    return client


class RequestSigner(RSACrypto):
    """pysaml2's Redirect-binding signer for one key. pysaml2's own ``get_signer`` sets the key on a module-wide
    ``RSASigner`` shared by every thread; this one builds a signer per call, so two workspaces signing at once never
    swap keys. RSA-SHA256 only."""

    def get_signer(self, sigalg: str, sigkey: Any = None) -> RSASigner | None:
        if sigalg != SIG_RSA_SHA256:
            return None
        return RSASigner(hashes.SHA256(), sigkey or self.key)


# Offered to the IdP in the encryption KeyDescriptor, strongest first (saml/encryption.py accepts exactly these).
_ENCRYPTION_METHODS = (
    "http://www.w3.org/2009/xmlenc11#aes256-gcm",
    "http://www.w3.org/2009/xmlenc11#aes128-gcm",
    "http://www.w3.org/2001/04/xmlenc#aes256-cbc",
    "http://www.w3.org/2001/04/xmlenc#aes128-cbc",
    "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p",
)


def _key_descriptors(keys: list[SpKey]) -> str:
    """KeyDescriptors for the published keys (active, and next during rollover so the IdP can import it early)."""
    out = []
    for key in keys:
        if key.state not in (SpKeyState.ACTIVE, SpKeyState.NEXT):
            continue
        info = (f"<ds:KeyInfo><ds:KeyName>{key.fingerprint_sha256}</ds:KeyName><ds:X509Data><ds:X509Certificate>"
                f"{sp_keys.cert_b64(key.cert_pem)}</ds:X509Certificate></ds:X509Data></ds:KeyInfo>")
        methods = "".join(f'<md:EncryptionMethod Algorithm="{m}"/>' for m in _ENCRYPTION_METHODS)
        out.append(f'<md:KeyDescriptor use="signing">{info}</md:KeyDescriptor>')
        out.append(f'<md:KeyDescriptor use="encryption">{info}{methods}</md:KeyDescriptor>')
    return "".join(out)


def sp_metadata_xml(slug: str, cfg: SamlSettings | None = None, keys: list[SpKey] | None = None) -> str:
    """This workspace's SP metadata: entity ID, ACS, and its published SP certificates with what they are for."""
    entity = quoteattr(sp_entity_id(slug))
    acs = quoteattr(acs_url(slug))
    keys = keys or []
    signs = bool(cfg and cfg.sign_authn_requests and any(k.state == SpKeyState.ACTIVE for k in keys))
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" '
        f'xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID={entity}>'
        f'<md:SPSSODescriptor AuthnRequestsSigned="{"true" if signs else "false"}" WantAssertionsSigned="true" '
        'protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">'
        f"{_key_descriptors(keys)}"
        f"<md:NameIDFormat>{NAMEID_FORMAT_EMAILADDRESS}</md:NameIDFormat>"
        f'<md:AssertionConsumerService Binding="{BINDING_HTTP_POST}" Location={acs} index="0" isDefault="true"/>'
        "</md:SPSSODescriptor></md:EntityDescriptor>\n"
    )


def redirect_sso_url(cfg: SamlSettings) -> str:
    for u in cfg.sso_urls:
        if u["binding"] == BINDING_REDIRECT:
            return u["location"]
    return ""


__all__ = ["BINDING_HTTP_REDIRECT", "client_for", "acs_url", "sp_entity_id", "login_url", "sp_metadata_xml"]
