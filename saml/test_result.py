"""Test SSO as the admin sees it: a refused test comes back to the admin's result page (not the end-user error
page) with the reason and what to check.

The IdP's POST to the ACS is cross-site, so it carries no session cookie (SameSite=Lax): the test is recognised
by the response's InResponseTo naming a Test SSO request this workspace issued, and the refusal is kept in the
cache for the Owner who started it, whose own browser then follows the redirect to the result page."""

from __future__ import annotations

import base64
import binascii
import logging
import time
from datetime import timedelta
from typing import Any

from django.core.cache import cache
from django.utils import timezone

from workspaces.models import Workspace

from . import xmlsafe
from .acs import AcsFailure
from .models import AuthnRequestPurpose, IssuedAuthnRequest

logger = logging.getLogger(__name__)

# How long a refused test stays on the admin's result page.
FAILURE_KEPT_SECONDS = 30 * 60

# What an admin checks in the identity provider or in Gatehouse for each refusal a test can meet.
FIXES: dict[str, str] = {
    "signature_invalid": "The response was not signed by a certificate in the metadata you saved. Download the IdP "
                         "metadata again (or refresh the metadata URL) and save it, so Gatehouse has the IdP's "
                         "current signing certificate.",
    "unsigned": "Make the IdP sign the assertion or the response (Okta signs both by default; in Entra ID, "
                "Signing Option 'Sign SAML response and assertion').",
    "weak_algorithm": "Set the IdP's signature algorithm to RSA-SHA256 (SHA-1 is refused unless allowed below).",
    "issuer_mismatch": "The response's issuer is not the entity ID you saved. Paste the metadata of the app you are "
                       "testing with.",
    "audience_mismatch": "Set the IdP's Audience URI (SP Entity ID) to the value under 'Values for your IdP'.",
    "recipient_mismatch": "Set the IdP's Single sign-on URL (ACS URL) to the value under 'Values for your IdP'.",
    "destination_mismatch": "Set the IdP's Single sign-on URL (ACS URL) to the value under 'Values for your IdP'.",
    "expired": "The response arrived after its validity window: check the IdP's and this server's clocks, or raise "
               "the allowed clock skew.",
    "not_yet_valid": "The response is dated in the future: check the IdP's and this server's clocks, or raise the "
                     "allowed clock skew.",
    "no_email": "Send the email address as the NameID (format EmailAddress) or name the attribute that carries it.",
    "no_name_id": "Configure the IdP to send a NameID.",
    "no_subject": "The attribute named as the immutable subject was not sent: add it to the IdP's attribute "
                  "statements, or clear the Immutable subject setting.",
    "test_identity_mismatch": "The IdP signed in another person than you. Test with your own IdP account, whose email "
                              "is your Gatehouse email.",
    "member_inactive": "Only an active Owner's own account can complete a Test SSO.",
    "unknown_role": "The role attribute's value is not in the role mapping: add it on the Role mapping page, or "
                    "choose 'default role' for unknown values.",
    "decryption_failed": "The IdP encrypted to a certificate Gatehouse does not hold: give it the current encryption "
                         "certificate from the SP key card.",
    "encryption_required": "Turn on assertion encryption in the IdP, or turn off 'Require encrypted assertions'.",
    "unknown_in_response_to": "The response answers a request Gatehouse did not make or already used: start the test "
                              "again from this page, not from the IdP's dashboard.",
    "replay": "This response was already used: start the test again.",
    "status_not_success": "The IdP refused the sign-in: check that you are assigned to the app in the IdP.",
}


def test_starter(workspace: Workspace, saml_response: str) -> int | None:
    """The id of the Owner who started the Test SSO this (refused, so untrusted) response answers, or None when it
    answers no test request of this workspace. Only routes the refusal to a page; it grants nothing."""
    try:
        root = xmlsafe.parse(base64.b64decode(saml_response, validate=False))
    except (xmlsafe.UnsafeXml, binascii.Error, ValueError):
        return None
    request_id = (root.get("InResponseTo") or "")[:64]
    if not request_id:
        return None
    found = IssuedAuthnRequest.objects.filter(
        workspace=workspace, request_id=request_id, purpose=AuthnRequestPurpose.TEST, user__isnull=False,
        expires_at__gt=timezone.now() - timedelta(hours=1),
    ).values_list("user_id", flat=True).first()
    return int(found) if found is not None else None


def _key(workspace_id: int, user_id: int) -> str:
    return f"gatehouse:sso_test_failure:{workspace_id}:{user_id}"


def remember_failure(workspace: Workspace, user_id: int, failure: AcsFailure) -> None:
    """Keep the refusal for the starter's result page. Without the cache the page shows no failure (the audit log
    still has it): never an error."""
    outcome = {"ok": False, "code": failure.code, "reason": failure.public_reason, "detail": failure.detail,
               "fix": FIXES.get(failure.code, ""), "at": time.time()}
    try:
        cache.set(_key(workspace.pk, user_id), outcome, FAILURE_KEPT_SECONDS)
    except Exception:  # noqa: BLE001  # the cache is optional here
        logger.warning("could not keep the Test SSO refusal for its result page", exc_info=True)


def forget_failure(workspace: Workspace, user_id: int) -> None:
    try:
        cache.delete(_key(workspace.pk, user_id))
    except Exception:  # noqa: BLE001
        logger.warning("could not clear a Test SSO refusal", exc_info=True)


def last_failure(workspace: Workspace, user_id: int, succeeded_at: Any) -> dict[str, Any] | None:
    """The starter's last refused test, unless a test succeeded after it."""
    try:
        outcome = cache.get(_key(workspace.pk, user_id))
    except Exception:  # noqa: BLE001
        return None
    if not isinstance(outcome, dict):
        return None
    if succeeded_at is not None and succeeded_at.timestamp() >= float(outcome.get("at", 0)):
        return None
    return outcome
