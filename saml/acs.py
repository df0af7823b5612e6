"""The hardened assertion consumer: from a posted SAMLResponse to a verified identity, or a precise refusal.

Order of work (each step refuses with a code that goes into the ``sso.login_failed`` audit event):

1. One hardened parse (``xmlsafe``): no DTD, no entities, no comments, no network, size-bounded. An
   EncryptedAssertion is decrypted with this workspace's SP keys (``encryption``: the Response signature, if any,
   checked on the document as received) and the decrypted document parsed again; with "require encrypted
   assertions" on, a plaintext assertion is refused. Everything below runs on the decrypted document.
2. Shape: a samlp:Response with exactly one saml:Assertion as its direct child, no encrypted assertion left,
   every ID unique, ds:Signature only directly under the Response or the Assertion, at least one of them
   signed. This alone defeats the known signature-wrapping layouts.
3. Issuer and InResponseTo are matched against *this* workspace: the IdP entity ID from its validated
   metadata, and an AuthnRequest this portal issued for this workspace and that is still open.
   Unknown InResponseTo is refused even when IdP-initiated login is on (pysaml2#953).
4. pysaml2 verifies, with its security context pinned to this workspace's certificates
   (``only_use_keys_in_metadata``) and the in-process verifier (``verifier.py``): xmldsig profile,
   signature(s), destination, issue instant, status, conditions, audience, subject confirmation.
5. Gatehouse re-checks on the element whose signature was verified what pysaml2 leaves out or lets
   through: Destination present and equal to the ACS URL, bearer confirmation only (pysaml2 accepts
   sender-vouches unchecked), Recipient equal to the ACS URL (pysaml2 skips it without conv_info),
   NotOnOrAfter exclusive with the workspace's skew, audience.
6. NameID and attributes are read from that verified lxml element, and cross-checked with what pysaml2
   read: a parser differential is refused.

Replay (step 7, the used-assertion store) is in ``services.login.sso_login_complete`` because it writes.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.utils import timezone
from lxml import etree
from saml2 import BINDING_HTTP_POST, time_util
from saml2.response import StatusError, UnsolicitedResponse, VerificationError
from saml2.sigver import SigverError
from saml2.validate import ResponseLifetimeExceed, ToEarly

from . import encryption, selectors, xmlsafe
from .models import IssuedAuthnRequest, SamlSettings
from .sp import acs_url, client_for, sp_entity_id
from .verifier import SignatureRefused

logger = logging.getLogger(__name__)

SCM_BEARER = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
STATUS_SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"

# Short, human reasons for the error page (the audit event keeps the precise code and detail).
REASONS = {
    "malformed": "The sign-in response could not be read.",
    "malformed_xml": "The sign-in response could not be read.",
    "too_large": "The sign-in response is too large.",
    "dtd_refused": "The sign-in response contains XML constructs we refuse.",
    "comments_refused": "The sign-in response contains XML constructs we refuse.",
    "not_configured": "Single sign-on is not set up for this workspace.",
    "unsigned": "The sign-in response is not signed.",
    "signature_invalid": "The sign-in response's signature is not valid for this workspace's identity provider.",
    "signature_wrapping": "The sign-in response is malformed (signature structure).",
    "weak_algorithm": "The sign-in response uses a signature algorithm we do not accept.",
    "multiple_assertions": "The sign-in response must carry exactly one assertion.",
    "encrypted_assertion": "The sign-in response is malformed (encrypted assertion).",
    "encryption_required": "This workspace accepts encrypted assertions only; turn assertion encryption on at the "
                           "identity provider, with this workspace's encryption certificate.",
    "decryption_failed": "The sign-in response could not be decrypted with this workspace's keys. Check that the "
                         "identity provider encrypts to the current encryption certificate (SSO settings).",
    "issuer_mismatch": "The sign-in response comes from another identity provider.",
    "destination_mismatch": "The sign-in response was addressed to another service.",
    "recipient_mismatch": "The sign-in response was addressed to another service.",
    "audience_mismatch": "The sign-in response was meant for another service.",
    "expired": "The sign-in response has expired. Check the clocks, then sign in again.",
    "not_yet_valid": "The sign-in response is not valid yet. Check the clocks, then sign in again.",
    "unknown_in_response_to": "The sign-in response answers a request we did not make (or that was already used).",
    "in_response_to_mismatch": "The sign-in response answers a request we did not make.",
    "unsolicited_refused": "Sign-in started at the identity provider is turned off for this workspace.",
    "subject_confirmation_not_bearer": "The sign-in response uses an unsupported subject confirmation.",
    "status_not_success": "The identity provider reported that sign-in failed.",
    "no_name_id": "The sign-in response does not name a user.",
    "no_email": "The sign-in response does not carry an email address.",
    "parser_differential": "The sign-in response is malformed.",
    "schema_invalid": "The sign-in response is malformed.",
    "replay": "This sign-in response was already used.",
    "unknown_member": "You are not a member of this workspace. Ask a workspace Owner to add you.",
    "member_inactive": "Your membership in this workspace is deactivated.",
    "no_subject": "The sign-in response does not carry the identifier this workspace links people by. Ask a "
                  "workspace Owner to check the SSO settings (Immutable subject) against the IdP's attributes.",
    "subject_mismatch": "This email belongs to a member linked to another identity at your identity provider. Ask a "
                        "workspace Owner.",
    "ambiguous_member": "Several members of this workspace use this email. Ask a workspace Owner to fix it.",
    "jit_refused": "You cannot be added to this workspace with this email. Ask a workspace Owner.",
    "pending_idp_login": "This identity provider is not live for this workspace yet: a workspace Owner must "
                         "complete Test SSO with it first.",
    "unknown_role": "Your identity provider sent a role this workspace does not know. Ask a workspace Owner to "
                    "map it (Provisioning → Role mapping); the audit log names the value.",
    "test_identity_mismatch": "Test SSO must sign in as the Owner who started it.",
    "rejected": "The sign-in response was rejected.",
}


class AcsFailure(Exception):
    """A refused response: ``code`` for the audit log and tests, ``detail`` for the audit log only."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail[:500]

    @property
    def public_reason(self) -> str:
        return REASONS.get(self.code, REASONS["rejected"])


@dataclass
class VerifiedLogin:
    assertion_id: str
    issuer: str
    name_id: str
    email: str
    first_name: str
    last_name: str
    groups: list[str]
    attributes: dict[str, list[str]]
    session_not_on_or_after: datetime | None
    replay_expires_at: datetime
    authn_request: IssuedAuthnRequest | None = None
    in_response_to: str = ""
    # The fingerprint of the SP key that decrypted the assertion; "" when it arrived in plaintext.
    decrypted_with: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def encrypted(self) -> bool:
        return bool(self.decrypted_with)


def _ts(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(time_util.str_to_time(value)), tz=UTC)
    except Exception:  # noqa: BLE001
        raise AcsFailure("malformed", f"bad timestamp {value!r}") from None


def _q(p: str, local: str) -> str:
    return xmlsafe.qname(p, local)


def _decode(saml_response: str) -> bytes:
    try:
        return base64.b64decode(saml_response.encode("ascii"), validate=False)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise AcsFailure("malformed", "SAMLResponse is not base64") from None


def _issuer_of(element: etree._Element) -> str:
    return xmlsafe.text_of(element.find(_q("saml", "Issuer")))


def _not_on_or_after(element: etree._Element, now: datetime, skew: timedelta, where: str) -> datetime | None:
    """Refuse once ``NotOnOrAfter`` (exclusive) plus skew has passed; return it (None when absent)."""
    value = element.get("NotOnOrAfter")
    nooa = _ts(value)
    if nooa is not None and now >= nooa + skew:
        raise AcsFailure("expired", f"{where} NotOnOrAfter {value}")
    return nooa


def _not_before(element: etree._Element, now: datetime, skew: timedelta, where: str) -> None:
    value = element.get("NotBefore")
    nb = _ts(value)
    if nb is not None and now + skew < nb:
        raise AcsFailure("not_yet_valid", f"{where} NotBefore {value}")


def _shape(root: etree._Element) -> etree._Element:
    """Exactly one assertion, directly under the Response; unique IDs; signatures only where SAML puts them."""
    if root.tag != _q("samlp", "Response"):
        raise AcsFailure("malformed", f"root element is {root.tag}")
    if any(True for _ in root.iter(_q("saml", "EncryptedAssertion"))):
        raise AcsFailure("encrypted_assertion", "EncryptedAssertion present")
    assertions = list(root.iter(_q("saml", "Assertion")))
    if len(assertions) != 1:
        raise AcsFailure("multiple_assertions" if assertions else "malformed", f"{len(assertions)} assertions in the document")
    assertion = assertions[0]
    if assertion.getparent() is not root:
        raise AcsFailure("signature_wrapping", "the assertion is not a direct child of the Response")
    ids = Counter(el.get("ID") for el in root.iter() if isinstance(el.tag, str) and el.get("ID") is not None)
    dupes = [i for i, n in ids.items() if n > 1]
    if dupes:
        raise AcsFailure("signature_wrapping", f"duplicate ID attribute(s): {dupes[:3]}")
    for sig in root.iter(_q("ds", "Signature")):
        if sig.getparent() not in (root, assertion):
            raise AcsFailure("signature_wrapping", "a ds:Signature sits outside the Response and Assertion")
    if root.find(_q("ds", "Signature")) is None and assertion.find(_q("ds", "Signature")) is None:
        raise AcsFailure("unsigned", "neither the Response nor the Assertion is signed")
    return assertion


def _policy(root: etree._Element, assertion: etree._Element, cfg: SamlSettings, slug: str, now: datetime,
            in_response_to: str) -> dict:
    """Checks pysaml2 does not make (or makes too loosely), on the given elements. Raises ``AcsFailure``."""
    skew = timedelta(seconds=cfg.clock_skew_seconds)
    expected_acs = acs_url(slug)
    status = root.find(f"{_q('samlp', 'Status')}/{_q('samlp', 'StatusCode')}")
    if status is not None and status.get("Value") != STATUS_SUCCESS:
        raise AcsFailure("status_not_success", status.get("Value", ""))
    resp_issuer = root.find(_q("saml", "Issuer"))
    if resp_issuer is not None and xmlsafe.text_of(resp_issuer) != cfg.idp_entity_id:
        raise AcsFailure("issuer_mismatch", f"Response Issuer {xmlsafe.text_of(resp_issuer)!r}")
    assertion_issuer = _issuer_of(assertion)
    if assertion_issuer != cfg.idp_entity_id:
        raise AcsFailure("issuer_mismatch", f"Assertion Issuer {assertion_issuer!r}")
    destination = root.get("Destination")
    if destination != expected_acs:
        raise AcsFailure("destination_mismatch", f"Destination {destination!r}")
    subject = assertion.find(_q("saml", "Subject"))
    if subject is None:
        raise AcsFailure("no_name_id", "no Subject")
    confirmations = subject.findall(_q("saml", "SubjectConfirmation"))
    if not confirmations:
        raise AcsFailure("subject_confirmation_not_bearer", "no SubjectConfirmation")
    for sc in confirmations:
        if sc.get("Method") != SCM_BEARER:
            raise AcsFailure("subject_confirmation_not_bearer", f"Method {sc.get('Method')!r}")
    scd_expiry: list[datetime] = []
    for sc in confirmations:
        data = sc.find(_q("saml", "SubjectConfirmationData"))
        if data is None or data.get("Recipient") != expected_acs:
            raise AcsFailure("recipient_mismatch", f"Recipient {None if data is None else data.get('Recipient')!r}")
        if (data.get("InResponseTo") or "") != in_response_to:
            raise AcsFailure("in_response_to_mismatch", "SubjectConfirmationData InResponseTo differs from the Response's")
        scd_nooa = _not_on_or_after(data, now, skew, "SubjectConfirmationData")
        if scd_nooa is None:
            raise AcsFailure("expired", "bearer SubjectConfirmationData without NotOnOrAfter")
        _not_before(data, now, skew, "SubjectConfirmationData")
        scd_expiry.append(scd_nooa)
    conditions = assertion.find(_q("saml", "Conditions"))
    if conditions is None:
        raise AcsFailure("audience_mismatch", "no Conditions/AudienceRestriction")
    _not_before(conditions, now, skew, "Conditions")
    nooa = _not_on_or_after(conditions, now, skew, "Conditions")
    restrictions = conditions.findall(_q("saml", "AudienceRestriction"))
    if not restrictions:
        raise AcsFailure("audience_mismatch", "no AudienceRestriction")
    for restriction in restrictions:  # each restriction must name us (SAML core 2.5.1.4)
        audiences = [xmlsafe.text_of(a) for a in restriction.findall(_q("saml", "Audience"))]
        if sp_entity_id(slug) not in audiences:
            raise AcsFailure("audience_mismatch", f"Audience {audiences[:3]}")
    expiries = [*scd_expiry, *([nooa] if nooa else [])]
    return {"replay_expires_at": max(expiries) + skew}


def _signature_failure(exc: BaseException, verifier: object) -> AcsFailure | None:
    refusal = getattr(verifier, "last_refusal", None)
    if isinstance(exc, SignatureRefused):
        return AcsFailure(exc.code, str(exc))
    if refusal is not None:
        return AcsFailure(refusal.code, str(refusal))
    if isinstance(exc, SigverError) and "Invalid document format" in str(exc)[:200]:
        return AcsFailure("schema_invalid", "the signed element does not follow the SAML schema")
    if isinstance(exc, SigverError):
        # Never put the exception text in the audit log: pysaml2 embeds the whole document in some of them.
        return AcsFailure("signature_invalid", type(exc).__name__)
    return None


def _classify(exc: BaseException) -> AcsFailure:
    if isinstance(exc, ResponseLifetimeExceed):
        return AcsFailure("expired", type(exc).__name__)
    if isinstance(exc, ToEarly):
        return AcsFailure("not_yet_valid", type(exc).__name__)
    if isinstance(exc, UnsolicitedResponse):
        return AcsFailure("unknown_in_response_to", type(exc).__name__)
    if isinstance(exc, StatusError):
        return AcsFailure("status_not_success", type(exc).__name__)
    text = str(exc)[:200]
    if "AudienceRestrictions" in text:
        return AcsFailure("audience_mismatch", "pysaml2: audience")
    if isinstance(exc, VerificationError) and "recipient" in text:
        return AcsFailure("recipient_mismatch", "pysaml2: recipient")
    return AcsFailure("rejected", f"pysaml2: {type(exc).__name__}")


def _attributes(assertion: etree._Element) -> dict[str, list[str]]:
    attrs: dict[str, list[str]] = {}
    for stmt in assertion.findall(_q("saml", "AttributeStatement")):
        for attr in stmt.findall(_q("saml", "Attribute")):
            name = attr.get("Name", "")
            attrs.setdefault(name, []).extend(xmlsafe.text_of(v) for v in attr.findall(_q("saml", "AttributeValue")))
    return attrs


def _outer_signature(xml: bytes, root: etree._Element, cfg: SamlSettings, slug: str) -> None:
    """Verify the Response signature of an encrypted response on the bytes as received (it covers the ciphertext)."""
    client = client_for(cfg, slug)
    verifier = client.sec.crypto
    verifier.prime(xml, root)
    try:
        client.sec.correctly_signed_response(xml)
    except Exception as exc:  # noqa: BLE001 - a refused signature, never a 500
        raise (_signature_failure(exc, verifier) or AcsFailure("signature_invalid", type(exc).__name__)) from None
    finally:
        verifier.release()


def _decrypted(xml: bytes, root: etree._Element, cfg: SamlSettings, slug: str) -> tuple[bytes, etree._Element, str]:
    """The document the ACS checks: as received, or with its EncryptedAssertion decrypted (``encryption``), and the
    fingerprint of the SP key that decrypted it ("" for a plaintext assertion)."""
    try:
        encrypted = encryption.encrypted_assertion_of(root)
        if encrypted is None:
            if cfg.require_encrypted_assertions:
                raise AcsFailure("encryption_required", "a plaintext assertion, and this workspace requires encryption")
            return xml, root, ""
        return encryption.decrypted_response(root, encrypted, selectors.sp_decryption_keys(cfg),
                                             lambda: _outer_signature(xml, root, cfg, slug))
    except encryption.EncryptionRefused as exc:
        raise AcsFailure(exc.code, str(exc)) from None


def open_authn_request(workspace_id: int, request_id: str, now: datetime) -> IssuedAuthnRequest | None:
    return IssuedAuthnRequest.objects.filter(
        workspace_id=workspace_id, request_id=request_id, consumed_at__isnull=True, expires_at__gt=now
    ).first()


def verify_response(*, cfg: SamlSettings | None, slug: str, workspace_id: int, saml_response: str,
                    now: datetime | None = None) -> VerifiedLogin:
    """Verify a posted SAMLResponse for this workspace, or raise ``AcsFailure``. Reads, never writes."""
    if cfg is None or not cfg.certificates:
        raise AcsFailure("not_configured", "no SAML settings")
    now = now or timezone.now()
    xml = _decode(saml_response)
    try:
        root = xmlsafe.parse(xml)
    except xmlsafe.UnsafeXml as exc:
        raise AcsFailure(exc.code, exc.message) from None
    decrypted, root, decrypted_with = _decrypted(xml, root, cfg, slug)
    if decrypted_with:
        xml, saml_response = decrypted, base64.b64encode(decrypted).decode("ascii")
    assertion = _shape(root)

    # Issuer first: a response from another workspace's IdP is named for what it is.
    issuers = {_issuer_of(assertion)}
    if root.find(_q("saml", "Issuer")) is not None:
        issuers.add(_issuer_of(root))
    if issuers != {cfg.idp_entity_id}:
        raise AcsFailure("issuer_mismatch", f"Issuer {sorted(issuers)[:2]}")

    in_response_to = root.get("InResponseTo") or ""
    request = None
    if in_response_to:
        request = open_authn_request(workspace_id, in_response_to, now)
        if request is None and IssuedAuthnRequest.objects.filter(
            workspace_id=workspace_id, request_id=in_response_to, consumed_at__isnull=False
        ).exists():
            raise AcsFailure("replay", f"InResponseTo {in_response_to[:80]!r} was already answered")
        if request is None:
            raise AcsFailure("unknown_in_response_to", f"InResponseTo {in_response_to[:80]!r}")
    elif not cfg.idp_initiated:
        raise AcsFailure("unsolicited_refused", "no InResponseTo and IdP-initiated login is off")

    client = client_for(cfg, slug)
    verifier = client.sec.crypto
    verifier.prime(xml, root)  # one parse: the verifier checks this very tree, and we read from it
    outstanding = {in_response_to: request.next_url} if request else {}
    try:
        try:
            result = client.parse_authn_request_response(
                saml_response, BINDING_HTTP_POST, outstanding=outstanding,
                conv_info={"entity_id": acs_url(slug)},
            )
        finally:
            verifier.release()
    except Exception as exc:  # noqa: BLE001 - every failure becomes a precise, audited refusal
        failure = _signature_failure(exc, verifier)
        if failure is None:
            try:
                _policy(root, assertion, cfg, slug, now, in_response_to)
            except AcsFailure as precise:
                failure = precise
            else:
                failure = _classify(exc)
        logger.info("SAML response refused: %s (%s)", failure.code, type(exc).__name__)
        raise failure from None
    if result is None:
        _policy(root, assertion, cfg, slug, now, in_response_to)
        raise AcsFailure("rejected", "pysaml2 returned no response")

    # Which element did the signature cover? Read only from there.
    verified = verifier.verified
    if root.get("ID") in verified and verified[root.get("ID")] is root:
        signed_assertion = assertion
    elif assertion.get("ID") in verified and verified[assertion.get("ID")] is assertion:
        signed_assertion = assertion
    elif verified:
        # The verifier checked a tree other than the one we shaped: never read from either.
        raise AcsFailure("parser_differential", "the verified element is not in the checked document")
    else:
        raise AcsFailure("unsigned", "no verified signature covers the assertion")
    checks = _policy(root, signed_assertion, cfg, slug, now, in_response_to)

    name_id_el = signed_assertion.find(f"{_q('saml', 'Subject')}/{_q('saml', 'NameID')}")
    name_id = xmlsafe.text_of(name_id_el)
    if not name_id:
        raise AcsFailure("no_name_id", "no NameID")
    theirs = (getattr(result.name_id, "text", "") or "").strip()
    if theirs != name_id or result.assertion.id != signed_assertion.get("ID"):
        raise AcsFailure("parser_differential", "pysaml2 and the verified element disagree")
    attrs = _attributes(signed_assertion)

    def first(name: str) -> str:
        values = attrs.get(name) or []
        return values[0].strip() if values and name else ""

    email = first(cfg.email_attribute) if cfg.email_attribute else name_id
    if "@" not in email:
        raise AcsFailure("no_email", f"email value {email[:80]!r}")
    session_nooa = None
    for stmt in signed_assertion.findall(_q("saml", "AuthnStatement")):
        value = _ts(stmt.get("SessionNotOnOrAfter"))
        if value is not None:
            session_nooa = value if session_nooa is None else min(session_nooa, value)
    return VerifiedLogin(
        assertion_id=signed_assertion.get("ID"),
        issuer=cfg.idp_entity_id,
        name_id=name_id,
        email=email.strip(),
        first_name=first(cfg.first_name_attribute),
        last_name=first(cfg.last_name_attribute),
        groups=[g for g in (attrs.get(cfg.groups_attribute) or []) if g] if cfg.groups_attribute else [],
        attributes=attrs,
        session_not_on_or_after=session_nooa,
        replay_expires_at=checks["replay_expires_at"],
        authn_request=request,
        in_response_to=in_response_to,
        decrypted_with=decrypted_with,
    )
