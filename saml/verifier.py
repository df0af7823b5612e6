"""An in-process XML signature verifier for pysaml2's security context (python-xmlsec, no ``xmlsec1`` fork).

pysaml2 calls ``sec.crypto.validate_signature(signedtext, cert_file, cert_type, node_name, node_id)``
once per signature, after it has itself checked the xmldsig profile (one Reference, URI ``#<the element's
ID>``, allowed transforms, no ds:Object) and chosen ``cert_file`` from the IdP's metadata (never KeyInfo,
because ``only_use_keys_in_metadata`` is on). This object does the same job as the stock ``xmlsec1``
command line (``--enabled-reference-uris empty,same-doc --pubkey-cert-pem CERT --id-attr:ID NODE
--node-id ID``) in-process, and re-checks what must hold for that job to mean anything:

* exactly one element carries that ID in the whole document (duplicate IDs are how signature
  wrapping points the verifier and the reader at different elements), and it is of the expected type;
* its enveloped ds:Signature has a single same-document Reference to that very ID;
* signature and digest algorithms are on the allow-list (RSA-SHA256 or stronger; SHA-1 only when the
  workspace opts in);
* the key is the pinned certificate pysaml2 handed over: ``KeyInfo`` in the message is ignored because
  the context's key is set before verification.

The parsed tree of the last document is kept (per instance, and an instance is per thread) so the ACS can
read NameID and attributes from the element that was actually verified.
"""

from __future__ import annotations

import functools
import hashlib
import threading

import xmlsec
from lxml import etree
from saml2.sigver import CryptoBackendXmlSec1

from . import xmlsafe

SIG_RSA_SHA1 = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
DIGEST_SHA1 = "http://www.w3.org/2000/09/xmldsig#sha1"
STRONG_SIGNATURE_ALGORITHMS = frozenset({
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512",
})
STRONG_DIGEST_ALGORITHMS = frozenset({
    "http://www.w3.org/2001/04/xmlenc#sha256",
    "http://www.w3.org/2001/04/xmldsig-more#sha384",
    "http://www.w3.org/2001/04/xmlenc#sha512",
})


class SignatureRefused(Exception):
    """The signature cannot count; ``code`` is the audit reason."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class OriginalXml(str):
    """A signed element's text taken from the verified tree (not pysaml2's re-serialisation of its object), carrying
    the element itself so the schema check (``saml.schema.validate``) validates that very element without parsing."""

    element: etree._Element


# While a response is being verified (between ``prime`` and ``reset``/``release``), the Response and Assertion
# elements of the primed tree by ID, for this thread only.
_primed = threading.local()
_SIGNED_TAGS = frozenset({xmlsafe.qname("samlp", "Response"), xmlsafe.qname("saml", "Assertion")})


def original_text(item: object) -> OriginalXml | None:
    """The primed tree's element for pysaml2's ``item`` (same ID, same element type, ID unique in the document), as
    ``OriginalXml``; None outside a verification or for anything else (pysaml2 then serialises its object)."""
    table = getattr(_primed, "by_id", None)
    if not table:
        return None
    element = table.get(getattr(item, "id", None))
    if element is None or element.tag != f"{{{getattr(item, 'c_namespace', '')}}}{getattr(item, 'c_tag', '')}":
        return None
    text = OriginalXml(etree.tostring(element, encoding="unicode"))
    text.element = element
    return text


def _index_signed_elements(root: etree._Element) -> dict[str, etree._Element]:
    table: dict[str, etree._Element] = {}
    duplicated: set[str] = set()
    for element in root.iter(*_SIGNED_TAGS):
        element_id = element.get("ID")
        if element_id is None:
            continue
        if element_id in table:
            duplicated.add(element_id)  # never pick one of two: pysaml2's own text is used, and the verifier refuses
        table[element_id] = element
    for element_id in duplicated:
        del table[element_id]
    return table


_key_cache: dict[str, xmlsec.Key] = {}
_key_cache_lock = threading.Lock()


def _load_key(cert_file: str, cert_type: str) -> xmlsec.Key:
    with open(cert_file, "rb") as fh:
        data = fh.read()
    digest = hashlib.sha256(data).hexdigest()
    key = _key_cache.get(digest)
    if key is None:
        fmt = xmlsec.constants.KeyDataFormatCertPem if cert_type == "pem" else xmlsec.constants.KeyDataFormatCertDer
        key = xmlsec.Key.from_memory(data, fmt)
        with _key_cache_lock:
            if len(_key_cache) > 512:
                _key_cache.clear()
            _key_cache[digest] = key
    return key


class InProcessVerifier(CryptoBackendXmlSec1):
    """Drop-in for pysaml2's ``CryptoBackendXmlSec1`` that verifies with python-xmlsec in-process.

    Only verification is replaced; signing/encryption would still use the stock methods (Gatehouse
    signs nothing).
    """

    def __init__(self, *, allow_sha1: bool = False, xmlsec_binary: str = "xmlsec1") -> None:
        super().__init__(xmlsec_binary)
        self.allow_sha1 = allow_sha1
        self._last_text: bytes | None = None
        self._last_root: etree._Element | None = None
        self.verified: dict[str, etree._Element] = {}
        self.last_refusal: SignatureRefused | None = None

    def reset(self) -> None:
        self._last_text = None
        self._last_root = None
        self.verified = {}
        self.last_refusal = None
        self.release()

    def prime(self, signedtext: bytes, root: etree._Element) -> None:
        """Hand over the caller's hardened parse of these exact bytes, so one tree is checked and read. Until
        ``release``, pysaml2's text of the signed Response and Assertion (what its schema check validates) is taken
        from this tree too (``original_text``): one parse of the document, not a re-serialisation per element."""
        self._last_text, self._last_root = signedtext, root
        _primed.by_id = _index_signed_elements(root)

    @staticmethod
    def release() -> None:
        _primed.by_id = None

    def root_for(self, signedtext: bytes) -> etree._Element:
        if self._last_root is None or self._last_text != signedtext:
            self._last_root = xmlsafe.parse(signedtext)
            self._last_text = signedtext
        return self._last_root

    def _allowed(self, signature_alg: str, digest_alg: str) -> bool:
        sig_ok = signature_alg in STRONG_SIGNATURE_ALGORITHMS or (self.allow_sha1 and signature_alg == SIG_RSA_SHA1)
        dig_ok = digest_alg in STRONG_DIGEST_ALGORITHMS or (self.allow_sha1 and digest_alg == DIGEST_SHA1)
        return sig_ok and dig_ok

    def validate_signature(self, signedtext: bytes | str, cert_file: str, cert_type: str, node_name: str,
                           node_id: str) -> bool:
        """Same contract as pysaml2's: True when the signature verifies with this certificate, False when it does
        not (pysaml2 then tries the metadata's next certificate), and an exception for anything refused outright."""
        try:
            return self._validate(signedtext, cert_file, cert_type, node_name, node_id)
        except SignatureRefused as exc:
            self.last_refusal = exc
            raise

    def _validate(self, signedtext: bytes | str, cert_file: str, cert_type: str, node_name: str,
                  node_id: str) -> bool:
        if not isinstance(signedtext, bytes):
            signedtext = signedtext.encode("utf-8")
        if not node_id:
            raise SignatureRefused("signature_invalid", "signed element has no ID")
        root = self.root_for(signedtext)
        nodes = root.xpath("//*[@ID=$id]", id=node_id)
        if len(nodes) != 1:
            raise SignatureRefused("signature_wrapping", f"{len(nodes)} elements carry the signed ID")
        node = nodes[0]
        ns, _, local = node_name.rpartition(":")
        if node.tag != f"{{{ns}}}{local}":
            raise SignatureRefused("signature_wrapping", "the signed ID is on an unexpected element")
        sigs = node.findall(xmlsafe.qname("ds", "Signature"))
        if len(sigs) != 1:
            raise SignatureRefused("signature_invalid", "the element has no single enveloped signature")
        sig = sigs[0]
        refs = sig.findall(f"{xmlsafe.qname('ds', 'SignedInfo')}/{xmlsafe.qname('ds', 'Reference')}")
        if len(refs) != 1 or refs[0].get("URI") != f"#{node_id}":
            raise SignatureRefused("signature_wrapping", "the signature does not reference the element it sits in")
        method = sig.find(f"{xmlsafe.qname('ds', 'SignedInfo')}/{xmlsafe.qname('ds', 'SignatureMethod')}")
        digest = refs[0].find(xmlsafe.qname("ds", "DigestMethod"))
        sig_alg = method.get("Algorithm", "") if method is not None else ""
        dig_alg = digest.get("Algorithm", "") if digest is not None else ""
        if not self._allowed(sig_alg, dig_alg):
            raise SignatureRefused("weak_algorithm", f"signature algorithm not allowed: {sig_alg} / {dig_alg}")
        ctx = xmlsec.SignatureContext()
        ctx.key = _load_key(cert_file, cert_type)  # the pinned certificate: KeyInfo is never consulted
        ctx.register_id(node, "ID")
        try:
            ctx.verify(sig)
        except xmlsec.Error:
            return False
        self.verified[node_id] = node
        return True


def install_original_text() -> None:
    """Let pysaml2's Response and Assertion objects answer ``str()`` with ``original_text`` while a response is being
    verified (pysaml2 passes ``str(item)`` to the schema check before each signature check). Outside a verification,
    and for any element the primed tree does not hold exactly once, pysaml2's own serialisation is used. Idempotent."""
    from saml2 import saml, samlp

    for cls in (samlp.Response, saml.Assertion):
        if getattr(cls.__str__, "_gatehouse", False):
            continue
        stock = cls.__str__

        def __str__(self: object, _stock: object = stock) -> str:
            original = original_text(self)
            return original if original is not None else _stock(self)  # type: ignore[operator]

        __str__._gatehouse = True  # type: ignore[attr-defined]
        cls.__str__ = __str__


def install_time_parse_cache() -> None:
    """Memoise pysaml2's ``time_util.str_to_time`` (``time.strptime`` underneath): one response parses the same few
    timestamps about twenty times over (schema validity of every dateTime, then each time check). Same function, same
    results (``struct_time`` is immutable; a malformed value still raises every time, as exceptions are not cached).
    Idempotent."""
    from saml2 import time_util

    if getattr(time_util.str_to_time, "_gatehouse", False):
        return
    cached = functools.lru_cache(maxsize=4096)(time_util.str_to_time)
    cached._gatehouse = True  # type: ignore[attr-defined]
    time_util.str_to_time = cached
