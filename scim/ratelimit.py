"""What failed SCIM authentications count against (``config.ratelimit`` does the counting).

Fixed windows of ``SCIM_AUTH_FAILURE_WINDOW`` seconds, two counters per failure, both tied to the address the
failure came from (Okta's and Entra's provisioning engines share egress IPs between their customers, so one
customer's broken integration must not lock out every other workspace behind the same IP):

* ``(client IP, workspace slug)``: ``SCIM_AUTH_FAILURE_LIMIT`` failures per window;
* ``client IP`` across all workspaces: ``SCIM_AUTH_FAILURE_IP_LIMIT``.

Never per key id or client id alone: those are visible (a bearer token's prefix, a Basic user name, an OAuth
client id), and a stranger failing with them from anywhere would otherwise lock the real IdP out. A source at
its limit is answered 429, except that a valid credential is still accepted (``scim.auth``): the failures
counted against that address may be someone else's. If the cache is down, limiting fails open
(authentication itself still runs): an outage of Redis must not stop provisioning. The OAuth token endpoint
(``scim.oauth``) counts the same way, before the client secret's Argon2 verification.
"""

from __future__ import annotations

from django.conf import settings

from config.ratelimit import Counter, FixedWindowLimiter

limiter = FixedWindowLimiter("scimauth", window_setting="SCIM_AUTH_FAILURE_WINDOW", default_window=300)


def counters(ip: str, scope: str) -> list[Counter]:
    """The counters a failure from ``ip`` on ``scope`` (a workspace slug, or the token endpoint's client) counts
    against."""
    return [
        Counter(f"ipws:{ip}|{scope}", int(getattr(settings, "SCIM_AUTH_FAILURE_LIMIT", 10))),
        Counter(f"ip:{ip}", int(getattr(settings, "SCIM_AUTH_FAILURE_IP_LIMIT", 300))),
    ]
