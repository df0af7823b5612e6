"""SCIM reads against their floor, by throughput under wrk: the fixed cost every SCIM request pays.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/gatehouse_scimread \
        .venv/bin/python bench/scim_read_bench.py --sizes 10000,200000,1000000 --rounds 3 --duration 5

Seeds one workspace per size in SQL (``INSERT ... SELECT generate_series``: a million members in about seven
minutes; reruns reuse them), starts gunicorn (2 sync workers, the bench settings: the portal plus
``/bench/floor/<id>/``, one indexed SELECT through DRF and the same middleware) and drives it with wrk (Debian's
``wrk``; ``--connections`` 4, 2 threads) for ``--duration`` seconds per request kind: the floor,
``GET /Users/{id}`` and ``GET /Users?filter=userName eq "..."`` over 2,000 members picked at random. Rounds
interleave the kinds and the sizes (the order reversed every other round) so that the machine's drift lands on
all of them alike. Prints, per round, each kind's req/s, p50 and p99 and its throughput as a fraction of the
floor's in the same round and size, the gunicorn workers' CPU per request (from /proc), then the medians over
the rounds and each size's p50 against the smallest size's. Figures only: nothing here passes or fails.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/gatehouse_scimread")
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-0123456789-abcdefghijklmnop")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings_bench")
os.environ["DEBUG"] = "0"
os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1,localhost")
os.environ["REDIS_URL"] = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/3")
os.environ["CELERY_TASK_ALWAYS_EAGER"] = "1"

import django  # noqa: E402

from bench import floor_server  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from audit.record import Actor  # noqa: E402
from scim.services import scim_credential_create  # noqa: E402
from workspaces.models import Membership, User, Workspace  # noqa: E402

PORT = int(os.environ.get("BENCH_PORT", "8797"))
BASE = f"http://127.0.0.1:{PORT}"
FLOOR = "floor (DRF, one indexed SELECT)"
KINDS = (FLOOR, "GET /Users/{id}", "GET /Users?filter=userName eq")

_LUA = """
local paths = {%s}
local n = 0
wrk.headers["Authorization"] = "%s"
wrk.headers["Accept"] = "%s"
request = function()
  n = n + 1
  return wrk.format("GET", paths[(n %% #paths) + 1])
end
"""


def _constants(model: type, skip: set[str], instance) -> tuple[list[str], list]:
    """Every column of ``model`` that ``skip`` does not name, with the value a fresh instance would save."""
    columns, values = [], []
    for f in model._meta.concrete_fields:
        if f.primary_key or f.attname in skip:
            continue
        columns.append(connection.ops.quote_name(f.column))
        values.append(f.get_db_prep_save(f.pre_save(instance, add=True), connection))
    return columns, values


def seed(size: int) -> Workspace:
    """A workspace of ``size`` SCIM-linked members, written in SQL batches of 50,000 (reused when present)."""
    slug = f"read{size // 1000}k"
    workspace, _ = Workspace.objects.get_or_create(slug=slug, defaults={"name": slug, "scim_enabled": True})
    Workspace.objects.filter(pk=workspace.pk).update(scim_enabled=True)
    have = Membership.objects.filter(workspace=workspace).count()
    if have >= size:
        return workspace
    started = time.monotonic()
    user_cols, user_vals = _constants(User, {"email", "full_name", "password"}, User(email="x@x.test"))
    member_cols, member_vals = _constants(
        Membership, {"workspace_id", "user_id", "scim_username", "external_id", "given_name", "family_name",
                     "display_name"},
        Membership(workspace=workspace, user_id=0),
    )
    placeholders_u = ", ".join(["%s"] * len(user_vals))
    placeholders_m = ", ".join(["%s"] * len(member_vals))
    batch = 50_000
    for lo in range(have, size, batch):
        hi = min(lo + batch, size)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f"WITH u AS (INSERT INTO workspaces_user (email, full_name, password, {', '.join(user_cols)}) "
                f"SELECT 'user' || i || '@{slug}.bench', 'User ' || i, '!', {placeholders_u} "
                f"FROM generate_series(%s, %s) AS i RETURNING id, email) "
                f"INSERT INTO workspaces_membership (workspace_id, user_id, scim_username, external_id, given_name, "
                f"family_name, display_name, {', '.join(member_cols)}) "
                f"SELECT %s, u.id, 'User' || substr(u.email, 5), 'ext-' || split_part(substr(u.email, 5), '@', 1), "
                f"'User', split_part(substr(u.email, 5), '@', 1), 'User ' || split_part(substr(u.email, 5), '@', 1), "
                f"{placeholders_m} FROM u",
                [*user_vals, lo, hi - 1, workspace.pk, *member_vals],
            )
        print(f"  {slug}: {hi:,} of {size:,} members ({time.monotonic() - started:.0f} s)", flush=True)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE workspaces_membership; ANALYZE workspaces_user;")
    return workspace


def start_gunicorn() -> subprocess.Popen:
    return floor_server.start_gunicorn(PORT)


def _cpu_seconds(pid: int) -> float:
    """CPU seconds of ``pid``'s children (the gunicorn workers), from /proc."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        try:
            fields = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(script: Path, duration: float, connections: int, gunicorn_pid: int) -> dict[str, float]:
    """One wrk run: req/s, p50 and p99 (ms), non-2xx answers and the workers' CPU ms per request."""
    cpu0 = _cpu_seconds(gunicorn_pid)
    out = subprocess.run(
        ["wrk", "-t", "2", "-c", str(connections), "-d", f"{max(1, round(duration))}s", "--latency", "-s", str(script), BASE],
        capture_output=True, text=True, check=True,
    ).stdout
    cpu = _cpu_seconds(gunicorn_pid) - cpu0
    requests_done = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50": _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1)),  # type: ignore[union-attr]
        "p99": _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1)),  # type: ignore[union-attr]
        "errors": float(bad.group(1)) if bad else 0.0,
        "cpu_ms": cpu * 1000 / max(1, requests_done),
    }


def scripts(workspace: Workspace, token: str, size: int, directory: Path) -> dict[str, Path]:
    rng = random.Random(size)
    ids = list(Membership.objects.filter(workspace=workspace).order_by("?").values_list("pk", flat=True)[:2000])
    numbers = rng.sample(range(size), 2000)
    base = f"/scim/v2/{workspace.slug}/"
    paths = {
        FLOOR: [f"/bench/floor/{pk}/" for pk in ids],
        "GET /Users/{id}": [f"{base}Users/{pk}" for pk in ids],
        "GET /Users?filter=userName eq": [
            f"{base}Users?filter=userName%20eq%20%22user{i}%40{workspace.slug}.BENCH%22" for i in numbers
        ],
    }
    out = {}
    for kind, urls in paths.items():
        script = directory / f"{workspace.slug}-{KINDS.index(kind)}.lua"
        accept = "application/json" if kind == FLOOR else "application/scim+json"
        script.write_text(_LUA % (", ".join(f'"{u}"' for u in urls), f"Bearer {token}", accept))
        out[kind] = script
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,200000")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=4)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk")
    sizes = [int(s) for s in args.sizes.split(",")]

    call_command("migrate", verbosity=0)
    workspaces = {size: seed(size) for size in sizes}
    directory = Path(tempfile.mkdtemp(prefix="scim-read-"))
    plans = {}
    for size, ws in workspaces.items():
        token = scim_credential_create(workspace=ws, kind="bearer", name=f"read bench {timezone.now():%H%M%S}",
                                       actor=Actor.system("bench"))[1]
        plans[size] = scripts(ws, token, size, directory)
    proc = start_gunicorn()
    results: dict[tuple[int, str], list[dict[str, float]]] = {}
    try:
        for size in sizes:  # warm each worker's caches and check every kind answers 200
            for kind, script in plans[size].items():
                warm = wrk(script, 1, args.connections, proc.pid)
                if warm["errors"]:
                    raise SystemExit(f"{size:,} {kind}: {warm['errors']:.0f} answers were not 2xx")
        for round_no in range(args.rounds):
            order = [(size, kind) for size in sizes for kind in KINDS]
            if round_no % 2:
                order.reverse()
            for size, kind in order:
                results.setdefault((size, kind), []).append(wrk(plans[size][kind], args.duration, args.connections,
                                                                proc.pid))
            print(f"round {round_no + 1}:")
            for size in sizes:
                floor = results[(size, FLOOR)][-1]["rps"]
                for kind in KINDS:
                    r = results[(size, kind)][-1]
                    print(f"  {size:>9,} {kind:<32} {r['rps']:7.1f} req/s ({r['rps'] / floor:.2f}x floor)"
                          f"  p50 {r['p50']:6.2f} ms  p99 {r['p99']:6.2f} ms  cpu {r['cpu_ms']:5.2f} ms"
                          f"  errors {r['errors']:.0f}", flush=True)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
        shutil.rmtree(directory, ignore_errors=True)
    print(render(results, sizes, args))


def render(results: dict[tuple[int, str], list[dict[str, float]]], sizes: list[int], args) -> str:
    from bench.doc_figures import load_average

    lines = [
        f"Command ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; load average {load_average()}):",
        "",
        "    DATABASE_URL=postgres://postgres@127.0.0.1:5432/gatehouse_scimread .venv/bin/python "
        f"bench/scim_read_bench.py \\\n        --sizes {','.join(map(str, sizes))} --rounds {args.rounds} "
        f"--duration {args.duration:g} --connections {args.connections}",
        "",
        "Medians over the rounds (each ratio is taken within its own round, then the median):",
        "",
        "| members | request | req/s | vs floor (rounds) | p50 ms | p99 ms | worker cpu ms | errors |",
        "|---:|---|---:|---|---:|---:|---:|---:|",
    ]
    for size in sizes:
        floors = [r["rps"] for r in results[(size, FLOOR)]]
        for kind in KINDS:
            runs = results[(size, kind)]
            ratios = [r["rps"] / f for r, f in zip(runs, floors, strict=True)]
            lines.append(
                f"| {size:,} | {kind} | {statistics.median(r['rps'] for r in runs):.0f} | "
                f"**{statistics.median(ratios):.2f}** ({', '.join(f'{x:.2f}' for x in ratios)}) | "
                f"{statistics.median(r['p50'] for r in runs):.2f} | {statistics.median(r['p99'] for r in runs):.2f} | "
                f"{statistics.median(r['cpu_ms'] for r in runs):.2f} | {sum(r['errors'] for r in runs):.0f} |"
            )
    if len(sizes) > 1:
        lines += ["", f"p50 against {sizes[0]:,} members (median over the rounds of each round's ratio):", "",
                  "| request | " + " | ".join(f"{s:,}" for s in sizes[1:]) + " |",
                  "|---|" + "---:|" * (len(sizes) - 1)]
        for kind in KINDS:
            cells = []
            for size in sizes[1:]:
                pairs = zip(results[(size, kind)], results[(sizes[0], kind)], strict=True)
                cells.append(f"{statistics.median(a['p50'] / b['p50'] for a, b in pairs):.2f}")
            lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
