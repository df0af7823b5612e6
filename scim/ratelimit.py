"""What failed SCIM authentications count against (``config.ratelimit`` does the counting).

Fixed windows of ``SCIM_AUTH_FAILURE_WINDOW`` seconds. Three counters, because Okta's and
Entra's provisioning engines share egress IPs between their customers: one customer's broken
integration must not lock out every other workspace behind the same IP.

* ``(client IP, workspace slug)``: ``SCIM_AUTH_FAILURE_LIMIT`` failures per window;
* ``key id`` (bearer prefix or Basic username): ``SCIM_AUTH_FAILURE_LIMIT``;
* ``client IP`` across all workspaces: ``SCIM_AUTH_FAILURE_IP_LIMIT``.

Only failures count, and counters are checked before any database work. If the cache is
down, limiting fails open (authentication itself still runs): an outage of Redis must not
stop provisioning. The OAuth token endpoint (``scim.oauth``) counts the same way.
"""

from __future__ import annotations

from django.conf import settings

from config.ratelimit import Counter, FixedWindowLimiter

limiter = FixedWindowLimiter("scimauth", window_setting="SCIM_AUTH_FAILURE_WINDOW", default_window=300)


def counters(ip: str, slug: str, key_id: str = "") -> list[Counter]:
    """The counters a failure from ``ip`` on ``slug`` (with ``key_id``, when one was presented) counts against."""
    per = int(getattr(settings, "SCIM_AUTH_FAILURE_LIMIT", 10))
    found = [
        Counter(f"ipws:{ip}|{slug}", per),
        Counter(f"ip:{ip}", int(getattr(settings, "SCIM_AUTH_FAILURE_IP_LIMIT", 300))),
    ]
    if key_id:
        found.append(Counter(f"key:{key_id[:64]}", per))
    return found
