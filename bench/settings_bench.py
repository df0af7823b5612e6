"""Settings for bench/scim_bench.py: production settings plus a URLconf with the floor view."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
# Reports the worker's own CPU time per request (X-Bench-Cpu-Us): steadier than wall time on a shared machine.
MIDDLEWARE = ["bench.middleware.CpuTimeMiddleware", *MIDDLEWARE]  # noqa: F405
