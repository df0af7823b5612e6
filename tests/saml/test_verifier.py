"""The in-process verifier plugged into pysaml2's security context keeps the guarantees of the xmlsec1 call."""

from __future__ import annotations

import pytest
import saml2.sigver
from lxml import etree

from saml import schema
from saml.verifier import InProcessVerifier, SignatureRefused

from .idp import build_response, make_key

ASSERTION = "urn:oasis:names:tc:SAML:2.0:assertion:Assertion"


def _xml(key, **kw) -> bytes:
    return build_response(sp_entity_id="sp", acs_url="https://sp.test/acs", idp_entity_id="idp", key=key,
                          name_id="a@b.test", as_bytes=True, **kw)


def _pem_file(tmp_path, key) -> str:
    path = tmp_path / "cert.pem"
    path.write_bytes(key.cert_pem)
    return str(path)


def _assertion_id(xml: bytes) -> str:
    return etree.fromstring(xml).find("{urn:oasis:names:tc:SAML:2.0:assertion}Assertion").get("ID")


def test_a_signature_by_the_pinned_certificate_verifies(tmp_path):
    key = make_key("idp-alpha")
    xml = _xml(key)
    assert InProcessVerifier().validate_signature(xml, _pem_file(tmp_path, key), "pem", ASSERTION, _assertion_id(xml))


def test_keyinfo_is_ignored_only_the_pinned_certificate_counts(tmp_path):
    xml = _xml(make_key("attacker"))  # KeyInfo carries the attacker's own certificate
    pinned = _pem_file(tmp_path, make_key("idp-alpha"))
    assert InProcessVerifier().validate_signature(xml, pinned, "pem", ASSERTION, _assertion_id(xml)) is False


def test_duplicate_ids_are_refused_before_verification(tmp_path):
    key = make_key("idp-alpha")
    xml = _xml(key)
    aid = _assertion_id(xml)
    xml = xml.replace(b"<saml2p:Status>", f'<saml2p:Extensions ID="{aid}"/><saml2p:Status>'.encode())
    with pytest.raises(SignatureRefused) as exc:
        InProcessVerifier().validate_signature(xml, _pem_file(tmp_path, key), "pem", ASSERTION, aid)
    assert exc.value.code == "signature_wrapping"


def test_sha1_is_refused_unless_allowed(tmp_path):
    key = make_key("idp-alpha")
    xml = _xml(key, sha1=True)
    with pytest.raises(SignatureRefused) as exc:
        InProcessVerifier().validate_signature(xml, _pem_file(tmp_path, key), "pem", ASSERTION, _assertion_id(xml))
    assert exc.value.code == "weak_algorithm"
    assert InProcessVerifier(allow_sha1=True).validate_signature(
        xml, _pem_file(tmp_path, key), "pem", ASSERTION, _assertion_id(xml))


def test_pysaml2_schema_check_runs_on_libxml2_with_the_same_contract():
    from saml2.xml.schema import XMLSchemaError

    assert saml2.sigver.validate_doc_with_schema is schema.validate
    schema.validate(_xml(make_key("idp-alpha")).decode())
    with pytest.raises(XMLSchemaError):
        schema.validate('<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"/>')
