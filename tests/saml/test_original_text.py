"""pysaml2's schema check runs on the received elements from the one verified tree, not on pysaml2's own
re-serialisation of its objects (saml/verifier.py, ``original_text``), and only while a response is verified."""

from __future__ import annotations

import base64

import pytest
from lxml import etree
from saml2 import samlp

from saml import verifier, xmlsafe
from saml.acs import AcsFailure, verify_response
from saml.models import SamlSettings
from saml.sp import acs_url, sp_entity_id

from .idp import build_response, make_key

IDP = "http://www.okta.com/exkORIGINAL"


@pytest.fixture
def signed():
    key = make_key("original-text")
    cfg = SamlSettings(pk=1, idp_entity_id=IDP, certificates=[key.cert_b64], idp_initiated=True,
                       sso_urls=[{"binding": "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect",
                                  "location": "https://idp.test/sso"}])
    response = build_response(sp_entity_id=sp_entity_id("orig"), acs_url=acs_url("orig"), idp_entity_id=IDP, key=key,
                              name_id="ada@example.test")
    return cfg, response


def test_while_primed_the_signed_elements_text_is_the_received_element(signed):
    _, response = signed
    raw = base64.b64decode(response)
    root = xmlsafe.parse(raw)
    obj = samlp.response_from_string(raw)
    v = verifier.InProcessVerifier()
    v.prime(raw, root)
    try:
        text = str(obj)
        assert isinstance(text, verifier.OriginalXml) and text.element is root
        assertion_text = str(obj.assertion[0])
        assert assertion_text.element is root.find(xmlsafe.qname("saml", "Assertion"))
    finally:
        v.release()
    # Outside a verification pysaml2 serialises its own object, as always (the dev IdP and tests build responses).
    assert not isinstance(str(obj), verifier.OriginalXml)


def test_an_id_carried_twice_is_never_picked(signed):
    _, response = signed
    root = xmlsafe.parse(base64.b64decode(response))
    assertion = root.find(xmlsafe.qname("saml", "Assertion"))
    root.append(etree.fromstring(etree.tostring(assertion)))  # a wrapped copy with the same ID
    table = verifier._index_signed_elements(root)
    assert assertion.get("ID") not in table and root.get("ID") in table


def test_a_verification_leaves_nothing_primed_whatever_its_outcome(signed):
    cfg, response = signed
    assert verify_response(cfg=cfg, slug="orig", workspace_id=1, saml_response=response).name_id == "ada@example.test"
    assert getattr(verifier._primed, "by_id", None) is None
    tampered = base64.b64encode(base64.b64decode(response).replace(b"ada@example.test", b"eve@example.test")).decode()
    with pytest.raises(AcsFailure):
        verify_response(cfg=cfg, slug="orig", workspace_id=1, saml_response=tampered)
    assert getattr(verifier._primed, "by_id", None) is None


def test_the_schema_check_refuses_an_invalid_received_element(signed):
    cfg, response = signed
    raw = base64.b64decode(response)
    # A schema-invalid attribute value type on the Response (Version must be present; drop it).
    broken = raw.replace(b' Version="2.0"', b"", 1)
    with pytest.raises(AcsFailure):
        verify_response(cfg=cfg, slug="orig", workspace_id=1, saml_response=base64.b64encode(broken).decode())


def test_the_timestamp_cache_gives_pysaml2s_answers_and_still_refuses_malformed_values():
    from saml2 import time_util

    assert getattr(time_util.str_to_time, "_gatehouse", False)  # installed by the saml app
    stock = time_util.str_to_time.__wrapped__
    for value in ("2026-12-04T10:00:00Z", "2026-12-04T10:00:00.123Z", "2026-12-04T10:00:00.123456Z"):
        assert time_util.str_to_time(value) == stock(value)
    for _ in range(2):  # refused every time: exceptions are not remembered
        with pytest.raises(Exception):  # noqa: B017 - pysaml2 raises ValueError or AttributeError by shape
            time_util.str_to_time("not a time")
