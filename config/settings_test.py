"""Settings for the test suite: the production settings, plus a throwaway SECRET_KEY when none is set.

A newcomer runs the suite with no environment at all; CI sets DATABASE_URL and REDIS_URL.
"""

import os

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-production-0123456789")
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API runs an event loop

from .settings import *  # noqa: E402,F403

if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":  # noqa: F405
    # Transactional tests empty tables with TRUNCATE, which the audit table's trigger refuses
    # unless the session says otherwise. Only test connections say so.
    DATABASES["default"].setdefault("OPTIONS", {})["options"] = "-c gatehouse.allow_truncate=on"  # noqa: F405

# Tasks run in-process unless a test starts a real worker (the deprovisioning fault tests do, and point the
# Celery app at their own Redis explicitly). Messages must not pile up in a shared Redis with no worker.
CELERY_TASK_ALWAYS_EAGER = True
