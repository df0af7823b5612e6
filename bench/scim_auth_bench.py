"""What SCIM authentication and the request log cost per request, in process (no HTTP).

Measures ``authenticate_scim_request`` for each mode (bearer, Basic, OAuth access token), a
refused request (401, counted by the rate limiter), ``log_scim_request``, and as the floor one
indexed SELECT of the workspace by slug, all in the same run. Prints median and p95 in ms.

    DEBUG=1 DATABASE_URL=postgres://postgres@127.0.0.1:5432/gatehouse_bench REDIS_URL=redis://127.0.0.1:6379/12 \\
        .venv/bin/python bench/scim_auth_bench.py [--n 2000]

It creates (and reuses) a workspace ``bench-auth``; run ``manage.py migrate`` on that database first.
The numbers never decide whether anything passes.
"""

from __future__ import annotations

import argparse
import base64
import os
import secrets
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.core.cache import cache  # noqa: E402
from django.http import HttpResponse  # noqa: E402
from django.test import RequestFactory  # noqa: E402
from django.utils import timezone  # noqa: E402
from oauth2_provider.models import AccessToken, set_token_value  # noqa: E402

from audit.record import Actor  # noqa: E402
from scim.auth import ScimAuthError, authenticate_scim_request  # noqa: E402
from scim.oauth import workspace_scope  # noqa: E402
from scim.request_log import log_scim_request  # noqa: E402
from scim.services import OAuthGrant, scim_credential_create, scim_oauth_client_create, scim_set_enabled  # noqa: E402
from workspaces.models import Workspace  # noqa: E402


def timed(fn, n: int) -> tuple[float, float]:
    for _ in range(min(50, n)):
        fn()
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    n = parser.parse_args().n
    actor = Actor.system("bench")
    workspace, _ = Workspace.objects.get_or_create(slug="bench-auth", defaults={"name": "Bench auth"})
    scim_set_enabled(workspace=workspace, enabled=True, actor=actor)
    _, bearer = scim_credential_create(workspace=workspace, kind="bearer", name="bench bearer", actor=actor)
    _, key_secret = scim_credential_create(workspace=workspace, kind="basic", name="bench basic", actor=actor)
    credential, _ = scim_oauth_client_create(workspace=workspace, name="bench oauth", actor=actor,
                                             grant=OAuthGrant.CLIENT_CREDENTIALS)
    raw = secrets.token_urlsafe(30)
    access = AccessToken(application=credential.oauth_application, user=None, scope=workspace_scope(workspace.pk),
                         expires=timezone.now() + timedelta(hours=1))
    set_token_value(access, raw)
    access.save()

    rf = RequestFactory()
    requests_by_mode = {
        "bearer": rf.get("/scim/v2/bench-auth/Users", HTTP_AUTHORIZATION=f"Bearer {bearer}"),
        "basic": rf.get("/scim/v2/bench-auth/Users",
                        HTTP_AUTHORIZATION="Basic " + base64.b64encode(key_secret.encode()).decode()),
        "oauth": rf.get("/scim/v2/bench-auth/Users", HTTP_AUTHORIZATION=f"Bearer {raw}"),
    }
    rows = [("floor: Workspace by slug (one indexed SELECT)",
             timed(lambda: Workspace.objects.filter(slug="bench-auth").first(), n))]
    for mode, request in requests_by_mode.items():
        rows.append((f"authenticate_scim_request, {mode}", timed(lambda r=request: authenticate_scim_request(r, "bench-auth"), n)))

    counter = iter(range(10**9))

    def refused() -> None:
        # A new client IP and key id each time so the limiter counts but never blocks.
        i = next(counter)
        request = rf.get("/scim/v2/bench-auth/Users", HTTP_AUTHORIZATION=f"Bearer gs_k{i}_wrong",
                         REMOTE_ADDR=f"10.{i // 250 % 250}.{i % 250}.1")
        try:
            authenticate_scim_request(request, "bench-auth")
        except ScimAuthError:
            pass

    cache.clear()
    rows.append(("refused bearer (401, failure counted)", timed(refused, n)))
    principal = authenticate_scim_request(requests_by_mode["bearer"], "bench-auth")
    post = rf.post("/scim/v2/bench-auth/Users", data='{"userName": "x@y.test", "name": {"givenName": "X"}}',
                   content_type="application/scim+json")
    rows.append(("log_scim_request (one INSERT, prune every 50th)",
                 timed(lambda: log_scim_request(post, "bench-auth", principal, HttpResponse(status=201)), n)))

    vendor = django.db.connection.vendor
    print(f"# {vendor}, cache {cache.__class__.__name__}, n={n} per row")
    print(f"# command: DEBUG=1 DATABASE_URL=... REDIS_URL=... .venv/bin/python bench/scim_auth_bench.py --n {n}")
    print("| what | median ms | p95 ms |")
    print("|---|---:|---:|")
    for label, (median, p95) in rows:
        print(f"| {label} | {median:.3f} | {p95:.3f} |")


if __name__ == "__main__":
    main()
