"""The in-process signature verifier, one check at a time, called directly (pysaml2's own xmldsig profile checks
would otherwise refuse most of these documents first and hide a removed check). Real signatures by the test
IdP's key; nothing is mocked.
"""

from __future__ import annotations

from copy import deepcopy

import pytest
from lxml import etree

from saml import verifier as verifier_module
from saml import xmlsafe
from saml.verifier import (
    DIGEST_SHA1,
    SIG_RSA_SHA1,
    STRONG_DIGEST_ALGORITHMS,
    STRONG_SIGNATURE_ALGORITHMS,
    InProcessVerifier,
    SignatureRefused,
)
from tests.saml.idp import build_response, make_key

ASSERTION = "urn:oasis:names:tc:SAML:2.0:assertion:Assertion"
RESPONSE = "urn:oasis:names:tc:SAML:2.0:protocol:Response"
DS = "http://www.w3.org/2000/09/xmldsig#"
SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
DIGEST_SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"


def signed(**kw) -> bytes:
    return build_response(sp_entity_id="sp", acs_url="https://sp.test/acs", idp_entity_id="idp",
                          key=make_key("idp-alpha"), name_id="a@b.test", as_bytes=True, **kw)


@pytest.fixture(autouse=True)
def no_cached_keys():
    # The key cache is process-wide: each test loads its certificates itself, whatever ran before it.
    verifier_module._key_cache.clear()


@pytest.fixture
def pinned(tmp_path) -> str:
    path = tmp_path / "cert.pem"
    path.write_bytes(make_key("idp-alpha").cert_pem)
    return str(path)


def ids(xml: bytes) -> tuple[str, str]:
    root = etree.fromstring(xml)
    return root.get("ID"), root.find(xmlsafe.qname("saml", "Assertion")).get("ID")


def refused(xml: bytes, pinned: str, node_name: str, node_id: str, **kw) -> tuple[str, str]:
    verifier = InProcessVerifier(**kw)
    with pytest.raises(SignatureRefused) as exc:
        verifier.validate_signature(xml, pinned, "pem", node_name, node_id)
    assert verifier.last_refusal is exc.value  # kept for the ACS, which names it in the audit log
    return exc.value.code, str(exc.value)


def changed(xml: bytes, change) -> bytes:
    root = etree.fromstring(xml)
    change(root)
    return etree.tostring(root)


def test_both_signatures_verify_and_the_verified_elements_are_recorded(pinned):
    xml = signed()
    response_id, assertion_id = ids(xml)
    verifier = InProcessVerifier()
    assert verifier.validate_signature(xml, pinned, "pem", RESPONSE, response_id) is True
    assert verifier.validate_signature(xml.decode(), pinned, "pem", ASSERTION, assertion_id) is True  # text too
    assert set(verifier.verified) == {response_id, assertion_id}
    assert verifier.verified[assertion_id].tag == xmlsafe.qname("saml", "Assertion")
    assert verifier.verified[assertion_id].getparent() is verifier.verified[response_id]  # one tree
    assert verifier.last_refusal is None


def test_a_signature_by_another_key_is_not_valid_and_not_recorded(pinned):
    xml = build_response(sp_entity_id="sp", acs_url="https://sp.test/acs", idp_entity_id="idp",
                         key=make_key("attacker"), name_id="a@b.test", as_bytes=True)
    verifier = InProcessVerifier()
    assert verifier.validate_signature(xml, pinned, "pem", ASSERTION, ids(xml)[1]) is False
    assert verifier.verified == {}


def test_the_pinned_certificate_may_be_der(tmp_path):
    from cryptography.hazmat.primitives.serialization import Encoding
    from cryptography.x509 import load_pem_x509_certificate

    der = tmp_path / "cert.der"
    der.write_bytes(load_pem_x509_certificate(make_key("idp-alpha").cert_pem).public_bytes(Encoding.DER))
    xml = signed()
    assert InProcessVerifier().validate_signature(xml, str(der), "der", ASSERTION, ids(xml)[1]) is True


def test_a_signed_element_without_id_is_refused(pinned):
    assert refused(signed(), pinned, ASSERTION, "") == ("signature_invalid", "signed element has no ID")


def test_the_signed_id_must_be_on_exactly_one_element(pinned):
    xml = signed()
    assert refused(xml, pinned, ASSERTION, "id-nowhere") == ("signature_wrapping", "0 elements carry the signed ID")
    assertion_id = ids(xml)[1]
    twice = xml.replace(b"<saml2p:Status>", f'<saml2p:Extensions ID="{assertion_id}"/><saml2p:Status>'.encode())
    assert refused(twice, pinned, ASSERTION, assertion_id) == ("signature_wrapping", "2 elements carry the signed ID")


def test_the_signed_id_must_be_on_the_expected_element(pinned):
    xml = signed()
    response_id, assertion_id = ids(xml)
    expected = ("signature_wrapping", "the signed ID is on an unexpected element")
    assert refused(xml, pinned, ASSERTION, response_id) == expected
    assert refused(xml, pinned, "urn:oasis:names:tc:SAML:2.0:protocol:Assertion", assertion_id) == expected


def test_the_element_must_carry_exactly_one_enveloped_signature(pinned):
    expected = ("signature_invalid", "the element has no single enveloped signature")
    xml = signed(sign_assertion=False)
    assert refused(xml, pinned, ASSERTION, ids(xml)[1]) == expected

    def second_signature(root):
        assertion = root.find(xmlsafe.qname("saml", "Assertion"))
        assertion.append(deepcopy(assertion.find(f"{{{DS}}}Signature")))

    xml = changed(signed(), second_signature)
    assert refused(xml, pinned, ASSERTION, ids(xml)[1]) == expected


def test_the_signature_must_reference_its_own_element_once(pinned):
    expected = ("signature_wrapping", "the signature does not reference the element it sits in")

    def reference_the_response(root):
        assertion = root.find(xmlsafe.qname("saml", "Assertion"))
        assertion.find(f".//{{{DS}}}Reference").set("URI", f"#{root.get('ID')}")

    xml = changed(signed(), reference_the_response)
    assert refused(xml, pinned, ASSERTION, ids(xml)[1]) == expected

    def two_references(root):
        reference = root.find(xmlsafe.qname("saml", "Assertion")).find(f".//{{{DS}}}Reference")
        reference.addnext(deepcopy(reference))

    xml = changed(signed(), two_references)
    assert refused(xml, pinned, ASSERTION, ids(xml)[1]) == expected


def algorithms(signature: str | None, digest: str | None):
    """Set the assertion's SignatureMethod and DigestMethod algorithms; None removes the element, "" only its
    Algorithm attribute."""
    def change(root):
        assertion = root.find(xmlsafe.qname("saml", "Assertion"))
        method = assertion.find(f".//{{{DS}}}SignatureMethod")
        digest_method = assertion.find(f".//{{{DS}}}DigestMethod")
        for element, value in ((method, signature), (digest_method, digest)):
            if value is None:
                element.getparent().remove(element)
            elif value == "":
                del element.attrib["Algorithm"]
            else:
                element.set("Algorithm", value)
    return change


@pytest.mark.parametrize(("signature", "digest"), [
    (SIG_RSA_SHA1, DIGEST_SHA256),
    (SHA256, DIGEST_SHA1),
    ("http://www.w3.org/2000/09/xmldsig#hmac-sha1", DIGEST_SHA256),
    (None, DIGEST_SHA256),
    (SHA256, None),
    ("", DIGEST_SHA256),
    (SHA256, ""),
])
def test_a_weak_or_missing_algorithm_is_refused_before_verification(pinned, signature, digest):
    xml = changed(signed(), algorithms(signature, digest))
    code, message = refused(xml, pinned, ASSERTION, ids(xml)[1])
    assert (code, message) == ("weak_algorithm", f"signature algorithm not allowed: {signature or ''} / {digest or ''}")


def test_sha1_passes_the_algorithm_check_only_when_allowed(pinned):
    xml = signed(sha1=True)
    assert refused(xml, pinned, ASSERTION, ids(xml)[1])[0] == "weak_algorithm"
    assert InProcessVerifier(allow_sha1=True).validate_signature(xml, pinned, "pem", ASSERTION, ids(xml)[1]) is True
    # Allowing SHA-1 allows only SHA-1 and only where it is named: each half is still checked.
    for signature, digest in ((SIG_RSA_SHA1, "http://www.w3.org/2001/04/xmldsig-more#md5"),
                              ("http://www.w3.org/2001/04/xmldsig-more#rsa-md5", DIGEST_SHA1)):
        xml = changed(signed(sha1=True), algorithms(signature, digest))
        assert refused(xml, pinned, ASSERTION, ids(xml)[1], allow_sha1=True)[0] == "weak_algorithm"


def test_the_allow_list():
    assert STRONG_SIGNATURE_ALGORITHMS == {
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384",
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384",
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512",
    }
    assert STRONG_DIGEST_ALGORITHMS == {
        "http://www.w3.org/2001/04/xmlenc#sha256",
        "http://www.w3.org/2001/04/xmldsig-more#sha384",
        "http://www.w3.org/2001/04/xmlenc#sha512",
    }
    assert (SIG_RSA_SHA1, DIGEST_SHA1) == (
        "http://www.w3.org/2000/09/xmldsig#rsa-sha1", "http://www.w3.org/2000/09/xmldsig#sha1")
    verifier = InProcessVerifier()
    for signature in STRONG_SIGNATURE_ALGORITHMS:
        for digest in STRONG_DIGEST_ALGORITHMS:
            assert verifier._allowed(signature, digest)
    assert not verifier._allowed(SIG_RSA_SHA1, DIGEST_SHA1)
    assert InProcessVerifier(allow_sha1=True)._allowed(SIG_RSA_SHA1, DIGEST_SHA1)


def test_the_verifier_checks_the_tree_it_was_handed_and_reparses_other_bytes(pinned):
    xml = signed()
    response_id, assertion_id = ids(xml)
    verifier = InProcessVerifier()
    root = xmlsafe.parse(xml)
    verifier.prime(xml, root)
    assert verifier.validate_signature(xml, pinned, "pem", ASSERTION, assertion_id) is True
    assert verifier.verified[assertion_id] is root.find(xmlsafe.qname("saml", "Assertion"))

    other = signed()
    assert verifier.validate_signature(other, pinned, "pem", ASSERTION, ids(other)[1]) is True
    assert verifier.root_for(other) is not root
    assert verifier.root_for(other) is verifier.root_for(other)  # parsed once

    verifier.reset()
    assert (verifier.verified, verifier.last_refusal, verifier.root_for(xml) is root) == ({}, None, False)


def test_a_refusal_is_remembered_until_reset(pinned):
    verifier = InProcessVerifier()
    with pytest.raises(SignatureRefused):
        verifier.validate_signature(signed(), pinned, "pem", ASSERTION, "")
    assert verifier.last_refusal.code == "signature_invalid"
    verifier.reset()
    assert verifier.last_refusal is None


def test_keys_are_loaded_once_per_certificate(pinned):
    verifier_module._key_cache.clear()
    first = verifier_module._load_key(pinned, "pem")
    assert verifier_module._load_key(pinned, "pem") is first
    assert len(verifier_module._key_cache) == 1


def test_a_key_cached_for_one_certificate_never_verifies_for_another(tmp_path):
    # Two workspaces, two pinned certificates, one process-wide cache: a response signed by workspace B's IdP
    # must not verify against workspace A's certificate because B's key was loaded first.
    verifier_module._key_cache.clear()
    bravo, alpha = tmp_path / "bravo.pem", tmp_path / "alpha.pem"
    bravo.write_bytes(make_key("idp-bravo").cert_pem)
    alpha.write_bytes(make_key("idp-alpha").cert_pem)
    xml = build_response(sp_entity_id="sp", acs_url="https://sp.test/acs", idp_entity_id="idp",
                         key=make_key("idp-bravo"), name_id="a@b.test", as_bytes=True)
    assert InProcessVerifier().validate_signature(xml, str(bravo), "pem", ASSERTION, ids(xml)[1]) is True
    assert InProcessVerifier().validate_signature(xml, str(alpha), "pem", ASSERTION, ids(xml)[1]) is False
    assert len(verifier_module._key_cache) == 2
