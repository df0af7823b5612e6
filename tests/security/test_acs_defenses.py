"""The ACS's own checks behind pysaml2's, each proved on its own.

``verify_response`` does not trust pysaml2 to have refused what it should: after pysaml2 accepts, it reads only
from the element whose signature the in-process verifier checked, requires a NameID there, and requires pysaml2's
reading of that element to agree with its own. An assertion without a NameID reaches that check today (pysaml2
accepts it); for the others pysaml2 refuses first whatever a real IdP's document can hold, so through the endpoint
those branches are never taken and removing one would go unnoticed until pysaml2 changes. Those tests make
pysaml2 (or the verifier's priming) behave as a weaker version would, on real signed responses from the test IdP,
and assert the ACS still refuses with the precise code. The signature check itself is never replaced.
"""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
from django.utils import timezone
from lxml import etree
from saml2.sigver import SignatureError

from saml import acs, xmlsafe
from saml.models import IssuedAuthnRequest
from saml.sp import GatehouseClient
from saml.verifier import InProcessVerifier, SignatureRefused
from tests.saml.conftest import IDP_A, configure
from tests.saml.idp import make_key
from tests.security.acs_helpers import SLUG, raw, resigned


@pytest.fixture
def cfg(world):
    cfg = configure(world.a, world.owner_a, IDP_A, make_key("idp-alpha"), email_domains=["alpha.test"])
    cfg.idp_initiated = True
    return cfg


def posted(**kw) -> str:
    kw.setdefault("now", timezone.now())
    return base64.b64encode(raw(**kw)).decode()


def verify(cfg, world, saml_response: str):
    return acs.verify_response(cfg=cfg, slug=SLUG, workspace_id=world.a.pk, saml_response=saml_response)


def refusal(cfg, world, saml_response: str) -> tuple[str, str]:
    with pytest.raises(acs.AcsFailure) as failure:
        verify(cfg, world, saml_response)
    return failure.value.code, failure.value.detail


def open_request(world, request_id: str = "id-open") -> str:
    IssuedAuthnRequest.objects.create(workspace=world.a, request_id=request_id, next_url="/w/alpha/",
                                      expires_at=timezone.now() + timedelta(minutes=5))
    return request_id


@pytest.fixture
def pysaml2_returns_nothing(monkeypatch):
    """pysaml2 as a version that drops a response silently (returns None) instead of raising."""
    monkeypatch.setattr(GatehouseClient, "parse_authn_request_response", lambda self, *a, **kw: None)


@pytest.fixture
def pysaml2_reads(monkeypatch):
    """Let a test change what pysaml2 read (its NameID, its assertion ID) after it accepted the response."""
    changes: list = []
    original = GatehouseClient.parse_authn_request_response

    def parse(self, *args, **kw):
        result = original(self, *args, **kw)
        for change in changes:
            change(result)
        return result

    monkeypatch.setattr(GatehouseClient, "parse_authn_request_response", parse)
    return changes


# ----------------------------------------------------------------------------- pysaml2 returns no response


def test_a_response_pysaml2_drops_silently_is_refused(cfg, world, pysaml2_returns_nothing):
    assert refusal(cfg, world, posted()) == ("rejected", "pysaml2 returned no response")
    # A solicited one too: Gatehouse's own checks see it answers the open request, and still refuse it.
    assert refusal(cfg, world, posted(in_response_to=open_request(world))) == (
        "rejected", "pysaml2 returned no response")


def test_a_dropped_response_is_named_by_gatehouses_own_checks_first(cfg, world, pysaml2_returns_nothing):
    # What pysaml2 would have refused, had it said why: Gatehouse's checks name it.
    assert refusal(cfg, world, posted(audience="https://other-sp.test/")) == (
        "audience_mismatch", "Audience ['https://other-sp.test/']")
    assert refusal(cfg, world, posted(recipient="https://evil.test/acs/")) == (
        "recipient_mismatch", "Recipient 'https://evil.test/acs/'")
    assert refusal(cfg, world, posted(now=timezone.now() - timedelta(hours=1)))[0] == "expired"


# ----------------------------------------------------------------------------- the verified element


def test_only_the_verified_element_is_read_whichever_one_was_signed(cfg, world):
    # Response signed only, assertion signed only, both: each is accepted and read from the assertion.
    for kw in ({"sign_assertion": False}, {"sign_response": False}, {}):
        login = verify(cfg, world, posted(**kw))
        assert (login.email, login.name_id) == ("member@alpha.test", "member@alpha.test"), kw


def test_a_signature_verified_on_another_parse_of_the_document_is_never_read(cfg, world, monkeypatch):
    # The verifier is handed the ACS's own parse so that the element it checks is the element the ACS reads.
    # Were it to check a second parse (a parser differential: two readings of one document), the ACS refuses
    # rather than pick which tree to believe.
    monkeypatch.setattr(InProcessVerifier, "prime", lambda self, signedtext, root: None)
    for kw in ({"sign_assertion": False}, {"sign_response": False}, {}):
        assert refusal(cfg, world, posted(**kw)) == (
            "parser_differential", "the verified element is not in the checked document"), kw


# ----------------------------------------------------------------------------- the NameID


def _without_name_id(assertion: etree._Element) -> None:
    """Take the NameID out of the Subject (schema-valid: it is optional)."""
    subject = assertion.find(xmlsafe.qname("saml", "Subject"))
    subject.remove(subject.find(xmlsafe.qname("saml", "NameID")))


def test_an_assertion_without_a_name_id_is_refused(cfg, world):
    # pysaml2 accepts a signed assertion whose Subject has no NameID (its schema allows that); the ACS refuses it:
    # nobody is signed in as an empty NameID.
    assert refusal(cfg, world, resigned(_without_name_id)) == ("no_name_id", "no NameID")


def test_pysaml2_and_the_acs_must_read_the_same_name_id(cfg, world, pysaml2_reads):
    class _Text:
        text = "someone-else@alpha.test"

    pysaml2_reads.append(lambda result: setattr(result, "name_id", _Text()))
    assert refusal(cfg, world, posted()) == ("parser_differential", "pysaml2 and the verified element disagree")


def test_a_name_id_pysaml2_read_as_nothing_is_a_disagreement(cfg, world, pysaml2_reads):
    pysaml2_reads.append(lambda result: setattr(result, "name_id", None))
    assert refusal(cfg, world, posted()) == ("parser_differential", "pysaml2 and the verified element disagree")


def test_a_name_id_is_compared_without_surrounding_whitespace(cfg, world, pysaml2_reads):
    class _Text:
        text = "  member@alpha.test\n"

    pysaml2_reads.append(lambda result: setattr(result, "name_id", _Text()))
    assert verify(cfg, world, posted()).name_id == "member@alpha.test"


def test_pysaml2_and_the_acs_must_read_the_same_assertion(cfg, world, pysaml2_reads):
    pysaml2_reads.append(lambda result: setattr(result.assertion, "id", "id-another-assertion"))
    assert refusal(cfg, world, posted()) == ("parser_differential", "pysaml2 and the verified element disagree")


# ----------------------------------------------------------------------------- what pysaml2 reports


def test_a_refusal_pysaml2_wraps_in_its_own_exception_keeps_the_verifiers_reason(cfg, world, monkeypatch):
    # pysaml2 7 lets the verifier's refusal through as it is; a version that wraps it in its own SignatureError
    # must not turn "signature algorithm not allowed" into a plain "signature invalid" in the audit log.
    original = GatehouseClient.parse_authn_request_response

    def wrapping(self, *args, **kw):
        try:
            return original(self, *args, **kw)
        except SignatureRefused as exc:
            raise SignatureError("Failed to verify signature") from exc

    monkeypatch.setattr(GatehouseClient, "parse_authn_request_response", wrapping)
    code, detail = refusal(cfg, world, posted(sha1=True, sign_response=False))
    assert code == "weak_algorithm"
    assert detail.startswith("signature algorithm not allowed: http://www.w3.org/2000/09/xmldsig#rsa-sha1")


def _with_attribute(name: str, *values: str) -> str:
    """A response whose assertion carries one more attribute, signed by the IdP."""
    def add(assertion: etree._Element) -> None:
        statement = assertion.find(xmlsafe.qname("saml", "AttributeStatement"))
        attribute = etree.SubElement(statement, xmlsafe.qname("saml", "Attribute"), Name=name)
        for value in values:
            etree.SubElement(attribute, xmlsafe.qname("saml", "AttributeValue")).text = value

    return resigned(add)


def test_no_groups_are_read_when_group_sync_names_no_attribute(cfg, world):
    # An attribute with an empty Name never reaches Gatehouse (pysaml2 refuses it), so with group sync off
    # (no attribute named) there is nothing a lookup of "" could find.
    cfg.groups_attribute = ""
    assert refusal(cfg, world, _with_attribute("", "admins")) == ("rejected", "pysaml2: MustValueError")
    assert verify(cfg, world, _with_attribute("groups", "admins")).groups == []
    cfg.groups_attribute = "groups"
    assert verify(cfg, world, _with_attribute("groups", "admins", "", "eng")).groups == ["admins", "eng"]
