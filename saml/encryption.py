"""Encrypted assertions: from a Response carrying one ``saml:EncryptedAssertion`` to the same Response carrying the
plaintext ``saml:Assertion``, which the ACS then checks exactly as an unencrypted one.

Decryption is python-xmlsec (libxmlsec1, the library behind the ``xmlsec1`` command), in process, with this
workspace's SP private keys (active, next and previous during rollover; never another workspace's). What it stops:

* Encryption proves nothing about who wrote the assertion: the SP certificate is public, so anyone can encrypt to
  it. The decrypted assertion must therefore carry its own IdP signature (SAML core 6.2: a signed assertion is
  signed, then encrypted); a signature on the Response covers only the ciphertext and is checked first (the
  caller's ``verify_outer``), on the document as received and before any private-key operation, then dropped,
  because it does not cover the plaintext the ACS reads (``_shape`` then refuses an unsigned assertion).
* One assertion, one place: exactly one EncryptedAssertion, a direct child of the Response, and no plaintext
  Assertion beside it (``multiple_assertions``), so no wrapping can put what is verified and what is read apart.
* Algorithms: RSA-OAEP key transport only (RSA PKCS#1 v1.5 is Bleichenbacher's oracle), AES-CBC or AES-GCM content.
* One refusal for every decryption failure (``decryption_failed``), whatever broke, including plaintext the hardened
  parser refuses (the precise cause goes to the audit detail only), so the answer is no padding or format oracle
  (Jager and Somorovsky's attack on XML Encryption with CBC); never a 500.
"""

from __future__ import annotations

import copy
import hashlib
import secrets
import threading
from collections.abc import Callable, Mapping

import xmlsec
from lxml import etree

from . import xmlsafe

XENC = "http://www.w3.org/2001/04/xmlenc#"
TYPE_ELEMENT = f"{XENC}Element"
KEY_TRANSPORT_ALGORITHMS = frozenset({
    f"{XENC}rsa-oaep-mgf1p",
    "http://www.w3.org/2009/xmlenc11#rsa-oaep",
})
CONTENT_ALGORITHMS = frozenset({
    f"{XENC}aes128-cbc",
    f"{XENC}aes192-cbc",
    f"{XENC}aes256-cbc",
    "http://www.w3.org/2009/xmlenc11#aes128-gcm",
    "http://www.w3.org/2009/xmlenc11#aes192-gcm",
    "http://www.w3.org/2009/xmlenc11#aes256-gcm",
})


class EncryptionRefused(Exception):
    """The encrypted assertion cannot be used; ``code`` is the audit reason."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _x(local: str) -> str:
    return f"{{{XENC}}}{local}"


def encrypted_assertion_of(root: etree._Element) -> etree._Element | None:
    """The one EncryptedAssertion a Response may carry (None when it carries none), or ``EncryptionRefused``."""
    found = list(root.iter(xmlsafe.qname("saml", "EncryptedAssertion")))
    if not found:
        return None
    if root.tag != xmlsafe.qname("samlp", "Response"):
        raise EncryptionRefused("malformed", f"root element is {root.tag}")
    if len(found) > 1 or any(True for _ in root.iter(xmlsafe.qname("saml", "Assertion"))):
        raise EncryptionRefused("multiple_assertions", "more than one assertion (encrypted or plaintext)")
    if found[0].getparent() is not root:
        raise EncryptionRefused("signature_wrapping", "the EncryptedAssertion is not a direct child of the Response")
    return found[0]


def _check_algorithms(encrypted: etree._Element) -> None:
    datas = encrypted.findall(_x("EncryptedData"))
    if len(datas) != 1 or datas[0].get("Type", TYPE_ELEMENT) != TYPE_ELEMENT:
        raise EncryptionRefused("decryption_failed", "the EncryptedAssertion must hold one encrypted element")
    method = datas[0].find(_x("EncryptionMethod"))
    if method is None or method.get("Algorithm") not in CONTENT_ALGORITHMS:
        raise EncryptionRefused("weak_algorithm", "content encryption algorithm not allowed: "
                                f"{None if method is None else method.get('Algorithm')}")
    keys = list(encrypted.iter(_x("EncryptedKey")))
    if not keys:
        raise EncryptionRefused("decryption_failed", "no EncryptedKey")
    for key in keys:
        key_method = key.find(_x("EncryptionMethod"))
        if key_method is None or key_method.get("Algorithm") not in KEY_TRANSPORT_ALGORITHMS:
            raise EncryptionRefused("weak_algorithm", "key transport algorithm not allowed: "
                                    f"{None if key_method is None else key_method.get('Algorithm')}")


_key_cache: dict[bytes, xmlsec.Key] = {}
_key_cache_lock = threading.Lock()


def _private_key(key_pem: bytes) -> xmlsec.Key:
    """The loaded key, kept per process (parsing and checking an RSA key at every login is wasted work). Keyed by the
    PEM's SHA-256, so a retired or rotated key is simply never asked for again; bounded."""
    digest = hashlib.sha256(key_pem).digest()
    key = _key_cache.get(digest)
    if key is None:
        key = xmlsec.Key.from_memory(key_pem, xmlsec.constants.KeyDataFormatPem)
        with _key_cache_lock:
            if len(_key_cache) > 256:
                _key_cache.clear()
            _key_cache[digest] = key
    return key


def _decrypt_with(encrypted: etree._Element, key_pem: bytes) -> bytes:
    """The plaintext of the one EncryptedData under (a copy of) ``encrypted``, with one private key.

    Two xmlsec steps: the RSA key unwraps the AES session key from an EncryptedKey (inside the data's KeyInfo as Okta
    and Entra send it, or beside the data as Shibboleth does), then the session key decrypts the data. Setting each
    context's key directly spares a KeysManager per call (~8 ms to create one).
    """
    work = copy.deepcopy(encrypted)
    data = work.find(_x("EncryptedData"))
    for encrypted_key in work.iter(_x("EncryptedKey")):
        unwrap = xmlsec.EncryptionContext()
        unwrap.key = _private_key(key_pem)
        try:
            session = unwrap.decrypt(encrypted_key)
        except xmlsec.Error:
            continue  # addressed to another recipient's key
        if not isinstance(session, bytes) or len(session) not in (16, 24, 32):
            raise EncryptionRefused("decryption_failed", "the EncryptedKey does not hold an AES key")
        context = xmlsec.EncryptionContext()
        context.key = xmlsec.Key.from_binary_data(xmlsec.constants.KeyDataAes, session)
        plaintext = context.decrypt(data)
        if not isinstance(plaintext, etree._Element):
            raise EncryptionRefused("decryption_failed", "the encrypted content is not an element")
        return bytes(etree.tostring(plaintext))
    raise EncryptionRefused("decryption_failed", "no EncryptedKey opens with this key")


def decrypted_response(root: etree._Element, encrypted: etree._Element, keys: Mapping[str, bytes],
                       verify_outer: Callable[[], None]) -> tuple[bytes, etree._Element, str]:
    """The Response's XML with its EncryptedAssertion replaced by the plaintext Assertion, and without the Response
    signature (``verify_outer`` checks that one first, on the document as received: an invalid one is refused).

    ``keys`` maps each key's name (its certificate's fingerprint) to its PEM; each is tried in turn (rollover: the
    IdP may encrypt to the next or previous certificate). Raises ``EncryptionRefused``. Returns the new document, its
    ``xmlsafe`` parse (which goes through every check of the ACS) and the name of the key that decrypted it.
    """
    _check_algorithms(encrypted)
    if root.find(xmlsafe.qname("ds", "Signature")) is not None:
        verify_outer()
    plaintext, used = b"", ""
    for name, key_pem in keys.items():
        try:
            plaintext, used = _decrypt_with(encrypted, key_pem), name
            break
        except (EncryptionRefused, xmlsec.Error, etree.Error, ValueError):
            continue
    if not plaintext:
        raise EncryptionRefused("decryption_failed", f"no SP key of this workspace decrypts it ({len(keys)} tried)")
    try:
        assertion = xmlsafe.parse(plaintext)
    except xmlsafe.UnsafeXml as exc:
        raise EncryptionRefused("decryption_failed", f"the decrypted text is refused ({exc.code})") from None
    if assertion.tag != xmlsafe.qname("saml", "Assertion"):
        raise EncryptionRefused("decryption_failed", f"the decrypted element is {assertion.tag}")
    response = copy.deepcopy(root)
    signature = response.find(xmlsafe.qname("ds", "Signature"))
    if signature is not None:
        response.remove(signature)
    # The plaintext goes in as the bytes it was decrypted to, not as a moved lxml element: moving an element re-maps
    # its namespace prefixes to declarations found in the new parent (by URI), and exclusive c14n digests prefixes,
    # so the IdP's assertion signature would no longer verify. A random marker element takes its place first.
    name = f"gatehouse-decrypted-{secrets.token_hex(16)}"
    response.replace(response.find(xmlsafe.qname("saml", "EncryptedAssertion")), etree.Element(name))
    text = bytes(etree.tostring(response))
    start = text.find(f"<{name}".encode())
    end = text.find(b"/>", start) + 2
    if start < 0 or end < 2:
        raise EncryptionRefused("decryption_failed", "the decrypted assertion could not be put back")
    document = text[:start] + bytes(etree.tostring(assertion)) + text[end:]
    try:
        return document, xmlsafe.parse(document), used
    except xmlsafe.UnsafeXml as exc:
        raise EncryptionRefused("decryption_failed", f"the decrypted document is refused ({exc.code})") from None
