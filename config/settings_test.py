"""Settings for the test suite: the production settings, plus a throwaway SECRET_KEY when none is set.

A newcomer runs the suite with no environment at all; CI sets DATABASE_URL and REDIS_URL.
"""

import os

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-production-0123456789")
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
os.environ.setdefault("AUDIT_ALLOW_TRUNCATE", "true")  # Django's test flush TRUNCATEs the append-only audit table  # Playwright's sync API runs an event loop

from .settings import *  # noqa: E402,F403

