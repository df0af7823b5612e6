"""Each ACS refusal is precise: the code (shown as a plain reason) and the detail that goes into the
``sso.login_failed`` audit event, layer by layer, on real signed responses from the test IdP.

``test_acs_layers`` proves every check refuses; this file pins what the refusal says (an operator reads the
detail in the audit log to tell a clock problem from a forgery), the mapping of pysaml2's own refusals to
codes, and what an accepted login carries (email, names, groups, session end) read from the verified element.
"""

from __future__ import annotations

import base64
import logging
from copy import deepcopy
from datetime import datetime, timedelta

import pytest
from django.utils import timezone
from lxml import etree
from saml2.response import StatusError, UnsolicitedResponse, VerificationError
from saml2.sigver import SignatureError, SigverError
from saml2.validate import ResponseLifetimeExceed, ToEarly

from saml import acs, xmlsafe
from saml.models import IssuedAuthnRequest
from saml.sp import sp_entity_id
from saml.verifier import SignatureRefused
from tests.saml.conftest import IDP_A, configure
from tests.saml.idp import SCM_SENDER_VOUCHES, make_key
from tests.security.acs_helpers import NOW, SLUG, raw, resigned

DS = "http://www.w3.org/2000/09/xmldsig#"


@pytest.fixture
def cfg(world):
    return configure(world.a, world.owner_a, IDP_A, make_key("idp-alpha"), email_domains=["alpha.test"])


def q(local: str, prefix: str = "saml") -> str:
    return xmlsafe.qname(prefix, local)




def posted(**kw) -> str:
    kw.setdefault("now", timezone.now())
    return base64.b64encode(raw(**kw)).decode()


def refusal(call, *args, **kw) -> tuple[str, str]:
    with pytest.raises(acs.AcsFailure) as failure:
        call(*args, **kw)
    return failure.value.code, failure.value.detail


def parsed(xml: bytes):
    root = xmlsafe.parse(xml)
    return root, acs._shape(root)


def policy(cfg, root, assertion, *, now: datetime = NOW, in_response_to: str = "") -> tuple[str, str]:
    return refusal(acs._policy, root, assertion, cfg, SLUG, now, in_response_to)


def verify(cfg, world, saml_response: str):
    return acs.verify_response(cfg=cfg, slug=SLUG, workspace_id=world.a.pk, saml_response=saml_response)


# ----------------------------------------------------------------------------- AcsFailure


def test_a_failure_reads_code_then_detail():
    assert str(acs.AcsFailure("expired", "Conditions NotOnOrAfter x")) == "expired: Conditions NotOnOrAfter x"
    assert acs.AcsFailure("expired").detail == ""


# ----------------------------------------------------------------------------- decoding


def test_a_response_that_is_not_base64_is_malformed(cfg, world):
    for bad in ("é", "abc"):
        assert refusal(verify, cfg, world, bad) == ("malformed", "SAMLResponse is not base64")


def test_a_response_with_line_breaks_in_its_base64_is_accepted(cfg, world):
    cfg.idp_initiated = True
    encoded = posted()
    wrapped = "\r\n".join(encoded[i:i + 76] for i in range(0, len(encoded), 76))  # as some IdPs post it
    assert verify(cfg, world, wrapped).email == "member@alpha.test"


def test_a_malformed_timestamp_names_the_value(cfg):
    root, assertion = parsed(raw())
    assertion.find(q("Conditions")).set("NotBefore", "yesterday")
    assert policy(cfg, root, assertion) == ("malformed", "bad timestamp 'yesterday'")


# ----------------------------------------------------------------------------- shape


def test_shape_refusals_name_what_is_wrong(cfg):
    other = xmlsafe.parse(b'<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="x"/>')
    assert refusal(acs._shape, other) == (
        "malformed", "root element is {urn:oasis:names:tc:SAML:2.0:protocol}AuthnRequest")

    root = xmlsafe.parse(raw())
    root.append(etree.Element(q("EncryptedAssertion")))
    assert refusal(acs._shape, root) == ("encrypted_assertion", "EncryptedAssertion present")

    root = xmlsafe.parse(raw())
    root.append(deepcopy(root.find(q("Assertion"))))
    assert refusal(acs._shape, root) == ("multiple_assertions", "2 assertions in the document")

    root = xmlsafe.parse(raw())
    root.remove(root.find(q("Assertion")))
    assert refusal(acs._shape, root) == ("malformed", "0 assertions in the document")

    root = xmlsafe.parse(raw())
    assertion = root.find(q("Assertion"))
    holder = etree.SubElement(root, q("Extensions", "samlp"))
    holder.append(assertion)
    assert refusal(acs._shape, root) == ("signature_wrapping", "the assertion is not a direct child of the Response")

    root = xmlsafe.parse(raw())
    root.find(q("Assertion")).find(q("Subject")).append(deepcopy(root.find(f"{{{DS}}}Signature")))
    assert refusal(acs._shape, root) == ("signature_wrapping", "a ds:Signature sits outside the Response and Assertion")

    assert refusal(acs._shape, xmlsafe.parse(raw(sign_assertion=False, sign_response=False))) == (
        "unsigned", "neither the Response nor the Assertion is signed")


def test_duplicate_ids_are_named_three_at_most(cfg):
    root = xmlsafe.parse(raw())
    for n in (1, 2, 3, 4):
        for _ in range(2):
            etree.SubElement(root, q("Extensions", "samlp"), ID=f"dup-{n}")
    assert refusal(acs._shape, root) == ("signature_wrapping", "duplicate ID attribute(s): ['dup-1', 'dup-2', 'dup-3']")


def test_an_encrypted_assertion_anywhere_is_refused_before_anything_else(cfg):
    root = xmlsafe.parse(raw())
    etree.SubElement(root.find(q("Assertion")).find(q("Subject")), q("EncryptedAssertion"))
    assert refusal(acs._shape, root)[0] == "encrypted_assertion"


# ----------------------------------------------------------------------------- policy


def test_status_refusal_names_the_status(cfg):
    root, assertion = parsed(raw())
    code = root.find(f"{q('Status', 'samlp')}/{q('StatusCode', 'samlp')}")
    code.set("Value", "urn:oasis:names:tc:SAML:2.0:status:Requester")
    assert policy(cfg, root, assertion) == ("status_not_success", "urn:oasis:names:tc:SAML:2.0:status:Requester")
    del code.attrib["Value"]
    assert policy(cfg, root, assertion) == ("status_not_success", "")


def test_issuer_refusals_name_the_issuer(cfg):
    root, assertion = parsed(raw())
    root.find(q("Issuer")).text = "https://evil.test"
    assert policy(cfg, root, assertion) == ("issuer_mismatch", "Response Issuer 'https://evil.test'")
    root.find(q("Issuer")).text = IDP_A
    assertion.find(q("Issuer")).text = "https://evil.test"
    assert policy(cfg, root, assertion) == ("issuer_mismatch", "Assertion Issuer 'https://evil.test'")


def test_destination_refusals_name_the_destination(cfg):
    root, assertion = parsed(raw(destination="https://evil.test/acs/"))
    assert policy(cfg, root, assertion) == ("destination_mismatch", "Destination 'https://evil.test/acs/'")
    del root.attrib["Destination"]
    assert policy(cfg, root, assertion) == ("destination_mismatch", "Destination None")


def test_subject_refusals_name_what_is_missing_or_wrong(cfg):
    root, assertion = parsed(raw(method=SCM_SENDER_VOUCHES))
    assert policy(cfg, root, assertion) == ("subject_confirmation_not_bearer", f"Method {SCM_SENDER_VOUCHES!r}")
    subject = assertion.find(q("Subject"))
    subject.remove(subject.find(q("SubjectConfirmation")))
    assert policy(cfg, root, assertion) == ("subject_confirmation_not_bearer", "no SubjectConfirmation")
    assertion.remove(subject)
    assert policy(cfg, root, assertion) == ("no_name_id", "no Subject")


def test_confirmation_data_refusals_name_what_is_wrong(cfg):
    root, assertion = parsed(raw(recipient="https://evil.test/acs/"))
    assert policy(cfg, root, assertion) == ("recipient_mismatch", "Recipient 'https://evil.test/acs/'")
    sc = assertion.find(f"{q('Subject')}/{q('SubjectConfirmation')}")
    sc.remove(sc.find(q("SubjectConfirmationData")))
    assert policy(cfg, root, assertion) == ("recipient_mismatch", "Recipient None")

    root, assertion = parsed(raw(in_response_to="id-request-1"))
    assert policy(cfg, root, assertion, in_response_to="id-request-2") == (
        "in_response_to_mismatch", "SubjectConfirmationData InResponseTo differs from the Response's")

    root, assertion = parsed(raw())
    data = assertion.find(f".//{q('SubjectConfirmationData')}")
    del data.attrib["NotOnOrAfter"]
    assert policy(cfg, root, assertion) == ("expired", "bearer SubjectConfirmationData without NotOnOrAfter")


def test_time_window_refusals_name_the_element_and_the_value(cfg):
    skew = timedelta(seconds=cfg.clock_skew_seconds)
    root, assertion = parsed(raw(valid_for=timedelta(minutes=5)))
    conditions = assertion.find(q("Conditions"))
    conditions.set("NotOnOrAfter", "2026-06-01T13:00:00Z")  # only the confirmation expires
    at_expiry = NOW + timedelta(minutes=5) + skew  # NotOnOrAfter is exclusive
    assert policy(cfg, root, assertion, now=at_expiry) == (
        "expired", "SubjectConfirmationData NotOnOrAfter 2026-06-01T12:05:00Z")

    data = assertion.find(f".//{q('SubjectConfirmationData')}")
    data.set("NotBefore", "2026-06-01T12:02:01Z")
    assert policy(cfg, root, assertion) == ("not_yet_valid", "SubjectConfirmationData NotBefore 2026-06-01T12:02:01Z")
    del data.attrib["NotBefore"]

    conditions.set("NotBefore", "2026-06-01T12:02:01Z")
    assert policy(cfg, root, assertion) == ("not_yet_valid", "Conditions NotBefore 2026-06-01T12:02:01Z")
    del conditions.attrib["NotBefore"]

    data.set("NotOnOrAfter", "2026-06-01T13:00:00Z")  # only the conditions expire
    conditions.set("NotOnOrAfter", "2026-06-01T11:58:00Z")
    assert policy(cfg, root, assertion) == ("expired", "Conditions NotOnOrAfter 2026-06-01T11:58:00Z")


def test_audience_refusals_name_what_is_wrong(cfg):
    others = [f"https://other-{n}.test" for n in range(4)]
    audiences = "".join(f"<saml2:Audience>{a}</saml2:Audience>" for a in others)
    xml = raw().replace(f"<saml2:Audience>{sp_entity_id(SLUG)}</saml2:Audience>".encode(), audiences.encode())
    root, assertion = parsed(xml)
    assert policy(cfg, root, assertion) == ("audience_mismatch", f"Audience {others[:3]}")

    conditions = assertion.find(q("Conditions"))
    conditions.remove(conditions.find(q("AudienceRestriction")))
    assert policy(cfg, root, assertion) == ("audience_mismatch", "no AudienceRestriction")
    assertion.remove(conditions)
    assert policy(cfg, root, assertion) == ("audience_mismatch", "no Conditions/AudienceRestriction")


# ----------------------------------------------------------------------------- verify_response's own refusals


def test_verify_response_refusals_name_what_is_wrong(cfg, world):
    assert refusal(acs.verify_response, cfg=None, slug=SLUG, workspace_id=world.a.pk, saml_response="") == (
        "not_configured", "no SAML settings")
    assert refusal(verify, cfg, world, base64.b64encode(b"<!DOCTYPE x><x/>").decode()) == (
        "dtd_refused", "XML with a DTD or entity declarations is refused.")
    cfg.idp_initiated = False
    assert refusal(verify, cfg, world, posted()) == (
        "unsolicited_refused", "no InResponseTo and IdP-initiated login is off")


def test_verify_response_names_both_issuers_when_the_response_and_assertion_disagree(cfg, world):
    cfg.idp_initiated = True
    xml = raw(now=timezone.now(), sign_response=False)
    xml = xml.replace(f">{IDP_A}</saml2:Issuer><saml2p:Status>".encode(), b">https://evil.test</saml2:Issuer><saml2p:Status>")
    assert b"https://evil.test" in xml
    assert refusal(verify, cfg, world, base64.b64encode(xml).decode()) == (
        "issuer_mismatch", f"Issuer {[IDP_A, 'https://evil.test']}")


def test_verify_response_accepts_a_response_without_its_own_issuer(cfg, world):
    cfg.idp_initiated = True
    root = etree.fromstring(raw(now=timezone.now(), sign_response=False))
    root.remove(root.find(q("Issuer")))  # optional on the Response (SAML core 3.2.2); the assertion is signed
    assert verify(cfg, world, base64.b64encode(etree.tostring(root)).decode()).issuer == IDP_A


def test_in_response_to_refusals_name_the_request(cfg, world):
    long_id = "id-" + "x" * 100
    assert refusal(verify, cfg, world, posted(in_response_to=long_id)) == (
        "unknown_in_response_to", f"InResponseTo {long_id[:80]!r}")
    stored_id = "id-" + "y" * 61  # request IDs are stored in at most 64 characters
    now = timezone.now()
    IssuedAuthnRequest.objects.create(workspace=world.a, request_id=stored_id, expires_at=now + timedelta(minutes=5),
                                      consumed_at=now)
    assert refusal(verify, cfg, world, posted(in_response_to=stored_id)) == (
        "replay", f"InResponseTo {stored_id!r} was already answered")


def test_a_used_request_is_a_replay_only_for_that_request_in_that_workspace(cfg, world):
    now = timezone.now()
    IssuedAuthnRequest.objects.create(workspace=world.a, request_id="id-answered", expires_at=now + timedelta(minutes=5),
                                      consumed_at=now)
    IssuedAuthnRequest.objects.create(workspace=world.b, request_id="id-bravo-answered",
                                      expires_at=now + timedelta(minutes=5), consumed_at=now)
    assert refusal(verify, cfg, world, posted(in_response_to="id-never-issued"))[0] == "unknown_in_response_to"
    assert refusal(verify, cfg, world, posted(in_response_to="id-bravo-answered"))[0] == "unknown_in_response_to"


def test_a_wrong_destination_is_named_although_pysaml2_drops_the_response_silently(cfg, world):
    cfg.idp_initiated = True
    assert refusal(verify, cfg, world, posted(destination="https://evil.test/acs/")) == (
        "destination_mismatch", "Destination 'https://evil.test/acs/'")
    IssuedAuthnRequest.objects.create(workspace=world.a, request_id="id-open", next_url="/w/alpha/",
                                      expires_at=timezone.now() + timedelta(minutes=5))
    assert refusal(verify, cfg, world, posted(destination="https://evil.test/acs/", in_response_to="id-open")) == (
        "destination_mismatch", "Destination 'https://evil.test/acs/'")


def test_pysaml2_checks_the_recipient_too(cfg, world, caplog):
    cfg.idp_initiated = True
    with caplog.at_level(logging.INFO, logger="saml.acs"):
        assert refusal(verify, cfg, world, posted(recipient="https://evil.test/acs/")) == (
            "recipient_mismatch", "Recipient 'https://evil.test/acs/'")
    # pysaml2 refused it (it is told the ACS URL), then Gatehouse's own check named it.
    assert [r.getMessage() for r in caplog.records if r.name == "saml.acs"] == [
        "SAML response refused: recipient_mismatch (VerificationError)"]


def test_a_pysaml2_refusal_gatehouse_does_not_make_is_still_refused(cfg, world):
    cfg.idp_initiated = True
    root = etree.fromstring(raw(now=timezone.now(), sign_response=False))
    root.set("Version", "1.0")  # pysaml2 checks the version; Gatehouse's checks do not
    assert refusal(verify, cfg, world, base64.b64encode(etree.tostring(root)).decode()) == (
        "rejected", "pysaml2: RequestVersionTooLow")


def test_a_response_pysaml2_returns_without_checking_its_signature_is_refused(cfg, world):
    # For a Response issued more than a day away from now pysaml2 stops verifying (no signature checked) but
    # still hands a response back: Gatehouse reads only from an element whose signature was verified.
    cfg.idp_initiated = True
    root = etree.fromstring(raw(now=timezone.now(), sign_response=False))
    root.set("IssueInstant", (timezone.now() - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ"))
    assert refusal(verify, cfg, world, base64.b64encode(etree.tostring(root)).decode()) == (
        "unsigned", "no verified signature covers the assertion")


# ----------------------------------------------------------------------------- pysaml2's exceptions to codes


@pytest.mark.parametrize(("exc", "expected"), [
    (ResponseLifetimeExceed("too old"), ("expired", "ResponseLifetimeExceed")),
    (ToEarly("too early"), ("not_yet_valid", "ToEarly")),
    (UnsolicitedResponse("unsolicited"), ("unknown_in_response_to", "UnsolicitedResponse")),
    (StatusError("failed"), ("status_not_success", "StatusError")),
    (Exception("Not for me! AudienceRestrictions check failed"), ("audience_mismatch", "pysaml2: audience")),
    (VerificationError("wrong recipient"), ("recipient_mismatch", "pysaml2: recipient")),
    (VerificationError("something else"), ("rejected", "pysaml2: VerificationError")),
    (ValueError("wrong recipient"), ("rejected", "pysaml2: ValueError")),
    (VerificationError("x" * 192 + "recipient"), ("rejected", "pysaml2: VerificationError")),  # ends at 201
    (VerificationError("x" * 191 + "recipient"), ("recipient_mismatch", "pysaml2: recipient")),
])
def test_pysaml2_refusals_are_mapped_to_codes(exc, expected):
    failure = acs._classify(exc)
    assert (failure.code, failure.detail) == expected


class _Verifier:
    """What ``_signature_failure`` reads from the in-process verifier: the refusal it recorded, if any."""

    def __init__(self, refusal: SignatureRefused | None = None) -> None:
        self.last_refusal = refusal


def test_signature_failures_keep_the_verifiers_reason():
    refused = SignatureRefused("weak_algorithm", "signature algorithm not allowed: sha1")
    failure = acs._signature_failure(refused, _Verifier())
    assert (failure.code, failure.detail) == ("weak_algorithm", "signature algorithm not allowed: sha1")
    # pysaml2 wraps the verifier's exception in its own: the reason the verifier recorded wins.
    failure = acs._signature_failure(SignatureError("Failed to verify signature"), _Verifier(refused))
    assert (failure.code, failure.detail) == ("weak_algorithm", "signature algorithm not allowed: sha1")


def test_signature_failures_without_a_recorded_reason(cfg):
    failure = acs._signature_failure(SigverError("Invalid document format " + "<x/>" * 10), _Verifier())
    assert (failure.code, failure.detail) == ("schema_invalid", "the signed element does not follow the SAML schema")
    late = SigverError("x" * 178 + "Invalid document format")  # the marker ends at character 201
    failure = acs._signature_failure(late, _Verifier())
    assert (failure.code, failure.detail) == ("signature_invalid", "SigverError")
    failure = acs._signature_failure(SignatureError("<Assertion>secret</Assertion>"), _Verifier())
    assert (failure.code, failure.detail) == ("signature_invalid", "SignatureError")  # never the document
    assert acs._signature_failure(ValueError("other"), _Verifier()) is None


def test_a_weak_algorithm_is_named_end_to_end(cfg, world):
    cfg.idp_initiated = True
    code, detail = refusal(verify, cfg, world, posted(sha1=True))
    assert code == "weak_algorithm"
    assert detail.startswith("signature algorithm not allowed: http://www.w3.org/2000/09/xmldsig#rsa-sha1")
    # Only the assertion signed: pysaml2 wraps the verifier's exception in its own SignatureError, and the
    # reason the verifier recorded is what the audit log gets.
    code, detail = refusal(verify, cfg, world, posted(sha1=True, sign_response=False))
    assert code == "weak_algorithm"
    assert detail.startswith("signature algorithm not allowed: http://www.w3.org/2000/09/xmldsig#rsa-sha1")


# ----------------------------------------------------------------------------- what an accepted login carries


def test_an_accepted_login_carries_what_the_verified_assertion_says(cfg, world):
    cfg.idp_initiated = True
    cfg.groups_attribute = "groups"
    now = timezone.now().replace(microsecond=0)
    login = verify(cfg, world, posted(now=now, groups=("eng", "ops"), sign_response=False))  # only the assertion signed
    assert (login.email, login.first_name, login.last_name, login.groups) == (
        "member@alpha.test", "Ada", "Lovelace", ["eng", "ops"])
    assert login.attributes == {"firstName": ["Ada"], "lastName": ["Lovelace"], "groups": ["eng", "ops"]}
    assert login.session_not_on_or_after == now + timedelta(hours=8)
    assert login.issuer == IDP_A and login.name_id == "member@alpha.test"


def test_the_email_comes_from_the_configured_attribute(cfg, world):
    cfg.idp_initiated = True
    cfg.email_attribute = "firstName"
    login = verify(cfg, world, posted(name_id="00u1234", first_name="ada@alpha.test"))
    assert (login.email, login.name_id) == ("ada@alpha.test", "00u1234")


def test_a_missing_attribute_reads_as_empty(cfg, world):
    cfg.idp_initiated = True
    cfg.first_name_attribute = "givenName"
    cfg.groups_attribute = "memberOf"
    login = verify(cfg, world, posted(groups=("eng",)))
    assert (login.first_name, login.groups) == ("", [])


def test_a_response_without_an_email_names_the_value(cfg, world):
    cfg.idp_initiated = True
    name_id = "u" * 100
    assert refusal(verify, cfg, world, posted(name_id=name_id)) == ("no_email", f"email value {name_id[:80]!r}")


def test_an_attribute_without_a_name_never_reaches_gatehouse(cfg, world):
    # pysaml2's schema check refuses it, so how Gatehouse would file a nameless attribute never matters.
    def nameless(assertion):
        attribute = etree.SubElement(assertion.find(q("AttributeStatement")), q("Attribute"))
        etree.SubElement(attribute, q("AttributeValue")).text = "admins"

    cfg.idp_initiated = True
    assert refusal(verify, cfg, world, resigned(nameless)) == ("rejected", "pysaml2: MustValueError")
    assert verify(cfg, world, resigned(lambda assertion: None)).email == "member@alpha.test"


def test_one_authn_statement_is_all_gatehouse_ever_reads(cfg, world):
    # pysaml2 refuses any other number, so the earliest-of-several SessionNotOnOrAfter never has two to compare.
    def two_statements(assertion):
        statement = assertion.find(q("AuthnStatement"))
        statement.addnext(deepcopy(statement))

    cfg.idp_initiated = True
    assert refusal(verify, cfg, world, resigned(two_statements)) == ("rejected", "pysaml2: ValueError")
    assert verify(cfg, world, posted(session_valid_for=None)).session_not_on_or_after is None
