"""Encrypted assertions under attack: each test breaks one thing and names the refusal it expects (never a 500).

The SP encryption certificate is public, so anyone can encrypt an assertion to it: only the IdP's signature inside
the encrypted assertion says who wrote it, and the Response signature, which covers the ciphertext, must hold too.
"""

from __future__ import annotations

import base64

import pytest
from django.test import Client
from lxml import etree

from saml import services
from workspaces.services import actor_for_membership

from .conftest import failures, post_acs, start_login
from .idp import AES256_GCM, RSA_1_5, make_key, sp_certificates

SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
XENC = "http://www.w3.org/2001/04/xmlenc#"


@pytest.fixture
def keyed_a(world, sso_a):
    services.sp_key_prepare(workspace=world.a, actor=actor_for_membership(world.owner_a, "password"))
    return sso_a


def cert_a() -> str:
    return sp_certificates(Client().get("/saml/alpha/metadata/").content.decode(), "encryption")[0]


def refused(world, client, raw: bytes | str) -> tuple[int, list[str], str]:
    saml_response = raw if isinstance(raw, str) else base64.b64encode(raw).decode()
    response = post_acs(client, "alpha", saml_response)
    return response.status_code, failures(world.a), response.content.decode()


def test_encrypted_assertion_without_its_own_signature_is_refused_even_in_a_signed_response(world, keyed_a):
    client = Client()
    request_id = start_login(client, "alpha")
    raw = keyed_a.response(name_id="member@alpha.test", in_response_to=request_id, encrypt_to=cert_a(),
                           sign_assertion=False, sign_response=True)
    status, reasons, _ = refused(world, client, raw)
    assert (status, reasons) == (403, ["unsigned"])


def test_ciphertext_swapped_under_a_signed_response_is_refused(world, keyed_a):
    """The Response signature covers the ciphertext: another (validly encrypted) assertion put in its place breaks it."""
    client = Client()
    request_id = start_login(client, "alpha")
    genuine = etree.fromstring(keyed_a.response(name_id="member@alpha.test", in_response_to=request_id,
                                                encrypt_to=cert_a(), as_bytes=True))
    other = etree.fromstring(keyed_a.response(name_id="owner@alpha.test", in_response_to=request_id,
                                              encrypt_to=cert_a(), as_bytes=True))
    genuine.replace(genuine.find(f"{{{SAML}}}EncryptedAssertion"), other.find(f"{{{SAML}}}EncryptedAssertion"))
    status, reasons, _ = refused(world, client, etree.tostring(genuine))
    assert (status, reasons) == (403, ["signature_invalid"])


def test_tampered_ciphertext_is_a_decryption_failure_not_a_500(world, keyed_a):
    client = Client()
    request_id = start_login(client, "alpha")
    root = etree.fromstring(keyed_a.response(name_id="member@alpha.test", in_response_to=request_id,
                                             encrypt_to=cert_a(), sign_response=False, as_bytes=True))
    value = root.find(f"{{{SAML}}}EncryptedAssertion/{{{XENC}}}EncryptedData/{{{XENC}}}CipherData/{{{XENC}}}CipherValue")
    data = bytearray(base64.b64decode(value.text))
    data[-20] ^= 0xFF
    value.text = base64.b64encode(bytes(data)).decode()
    status, reasons, page = refused(world, client, etree.tostring(root))
    assert (status, reasons) == (403, ["decryption_failed"])
    assert "could not be decrypted with this workspace" in page


def test_assertion_encrypted_to_another_workspaces_key_is_refused(world, keyed_a, sso_b):
    services.sp_key_prepare(workspace=world.b, actor=actor_for_membership(world.outsider_b, "password"))
    cert_b = sp_certificates(Client().get("/saml/bravo/metadata/").content.decode(), "encryption")[0]
    client = Client()
    request_id = start_login(client, "alpha")
    raw = keyed_a.response(name_id="member@alpha.test", in_response_to=request_id, encrypt_to=cert_b)
    assert refused(world, client, raw)[:2] == (403, ["decryption_failed"])


def test_encrypted_assertion_without_any_sp_key_is_a_decryption_failure(world, sso_a, sso_b):
    services.sp_key_prepare(workspace=world.b, actor=actor_for_membership(world.outsider_b, "password"))
    cert_b = sp_certificates(Client().get("/saml/bravo/metadata/").content.decode(), "encryption")[0]
    client = Client()
    request_id = start_login(client, "alpha")
    raw = sso_a.response(name_id="member@alpha.test", in_response_to=request_id, encrypt_to=cert_b)
    assert refused(world, client, raw)[:2] == (403, ["decryption_failed"])


def test_assertion_signed_by_another_idp_is_refused_after_decryption(world, keyed_a):
    client = Client()
    request_id = start_login(client, "alpha")
    raw = keyed_a.response(name_id="member@alpha.test", in_response_to=request_id, encrypt_to=cert_a(),
                           key=make_key("mallory"))
    assert refused(world, client, raw)[:2] == (403, ["signature_invalid"])


def test_plaintext_and_encrypted_assertion_together_are_refused(world, keyed_a):
    client = Client()
    request_id = start_login(client, "alpha")
    encrypted = etree.fromstring(keyed_a.response(name_id="member@alpha.test", in_response_to=request_id,
                                                  encrypt_to=cert_a(), sign_response=False, as_bytes=True))
    plain = etree.fromstring(keyed_a.response(name_id="owner@alpha.test", in_response_to=request_id,
                                              sign_response=False, as_bytes=True))
    encrypted.append(plain.find(f"{{{SAML}}}Assertion"))
    assert refused(world, client, etree.tostring(encrypted))[:2] == (403, ["multiple_assertions"])


def test_two_encrypted_assertions_are_refused(world, keyed_a):
    client = Client()
    request_id = start_login(client, "alpha")
    one = etree.fromstring(keyed_a.response(name_id="member@alpha.test", in_response_to=request_id,
                                            encrypt_to=cert_a(), sign_response=False, as_bytes=True))
    two = etree.fromstring(keyed_a.response(name_id="owner@alpha.test", in_response_to=request_id,
                                            encrypt_to=cert_a(), sign_response=False, as_bytes=True))
    one.append(two.find(f"{{{SAML}}}EncryptedAssertion"))
    assert refused(world, client, etree.tostring(one))[:2] == (403, ["multiple_assertions"])


def test_encrypted_assertion_wrapped_away_from_the_response_is_refused(world, keyed_a):
    """Signature wrapping: the EncryptedAssertion hidden in Extensions, where a lax reader might still find it."""
    client = Client()
    request_id = start_login(client, "alpha")
    root = etree.fromstring(keyed_a.response(name_id="member@alpha.test", in_response_to=request_id,
                                             encrypt_to=cert_a(), sign_response=False, as_bytes=True))
    extensions = etree.Element(f"{{{SAMLP}}}Extensions")
    root.insert(1, extensions)
    extensions.append(root.find(f"{{{SAML}}}EncryptedAssertion"))
    assert refused(world, client, etree.tostring(root))[:2] == (403, ["signature_wrapping"])


def test_rsa_pkcs1_v1_5_key_transport_is_refused(world, keyed_a):
    client = Client()
    request_id = start_login(client, "alpha")
    raw = keyed_a.response(name_id="member@alpha.test", in_response_to=request_id, encrypt_to=cert_a(),
                           key_transport=RSA_1_5)
    assert refused(world, client, raw)[:2] == (403, ["weak_algorithm"])


def test_an_encrypted_response_is_accepted_once(world, keyed_a):
    client = Client()
    request_id = start_login(client, "alpha")
    raw = keyed_a.response(name_id="member@alpha.test", in_response_to=request_id, encrypt_to=cert_a())
    assert post_acs(client, "alpha", raw).status_code == 302
    assert refused(world, Client(), raw)[:2] == (403, ["replay"])


def test_encrypted_assertion_checks_audience_after_decryption(world, keyed_a):
    client = Client()
    request_id = start_login(client, "alpha")
    raw = keyed_a.response(name_id="member@alpha.test", in_response_to=request_id, encrypt_to=cert_a(),
                           audience="https://other.example/sp")
    assert refused(world, client, raw)[:2] == (403, ["audience_mismatch"])


def test_assertion_only_signed_and_encrypted_logs_in(world, keyed_a):
    """Entra's default: the assertion signed, then encrypted; the Response itself unsigned."""
    client = Client()
    request_id = start_login(client, "alpha")
    raw = keyed_a.response(name_id="member@alpha.test", in_response_to=request_id, encrypt_to=cert_a(),
                           sign_response=False)
    assert post_acs(client, "alpha", raw).status_code == 302, failures(world.a)


def test_encrypted_test_sso_is_recorded_as_encrypted(world, keyed_a):
    from saml.models import SamlSettings
    from tests.conftest import login_client

    client = login_client(world.owner_a)
    client.post("/w/alpha/settings/sso/", {"action": "test"})
    from saml.models import IssuedAuthnRequest

    request_id = IssuedAuthnRequest.objects.filter(workspace=world.a, purpose="test").latest("created_at").request_id
    raw = keyed_a.response(name_id="owner@alpha.test", in_response_to=request_id, encrypt_to=cert_a())
    assert post_acs(client, "alpha", raw).status_code == 302, failures(world.a)
    assert SamlSettings.objects.get(workspace=world.a).last_test_result["encrypted"] is True


def test_aes_gcm_content_encryption_logs_in(world, keyed_a):
    """Okta's AES256-GCM choice (XML Encryption 1.1)."""
    client = Client()
    request_id = start_login(client, "alpha")
    raw = keyed_a.response(name_id="member@alpha.test", in_response_to=request_id, encrypt_to=cert_a(),
                           content_encryption=AES256_GCM)
    assert b"xmlenc11#aes256-gcm" in base64.b64decode(raw)
    assert post_acs(client, "alpha", raw).status_code == 302, failures(world.a)
