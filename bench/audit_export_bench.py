"""Audit export on PostgreSQL: time to the first row, events per second and memory, against PostgreSQL's own COPY.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/gatehouse_export_bench \\
        .venv/bin/python bench/audit_export_bench.py --size 1000000 --rounds 3

Seeds one workspace with ``--size`` chained events (``bench/audit_bench.py``'s seeding: real hashes, 20% more in
four other workspaces), then, in interleaved rounds, exports the whole workspace the way the export page does
(``audit.selectors.filtered_events`` + ``audit.export.csv_rows``/``jsonl_rows`` over ``export_rows``) and the
floor: ``COPY (SELECT the same columns, same order) TO STDOUT WITH CSV`` read through psycopg, which is what
PostgreSQL alone can send. Prints, per round and as the median: time to the first row, events per second, the
ratio to the floor, and the Python heap's peak (tracemalloc) while exporting. Targets (issue "Speed where people
wait"): first row under 1 s at any size; at least 50,000 events/s; memory flat (the peak does not grow with the
size: run two sizes to see it). Prints figures only. Drops its database at the end unless --keep.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings_test")


def export_once(workspace, fmt: str, *, trace: bool = False) -> dict[str, float]:
    """One whole export; with ``trace``, the Python heap's peak instead of honest timings (tracemalloc is slow)."""
    from audit import export, selectors

    generator = export.csv_rows if fmt == "csv" else export.jsonl_rows
    if trace:
        tracemalloc.start()
    started = time.perf_counter()
    first = None
    n = -1 if fmt == "csv" else 0  # the CSV header is not an event
    size = 0
    for chunk in generator(export.export_rows(selectors.filtered_events(workspace, {}))):
        n += 1
        size += len(chunk)
        if first is None and n == 1:
            first = time.perf_counter() - started
    elapsed = time.perf_counter() - started
    peak = 0
    if trace:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return {"first": first or 0.0, "rate": n / elapsed, "events": n, "mb": size / 1e6, "peak_mb": peak / 1e6}


def floor_once(workspace) -> dict[str, float]:
    """PostgreSQL's COPY of the same rows, in the same order, as CSV: the fastest any export could read them."""
    from django.db import connection

    from audit.export import _FIELDS

    columns = ", ".join(f'"{c}"' for c in _FIELDS)
    sql = (f"COPY (SELECT {columns} FROM audit_auditevent WHERE workspace_id = {int(workspace.pk)} "
           "ORDER BY created_at DESC, id DESC) TO STDOUT WITH CSV")
    started = time.perf_counter()
    first = None
    n = 0
    with connection.cursor() as cursor:
        with cursor.connection.cursor().copy(sql) as copy:
            for block in copy:
                if first is None:
                    first = time.perf_counter() - started
                n += bytes(block).count(b"\n")
    elapsed = time.perf_counter() - started
    return {"first": first or 0.0, "rate": n / elapsed, "events": n}


def http_session(workspace) -> str:
    """A signed-in Owner of ``workspace`` (a database session with a password grant for it): its session key."""
    import time as _time

    from django.contrib.sessions.backends.db import SessionStore

    from workspaces.access import SESSION_KEY
    from workspaces.models import Membership, User

    user = User.objects.create(email=f"auditor@{workspace.slug}.bench", password="!")
    Membership.objects.create(workspace=workspace, user=user, role="owner")
    store = SessionStore()
    store.update({
        "_auth_user_id": str(user.pk), "_auth_user_backend": "workspaces.auth_backends.EmailBackend",
        "_auth_user_hash": user.get_session_auth_hash(),
        SESSION_KEY: {str(workspace.pk): {"method": "password", "at": _time.time() + 1, "exp": None}},
    })
    store.create()
    return str(store.session_key)


class Gunicorn:
    """gunicorn (2 sync workers, ``gunicorn.conf.py``) on the benchmark's database, production settings."""

    def __init__(self) -> None:
        import socket

        from django.conf import settings

        from bench.floor_server import start_gunicorn

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        # The same signing key as this process, which wrote the session.
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "DEBUG": "false",
               "SECRET_KEY": settings.SECRET_KEY, "ALLOWED_HOSTS": "127.0.0.1",
               "CELERY_TASK_ALWAYS_EAGER": "true", "LOG_LEVEL": "WARNING"}
        env.pop("REDIS_URL", None)
        self.proc = start_gunicorn(self.port, env=env, ready_path="/healthz", extra=("--timeout", "600"))

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def http_once(server: Gunicorn, workspace, session_key: str, fmt: str, events: int) -> dict[str, float]:
    """One export over HTTP as a browser downloads it: time to the first byte of the body, events per second over
    the whole download (the workspace's event count over the wall time)."""
    import requests

    started = time.perf_counter()
    first = None
    size = 0
    with requests.get(f"http://127.0.0.1:{server.port}/w/{workspace.slug}/audit/export.{fmt}",
                      cookies={"sessionid": session_key}, stream=True, timeout=600, allow_redirects=False) as r:
        if r.status_code != 200:
            raise SystemExit(f"export answered {r.status_code}: {r.text[:300]}")
        for block in r.iter_content(chunk_size=1 << 16):
            if first is None and block:
                first = time.perf_counter() - started
            size += len(block)
    elapsed = time.perf_counter() - started
    return {"first": first or 0.0, "rate": events / elapsed, "events": events, "mb": size / 1e6}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database afterwards")
    parser.add_argument("--http", action="store_true",
                        help="also export over HTTP through gunicorn (2 sync workers), as a signed-in Owner downloads it")
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        sys.exit("Set DATABASE_URL to a PostgreSQL database used only by this benchmark (it is dropped and re-created).")
    from audit_bench import PER_DAY, ensure_database, seed

    ensure_database(url, drop=True)
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from workspaces.models import Workspace

    call_command("migrate", verbosity=0)
    print(f"command: DATABASE_URL={url} .venv/bin/python bench/audit_export_bench.py {' '.join(sys.argv[1:])}")
    print(f"{os.cpu_count()} cores, load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    rng = random.Random(42)
    workspace = Workspace.objects.create(slug="bench-export", name="Bench export")
    t0 = datetime.now(UTC) - timedelta(days=args.size / PER_DAY)
    print(f"seeding {args.size:,} events (+{args.size // 5:,} in 4 other workspaces)...", flush=True)
    seed(workspace.pk, args.size, 0, "", t0, rng)
    for i in range(4):
        other = Workspace.objects.create(slug=f"bench-other-{i}", name=f"Other {i}")
        seed(other.pk, args.size // 20, 0, "", t0, rng)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE audit_auditevent")

    names = ("floor", "csv", "jsonl", *(("http csv", "http jsonl") if args.http else ()))
    results: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    server = None
    if args.http:
        from audit.models import AuditEvent

        session_key = http_session(workspace)
        server = Gunicorn()
    for round_no in range(1, args.rounds + 1):
        for name in names:
            if name.startswith("http"):
                # Each HTTP export records an audit.exported event: count the workspace's events at each export.
                count = AuditEvent.objects.filter(workspace=workspace).count() + 1
                r = http_once(server, workspace, session_key, name.split()[1], count)
            elif name == "floor":
                r = floor_once(workspace)
            else:
                r = export_once(workspace, name)
            results[name].append(r)
            print(f"  round {round_no} {name:5s}: first row {r['first'] * 1000:7.1f} ms, {r['events']:,.0f} events, "
                  f"{r['rate']:,.0f} events/s", flush=True)
    if server is not None:
        server.stop()
    peaks = {name: export_once(workspace, name, trace=True)["peak_mb"] for name in ("csv", "jsonl")}
    print(f"  heap peak (one traced export each, untimed): csv {peaks['csv']:.1f} MB, jsonl {peaks['jsonl']:.1f} MB")

    floor_rate = statistics.median(r["rate"] for r in results["floor"])
    print(f"\n== medians over {args.rounds} rounds, {args.size:,} events (targets: first row < 1 s, >= 50,000 events/s)")
    print("| export | first row ms | events/s | / COPY floor | heap peak MB |")
    print("|---|---:|---:|---:|---:|")
    labels = {"floor": "COPY ... TO STDOUT (floor)", "csv": "CSV (export.csv_rows)",
              "jsonl": "JSON Lines (export.jsonl_rows)", "http csv": "CSV over HTTP (gunicorn, first byte)",
              "http jsonl": "JSON Lines over HTTP (gunicorn, first byte)"}
    for name in names:
        label = labels[name]
        rows = results[name]
        first = statistics.median(r["first"] for r in rows) * 1000
        rate = statistics.median(r["rate"] for r in rows)
        peak = f"{peaks[name]:.1f}" if name in peaks else "-"
        print(f"| {label} | {first:.1f} | {rate:,.0f} | {rate / floor_rate:.2f}x | {peak} |")
    if not args.keep:
        connection.close()
        ensure_database(url, drop=True)
        print("benchmark database dropped (use --keep to inspect it)")


if __name__ == "__main__":
    main()
