"""Email-domain verification: what a domain is, where its proof lives in DNS, and the one lookup.

A workspace proves it controls an email domain by publishing

    _gatehouse-challenge.<domain>.  TXT  "gatehouse-verification=<token>"

where the token is its claim's (random, 128 bits). A record under a label of its own, not at the apex: the apex
of a mail domain already carries SPF and other vendors' proofs, and a subdomain record can be delegated to the
team that runs the portal without touching the apex. The lookup goes through dnspython with the servers of
``DOMAIN_VERIFICATION_NAMESERVERS`` (empty: the system resolver) and a short overall timeout, since a person
waits for it on the domains page. It is not an outbound request to an address an Owner typed (the
recursive resolver is ours), so it does not go through ``config/outbound.py``.

The rules built on a verified claim (``/login/`` discovery, the IdP moving an account's email into a domain, an
existing account joining without an invitation in ``workspaces.consent``) ask the two reads at the end of this
module, ``email_domain_verified`` and ``verified_workspace_for_email``: the one reading of "verified".
"""

from __future__ import annotations

import ipaddress
import logging
import re
from dataclasses import dataclass

import dns.exception
import dns.resolver
import idna
from django.conf import settings

from .models import DomainClaim

logger = logging.getLogger("gatehouse.domains")

CHALLENGE_LABEL = "_gatehouse-challenge"
VALUE_PREFIX = "gatehouse-verification="

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


class InvalidDomain(ValueError):
    """Not a domain an email address can be in; the message is safe to show."""


def normalise_domain(raw: str) -> str:
    """The stored form of a domain: lower case, IDNA A-labels (``bücher.example`` -> ``xn--bcher-kva.example``).

    Refuses what cannot be a registrable mail domain: one label (``localhost``), an IP address, a numeric top-level
    label, a label over 63 or a name over 253 characters. Whether the name is a public suffix (``co.uk``) is not
    checked: nobody can publish a record there, so such a claim can never verify.
    """
    text = raw.strip().lstrip("@").rstrip(".").strip()
    example = "Enter a domain such as example.com."
    if not text:
        raise InvalidDomain(f"Enter a domain. {example}")
    try:
        ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        pass
    else:
        raise InvalidDomain(f"{raw.strip()!r} is an IP address, not an email domain. {example}")
    try:
        domain = idna.encode(text, uts46=True).decode("ascii").lower()
    except (idna.IDNAError, UnicodeError):
        raise InvalidDomain(f"{raw.strip()!r} is not a valid domain name. {example}") from None
    labels = domain.split(".")
    if len(labels) < 2 or len(domain) > 253 or not all(_LABEL.match(label) for label in labels):
        raise InvalidDomain(f"{raw.strip()!r} is not a valid domain name. {example}")
    if labels[-1].isdigit():
        raise InvalidDomain(f"{raw.strip()!r} does not end in a top-level domain. {example}")
    return domain


def email_domain(email: str) -> str:
    """The normalised domain of an email address, or "" when it has none that could be claimed."""
    _, at, domain = email.strip().rpartition("@")
    if not at:
        return ""
    try:
        return normalise_domain(domain)
    except InvalidDomain:
        return ""


def record_name(domain: str) -> str:
    """Where the TXT record goes."""
    return f"{CHALLENGE_LABEL}.{domain}"


def record_value(token: str) -> str:
    """What the TXT record says."""
    return f"{VALUE_PREFIX}{token}"


@dataclass(frozen=True)
class Lookup:
    """What one check found. ``dns_error``: the servers did not answer, which is no evidence the record is gone."""

    found: bool
    problem: str = ""
    dns_error: bool = False


def _resolver() -> dns.resolver.Resolver:
    nameservers = list(settings.DOMAIN_VERIFICATION_NAMESERVERS)
    resolver = dns.resolver.Resolver(configure=not nameservers)
    if nameservers:
        resolver.nameservers = nameservers
        resolver.port = settings.DOMAIN_VERIFICATION_PORT
    resolver.timeout = resolver.lifetime = float(settings.DOMAIN_VERIFICATION_TIMEOUT)
    resolver.cache = None  # a record just added must be seen at the next "Verify now"
    return resolver


def lookup_token(domain: str, token: str) -> Lookup:
    """Does ``_gatehouse-challenge.<domain>`` hold a TXT record ``gatehouse-verification=<token>``? Never raises."""
    name, expected = record_name(domain), record_value(token)
    add = f'add a TXT record at {name} with the value "{expected}" and try again; DNS changes can take minutes'
    try:
        answer = _resolver().resolve(name, "TXT", raise_on_no_answer=False, search=False)
    except dns.resolver.NXDOMAIN:
        return Lookup(found=False, problem=f"No TXT record found at {name}: {add}.")
    except dns.exception.DNSException as exc:
        # Timeout, SERVFAIL from every server, no resolver configured: a failure of DNS, not of the claim.
        logger.warning("TXT lookup of %s failed: %s", name, exc)
        return Lookup(found=False, dns_error=True,
                      problem=f"The DNS servers did not answer for {name} (timed out or failed). Try again in a few "
                              "minutes; if it keeps failing, check that the domain's DNS servers answer.")
    values = []
    for rdata in answer.rrset or []:
        strings = getattr(rdata, "strings", ())
        values.append(b"".join(strings).decode("utf-8", errors="replace").strip())
    if expected in values:
        return Lookup(found=True)
    if not values:
        return Lookup(found=False, problem=f"No TXT record found at {name}: {add}.")
    return Lookup(found=False, problem=f"The TXT record at {name} does not hold this claim's value: {add}.")


def email_domain_verified(workspace_id: int, email: str) -> bool:
    """Does workspace ``workspace_id`` hold the domain of ``email`` verified (a DNS TXT record proved it)?

    The one rule for what a verified domain allows (docs/architecture.md, "Verified domains"): the domain must be
    exactly the address's (verifying example.com says nothing about eu.example.com).
    """
    domain = email_domain(email)
    return bool(domain) and DomainClaim.objects.filter(
        workspace_id=workspace_id, domain=domain, verified_at__isnull=False
    ).exists()


def verified_workspace_for_email(email: str) -> int | None:
    """The id of the one workspace holding the domain of ``email`` verified, or None (at most one can)."""
    domain = email_domain(email)
    if not domain:
        return None
    return (
        DomainClaim.objects.filter(domain=domain, verified_at__isnull=False)
        .values_list("workspace_id", flat=True).first()
    )

