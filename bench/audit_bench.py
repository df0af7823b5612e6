"""Audit log benchmark on PostgreSQL: page latency at two sizes, deep pages, export throughput, record cost.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/gatehouse_audit_bench \\
        .venv/bin/python bench/audit_bench.py --sizes 1000000 5000000

Seeds one workspace with N events (plus 20% more spread over 4 other workspaces, 10 actors with
skewed activity, 12 actions with skewed frequency, 5,000 events a day) by COPY through psycopg,
with REAL seq/prev_hash/hash values computed by ``audit.models.event_content_digest`` and ``chain_link_hash`` (so
``verify_audit_chain`` passes on the seeded data). The second size is reached by appending to the
same chain. Timed code is the app's own: ``audit.selectors.filtered_events`` + ``events_page``,
the export generators of ``audit.export`` and ``audit.record.record_event``.
Prints figures only; never decides anything. Drops its database at the end unless --keep.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings_test")

PER_DAY = 5000
ACTORS = [(f"user{k}@bench.test", w) for k, w in enumerate([30, 15, 12, 10, 8, 7, 6, 5, 4, 3])]
ACTIONS = [
    ("package.pulled", 35, "api_key"), ("auth.login_succeeded", 20, "saml"), ("package.pushed", 10, "api_key"),
    ("member.updated", 8, "scim_bearer"), ("team.member_added", 7, "scim_bearer"), ("auth.login_failed", 5, "password"),
    ("package.denied", 4, "api_key"), ("member.role_changed", 3, "password"), ("member.created", 3, "scim_bearer"),
    ("member.deactivated", 2, "scim_bearer"), ("api_key.created", 2, "password"), ("sso.settings_changed", 1, "saml"),
]
COLUMNS = (
    "workspace_id", "seq", "created_at", "actor_kind", "actor_id", "actor_label", "auth_method", "action",
    "target_type", "target_id", "target_label", "ip", "user_agent", "request_id", "details", "prev_hash", "hash",
)


def ensure_database(url: str, drop: bool) -> None:
    from urllib.parse import urlsplit

    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = url.replace(parts.path, "/postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        if drop:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def seed(workspace_id: int, count: int, start_seq: int, prev_hash: str, t0: datetime, rng: random.Random) -> tuple[int, str]:
    """COPY ``count`` chained events after ``start_seq``; returns the new (last_seq, last_hash)."""
    from django.db import connection

    from audit.models import chain_link_hash, event_content_digest

    actor_names = [a for a, _ in ACTORS]
    actor_weights = [w for _, w in ACTORS]
    actions = [a for a, _, _ in ACTIONS]
    action_weights = [w for _, w, _ in ACTIONS]
    method = {a: m for a, _, m in ACTIONS}
    step = 86400 / PER_DAY
    ns = SimpleNamespace()
    seq = start_seq
    started = time.perf_counter()
    actor_picks = rng.choices(range(len(actor_names)), actor_weights, k=count)
    action_picks = rng.choices(actions, action_weights, k=count)
    target_picks = [rng.randint(1, 5000) for _ in range(count)]
    ip_picks = [f"10.0.{rng.randint(0, 3)}.{rng.randint(1, 50)}" for _ in range(200)]
    with connection.cursor() as cursor:
        raw = cursor.cursor  # the psycopg cursor
        with raw.copy(f"COPY audit_auditevent ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            for i in range(count):
                seq += 1
                actor_i = actor_picks[i]
                action = action_picks[i]
                target = target_picks[i]
                ns.workspace_id = workspace_id
                ns.seq = seq
                ns.created_at = t0 + timedelta(seconds=seq * step)
                ns.actor_kind = "user"
                ns.actor_id = str(actor_i + 1)
                ns.actor_label = actor_names[actor_i]
                ns.auth_method = method[action]
                ns.action = action
                ns.target_type = "member"
                ns.target_id = str(target)
                ns.target_label = f"person{target}@bench.test"
                ns.ip = ip_picks[i % 200]
                ns.user_agent = "bench/1"
                ns.request_id = f"{seq:032x}"
                ns.details = {"n": i}
                ns.prev_hash = prev_hash
                digest = chain_link_hash(prev_hash, seq, event_content_digest(ns))
                copy.write_row((
                    workspace_id, seq, ns.created_at, "user", ns.actor_id, ns.actor_label, ns.auth_method, action,
                    "member", ns.target_id, ns.target_label, ns.ip, ns.user_agent, ns.request_id,
                    json.dumps(ns.details), prev_hash, digest,
                ))
                prev_hash = digest
        cursor.execute(
            "INSERT INTO audit_auditchainhead (chain, last_seq, last_hash, prev_hash) VALUES (%s, %s, %s, '') "
            "ON CONFLICT (chain) DO UPDATE SET last_seq = EXCLUDED.last_seq, last_hash = EXCLUDED.last_hash",
            [f"ws:{workspace_id}", seq, prev_hash],
        )
    elapsed = time.perf_counter() - started
    print(f"  seeded {count:>9,} events in workspace {workspace_id} in {elapsed:6.1f} s ({count / elapsed:,.0f}/s)", flush=True)
    return seq, prev_hash


def pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def timeit(fn, reps: int) -> tuple[float, float]:
    for _ in range(5):
        fn()
    samples = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1000)
    return statistics.median(samples), pct(samples, 99)


def measure_pages(workspace, newest: datetime, reps: int, explain: bool, server_reps: int = 50) -> dict[str, dict[str, tuple[float, float]]]:
    from django.db.models import Q

    from audit import selectors

    window_to = newest - timedelta(days=10)
    shapes = {
        "actor": {"actor": ACTORS[1][0]},
        "action": {"action": "auth.login_succeeded"},
        "date range (60 days)": {"date_from": window_to - timedelta(days=60), "date_to": window_to},
    }
    out = {}
    for name, filters in shapes.items():
        qs = selectors.filtered_events(workspace, filters)
        matching = qs.count()
        # The first row of page 1,000 comes after 999 pages (smaller trial runs use their deepest full page).
        depth = min(999 * selectors.PAGE_SIZE, (matching // selectors.PAGE_SIZE - 1) * selectors.PAGE_SIZE)
        page_no = depth // selectors.PAGE_SIZE + 1
        created_at, pk = qs.values_list("created_at", "pk")[depth - 1]  # set-up only (OFFSET), not timed
        cursor = selectors.make_cursor(workspace, SimpleNamespace(created_at=created_at, pk=pk))
        first = timeit(lambda qs=qs: selectors.events_page(workspace, qs), reps)
        deep = timeit(lambda qs=qs, c=cursor: selectors.events_page(workspace, qs, cursor=c), reps)
        page = selectors.events_page(workspace, qs, cursor=cursor)
        deep_qs = qs.filter(created_at__lte=created_at).filter(Q(created_at__lt=created_at) | Q(pk__lt=pk))[:51]
        server = {}
        for label, q in (("first", qs[:51]), ("deep", deep_qs)):
            # Server-side execution time: what the database spends, without this busy machine's client scheduling.
            samples = [float(q.explain(analyze=True).rsplit("Execution Time:", 1)[1].split("ms")[0]) for _ in range(server_reps)]
            server[label] = (statistics.median(samples), pct(samples, 99))
            if explain:
                plan = [line.strip() for line in q.explain(analyze=True).splitlines()]
                nodes = " > ".join(line.split("  (")[0].replace("->", "").strip() for line in plan if "(" in line and "cost" in line)
                print(f"      plan {label}: {nodes}")
        assert len(page.events) == selectors.PAGE_SIZE, f"page 1,000 of {name} is not full"
        out[name] = {"first": first, "deep": deep, "server_first": server["first"], "server_deep": server["deep"]}
        print(f"    {name:22s} ({matching:>9,} match) app: first p50 {first[0]:6.2f} ms p99 {first[1]:6.2f} ms | "
              f"page {page_no:,} p50 {deep[0]:6.2f} ms p99 {deep[1]:6.2f} ms", flush=True)
        print(f"    {'':22s} {'':17s} db:  first p50 {server['first'][0]:6.3f} ms p99 {server['first'][1]:6.3f} ms | "
              f"page {page_no:,} p50 {server['deep'][0]:6.3f} ms p99 {server['deep'][1]:6.3f} ms", flush=True)
    return out


def measure_export(workspace, limit: int) -> dict[str, float]:
    from audit import export, selectors

    out = {}
    for fmt, gen in (("csv", export.csv_rows), ("jsonl", export.jsonl_rows)):
        qs = selectors.filtered_events(workspace, {"actor": ACTORS[1][0]})[:limit]
        t = time.perf_counter()
        n = -1 if fmt == "csv" else 0  # the CSV header is not an event
        size = 0
        for chunk in gen(export.export_rows(qs)):
            n += 1
            size += len(chunk)
        elapsed = time.perf_counter() - t
        out[fmt] = n / elapsed
        print(f"    export {fmt:5s} {n:,} events in {elapsed:5.1f} s: {n / elapsed:,.0f} events/s ({size / elapsed / 1e6:.1f} MB/s)", flush=True)
    return out


def measure_record(workspace, reps: int, with_sink: bool) -> tuple[float, float, float]:
    from django.db import transaction
    from django.utils import timezone

    from audit.keys import encrypt_sink_secret
    from audit.models import AuditSink
    from audit.record import Actor, record_event

    sink = None
    if with_sink:
        sink = AuditSink.objects.create(
            workspace_id=workspace.pk, name="bench", url="https://siem.example.test/", created_at=timezone.now(),
            secret_encrypted=encrypt_sink_secret("x"),
        )
    actor = Actor(kind="user", id="1", label=ACTORS[0][0], auth_method="password")
    from django.db import connection

    floor = []
    for _ in range(300):  # this busy machine's round-trip floor, measured at the same moment
        t = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        floor.append((time.perf_counter() - t) * 1000)
    print(f"    round trip floor (SELECT 1 through Django) p50 {statistics.median(floor):.3f} ms p99 {pct(floor, 99):.3f} ms")
    inside, total, cpu = [], [], []
    for i in range(reps):
        t0 = time.perf_counter()
        with transaction.atomic():
            t1 = time.perf_counter()
            c1 = time.process_time()
            record_event(actor=actor, action="bench.recorded", workspace=workspace, target_type="member",
                         target_id=i, target_label="x", details={"before": {"role": "member"}, "after": {"role": "manager"}})
            c2 = time.process_time()
            t2 = time.perf_counter()
        t3 = time.perf_counter()
        inside.append((t2 - t1) * 1000)
        total.append((t3 - t0) * 1000)
        cpu.append((c2 - c1) * 1000)
    decision = []
    if not with_sink:  # record_decision: the event alone, one self-committing statement (the access check's path)
        from audit.record import record_decision

        for i in range(reps // 2):
            t0 = time.perf_counter()
            record_decision(actor=actor, action="bench.decided", workspace=workspace, target_type="repository",
                            target_id=i, target_label="x", details={"action": "pull", "allowed": True})
            decision.append((time.perf_counter() - t0) * 1000)
    if sink is not None:
        sink.delete()
    label = "with 1 sink (outbox row)" if with_sink else "no sink"
    print(f"    record_event {label:24s}: inside the transaction p50 {statistics.median(inside):.3f} ms p99 {pct(inside, 99):.3f} ms; "
          f"with its commit p50 {statistics.median(total):.3f} ms; CPU of this process inside record_event "
          f"mean {statistics.mean(cpu):.3f} ms (1 round trip to PostgreSQL)", flush=True)
    if decision:
        print(f"    record_decision outside a transaction (one statement, committed): p50 {statistics.median(decision):.3f} ms "
              f"p99 {pct(decision, 99):.3f} ms", flush=True)
    return statistics.median(inside), pct(inside, 99), statistics.median(total)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 5_000_000])
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--export-limit", type=int, default=200_000)
    parser.add_argument("--record-reps", type=int, default=2000)
    parser.add_argument("--explain", action="store_true", help="print each query's plan (EXPLAIN ANALYZE)")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database afterwards")
    args = parser.parse_args()

    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        sys.exit("Set DATABASE_URL to a PostgreSQL database used only by this benchmark (it is dropped and re-created).")
    ensure_database(url, drop=True)

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from audit.models import AuditChainHead
    from workspaces.models import Workspace

    call_command("migrate", verbosity=0)
    print(f"command: DATABASE_URL={url} .venv/bin/python bench/audit_bench.py {' '.join(sys.argv[1:])}")
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"PostgreSQL: {connection.cursor().connection.info.server_version}; {os.cpu_count()} cores, load average {load}")
    rng = random.Random(42)
    main_ws = Workspace.objects.create(slug="bench-main", name="Bench main")
    others = [Workspace.objects.create(slug=f"bench-{i}", name=f"Bench {i}") for i in range(4)]
    final = max(args.sizes)
    t0 = datetime.now(UTC) - timedelta(days=final / PER_DAY)
    state = {w.pk: (0, "") for w in [main_ws, *others]}
    results = {}
    seeded = 0
    for size in sorted(args.sizes):
        print(f"\n== {size:,} events in the measured workspace (+{size // 5:,} in 4 others)", flush=True)
        add = size - seeded
        state[main_ws.pk] = seed(main_ws.pk, add, *state[main_ws.pk], t0, rng)
        for w in others:
            state[w.pk] = seed(w.pk, add // 20, *state[w.pk], t0, rng)
        seeded = size
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE audit_auditevent")
            cursor.execute("SELECT pg_size_pretty(pg_total_relation_size('audit_auditevent'))")
            print(f"  table + indexes: {cursor.fetchone()[0]}")
        newest = t0 + timedelta(seconds=state[main_ws.pk][0] * 86400 / PER_DAY)
        pages = measure_pages(main_ws, newest, args.reps, args.explain)
        export = measure_export(main_ws, args.export_limit)
        record = [measure_record(main_ws, args.record_reps, False), measure_record(main_ws, args.record_reps // 2, True)]
        head = AuditChainHead.objects.get(chain=f"ws:{main_ws.pk}")  # the recorded events extended the chain
        state[main_ws.pk] = (head.last_seq, head.last_hash)
        results[size] = {"pages": pages, "export": export, "record": record}

    if len(results) >= 2:
        small, big = sorted(results)[0], sorted(results)[-1]
        print(f"\n== ratios {big:,} / {small:,} (p50; target <= 1.2x) and deep/first at {big:,} (target <= 1.5x)")
        for name in results[big]["pages"]:
            a, b = results[small]["pages"][name], results[big]["pages"][name]
            for kind, f, d in (("app", "first", "deep"), ("db ", "server_first", "server_deep")):
                print(f"    {kind} {name:22s} first page {b[f][0] / a[f][0]:.2f}x, page 1,000 {b[d][0] / a[d][0]:.2f}x; "
                      f"page 1,000 / first at {big:,}: {b[d][0] / b[f][0]:.2f}x")
    if not args.keep:
        connection.close()
        ensure_database(url, drop=True)
        print("benchmark database dropped (use --keep to inspect it)")


if __name__ == "__main__":
    main()
