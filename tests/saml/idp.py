"""A test IdP: throwaway RSA keys generated at test time, and real, Okta-shaped signed SAML responses.

Okta signs the Assertion and then the Response (both RSA-SHA256, exclusive c14n, KeyInfo with the cert).
``build_response`` makes exactly that with signxml; keyword arguments change one thing at a time so each
attack test says what it breaks. Test-only keys: nothing here is a secret.

With ``encrypt_to`` (an SP certificate, as read from Gatehouse's published SP metadata) the signed assertion is
encrypted the way Okta's "Assertion Encryption" does it: sign the assertion, encrypt it (xmlsec1 ``--encrypt``
through pysaml2's ``CryptoBackendXmlSec1.encrypt_assertion``, RSA-OAEP + AES), then sign the Response over the
ciphertext. ``verify_authn_request`` is the IdP's side of signed requests: it checks the Redirect-binding signature
(SAMLRequest, RelayState, SigAlg, Signature) with pysaml2's ``verify_redirect_signature`` against the SP certificates
the IdP imported, and refuses an unsigned or tampered request.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import tempfile
import uuid
import zlib
from dataclasses import dataclass
from urllib.parse import parse_qs, urlparse

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from lxml import etree
from saml2.sigver import CryptoBackendXmlSec1, RSACrypto, pre_encryption_part, verify_redirect_signature
from signxml import SignatureConstructionMethod, XMLSigner

EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
SCM_BEARER = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
SCM_SENDER_VOUCHES = "urn:oasis:names:tc:SAML:2.0:cm:sender-vouches"


@dataclass(frozen=True)
class IdpKey:
    key_pem: bytes
    cert_pem: bytes

    @property
    def cert_b64(self) -> str:
        return "".join(self.cert_pem.decode().strip().splitlines()[1:-1])


@functools.lru_cache(maxsize=8)
def make_key(name: str = "test-idp", days: int = 365) -> IdpKey:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    return IdpKey(
        key_pem=key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
        cert_pem=cert.public_bytes(serialization.Encoding.PEM),
    )


def idp_metadata(entity_id: str, sso_url: str, *keys: IdpKey) -> str:
    kds = "".join(
        f'<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{k.cert_b64}'
        "</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"
        for k in keys
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" '
        f'xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="{entity_id}">'
        '<md:IDPSSODescriptor WantAuthnRequestsSigned="false" protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">'
        f"{kds}"
        "<md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress</md:NameIDFormat>"
        f'<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="{sso_url}"/>'
        f'<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="{sso_url}"/>'
        "</md:IDPSSODescriptor></md:EntityDescriptor>"
    )


MD = "{urn:oasis:names:tc:SAML:2.0:metadata}"
DS = "{http://www.w3.org/2000/09/xmldsig#}"
AES256_CBC = "http://www.w3.org/2001/04/xmlenc#aes256-cbc"
AES256_GCM = "http://www.w3.org/2009/xmlenc11#aes256-gcm"
RSA_OAEP = "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p"
RSA_1_5 = "http://www.w3.org/2001/04/xmlenc#rsa-1_5"


class IdpRefused(Exception):
    """The test IdP refuses the AuthnRequest (unsigned, badly signed, tampered), as Okta with "Signed Requests" does."""


def sp_certificates(sp_metadata: str | bytes, use: str) -> list[str]:
    """The PEM certificates Gatehouse's SP metadata publishes for ``use`` ("signing" or "encryption")."""
    root = etree.fromstring(sp_metadata.encode() if isinstance(sp_metadata, str) else sp_metadata)
    out = []
    for kd in root.iter(f"{MD}KeyDescriptor"):
        if kd.get("use") == use:
            b64 = "".join(kd.find(f".//{DS}X509Certificate").text.split())
            lines = [b64[i:i + 64] for i in range(0, len(b64), 64)]
            out.append("-----BEGIN CERTIFICATE-----\n" + "\n".join(lines) + "\n-----END CERTIFICATE-----\n")
    return out


def verify_authn_request(location: str, trusted_certs: list[str]) -> etree._Element:
    """The AuthnRequest of a Redirect-binding URL, once its signature verifies with one of ``trusted_certs``."""
    query = {k: v[0] for k, v in parse_qs(urlparse(location).query).items()}
    if "Signature" not in query or "SigAlg" not in query:
        raise IdpRefused("the AuthnRequest is not signed")
    if query["SigAlg"] != "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256":
        raise IdpRefused(f"signature algorithm {query['SigAlg']}")
    bodies = ["".join(c.strip().splitlines()[1:-1]) for c in trusted_certs]  # pysaml2 wants the base64 body
    if not any(verify_redirect_signature(query, RSACrypto(None), cert=body) for body in bodies):
        raise IdpRefused("the AuthnRequest's signature does not verify with the SP certificate")
    return etree.fromstring(zlib.decompress(base64.b64decode(query["SAMLRequest"]), -15))


def _encrypt_assertion(response: etree._Element, cert_pem: str, *, key_transport: str = RSA_OAEP,
                       content: str = AES256_CBC) -> etree._Element:
    """Replace the Response's Assertion by an EncryptedAssertion to ``cert_pem`` (xmlsec1 through pysaml2)."""
    assertion = response.find("{urn:oasis:names:tc:SAML:2.0:assertion}Assertion")
    # Declared under the assertion's own prefix: lxml re-maps a moved element's prefixes to its new parent's.
    wrapper = etree.Element("{urn:oasis:names:tc:SAML:2.0:assertion}EncryptedAssertion",
                            nsmap={"saml2": "urn:oasis:names:tc:SAML:2.0:assertion"})
    response.replace(assertion, wrapper)
    wrapper.append(assertion)
    template = pre_encryption_part(msg_enc=content, key_enc=key_transport)
    with tempfile.NamedTemporaryFile("w", suffix=".pem") as cert_file:
        cert_file.write(cert_pem)
        cert_file.flush()
        out = CryptoBackendXmlSec1("/usr/bin/xmlsec1").encrypt_assertion(
            etree.tostring(response).decode(), cert_file.name, template, key_type="aes-256",
            node_xpath="/*[local-name()='Response']/*[local-name()='EncryptedAssertion']/*[local-name()='Assertion']",
        )
    return etree.fromstring(out.encode())


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _LegacySigner(XMLSigner):
    """signxml refuses SHA-1 by default (rightly); the test IdP needs it to prove Gatehouse refuses it too."""

    def check_deprecated_methods(self) -> None:
        return None


def _sign(element: etree._Element, key: IdpKey, *, sha1: bool = False) -> etree._Element:
    signer = (_LegacySigner if sha1 else XMLSigner)(
        method=SignatureConstructionMethod.enveloped,
        signature_algorithm="rsa-sha1" if sha1 else "rsa-sha256",
        digest_algorithm="sha1" if sha1 else "sha256",
        c14n_algorithm=EXC_C14N,
    )
    signer.namespaces = {"ds": "http://www.w3.org/2000/09/xmldsig#"}
    return signer.sign(element, key=key.key_pem, cert=key.cert_pem.decode(), reference_uri=element.get("ID"))


def build_response(
    *,
    sp_entity_id: str,
    acs_url: str,
    idp_entity_id: str,
    key: IdpKey,
    name_id: str,
    in_response_to: str | None = None,
    groups: tuple[str, ...] = (),
    attributes: dict[str, list[str]] | None = None,
    first_name: str = "Ada",
    last_name: str = "Lovelace",
    now: dt.datetime | None = None,
    not_before_offset: dt.timedelta = dt.timedelta(minutes=-5),
    valid_for: dt.timedelta = dt.timedelta(minutes=5),
    session_valid_for: dt.timedelta | None = dt.timedelta(hours=8),
    destination: str | None = None,
    recipient: str | None = None,
    audience: str | None = None,
    issuer: str | None = None,
    method: str = SCM_BEARER,
    sign_assertion: bool = True,
    sign_response: bool = True,
    sha1: bool = False,
    assertion_id: str | None = None,
    as_bytes: bool = False,
    response_extra: str = "",
    encrypt_to: str | None = None,
    key_transport: str = RSA_OAEP,
    content_encryption: str = AES256_CBC,
) -> str | bytes:
    """An Okta-shaped Response, base64 encoded as the browser posts it (or raw XML bytes with ``as_bytes``)."""
    now = now or dt.datetime.now(dt.UTC)
    resp_id = "id" + uuid.uuid4().hex
    assertion_id = assertion_id or "id" + uuid.uuid4().hex
    irt = f' InResponseTo="{in_response_to}"' if in_response_to else ""
    issuer = issuer or idp_entity_id
    attrs = "".join(
        f'<saml2:Attribute Name="{n}" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:unspecified">'
        + "".join(f'<saml2:AttributeValue xmlns:xs="http://www.w3.org/2001/XMLSchema" '
                  f'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="xs:string">{v}</saml2:AttributeValue>' for v in vals)
        + "</saml2:Attribute>"
        for n, vals in (("firstName", [first_name]), ("lastName", [last_name]), ("groups", list(groups)),
                        *(attributes or {}).items())
        if vals
    )
    session = f' SessionNotOnOrAfter="{_iso(now + session_valid_for)}"' if session_valid_for else ""
    assertion_xml = (
        '<saml2:Assertion xmlns:saml2="urn:oasis:names:tc:SAML:2.0:assertion" '
        f'ID="{assertion_id}" IssueInstant="{_iso(now)}" Version="2.0">'
        f'<saml2:Issuer Format="urn:oasis:names:tc:SAML:2.0:nameid-format:entity">{issuer}</saml2:Issuer>'
        '<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#" Id="placeholder"/>'
        "<saml2:Subject>"
        f'<saml2:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress">{name_id}</saml2:NameID>'
        f'<saml2:SubjectConfirmation Method="{method}">'
        f'<saml2:SubjectConfirmationData{irt} NotOnOrAfter="{_iso(now + valid_for)}" Recipient="{recipient or acs_url}"/>'
        "</saml2:SubjectConfirmation></saml2:Subject>"
        f'<saml2:Conditions NotBefore="{_iso(now + not_before_offset)}" NotOnOrAfter="{_iso(now + valid_for)}">'
        f"<saml2:AudienceRestriction><saml2:Audience>{audience or sp_entity_id}</saml2:Audience></saml2:AudienceRestriction>"
        "</saml2:Conditions>"
        f'<saml2:AuthnStatement AuthnInstant="{_iso(now)}" SessionIndex="{assertion_id}"{session}>'
        "<saml2:AuthnContext><saml2:AuthnContextClassRef>"
        "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
        "</saml2:AuthnContextClassRef></saml2:AuthnContext></saml2:AuthnStatement>"
        f"<saml2:AttributeStatement>{attrs}</saml2:AttributeStatement>"
        "</saml2:Assertion>"
    )
    assertion = etree.fromstring(assertion_xml)
    if sign_assertion:
        assertion = _sign(assertion, key, sha1=sha1)
    else:
        placeholder = assertion.find("{http://www.w3.org/2000/09/xmldsig#}Signature")
        assertion.remove(placeholder)
    response = etree.fromstring(
        '<saml2p:Response xmlns:saml2p="urn:oasis:names:tc:SAML:2.0:protocol" '
        f'Destination="{destination or acs_url}" ID="{resp_id}"{irt} IssueInstant="{_iso(now)}" Version="2.0">'
        f'<saml2:Issuer xmlns:saml2="urn:oasis:names:tc:SAML:2.0:assertion" '
        f'Format="urn:oasis:names:tc:SAML:2.0:nameid-format:entity">{issuer}</saml2:Issuer>'
        '<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#" Id="placeholder"/>'
        '<saml2p:Status><saml2p:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></saml2p:Status>'
        f"{response_extra}</saml2p:Response>"
    )
    response.append(assertion)
    if encrypt_to:
        response = _encrypt_assertion(response, encrypt_to, key_transport=key_transport, content=content_encryption)
    if sign_response:
        response = _sign(response, key, sha1=sha1)
    else:
        response.remove(response.find("{http://www.w3.org/2000/09/xmldsig#}Signature"))
    raw = etree.tostring(response)
    return raw if as_bytes else base64.b64encode(raw).decode()


def encode(raw: bytes | str) -> str:
    if isinstance(raw, str):
        raw = raw.encode()
    return base64.b64encode(raw).decode()
