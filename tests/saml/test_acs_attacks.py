"""Every known way to forge or reuse a SAML response is refused, with a plain page and the precise audited reason.

Each response is a real Okta-shaped one (Response and Assertion signed with the test IdP's key) changed in
exactly one way. A refusal must leave the browser without a session for the workspace.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client
from lxml import etree

from audit.models import AuditEvent
from saml.sp import acs_url, sp_entity_id
from workspaces.access import SESSION_KEY

from .conftest import failures, post_acs, start_login
from .idp import SCM_SENDER_VOUCHES, encode, make_key

NS = {
    "samlp": "urn:oasis:names:tc:SAML:2.0:protocol",
    "saml2": "urn:oasis:names:tc:SAML:2.0:assertion",
    "ds": "http://www.w3.org/2000/09/xmldsig#",
}


def refused(world, client: Client, saml_response: str, reason: str, slug: str = "alpha") -> None:
    workspace = world.a if slug == "alpha" else world.b
    logins_before = AuditEvent.objects.filter(action="sso.login_succeeded").count()
    response = post_acs(client, slug, saml_response)
    assert response.status_code == 403
    body = response.content.decode()
    assert "Single sign-on failed" in body
    assert response["X-Request-ID"] in body  # the support reference
    assert "BEGIN CERTIFICATE" not in body and "PRIVATE" not in body
    assert failures(workspace)[-1] == reason
    assert SESSION_KEY not in client.session
    assert AuditEvent.objects.filter(action="sso.login_succeeded").count() == logins_before


@pytest.fixture
def client_and_request(sso_a):
    client = Client()
    return client, start_login(client, "alpha")


def raw(sso, **kw) -> bytes:
    return sso.response(as_bytes=True, **kw)


def test_unsigned_response_is_refused(world, sso_a, client_and_request):
    client, rid = client_and_request
    resp = sso_a.response(name_id="member@alpha.test", in_response_to=rid, sign_assertion=False, sign_response=False)
    refused(world, client, resp, "unsigned")


def test_response_with_its_signatures_stripped_is_refused(world, sso_a, client_and_request):
    client, rid = client_and_request
    root = etree.fromstring(raw(sso_a, name_id="member@alpha.test", in_response_to=rid))
    for sig in root.iter(f"{{{NS['ds']}}}Signature"):
        sig.getparent().remove(sig)
    refused(world, client, encode(etree.tostring(root)), "unsigned")


def test_assertion_signature_stripped_under_a_signed_response_breaks_the_response_signature(world, sso_a, client_and_request):
    client, rid = client_and_request
    root = etree.fromstring(raw(sso_a, name_id="member@alpha.test", in_response_to=rid))
    assertion = root.find("saml2:Assertion", NS)
    assertion.remove(assertion.find("ds:Signature", NS))
    refused(world, client, encode(etree.tostring(root)), "signature_invalid")


def test_response_signed_by_another_key_with_its_cert_in_keyinfo_is_refused(world, sso_a, client_and_request):
    client, rid = client_and_request
    resp = sso_a.response(name_id="member@alpha.test", in_response_to=rid, key=make_key("attacker"))
    refused(world, client, resp, "signature_invalid")


def test_name_id_altered_after_signing_is_refused(world, sso_a, client_and_request):
    client, rid = client_and_request
    xml = raw(sso_a, name_id="member@alpha.test", in_response_to=rid).replace(b"member@alpha.test", b"owner@alpha.test")
    refused(world, client, encode(xml), "signature_invalid")


def test_only_the_assertion_signed_by_another_key_is_refused(world, sso_a, client_and_request):
    client, rid = client_and_request
    resp = sso_a.response(name_id="member@alpha.test", in_response_to=rid, key=make_key("attacker"), sign_response=False)
    refused(world, client, resp, "signature_invalid")


def test_wrapping_with_an_evil_assertion_before_the_signed_one_is_refused(world, sso_a, client_and_request):
    client, rid = client_and_request
    root = etree.fromstring(raw(sso_a, name_id="member@alpha.test", in_response_to=rid))
    signed = root.find("saml2:Assertion", NS)
    evil = etree.fromstring(etree.tostring(signed))
    evil.remove(evil.find("ds:Signature", NS))
    evil.find("saml2:Subject/saml2:NameID", NS).text = "owner@alpha.test"
    evil.set("ID", "evil-1")
    signed.addprevious(evil)
    refused(world, client, encode(etree.tostring(root)), "multiple_assertions")


def test_wrapping_with_an_evil_copy_carrying_the_same_id_is_refused(world, sso_a, client_and_request):
    client, rid = client_and_request
    root = etree.fromstring(raw(sso_a, name_id="member@alpha.test", in_response_to=rid, sign_response=False))
    signed = root.find("saml2:Assertion", NS)
    evil = etree.fromstring(etree.tostring(signed))
    evil.find("saml2:Subject/saml2:NameID", NS).text = "owner@alpha.test"
    signed.addprevious(evil)
    # Hide the signed original where a careless reader does not look.
    ext = etree.SubElement(root, f"{{{NS['samlp']}}}Extensions")
    root.remove(signed)
    ext.append(signed)
    refused(world, client, encode(etree.tostring(root)), "multiple_assertions")


def test_signed_response_wrapped_inside_an_unsigned_evil_response_is_refused(world, sso_a, client_and_request):
    client, rid = client_and_request
    original = etree.fromstring(raw(sso_a, name_id="member@alpha.test", in_response_to=rid))
    evil = etree.fromstring(etree.tostring(original))
    evil.set("ID", "evil-response")
    for child in list(evil):
        if child.tag in (f"{{{NS['saml2']}}}Assertion", f"{{{NS['ds']}}}Signature"):
            evil.remove(child)
    ext = etree.Element(f"{{{NS['samlp']}}}Extensions")
    evil.find("saml2:Issuer", NS).addnext(ext)
    ext.append(original)
    refused(world, client, encode(etree.tostring(evil)), "signature_wrapping")


def test_an_element_reusing_the_signed_assertion_id_is_refused(world, sso_a, client_and_request):
    client, rid = client_and_request
    root = etree.fromstring(raw(sso_a, name_id="member@alpha.test", in_response_to=rid, sign_response=False))
    assertion_id = root.find("saml2:Assertion", NS).get("ID")
    ext = etree.Element(f"{{{NS['samlp']}}}Extensions", ID=assertion_id)
    root.find("saml2:Issuer", NS).addnext(ext)
    refused(world, client, encode(etree.tostring(root)), "signature_wrapping")


def test_comment_injected_into_the_name_id_is_refused(world, sso_a, client_and_request):
    client, rid = client_and_request
    # The attacker owns member@alpha.test.evil.test at the IdP; exclusive c14n ignores comments, so the
    # signature still verifies after the comment is added. A reader that stops at the comment sees member@alpha.test.
    xml = raw(sso_a, name_id="member@alpha.test.evil.test", in_response_to=rid)
    xml = xml.replace(b"member@alpha.test.evil.test", b"member@alpha.test<!---->.evil.test")
    refused(world, client, encode(xml), "comments_refused")


def test_wrong_audience_is_refused(world, sso_a, client_and_request):
    client, rid = client_and_request
    resp = sso_a.response(name_id="member@alpha.test", in_response_to=rid, audience="https://other-sp.test/")
    refused(world, client, resp, "audience_mismatch")


def test_wrong_recipient_is_refused(world, sso_a, client_and_request):
    client, rid = client_and_request
    resp = sso_a.response(name_id="member@alpha.test", in_response_to=rid, recipient="https://other-sp.test/acs")
    refused(world, client, resp, "recipient_mismatch")


def test_wrong_destination_is_refused(world, sso_a, client_and_request):
    client, rid = client_and_request
    resp = sso_a.response(name_id="member@alpha.test", in_response_to=rid, destination="https://other-sp.test/acs")
    refused(world, client, resp, "destination_mismatch")


def test_wrong_issuer_is_refused(world, sso_a, client_and_request):
    client, rid = client_and_request
    resp = sso_a.response(name_id="member@alpha.test", in_response_to=rid, issuer="http://www.okta.com/exkOTHER")
    refused(world, client, resp, "issuer_mismatch")


def test_expired_response_is_refused(world, sso_a, client_and_request):
    client, rid = client_and_request
    resp = sso_a.response(name_id="member@alpha.test", in_response_to=rid,
                          now=datetime.now(UTC) - timedelta(minutes=10), valid_for=timedelta(minutes=5))
    refused(world, client, resp, "expired")


def test_not_yet_valid_response_is_refused(world, sso_a, client_and_request):
    client, rid = client_and_request
    resp = sso_a.response(name_id="member@alpha.test", in_response_to=rid,
                          now=datetime.now(UTC) + timedelta(minutes=10), not_before_offset=timedelta(0))
    refused(world, client, resp, "not_yet_valid")


def test_response_expired_within_the_clock_skew_is_accepted(world, sso_a, client_and_request):
    client, rid = client_and_request
    resp = sso_a.response(name_id="member@alpha.test", in_response_to=rid,
                          now=datetime.now(UTC) - timedelta(minutes=6), valid_for=timedelta(minutes=5))
    assert post_acs(client, "alpha", resp).status_code == 302


def test_unknown_in_response_to_is_refused(world, sso_a, client_and_request):
    client, _ = client_and_request
    resp = sso_a.response(name_id="member@alpha.test", in_response_to="id-never-issued")
    refused(world, client, resp, "unknown_in_response_to")


def test_unknown_in_response_to_is_refused_even_when_idp_initiated_login_is_on(world, sso_a, client_and_request):
    sso_a.cfg.idp_initiated = True
    sso_a.cfg.save()
    client, _ = client_and_request
    resp = sso_a.response(name_id="member@alpha.test", in_response_to="id-never-issued")
    refused(world, client, resp, "unknown_in_response_to")


def test_in_response_to_of_another_workspace_is_refused(world, sso_a, sso_b):
    client = Client()
    rid_b = start_login(client, "bravo")
    resp = sso_a.response(name_id="member@alpha.test", in_response_to=rid_b)
    refused(world, client, resp, "unknown_in_response_to")


def test_unsolicited_response_is_refused_when_idp_initiated_login_is_off(world, sso_a):
    refused(world, Client(), sso_a.response(name_id="member@alpha.test"), "unsolicited_refused")


def test_replayed_response_is_refused(world, sso_a, client_and_request):
    client, rid = client_and_request
    resp = sso_a.response(name_id="member@alpha.test", in_response_to=rid)
    assert post_acs(client, "alpha", resp).status_code == 302
    refused(world, Client(), resp, "replay")  # the AuthnRequest is spent


def test_replayed_unsolicited_response_is_refused_by_the_assertion_store(world, sso_a):
    sso_a.cfg.idp_initiated = True
    sso_a.cfg.save()
    resp = sso_a.response(name_id="member@alpha.test")
    assert post_acs(Client(), "alpha", resp).status_code == 302
    refused(world, Client(), resp, "replay")


def test_assertion_id_reused_under_a_new_authn_request_is_refused(world, sso_a):
    client = Client()
    first = sso_a.response(name_id="member@alpha.test", in_response_to=start_login(client, "alpha"), assertion_id="id-fixed")
    assert post_acs(client, "alpha", first).status_code == 302
    other = Client()
    again = sso_a.response(name_id="member@alpha.test", in_response_to=start_login(other, "alpha"), assertion_id="id-fixed")
    refused(world, other, again, "replay")


def test_dtd_with_an_external_entity_is_refused(world, sso_a, client_and_request):
    client, rid = client_and_request
    xml = raw(sso_a, name_id="member@alpha.test", in_response_to=rid)
    xml = b'<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>' + xml.replace(b"Ada", b"&xxe;")
    refused(world, client, encode(xml), "dtd_refused")


def test_billion_laughs_is_refused(world, sso_a, client_and_request):
    client, _ = client_and_request
    lol = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
           b'<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol">&lol2;</samlp:Response>')
    refused(world, client, encode(lol), "dtd_refused")


def test_response_from_another_workspaces_idp_is_refused(world, sso_a, sso_b, client_and_request):
    client, rid = client_and_request
    # IdP B, configured for workspace B, is asked (or tricked) to address a response to workspace A.
    resp = sso_b.response(name_id="member@alpha.test", in_response_to=rid,
                          sp_entity_id=sp_entity_id("alpha"), acs_url=acs_url("alpha"))
    refused(world, client, resp, "issuer_mismatch")


def test_response_signed_by_another_workspaces_idp_key_under_this_issuer_is_refused(world, sso_a, sso_b, client_and_request):
    client, rid = client_and_request
    resp = sso_a.response(name_id="member@alpha.test", in_response_to=rid, key=sso_b.key)
    refused(world, client, resp, "signature_invalid")


def test_response_for_workspace_a_posted_to_workspace_b_is_refused(world, sso_a, sso_b):
    client = Client()
    rid_b = start_login(client, "bravo")
    resp = sso_a.response(name_id="owner@bravo.test", in_response_to=rid_b)
    refused(world, client, resp, "issuer_mismatch", slug="bravo")


def test_sender_vouches_confirmation_is_refused(world, sso_a, client_and_request):
    client, rid = client_and_request
    resp = sso_a.response(name_id="member@alpha.test", in_response_to=rid, method=SCM_SENDER_VOUCHES)
    refused(world, client, resp, "subject_confirmation_not_bearer")


def test_rsa_sha1_signature_is_refused_by_default(world, sso_a, client_and_request):
    client, rid = client_and_request
    resp = sso_a.response(name_id="member@alpha.test", in_response_to=rid, sha1=True)
    refused(world, client, resp, "weak_algorithm")


def test_garbage_instead_of_a_response_is_refused(world, sso_a, client_and_request):
    client, _ = client_and_request
    refused(world, client, base64.b64encode(b"not xml at all").decode(), "malformed_xml")


def test_rsa_sha1_signature_is_accepted_only_when_the_workspace_opts_in(world, sso_a, client_and_request):
    sso_a.cfg.allow_sha1 = True
    sso_a.cfg.save()
    client, rid = client_and_request
    resp = sso_a.response(name_id="member@alpha.test", in_response_to=rid, sha1=True)
    assert post_acs(client, "alpha", resp).status_code == 302


def test_signed_response_that_breaks_the_saml_schema_is_refused(world, sso_a, client_and_request):
    # pysaml2's schema check still runs (on libxml2, saml/schema.py): a validly signed but
    # schema-invalid Response never reaches the reader.
    client, rid = client_and_request
    resp = sso_a.response(name_id="member@alpha.test", in_response_to=rid,
                          response_extra='<saml2p:Bogus xmlns:saml2p="urn:oasis:names:tc:SAML:2.0:protocol"/>')
    refused(world, client, resp, "schema_invalid")


def test_signature_whose_reference_points_at_another_element_is_refused(world, sso_a, client_and_request):
    client, rid = client_and_request
    root = etree.fromstring(raw(sso_a, name_id="member@alpha.test", in_response_to=rid, sign_response=False))
    ref = root.find("saml2:Assertion/ds:Signature/ds:SignedInfo/ds:Reference", NS)
    ref.set("URI", "#" + root.get("ID"))  # "bad reference": the signature no longer covers its assertion
    refused(world, client, encode(etree.tostring(root)), "signature_invalid")


def test_signature_over_the_whole_document_by_empty_reference_is_refused(world, sso_a, client_and_request):
    client, rid = client_and_request
    root = etree.fromstring(raw(sso_a, name_id="member@alpha.test", in_response_to=rid, sign_response=False))
    root.find("saml2:Assertion/ds:Signature/ds:SignedInfo/ds:Reference", NS).set("URI", "")
    refused(world, client, encode(etree.tostring(root)), "signature_invalid")


def test_signed_assertion_cut_from_another_login_and_pasted_into_an_unsigned_response_is_refused(world, sso_a):
    # The attacker holds a signed assertion issued for their own earlier login (another AuthnRequest) and
    # wraps it in an unsigned Response that answers the victim's AuthnRequest.
    attacker = Client()
    own = etree.fromstring(raw(sso_a, name_id="member@alpha.test", in_response_to=start_login(attacker, "alpha"),
                               sign_response=False))
    victim = Client()
    victim_rid = start_login(victim, "alpha")
    own.set("InResponseTo", victim_rid)
    refused(world, victim, encode(etree.tostring(own)), "in_response_to_mismatch")
