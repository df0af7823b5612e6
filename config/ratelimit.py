"""Fixed-window rate limiting in the Django cache (Redis in production): the one limiter.

A ``FixedWindowLimiter`` counts failures on several ``Counter`` s at once (a login counts per email
and per client IP; SCIM authentication per IP and workspace, per IP, per key id). Windows are cut
from the clock (``_now``) every ``window`` seconds; a counter at its limit blocks until its window
ends, which is the ``Retry-After`` the caller sends. Counter names are caller-controlled text (an
email, a key id): they are hashed into the cache key, never used as they are.

One round trip each way: ``check`` reads every counter (and any other keys the caller wants, such
as a cached credential) with one ``get_many``; ``hit`` counts every counter in one Redis pipeline.

If the cache is unreachable the limiter fails open, loudly: ``check`` logs a warning and allows,
``hit`` logs a warning and counts nothing. An outage of Redis must not stop logins or provisioning
(the checks behind the limiter still run); it only suspends the limiting.

Infrastructure below every app: imports no app (tests/architecture).
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache

log = logging.getLogger(__name__)

# A counter outlives its window by this much, so a clock a little ahead on another node still finds it.
_GRACE_SECONDS = 5


def _now() -> float:
    """The clock the windows are cut from (tests pin it: a window boundary resets every counter)."""
    return time.time()


@dataclass(frozen=True)
class Counter:
    """One thing counted (``name``, any text) and the count at which it blocks (``limit``)."""

    name: str
    limit: int


@dataclass(frozen=True)
class Verdict:
    """What ``check`` found: ``retry_after`` seconds when a counter is at its limit (None: allowed), and
    the values of the extra keys read in the same round trip (empty when blocked or the cache is down)."""

    retry_after: int | None = None
    values: dict[str, Any] = field(default_factory=dict)

    @property
    def blocked(self) -> bool:
        return self.retry_after is not None


class FixedWindowLimiter:
    """Counters of ``namespace``, in windows of ``settings.<window_setting>`` seconds (read at each call)."""

    def __init__(self, namespace: str, *, window_setting: str, default_window: int) -> None:
        self.namespace = namespace
        self.window_setting = window_setting
        self.default_window = default_window

    def window(self) -> int:
        return int(getattr(settings, self.window_setting, self.default_window))

    def _key(self, counter: Counter, index: int) -> str:
        digest = hashlib.sha256(counter.name.encode("utf-8", "replace")).hexdigest()[:32]
        return f"gatehouse:{self.namespace}:{index}:{digest}"

    def check(self, counters: Sequence[Counter], *, also: Sequence[str] = ()) -> Verdict:
        """Whether any counter is at its limit, plus the cache values of the keys in ``also``."""
        window = self.window()
        now = _now()
        index = int(now // window)
        keys = [self._key(c, index) for c in counters]
        try:
            values = cache.get_many([*keys, *also])
        except Exception:  # noqa: BLE001 - fail open, loudly
            log.warning("rate limit %s: cache unavailable; not limiting", self.namespace, exc_info=True)
            return Verdict()
        for counter, key in zip(counters, keys, strict=True):
            if int(values.get(key) or 0) >= counter.limit:
                return Verdict(retry_after=max(1, math.ceil((index + 1) * window - now)))
        return Verdict(values={key: values[key] for key in also if key in values})

    def retry_after(self, counters: Sequence[Counter]) -> int | None:
        """Seconds until the window ends when any counter is at its limit; None when allowed."""
        return self.check(counters).retry_after

    def first_in_window(self, name: str) -> bool:
        """True the first time ``name`` is asked for in the current window, False after: to record one audit
        event for a run of refused attempts instead of one per attempt. True when the cache is down (then
        every attempt is recorded: more records, never fewer)."""
        window = self.window()
        key = self._key(Counter(f"first:{name}", 1), int(_now() // window))
        try:
            return bool(cache.add(key, 1, timeout=window + _GRACE_SECONDS))
        except Exception:  # noqa: BLE001
            log.warning("rate limit %s: cache unavailable; recording every refusal", self.namespace, exc_info=True)
            return True

    def hit(self, counters: Sequence[Counter]) -> None:
        """Count one (a failure) on every counter of the current window."""
        window = self.window()
        keys = [self._key(c, int(_now() // window)) for c in counters]
        try:
            _incr_all(keys, window + _GRACE_SECONDS)
        except Exception:  # noqa: BLE001
            log.warning("rate limit %s: cache unavailable; not counted", self.namespace, exc_info=True)


def _incr_all(keys: list[str], timeout: int) -> None:
    """Add one to each key, creating it with ``timeout`` when missing."""
    backend = caches["default"]
    if isinstance(backend, RedisCache):
        # One round trip: INCR creates a missing key at 1, EXPIRE gives it its lifetime (a counter's key
        # carries its window, so renewing the lifetime on each failure keeps it at most one window more).
        # Private API: the backend's redis-py client (config.cache keeps one per connection pool);
        # ``make_and_validate_key`` is public, and integers are stored as Redis integers by Django.
        client = backend._cache.get_client(write=True)  # type: ignore[attr-defined]  # Django internals
        pipeline = client.pipeline(transaction=False)
        for key in keys:
            redis_key = backend.make_and_validate_key(key)
            pipeline.incr(redis_key)
            pipeline.expire(redis_key, timeout)
        pipeline.execute()
        return
    for key in keys:  # an in-process cache: no round trips to save
        try:
            cache.incr(key)
        except ValueError:  # the window's first failure
            if not cache.add(key, 1, timeout=timeout):
                cache.incr(key)  # another thread created it meanwhile
