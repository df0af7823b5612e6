"""The ACS's encrypted-assertion layer on its own (``acs._decrypted``, ``acs._outer_signature``, ``saml.encryption``):
each branch refuses with its own code, so no other layer can hide its removal; and what it hands on is the decrypted
document, which every later check reads."""

from __future__ import annotations

import base64

import pytest
from django.utils import timezone
from lxml import etree

from saml import acs, encryption, sp_keys, xmlsafe
from saml.models import IssuedAuthnRequest, SamlSettings, SpKey, SpKeyState
from tests.saml.conftest import IDP_A, configure
from tests.saml.idp import make_key
from tests.security.acs_helpers import SLUG, raw

XENC = "http://www.w3.org/2001/04/xmlenc#"


@pytest.fixture
def cfg(world, monkeypatch):
    monkeypatch.setattr("saml.sp_keys.KEY_SIZE", 2048)
    return configure(world.a, world.owner_a, IDP_A, make_key("idp-alpha"), email_domains=["alpha.test"])


@pytest.fixture
def sp_key(cfg) -> sp_keys.GeneratedKey:
    generated = sp_keys.generate("https://gatehouse.test/saml/alpha/metadata/")
    SpKey.objects.create(saml_settings=cfg, cert_pem=generated.cert_pem, key_encrypted=sp_keys.protect(generated.key_pem),
                         fingerprint_sha256=generated.fingerprint_sha256, not_valid_after=generated.not_valid_after,
                         state=SpKeyState.ACTIVE)
    return generated


def refusal(call, *args) -> tuple[str, str]:
    with pytest.raises(acs.AcsFailure) as failure:
        call(*args)
    return failure.value.code, failure.value.detail


def decrypt(cfg, xml: bytes):
    return acs._decrypted(xml, xmlsafe.parse(xml), cfg, SLUG)


def test_a_plaintext_response_passes_through_untouched(cfg):
    xml = raw(now=timezone.now())
    root = xmlsafe.parse(xml)
    assert acs._decrypted(xml, root, cfg, SLUG) == (xml, root, "")


def test_a_plaintext_response_is_refused_when_encryption_is_required(cfg):
    SamlSettings.objects.filter(pk=cfg.pk).update(require_encrypted_assertions=True)
    cfg.refresh_from_db()
    assert refusal(decrypt, cfg, raw(now=timezone.now())) == (
        "encryption_required", "a plaintext assertion, and this workspace requires encryption")


def test_an_encrypted_response_becomes_the_signed_plaintext_assertion_without_the_response_signature(cfg, sp_key):
    xml = raw(now=timezone.now(), encrypt_to=sp_key.cert_pem)
    plain, root, used = decrypt(cfg, xml)
    assert used == sp_key.fingerprint_sha256
    assert root.find(xmlsafe.qname("saml", "EncryptedAssertion")) is None
    assert root.find(xmlsafe.qname("ds", "Signature")) is None  # it covered the ciphertext only
    assertion = root.find(xmlsafe.qname("saml", "Assertion"))
    assert assertion.find(xmlsafe.qname("ds", "Signature")) is not None
    assert xmlsafe.parse(plain).find(xmlsafe.qname("saml", "Assertion")).get("ID") == assertion.get("ID")


def test_verify_response_says_whether_the_assertion_was_encrypted(world, cfg, sp_key):
    now = timezone.now()
    for encrypt_to, expected in ((None, False), (sp_key.cert_pem, True)):
        request_id = f"id-{expected}"
        IssuedAuthnRequest.objects.create(workspace=world.a, request_id=request_id, expires_at=now + timezone.timedelta(minutes=5))
        xml = raw(now=now, in_response_to=request_id, encrypt_to=encrypt_to)
        login = acs.verify_response(cfg=cfg, slug=SLUG, workspace_id=world.a.pk,
                                    saml_response=base64.b64encode(xml).decode())
        assert login.encrypted is expected and login.email == "member@alpha.test"
        assert login.decrypted_with == (sp_key.fingerprint_sha256 if expected else "")


def test_refusals_of_the_encryption_layer_keep_their_code(cfg, sp_key):
    root = etree.fromstring(raw(now=timezone.now(), encrypt_to=sp_key.cert_pem, sign_response=False))
    root.append(etree.fromstring(etree.tostring(root.find(xmlsafe.qname("saml", "EncryptedAssertion")))))
    assert refusal(decrypt, cfg, etree.tostring(root)) == (
        "multiple_assertions", "more than one assertion (encrypted or plaintext)")


def test_an_invalid_response_signature_over_the_ciphertext_is_refused(cfg, sp_key):
    root = etree.fromstring(raw(now=timezone.now(), encrypt_to=sp_key.cert_pem))
    root.set("IssueInstant", "2020-01-01T00:00:00Z")  # covered by the Response signature
    assert refusal(decrypt, cfg, etree.tostring(root))[0] == "signature_invalid"


def test_a_weak_response_signature_over_the_ciphertext_is_named(cfg, sp_key):
    xml = raw(now=timezone.now(), encrypt_to=sp_key.cert_pem, sha1=True)
    assert refusal(decrypt, cfg, xml)[0] == "weak_algorithm"


def test_an_unexpected_error_in_the_response_signature_check_is_a_refusal(cfg, sp_key, monkeypatch):
    xml = raw(now=timezone.now(), encrypt_to=sp_key.cert_pem)
    client = acs.client_for(cfg, SLUG)

    def broken(*args, **kw):
        raise ValueError("something pysaml2 did not expect")

    monkeypatch.setattr(client.sec, "correctly_signed_response", broken)
    assert refusal(acs._outer_signature, xml, xmlsafe.parse(xml), cfg, SLUG) == ("signature_invalid", "ValueError")


def test_a_valid_response_signature_over_the_ciphertext_passes(cfg, sp_key):
    xml = raw(now=timezone.now(), encrypt_to=sp_key.cert_pem)
    assert acs._outer_signature(xml, xmlsafe.parse(xml), cfg, SLUG) is None


# ----------------------------------------------------------------------------- saml.encryption on its own


def _encrypted(sp_key, **kw) -> etree._Element:
    return xmlsafe.parse(raw(now=timezone.now(), encrypt_to=sp_key.cert_pem, sign_response=False, **kw))


def _refusal(root, keys) -> tuple[str, str]:
    with pytest.raises(encryption.EncryptionRefused) as refused:
        encryption.decrypted_response(root, encryption.encrypted_assertion_of(root), keys, lambda: None)
    return refused.value.code, str(refused.value)


def test_each_key_is_tried_in_turn(sp_key):
    other = sp_keys.generate("https://gatehouse.test/other/")
    root = _encrypted(sp_key)
    _, plain, used = encryption.decrypted_response(root, encryption.encrypted_assertion_of(root),
                                                   {"other": other.key_pem, "mine": sp_key.key_pem}, lambda: None)
    assert plain.find(xmlsafe.qname("saml", "Assertion")) is not None and used == "mine"
    assert _refusal(root, {"other": other.key_pem}) == (
        "decryption_failed", "no SP key of this workspace decrypts it (1 tried)")
    assert _refusal(root, {})[0] == "decryption_failed"


def test_the_response_signature_is_checked_only_when_there_is_one(sp_key):
    calls = []
    for sign_response in (False, True):
        root = xmlsafe.parse(raw(now=timezone.now(), encrypt_to=sp_key.cert_pem, sign_response=sign_response))
        encryption.decrypted_response(root, encryption.encrypted_assertion_of(root), {"k": sp_key.key_pem},
                                      lambda s=sign_response: calls.append(s))
    assert calls == [True]


def test_content_encrypted_as_content_not_element_is_refused(sp_key):
    root = _encrypted(sp_key)
    root.find(f".//{{{XENC}}}EncryptedData").set("Type", f"{XENC}Content")
    assert _refusal(root, {"k": sp_key.key_pem})[0] == "decryption_failed"


def test_a_weak_content_algorithm_is_refused(sp_key):
    root = _encrypted(sp_key)
    root.find(f".//{{{XENC}}}EncryptedData/{{{XENC}}}EncryptionMethod").set("Algorithm", f"{XENC}tripledes-cbc")
    assert _refusal(root, {"k": sp_key.key_pem}) == (
        "weak_algorithm", f"content encryption algorithm not allowed: {XENC}tripledes-cbc")


def test_an_encrypted_key_is_required(sp_key):
    root = _encrypted(sp_key)
    key = root.find(f".//{{{XENC}}}EncryptedKey")
    key.getparent().remove(key)
    assert _refusal(root, {"k": sp_key.key_pem}) == ("decryption_failed", "no EncryptedKey")


def test_an_encrypted_key_beside_the_data_is_found(sp_key):
    """Shibboleth's layout: EncryptedKey a sibling of EncryptedData, not inside its KeyInfo."""
    root = _encrypted(sp_key)
    key = root.find(f".//{{{XENC}}}EncryptedKey")
    key_info = key.getparent()
    key_info.getparent().remove(key_info)
    root.find(xmlsafe.qname("saml", "EncryptedAssertion")).append(key)
    _, plain, _ = encryption.decrypted_response(root, encryption.encrypted_assertion_of(root), {"k": sp_key.key_pem},
                                             lambda: None)
    assert plain.find(xmlsafe.qname("saml", "Assertion")) is not None


def test_an_encrypted_assertion_in_something_else_than_a_response_is_malformed(sp_key):
    root = _encrypted(sp_key)
    root.tag = xmlsafe.qname("samlp", "LogoutResponse")
    with pytest.raises(encryption.EncryptionRefused) as refused:
        encryption.encrypted_assertion_of(root)
    assert refused.value.code == "malformed"


def test_a_comment_inside_the_encrypted_assertion_is_refused_after_decryption(sp_key):
    """The node-text attack (CVE-2017-11427 family) hidden under encryption meets the same hardened parse; the
    refusal is the one every decryption failure gets (no parse oracle), the cause is in the detail."""
    from tests.saml.idp import _encrypt_assertion

    root = etree.fromstring(raw(now=timezone.now(), sign_response=False))
    name_id = root.find(f".//{xmlsafe.qname('saml', 'NameID')}")
    name_id.text = "member@evil.test"
    name_id.append(etree.Comment("x"))
    name_id[0].tail = ".alpha.test"
    encrypted = xmlsafe.parse(etree.tostring(_encrypt_assertion(root, sp_key.cert_pem)))
    assert _refusal(encrypted, {"k": sp_key.key_pem}) == ("decryption_failed",
                                                         "the decrypted text is refused (comments_refused)")
