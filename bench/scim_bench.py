"""SCIM throughput and latency on gunicorn + PostgreSQL, with a bare DRF floor measured in the same run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/gatehouse_scimcore \
        .venv/bin/python bench/scim_bench.py --sizes 10000,100000 --duration 4 [--write-docs]

Seeds one workspace per size with bulk_create (idempotent: reruns reuse the rows), starts gunicorn
(2 sync workers) on the bench settings (the portal plus ``/bench/floor/<id>/``), and for each size
measures, for ``--duration`` seconds each with ``--concurrency`` client threads:
the floor (one indexed SELECT through DRF), GET /Users/{id}, filter=userName eq, the first and a
deep list page (count=100), a cold deep page (a new startIndex each time: an anchor of the list index
plus an OFFSET below its stride), an import walk (startIndex 1, 101, 201, ... in order: pages that start at
an anchor of the list index, scim/list_index.py), POST /Users and PATCH
active=false. Prints req/s, p50, p99, the gunicorn worker's CPU per request and the ratios the issue
asks for. The cache is Redis (BENCH_REDIS_URL, default db 3) unless --no-redis. ``--write-docs`` replaces
the figures block of docs/benchmarks.md's ``## SCIM`` section (between the ``bench:scim`` markers;
bench/doc_figures.py); the section's prose is not rewritten. Figures only: nothing here passes or fails.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/gatehouse_scimcore")
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-0123456789-abcdefghijklmnop")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings_bench")
os.environ["DEBUG"] = "0"  # DEBUG keeps every query in memory: not what production runs
os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1,localhost")
# The cache is Redis, as in production (the SCIM credential cache needs a shared cache; with the in-process
# cache credentials are cached 2 s per worker; the Users list index is in the database either way). Celery stays eager:
# the bench measures the web tier, PostgreSQL and Redis, not a queue. --no-redis restores the old set-up.
if "--no-redis" in sys.argv:
    os.environ.pop("REDIS_URL", None)
else:
    os.environ["REDIS_URL"] = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/3")
    os.environ["CELERY_TASK_ALWAYS_EAGER"] = "1"

import django  # noqa: E402

from bench import floor_server  # noqa: E402

django.setup()

import requests  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import transaction  # noqa: E402

from audit.record import Actor  # noqa: E402
from scim.services import scim_credential_create  # noqa: E402
from workspaces.models import Membership, User, Workspace  # noqa: E402

PORT = int(os.environ.get("BENCH_PORT", "8799"))
BASE = f"http://127.0.0.1:{PORT}"


def seed(size: int) -> Workspace:
    """A workspace with ``size`` SCIM-linked members (bulk_create in batches; reused when present)."""
    slug = f"bench{size // 1000}k"
    workspace, _ = Workspace.objects.get_or_create(slug=slug, defaults={"name": slug, "scim_enabled": True})
    if not workspace.scim_enabled:
        workspace.scim_enabled = True
        workspace.save(update_fields=["scim_enabled"])
    have = Membership.objects.filter(workspace=workspace).count()
    if have >= size:
        return workspace
    started = time.monotonic()
    batch = 5000
    for lo in range(have, size, batch):
        hi = min(lo + batch, size)
        with transaction.atomic():
            users = User.objects.bulk_create(
                [User(email=f"user{i}@{slug}.bench", full_name=f"User {i}", password="!") for i in range(lo, hi)]
            )
            Membership.objects.bulk_create(
                [
                    Membership(
                        workspace=workspace, user=u, scim_username=f"User{i}@{slug}.bench", external_id=f"ext-{i}",
                        given_name="User", family_name=str(i), display_name=f"User {i}",
                    )
                    for i, u in zip(range(lo, hi), users, strict=True)
                ]
            )
    with django.db.connection.cursor() as cursor:
        cursor.execute("ANALYZE workspaces_membership; ANALYZE workspaces_user;")
    print(f"seeded {slug}: {size - have} members in {time.monotonic() - started:.1f}s", flush=True)
    return workspace


@dataclass
class Result:
    name: str
    latencies: list[float] = field(default_factory=list)
    cpu_us: list[int] = field(default_factory=list)  # the gunicorn worker's CPU per request (X-Bench-Cpu-Us)
    errors: int = 0
    elapsed: float = 0.0

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0

    @property
    def cpu_ms(self) -> float:
        """Median worker CPU per request: what the request costs the web tier, whatever the machine's load."""
        if not self.cpu_us:
            return float("nan")
        return sorted(self.cpu_us)[len(self.cpu_us) // 2] / 1000

    def pct(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000


def run(name: str, make_request, duration: float, concurrency: int, first: int = 0,
        result: Result | None = None) -> Result:
    """Call ``make_request(session, n)`` from ``concurrency`` threads for ``duration`` seconds
    (``n`` counts from ``first``), adding to ``result`` when given."""
    result = result if result is not None else Result(name)
    lock = threading.Lock()
    counter = iter(range(first, 10**9))
    deadline = time.monotonic() + duration

    def worker() -> None:
        session = requests.Session()
        local, errors, cpu = [], 0, []
        while time.monotonic() < deadline:
            with lock:
                n = next(counter)
            t0 = time.perf_counter()
            try:
                response = make_request(session, n)
                ok = response.status_code < 300
            except requests.RequestException:
                ok = False
            dt = time.perf_counter() - t0
            if ok:
                local.append(dt)
                if response.headers.get("X-Bench-Cpu-Us", "").isdigit():
                    cpu.append(int(response.headers["X-Bench-Cpu-Us"]))
            else:
                errors += 1
        with lock:
            result.latencies.extend(local)
            result.cpu_us.extend(cpu)
            result.errors += errors

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result.elapsed += time.monotonic() - started
    return result


def start_gunicorn() -> subprocess.Popen:
    return floor_server.start_gunicorn(PORT)


def scenarios(workspace: Workspace, token: str, size: int) -> dict:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"}
    base = f"{BASE}/scim/v2/{workspace.slug}/"
    ids = list(Membership.objects.filter(workspace=workspace, is_active=True).values_list("pk", flat=True)[:size])
    rng = random.Random(7)
    to_deactivate = rng.sample(ids, min(len(ids), 20000))
    run_tag = f"{int(time.time())}"

    def floor(s, n):
        return s.get(f"{BASE}/bench/floor/{rng.choice(ids)}/")

    def get_by_id(s, n):
        return s.get(f"{base}Users/{rng.choice(ids)}", headers=headers)

    def filter_username(s, n):
        i = rng.randrange(size)
        return s.get(f'{base}Users?filter=userName eq "user{i}@{workspace.slug}.BENCH"&startIndex=1&count=100', headers=headers)

    def list_first(s, n):
        return s.get(f"{base}Users?startIndex=1&count=100", headers=headers)

    def list_deep(s, n):
        # The same startIndex every time (not on an anchor: an OFFSET below the index's stride).
        return s.get(f"{base}Users?startIndex={max(1, size - 200)}&count=100", headers=headers)

    deep_rng = random.Random(11)

    def list_deep_cold(s, n):
        # A different deep startIndex every time (one no request asked for before): anchor, then a short OFFSET.
        return s.get(f"{base}Users?startIndex={size - 1000 + deep_rng.randrange(800)}&count=100", headers=headers)

    def list_walk(s, n):
        # An IdP import: startIndex 1, 101, 201, ... in order (the threads share the walk), wrapping around.
        pages = max(1, size // 100)
        return s.get(f"{base}Users?startIndex={1 + (n % pages) * 100}&count=100", headers=headers)

    def post(s, n):
        body = {"userName": f"new{run_tag}-{n}@{workspace.slug}.bench", "externalId": f"new-{run_tag}-{n}",
                "name": {"givenName": "New", "familyName": str(n)}}
        return s.post(f"{base}Users", data=json.dumps(body), headers=headers)

    def patch_deactivate(s, n):
        body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "value": {"active": False}}]}
        return s.patch(f"{base}Users/{to_deactivate[n % len(to_deactivate)]}", data=json.dumps(body), headers=headers)

    return {
        "floor (DRF, one indexed SELECT)": floor,
        "GET /Users/{id}": get_by_id,
        "GET /Users?filter=userName eq": filter_username,
        "GET /Users first page (100)": list_first,
        "GET /Users deep page (100)": list_deep,
        "GET /Users deep page, cold startIndex (100)": list_deep_cold,
        "GET /Users import walk, sequential pages (100)": list_walk,
        "POST /Users": post,
        "PATCH /Users/{id} active=false": patch_deactivate,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--duration", type=float, default=4.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--write-docs", action="store_true")
    parser.add_argument("--no-redis", action="store_true", help="in-process cache instead of Redis")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    call_command("migrate", verbosity=0)
    workspaces = {size: seed(size) for size in sizes}
    tokens = {
        size: scim_credential_create(workspace=ws, kind="bearer", name="bench", actor=Actor.system("bench"))[1]
        for size, ws in workspaces.items()
    }
    proc = start_gunicorn()
    results: dict[int, dict[str, Result]] = {}
    try:
        # Sizes interleave per request kind in ABBA order (10k, 100k, 100k, 10k: half the duration each),
        # so a drift of the shared machine over the run lands on both sizes alike; writes come last.
        plans = {size: scenarios(workspaces[size], tokens[size], size) for size in sizes}
        results = {size: {} for size in sizes}
        for name in plans[sizes[0]]:
            for order in (sizes, list(reversed(sizes))):
                for size in order:
                    done = results[size].get(name)
                    # The second half's n continue the first's: new userNames, members not yet deactivated.
                    first = len(done.latencies) + done.errors if done is not None else 0
                    results[size][name] = run(name, plans[size][name], args.duration / 2, args.concurrency,
                                              first=first, result=done)
            for size in sizes:
                r = results[size][name]
                print(f"{size:>7} {name:<34} {r.rps:8.1f} req/s  p50 {r.pct(50):7.1f} ms  p99 {r.pct(99):7.1f} ms"
                      f"  cpu {r.cpu_ms:6.2f} ms  errors {r.errors}", flush=True)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)

    report = render(results, sizes, args)
    print(report)
    if args.write_docs:
        from bench.doc_figures import replace_block

        if replace_block("scim", report):
            print("figures block written to docs/benchmarks.md (between the bench:scim markers)")
        else:
            print("docs/benchmarks.md has no bench:scim markers: nothing written")


def render(results: dict[int, dict[str, Result]], sizes: list[int], args: argparse.Namespace) -> str:
    from bench.doc_figures import load_average

    floor_name = "floor (DRF, one indexed SELECT)"
    lines = [
        f"Command ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
        + ("in-process cache" if args.no_redis else "Redis cache")
        + f"; load average {load_average()}):",
        "",
        f"    DATABASE_URL={os.environ['DATABASE_URL']} .venv/bin/python bench/scim_bench.py \\",
        f"        --sizes {','.join(map(str, sizes))} --duration {args.duration:g} --concurrency {args.concurrency}"
        + (" --no-redis" if args.no_redis else ""),
        "",
        "| members | request | req/s | p50 ms | p99 ms | worker cpu ms | errors | vs floor |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for size in sizes:
        floor = results[size][floor_name].rps
        for name, r in results[size].items():
            ratio = r.rps / floor if floor else float("nan")
            lines.append(f"| {size:,} | {name} | {r.rps:.0f} | {r.pct(50):.1f} | {r.pct(99):.1f} | {r.cpu_ms:.2f} "
                         f"| {r.errors} | {ratio:.2f} |")
    if len(sizes) == 2:
        small, big = sizes
        lines += ["", f"{big:,} vs {small:,} members (target: p50 ratio <= 1.2):", "",
                  "| request | p50 ratio | req/s ratio | worker cpu ratio |", "|---|---:|---:|---:|"]
        for name in results[small]:
            a, b = results[small][name], results[big][name]
            lines.append(f"| {name} | {b.pct(50) / a.pct(50):.2f} | {a.rps / b.rps if b.rps else float('nan'):.2f} "
                         f"| {b.cpu_ms / a.cpu_ms if a.cpu_ms else float('nan'):.2f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
