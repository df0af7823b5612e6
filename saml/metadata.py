"""Parse and validate IdP metadata, and describe certificates for humans. Never trusts what it cannot check."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from datetime import datetime

from cryptography import x509

from . import xmlsafe

BINDING_REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
BINDING_POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"


class MetadataError(ValueError):
    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


@dataclass(frozen=True)
class CertInfo:
    subject: str
    fingerprint_sha256: str
    not_after: datetime
    not_before: datetime

    @property
    def expired(self) -> bool:
        from django.utils import timezone

        return self.not_after <= timezone.now()

    @property
    def expires_soon(self) -> bool:
        """Within 30 days: time to add the IdP's next certificate (several may be pinned at once)."""
        from datetime import timedelta

        from django.utils import timezone

        return not self.expired and self.not_after <= timezone.now() + timedelta(days=30)


@dataclass
class ParsedMetadata:
    entity_id: str
    sso_urls: list[dict[str, str]]
    certificates: list[str]  # base64 DER
    cert_infos: list[CertInfo] = field(default_factory=list)


def _b64_der(text: str) -> str:
    return "".join(text.split())


def cert_info(b64der: str) -> CertInfo:
    der = base64.b64decode(b64der)
    cert = x509.load_der_x509_certificate(der)
    fp = hashlib.sha256(der).hexdigest().upper()
    return CertInfo(
        subject=cert.subject.rfc4514_string(),
        fingerprint_sha256=":".join(fp[i : i + 2] for i in range(0, len(fp), 2)),
        not_after=cert.not_valid_after_utc,
        not_before=cert.not_valid_before_utc,
    )


def parse_idp_metadata(xml: str | bytes) -> ParsedMetadata:
    """Entity ID, SSO URL(s) and at least one signing certificate must be there, or ``MetadataError``."""
    try:
        root = xmlsafe.parse(xml, allow_comments=True)
    except xmlsafe.UnsafeXml as exc:
        raise MetadataError([exc.message]) from None
    md = xmlsafe.NS["md"]
    if root.tag == f"{{{md}}}EntitiesDescriptor":
        entities = [e for e in root.iter(f"{{{md}}}EntityDescriptor") if e.find(f"{{{md}}}IDPSSODescriptor") is not None]
        if len(entities) != 1:
            raise MetadataError([f"Expected metadata for exactly one IdP, found {len(entities)}."])
        entity = entities[0]
    elif root.tag == f"{{{md}}}EntityDescriptor":
        entity = root
    else:
        raise MetadataError(["This is not SAML 2.0 metadata (no md:EntityDescriptor)."])
    errors: list[str] = []
    entity_id = (entity.get("entityID") or "").strip()
    if not entity_id:
        errors.append("The metadata has no entityID.")
    idp = entity.find(f"{{{md}}}IDPSSODescriptor")
    if idp is None:
        raise MetadataError([*errors, "The metadata has no IDPSSODescriptor: is this the IdP's metadata?"])
    sso_urls = []
    for sso in idp.findall(f"{{{md}}}SingleSignOnService"):
        binding, location = sso.get("Binding", ""), (sso.get("Location") or "").strip()
        if binding in (BINDING_REDIRECT, BINDING_POST) and location.startswith(("https://", "http://")):
            sso_urls.append({"binding": binding, "location": location})
    if not any(u["binding"] == BINDING_REDIRECT for u in sso_urls):
        errors.append("The metadata has no SingleSignOnService with the HTTP-Redirect binding.")
    certs: list[str] = []
    infos: list[CertInfo] = []
    for kd in idp.findall(f"{{{md}}}KeyDescriptor"):
        if kd.get("use") not in (None, "", "signing"):
            continue
        for node in kd.iter(xmlsafe.qname("ds", "X509Certificate")):
            b64 = _b64_der(xmlsafe.text_of(node))
            try:
                info = cert_info(b64)
            except Exception:  # noqa: BLE001 - any decoding problem is the same error for the admin
                errors.append("A signing certificate in the metadata cannot be read.")
                continue
            if b64 not in certs:
                certs.append(b64)
                infos.append(info)
    if not certs:
        errors.append("The metadata has no signing certificate (KeyDescriptor use=\"signing\").")
    if errors:
        raise MetadataError(errors)
    return ParsedMetadata(entity_id=entity_id, sso_urls=sso_urls, certificates=certs, cert_infos=infos)
