"""Settings for bench/scim_bench.py: production settings plus a URLconf with the floor view."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
