"""The ACS checks, one layer at a time, on real signed responses from the test IdP (the signature check is never
mocked).

``verify_response`` runs pysaml2 first and Gatehouse's own checks (``_policy``) after it, on the verified
element: most wrong responses are refused by both, so removing either alone would go unnoticed through the
endpoint. Here each layer is called on its own: ``_policy`` directly on a parsed response with exactly one thing
wrong, ``_shape`` directly on a hand-shaped document, ``verify_response`` for what only it checks (issuer first,
InResponseTo against the requests this portal issued, the signature), and the replay store in
``sso_login_complete``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from saml import acs, xmlsafe
from saml import services as saml_services
from saml.models import IssuedAuthnRequest
from saml.sp import acs_url, sp_entity_id
from tests.saml.conftest import IDP_A, configure
from tests.saml.idp import SCM_SENDER_VOUCHES, build_response, make_key
from tests.security.acs_helpers import NOW, SLUG, raw

SKEW = timedelta(seconds=120)  # DEFAULT_CLOCK_SKEW_SECONDS, asserted below


@pytest.fixture
def cfg(world):
    return configure(world.a, world.owner_a, IDP_A, make_key("idp-alpha"), email_domains=["alpha.test"])




def policy(cfg, xml: bytes, *, now: datetime = NOW, in_response_to: str | None = None):
    root = xmlsafe.parse(xml)
    assertion = acs._shape(root)
    irt = root.get("InResponseTo") or "" if in_response_to is None else in_response_to
    return acs._policy(root, assertion, cfg, SLUG, now, irt)


def refused_by_policy(cfg, xml: bytes, code: str, **kw) -> None:
    with pytest.raises(acs.AcsFailure) as failure:
        policy(cfg, xml, **kw)
    assert failure.value.code == code


def test_the_skew_these_tests_assume(cfg):
    assert cfg.clock_skew_seconds == SKEW.total_seconds()


def test_policy_accepts_a_well_formed_response_and_keeps_it_until_its_last_expiry(cfg):
    assert policy(cfg, raw()) == {"replay_expires_at": NOW + timedelta(minutes=5) + SKEW}


# ----------------------------------------------------------------------------- issuer


def test_policy_refuses_another_issuer_on_the_response(cfg):
    xml = raw().replace(f">{IDP_A}</saml2:Issuer><ds:Signature".encode(), b">https://evil.test</saml2:Issuer><ds:Signature", 1)
    root = xmlsafe.parse(xml)
    assert xmlsafe.text_of(root.find(xmlsafe.qname("saml", "Issuer"))) == "https://evil.test"
    refused_by_policy(cfg, xml, "issuer_mismatch")


def test_policy_refuses_another_issuer_on_the_assertion(cfg):
    xml = raw(issuer="https://evil.test")
    root = xmlsafe.parse(xml)
    root.find(xmlsafe.qname("saml", "Issuer")).text = IDP_A  # only the assertion's issuer is wrong
    assertion = acs._shape(root)
    with pytest.raises(acs.AcsFailure) as failure:
        acs._policy(root, assertion, cfg, SLUG, NOW, "")
    assert failure.value.code == "issuer_mismatch"


def test_policy_accepts_a_response_without_its_own_issuer(cfg):
    root = xmlsafe.parse(raw())
    root.remove(root.find(xmlsafe.qname("saml", "Issuer")))  # optional on the Response (SAML core 3.2.2)
    assert acs._policy(root, acs._shape(root), cfg, SLUG, NOW, "")["replay_expires_at"]


def test_verify_response_refuses_another_identity_provider_first(cfg, world):
    other = build_response(sp_entity_id=sp_entity_id(SLUG), acs_url=acs_url(SLUG), idp_entity_id="https://evil.test",
                           key=make_key("idp-alpha"), name_id="member@alpha.test")
    with pytest.raises(acs.AcsFailure) as failure:
        acs.verify_response(cfg=cfg, slug=SLUG, workspace_id=world.a.pk, saml_response=other)
    assert failure.value.code == "issuer_mismatch"


# ----------------------------------------------------------------------------- status


def test_policy_refuses_a_status_other_than_success(cfg):
    xml = raw().replace(b"urn:oasis:names:tc:SAML:2.0:status:Success", b"urn:oasis:names:tc:SAML:2.0:status:Responder")
    refused_by_policy(cfg, xml, "status_not_success")


# ----------------------------------------------------------------------------- destination and recipient


def test_policy_refuses_another_destination(cfg):
    refused_by_policy(cfg, raw(destination="https://evil.test/acs/"), "destination_mismatch")


def test_policy_refuses_a_response_without_destination(cfg):
    root = xmlsafe.parse(raw())
    del root.attrib["Destination"]
    with pytest.raises(acs.AcsFailure) as failure:
        acs._policy(root, acs._shape(root), cfg, SLUG, NOW, "")
    assert failure.value.code == "destination_mismatch"


def test_policy_refuses_another_recipient(cfg):
    refused_by_policy(cfg, raw(recipient="https://evil.test/acs/"), "recipient_mismatch")


def test_policy_refuses_a_confirmation_without_data(cfg):
    root = xmlsafe.parse(raw())
    assertion = acs._shape(root)
    sc = assertion.find(f"{xmlsafe.qname('saml', 'Subject')}/{xmlsafe.qname('saml', 'SubjectConfirmation')}")
    sc.remove(sc.find(xmlsafe.qname("saml", "SubjectConfirmationData")))
    with pytest.raises(acs.AcsFailure) as failure:
        acs._policy(root, assertion, cfg, SLUG, NOW, "")
    assert failure.value.code == "recipient_mismatch"


# ----------------------------------------------------------------------------- audience


def test_policy_refuses_another_audience(cfg):
    refused_by_policy(cfg, raw(audience="https://other-sp.test/metadata/"), "audience_mismatch")


def test_policy_refuses_another_workspaces_audience(cfg):
    refused_by_policy(cfg, raw(audience=sp_entity_id("bravo")), "audience_mismatch")


def test_policy_refuses_when_any_audience_restriction_omits_us(cfg):
    restriction = f"<saml2:AudienceRestriction><saml2:Audience>{sp_entity_id(SLUG)}</saml2:Audience></saml2:AudienceRestriction>"
    xml = raw().replace(
        restriction.encode(),
        (restriction + "<saml2:AudienceRestriction><saml2:Audience>https://other.test</saml2:Audience>"
         "</saml2:AudienceRestriction>").encode(),
    )
    assert xml.count(b"AudienceRestriction>") == 4
    refused_by_policy(cfg, xml, "audience_mismatch")


def test_policy_accepts_a_restriction_naming_us_among_others(cfg):
    xml = raw().replace(
        f"<saml2:Audience>{sp_entity_id(SLUG)}</saml2:Audience>".encode(),
        f"<saml2:Audience>https://other.test</saml2:Audience><saml2:Audience>{sp_entity_id(SLUG)}</saml2:Audience>".encode(),
    )
    assert policy(cfg, xml)["replay_expires_at"]


def test_policy_refuses_conditions_without_audience_restriction(cfg):
    root = xmlsafe.parse(raw())
    assertion = acs._shape(root)
    conditions = assertion.find(xmlsafe.qname("saml", "Conditions"))
    conditions.remove(conditions.find(xmlsafe.qname("saml", "AudienceRestriction")))
    with pytest.raises(acs.AcsFailure) as failure:
        acs._policy(root, assertion, cfg, SLUG, NOW, "")
    assert failure.value.code == "audience_mismatch"


def test_policy_refuses_an_assertion_without_conditions(cfg):
    root = xmlsafe.parse(raw())
    assertion = acs._shape(root)
    assertion.remove(assertion.find(xmlsafe.qname("saml", "Conditions")))
    with pytest.raises(acs.AcsFailure) as failure:
        acs._policy(root, assertion, cfg, SLUG, NOW, "")
    assert failure.value.code == "audience_mismatch"


# ----------------------------------------------------------------------------- subject confirmation method


def test_policy_refuses_sender_vouches(cfg):
    refused_by_policy(cfg, raw(method=SCM_SENDER_VOUCHES), "subject_confirmation_not_bearer")


def test_policy_refuses_a_second_confirmation_that_is_not_bearer(cfg):
    root = xmlsafe.parse(raw())
    assertion = acs._shape(root)
    subject = assertion.find(xmlsafe.qname("saml", "Subject"))
    from copy import deepcopy

    second = deepcopy(subject.find(xmlsafe.qname("saml", "SubjectConfirmation")))
    second.set("Method", SCM_SENDER_VOUCHES)
    subject.append(second)
    with pytest.raises(acs.AcsFailure) as failure:
        acs._policy(root, assertion, cfg, SLUG, NOW, "")
    assert failure.value.code == "subject_confirmation_not_bearer"


def test_policy_refuses_a_subject_without_confirmation(cfg):
    root = xmlsafe.parse(raw())
    assertion = acs._shape(root)
    subject = assertion.find(xmlsafe.qname("saml", "Subject"))
    subject.remove(subject.find(xmlsafe.qname("saml", "SubjectConfirmation")))
    with pytest.raises(acs.AcsFailure) as failure:
        acs._policy(root, assertion, cfg, SLUG, NOW, "")
    assert failure.value.code == "subject_confirmation_not_bearer"


def test_policy_refuses_an_assertion_without_subject(cfg):
    root = xmlsafe.parse(raw())
    assertion = acs._shape(root)
    assertion.remove(assertion.find(xmlsafe.qname("saml", "Subject")))
    with pytest.raises(acs.AcsFailure) as failure:
        acs._policy(root, assertion, cfg, SLUG, NOW, "")
    assert failure.value.code == "no_name_id"


# ----------------------------------------------------------------------------- InResponseTo


def test_policy_refuses_a_confirmation_answering_another_request(cfg):
    # The Response says one request ID, the SubjectConfirmationData another.
    refused_by_policy(cfg, raw(in_response_to="id-request-1"), "in_response_to_mismatch", in_response_to="id-request-2")


def test_policy_refuses_a_confirmation_with_an_in_response_to_the_response_lacks(cfg):
    refused_by_policy(cfg, raw(in_response_to="id-request-1"), "in_response_to_mismatch", in_response_to="")


def test_policy_accepts_a_confirmation_answering_the_responses_request(cfg):
    assert policy(cfg, raw(in_response_to="id-request-1"), in_response_to="id-request-1")["replay_expires_at"]


def open_request(world, request_id: str, *, expires_in: timedelta = timedelta(minutes=5), consumed: bool = False):
    now = timezone.now()
    return IssuedAuthnRequest.objects.create(
        workspace=world.a, request_id=request_id, next_url="/w/alpha/", expires_at=now + expires_in,
        consumed_at=now if consumed else None,
    )


def test_verify_response_refuses_an_in_response_to_this_portal_never_issued(cfg, world):
    response = build_response(sp_entity_id=sp_entity_id(SLUG), acs_url=acs_url(SLUG), idp_entity_id=IDP_A,
                              key=make_key("idp-alpha"), name_id="member@alpha.test", in_response_to="id-unknown")
    cfg.idp_initiated = True  # even then: an unknown InResponseTo is a forgery, not an unsolicited login
    with pytest.raises(acs.AcsFailure) as failure:
        acs.verify_response(cfg=cfg, slug=SLUG, workspace_id=world.a.pk, saml_response=response)
    assert failure.value.code == "unknown_in_response_to"


def test_verify_response_refuses_an_in_response_to_issued_for_another_workspace(cfg, world):
    IssuedAuthnRequest.objects.create(workspace=world.b, request_id="id-for-bravo",
                                      expires_at=timezone.now() + timedelta(minutes=5))
    response = build_response(sp_entity_id=sp_entity_id(SLUG), acs_url=acs_url(SLUG), idp_entity_id=IDP_A,
                              key=make_key("idp-alpha"), name_id="member@alpha.test", in_response_to="id-for-bravo")
    with pytest.raises(acs.AcsFailure) as failure:
        acs.verify_response(cfg=cfg, slug=SLUG, workspace_id=world.a.pk, saml_response=response)
    assert failure.value.code == "unknown_in_response_to"


def test_verify_response_refuses_an_expired_request(cfg, world):
    open_request(world, "id-stale", expires_in=timedelta(seconds=-1))
    response = build_response(sp_entity_id=sp_entity_id(SLUG), acs_url=acs_url(SLUG), idp_entity_id=IDP_A,
                              key=make_key("idp-alpha"), name_id="member@alpha.test", in_response_to="id-stale")
    with pytest.raises(acs.AcsFailure) as failure:
        acs.verify_response(cfg=cfg, slug=SLUG, workspace_id=world.a.pk, saml_response=response)
    assert failure.value.code == "unknown_in_response_to"


def test_verify_response_names_an_answered_request_a_replay(cfg, world):
    open_request(world, "id-used", consumed=True)
    response = build_response(sp_entity_id=sp_entity_id(SLUG), acs_url=acs_url(SLUG), idp_entity_id=IDP_A,
                              key=make_key("idp-alpha"), name_id="member@alpha.test", in_response_to="id-used")
    with pytest.raises(acs.AcsFailure) as failure:
        acs.verify_response(cfg=cfg, slug=SLUG, workspace_id=world.a.pk, saml_response=response)
    assert failure.value.code == "replay"


def test_verify_response_refuses_unsolicited_responses_unless_turned_on(cfg, world):
    response = build_response(sp_entity_id=sp_entity_id(SLUG), acs_url=acs_url(SLUG), idp_entity_id=IDP_A,
                              key=make_key("idp-alpha"), name_id="member@alpha.test")
    cfg.idp_initiated = False
    with pytest.raises(acs.AcsFailure) as failure:
        acs.verify_response(cfg=cfg, slug=SLUG, workspace_id=world.a.pk, saml_response=response)
    assert failure.value.code == "unsolicited_refused"
    cfg.idp_initiated = True
    login = acs.verify_response(cfg=cfg, slug=SLUG, workspace_id=world.a.pk, saml_response=response)
    assert login.email == "member@alpha.test" and login.authn_request is None and login.in_response_to == ""


def test_verify_response_accepts_an_answer_to_an_open_request(cfg, world):
    request = open_request(world, "id-open")
    response = build_response(sp_entity_id=sp_entity_id(SLUG), acs_url=acs_url(SLUG), idp_entity_id=IDP_A,
                              key=make_key("idp-alpha"), name_id="member@alpha.test", in_response_to="id-open",
                              groups=("eng",))
    login = acs.verify_response(cfg=cfg, slug=SLUG, workspace_id=world.a.pk, saml_response=response)
    assert login.authn_request == request
    assert login.in_response_to == "id-open"
    assert login.issuer == IDP_A
    assert (login.name_id, login.email, login.first_name, login.last_name) == (
        "member@alpha.test", "member@alpha.test", "Ada", "Lovelace")


# ----------------------------------------------------------------------------- time window


def test_policy_refuses_a_confirmation_past_its_not_on_or_after_plus_skew(cfg):
    xml = raw(valid_for=timedelta(minutes=5))
    refused_by_policy(cfg, xml, "expired", now=NOW + timedelta(minutes=5) + SKEW)


def test_policy_accepts_a_confirmation_just_inside_the_skew(cfg):
    xml = raw(valid_for=timedelta(minutes=5))
    assert policy(cfg, xml, now=NOW + timedelta(minutes=5) + SKEW - timedelta(seconds=1))


def test_policy_refuses_a_confirmation_without_not_on_or_after(cfg):
    root = xmlsafe.parse(raw())
    assertion = acs._shape(root)
    data = assertion.find(f".//{xmlsafe.qname('saml', 'SubjectConfirmationData')}")
    del data.attrib["NotOnOrAfter"]
    with pytest.raises(acs.AcsFailure) as failure:
        acs._policy(root, assertion, cfg, SLUG, NOW, "")
    assert failure.value.code == "expired"


def test_policy_refuses_a_confirmation_not_yet_valid(cfg):
    root = xmlsafe.parse(raw())
    assertion = acs._shape(root)
    data = assertion.find(f".//{xmlsafe.qname('saml', 'SubjectConfirmationData')}")
    data.set("NotBefore", "2026-06-01T12:02:01Z")  # one second past the skew
    with pytest.raises(acs.AcsFailure) as failure:
        acs._policy(root, assertion, cfg, SLUG, NOW, "")
    assert failure.value.code == "not_yet_valid"
    data.set("NotBefore", "2026-06-01T12:02:00Z")  # exactly at the skew: accepted
    assert acs._policy(root, assertion, cfg, SLUG, NOW, "")


def conditions_of(xml: bytes):
    root = xmlsafe.parse(xml)
    assertion = acs._shape(root)
    return root, assertion, assertion.find(xmlsafe.qname("saml", "Conditions"))


def test_policy_refuses_conditions_not_yet_valid(cfg):
    root, assertion, conditions = conditions_of(raw())
    conditions.set("NotBefore", "2026-06-01T12:02:01Z")
    with pytest.raises(acs.AcsFailure) as failure:
        acs._policy(root, assertion, cfg, SLUG, NOW, "")
    assert failure.value.code == "not_yet_valid"
    conditions.set("NotBefore", "2026-06-01T12:02:00Z")
    assert acs._policy(root, assertion, cfg, SLUG, NOW, "")


def test_policy_refuses_conditions_past_their_not_on_or_after(cfg):
    root, assertion, conditions = conditions_of(raw(valid_for=timedelta(hours=1)))
    conditions.set("NotOnOrAfter", "2026-06-01T11:58:00Z")  # now == NotOnOrAfter + skew: exclusive
    with pytest.raises(acs.AcsFailure) as failure:
        acs._policy(root, assertion, cfg, SLUG, NOW, "")
    assert failure.value.code == "expired"
    conditions.set("NotOnOrAfter", "2026-06-01T11:58:01Z")
    assert acs._policy(root, assertion, cfg, SLUG, NOW, "") == {
        "replay_expires_at": NOW + timedelta(hours=1) + SKEW}


def test_policy_keeps_the_assertion_until_the_later_of_its_expiries(cfg):
    root, assertion, conditions = conditions_of(raw(valid_for=timedelta(minutes=5)))
    conditions.set("NotOnOrAfter", "2026-06-01T12:30:00Z")
    assert acs._policy(root, assertion, cfg, SLUG, NOW, "") == {
        "replay_expires_at": datetime(2026, 6, 1, 12, 30, tzinfo=UTC) + SKEW}
    del conditions.attrib["NotOnOrAfter"]
    del conditions.attrib["NotBefore"]
    assert acs._policy(root, assertion, cfg, SLUG, NOW, "") == {
        "replay_expires_at": NOW + timedelta(minutes=5) + SKEW}


def test_policy_refuses_a_malformed_timestamp(cfg):
    root, assertion, conditions = conditions_of(raw())
    conditions.set("NotBefore", "yesterday")
    with pytest.raises(acs.AcsFailure) as failure:
        acs._policy(root, assertion, cfg, SLUG, NOW, "")
    assert failure.value.code == "malformed"


def test_verify_response_refuses_an_expired_response_end_to_end(cfg, world):
    cfg.idp_initiated = True
    response = build_response(sp_entity_id=sp_entity_id(SLUG), acs_url=acs_url(SLUG), idp_entity_id=IDP_A,
                              key=make_key("idp-alpha"), name_id="member@alpha.test",
                              now=timezone.now() - timedelta(hours=1))
    with pytest.raises(acs.AcsFailure) as failure:
        acs.verify_response(cfg=cfg, slug=SLUG, workspace_id=world.a.pk, saml_response=response)
    assert failure.value.code == "expired"


# ----------------------------------------------------------------------------- signature and shape


def test_verify_response_refuses_a_signature_by_another_key(cfg, world):
    cfg.idp_initiated = True
    forged = build_response(sp_entity_id=sp_entity_id(SLUG), acs_url=acs_url(SLUG), idp_entity_id=IDP_A,
                            key=make_key("attacker"), name_id="owner@alpha.test")
    with pytest.raises(acs.AcsFailure) as failure:
        acs.verify_response(cfg=cfg, slug=SLUG, workspace_id=world.a.pk, saml_response=forged)
    assert failure.value.code == "signature_invalid"


def test_verify_response_refuses_a_signed_response_changed_after_signing(cfg, world):
    cfg.idp_initiated = True
    xml = build_response(sp_entity_id=sp_entity_id(SLUG), acs_url=acs_url(SLUG), idp_entity_id=IDP_A,
                         key=make_key("idp-alpha"), name_id="member@alpha.test", as_bytes=True)
    tampered = xml.replace(b"member@alpha.test", b"owner@alpha.test")
    import base64

    with pytest.raises(acs.AcsFailure) as failure:
        acs.verify_response(cfg=cfg, slug=SLUG, workspace_id=world.a.pk,
                            saml_response=base64.b64encode(tampered).decode())
    assert failure.value.code == "signature_invalid"


def test_verify_response_refuses_an_unsigned_response(cfg, world):
    cfg.idp_initiated = True
    unsigned = build_response(sp_entity_id=sp_entity_id(SLUG), acs_url=acs_url(SLUG), idp_entity_id=IDP_A,
                              key=make_key("idp-alpha"), name_id="member@alpha.test",
                              sign_assertion=False, sign_response=False)
    with pytest.raises(acs.AcsFailure) as failure:
        acs.verify_response(cfg=cfg, slug=SLUG, workspace_id=world.a.pk, saml_response=unsigned)
    assert failure.value.code == "unsigned"


def test_verify_response_refuses_without_settings_or_certificates(cfg, world):
    with pytest.raises(acs.AcsFailure) as failure:
        acs.verify_response(cfg=None, slug=SLUG, workspace_id=world.a.pk, saml_response="")
    assert failure.value.code == "not_configured"


def test_shape_refuses_an_assertion_that_is_not_a_direct_child(cfg):
    root = xmlsafe.parse(raw())
    assertion = root.find(xmlsafe.qname("saml", "Assertion"))
    holder = xmlsafe.parse(b'<x:Extensions xmlns:x="urn:oasis:names:tc:SAML:2.0:protocol"/>')
    root.remove(assertion)
    holder.append(assertion)
    root.append(holder)
    with pytest.raises(acs.AcsFailure) as failure:
        acs._shape(root)
    assert failure.value.code == "signature_wrapping"


def test_shape_refuses_duplicate_ids_and_stray_signatures(cfg):
    root = xmlsafe.parse(raw())
    assertion = root.find(xmlsafe.qname("saml", "Assertion"))
    assertion.find(xmlsafe.qname("saml", "Issuer")).set("ID", root.get("ID"))
    with pytest.raises(acs.AcsFailure) as failure:
        acs._shape(root)
    assert failure.value.code == "signature_wrapping"

    root = xmlsafe.parse(raw())
    assertion = root.find(xmlsafe.qname("saml", "Assertion"))
    subject = assertion.find(xmlsafe.qname("saml", "Subject"))
    from copy import deepcopy

    subject.append(deepcopy(assertion.find(xmlsafe.qname("ds", "Signature"))))
    with pytest.raises(acs.AcsFailure) as failure:
        acs._shape(root)
    assert failure.value.code == "signature_wrapping"


def test_shape_refuses_two_assertions_none_and_unsigned(cfg):
    root = xmlsafe.parse(raw())
    from copy import deepcopy

    root.append(deepcopy(root.find(xmlsafe.qname("saml", "Assertion"))))
    with pytest.raises(acs.AcsFailure) as failure:
        acs._shape(root)
    assert failure.value.code == "multiple_assertions"

    root = xmlsafe.parse(raw())
    root.remove(root.find(xmlsafe.qname("saml", "Assertion")))
    with pytest.raises(acs.AcsFailure) as failure:
        acs._shape(root)
    assert failure.value.code == "malformed"

    with pytest.raises(acs.AcsFailure) as failure:
        acs._shape(xmlsafe.parse(raw(sign_assertion=False, sign_response=False)))
    assert failure.value.code == "unsigned"


def test_shape_accepts_either_signature_alone(cfg):
    assert acs._shape(xmlsafe.parse(raw(sign_response=False))) is not None
    assert acs._shape(xmlsafe.parse(raw(sign_assertion=False))) is not None


# ----------------------------------------------------------------------------- replay


def verified(cfg, world, **kw):
    response = build_response(sp_entity_id=sp_entity_id(SLUG), acs_url=acs_url(SLUG), idp_entity_id=IDP_A,
                              key=make_key("idp-alpha"), name_id="member@alpha.test", **kw)
    return acs.verify_response(cfg=cfg, slug=SLUG, workspace_id=world.a.pk, saml_response=response)


def test_an_assertion_is_accepted_once(cfg, world):
    cfg.idp_initiated = True  # no AuthnRequest: only the used-assertion store stands between a replay and a session
    login = verified(cfg, world, assertion_id="id-once")
    assert saml_services.sso_login_complete(workspace=world.a, cfg=cfg, login=login).membership == world.member_a
    again = verified(cfg, world, assertion_id="id-once")
    with pytest.raises(acs.AcsFailure) as failure:
        saml_services.sso_login_complete(workspace=world.a, cfg=cfg, login=again)
    assert failure.value.code == "replay"


def test_a_request_is_answered_once_even_by_two_different_assertions(cfg, world):
    open_request(world, "id-raced")
    first = verified(cfg, world, in_response_to="id-raced")
    second = verified(cfg, world, in_response_to="id-raced")  # both verified while the request was open
    assert first.assertion_id != second.assertion_id
    saml_services.sso_login_complete(workspace=world.a, cfg=cfg, login=first)
    with pytest.raises(acs.AcsFailure) as failure:
        saml_services.sso_login_complete(workspace=world.a, cfg=cfg, login=second)
    assert failure.value.code == "replay"


# ----------------------------------------------------------------------------- refusals are precise


def test_every_refusal_code_has_a_plain_reason():
    assert acs.AcsFailure("audience_mismatch").public_reason == acs.REASONS["audience_mismatch"]
    assert acs.AcsFailure("no-such-code").public_reason == acs.REASONS["rejected"]
    assert len(acs.AcsFailure("x", "d" * 600).detail) == 500
