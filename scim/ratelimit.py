"""Rate limiting of failed SCIM authentications, in the Django cache (Redis in production).

Fixed windows of ``SCIM_AUTH_FAILURE_WINDOW`` seconds. Three counters, because Okta's and
Entra's provisioning engines share egress IPs between their customers: one customer's broken
integration must not lock out every other workspace behind the same IP.

* ``(client IP, workspace slug)``: ``SCIM_AUTH_FAILURE_LIMIT`` failures per window;
* ``key id`` (bearer prefix or Basic username): ``SCIM_AUTH_FAILURE_LIMIT``;
* ``client IP`` across all workspaces: ``SCIM_AUTH_FAILURE_IP_LIMIT``.

Only failures count, and counters are checked before any database work. If the cache is
down, limiting fails open (authentication itself still runs): an outage of Redis must not
stop provisioning.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Counter:
    name: str
    limit: int


def _now() -> float:
    """The clock the windows are cut from (tests pin it: a window boundary resets every counter)."""
    return time.time()


def _window() -> int:
    return int(getattr(settings, "SCIM_AUTH_FAILURE_WINDOW", 300))


def _digest(value: str) -> str:
    # Caller-controlled text never goes into a cache key as is.
    return hashlib.sha256(value.encode("utf-8", "replace")).hexdigest()[:32]


def _counters(ip: str, slug: str, key_id: str) -> list[_Counter]:
    per = int(getattr(settings, "SCIM_AUTH_FAILURE_LIMIT", 10))
    counters = [
        _Counter(f"ipws:{_digest(ip + '|' + slug)}", per),
        _Counter(f"ip:{_digest(ip)}", int(getattr(settings, "SCIM_AUTH_FAILURE_IP_LIMIT", 300))),
    ]
    if key_id:
        counters.append(_Counter(f"key:{_digest(key_id[:64])}", per))
    return counters


def _key(counter: _Counter, window_index: int) -> str:
    return f"gatehouse:scimauth:{window_index}:{counter.name}"


def blocked_for(ip: str, slug: str, key_id: str = "") -> int | None:
    """Seconds until the window ends when any counter is at its limit; None when not blocked."""
    return check(ip, slug, key_id)[0]


def check(ip: str, slug: str, key_id: str = "", also: list[str] | None = None) -> tuple[int | None, dict]:
    """``blocked_for`` plus the cache values of the keys in ``also``, read in the same round trip
    (``scim.auth`` fetches its credential cache entry with the counters)."""
    window = _window()
    now = _now()
    index = int(now // window)
    counters = _counters(ip, slug, key_id)
    keys = [_key(c, index) for c in counters]
    try:
        values = cache.get_many(keys + list(also or []))
    except Exception:  # noqa: BLE001 - fail open, loudly
        log.warning("SCIM auth rate limit: cache unavailable; not limiting", exc_info=True)
        return None, {}
    for counter, key in zip(counters, keys, strict=True):
        if int(values.get(key) or 0) >= counter.limit:
            return max(1, math.ceil((index + 1) * window - now)), {}
    return None, values


def record_failure(ip: str, slug: str, key_id: str = "") -> None:
    window = _window()
    index = int(_now() // window)
    for counter in _counters(ip, slug, key_id):
        key = _key(counter, index)
        try:
            # One round trip once the counter exists (Redis INCR keeps the key's expiry).
            try:
                cache.incr(key)
            except ValueError:  # first failure of this window
                if not cache.add(key, 1, timeout=window + 5):
                    cache.incr(key)  # another process created it meanwhile
        except Exception:  # noqa: BLE001
            log.warning("SCIM auth rate limit: cache unavailable; failure not counted", exc_info=True)
            return
