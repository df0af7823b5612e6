"""Bench-only settings: production settings plus the bench URL module (never used by the product)."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.api_urls"
MIDDLEWARE = ["bench.middleware.CpuTimeMiddleware", *MIDDLEWARE]  # noqa: F405
