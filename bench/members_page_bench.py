"""Members page at scale on PostgreSQL: server time of /w/<slug>/members/ with 10,000 members (and more).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/gatehouse_members_bench \\
        .venv/bin/python bench/members_page_bench.py --sizes 10000 200000

Seeds one workspace with N members (accounts, memberships; a fifth with a confirmed TOTP device, a third
provisioned by SCIM, a sixth linked by SAML, one in twenty deactivated) plus 10% more in another workspace,
by bulk inserts. Each request goes through the whole Django stack in-process (middleware, the session's
workspace grant, the view, its queries and the template) as an Owner; "server time" is the wall time of
that call. Target: every request under 200 ms at 10,000 members. Prints figures only; never decides
anything. Drops its database at the end unless --keep.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings_test")

TARGET_MS = 200.0
BATCH = 5000


def ensure_database(url: str) -> None:
    from urllib.parse import urlsplit

    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    with psycopg.connect(url.replace(parts.path, "/postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(url: str) -> None:
    from urllib.parse import urlsplit

    import psycopg
    from django.db import connections

    connections.close_all()
    parts = urlsplit(url)
    with psycopg.connect(url.replace(parts.path, "/postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{parts.path.lstrip("/")}"')


def start_on_fresh_database(script: str) -> str:
    """Drop and re-create ``DATABASE_URL`` (PostgreSQL only), set Django up, migrate, and print the command and the
    machine's state. Returns the URL (for ``drop_database`` at the end)."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        sys.exit("Set DATABASE_URL to a PostgreSQL database used only by this benchmark (it is dropped and re-created).")
    ensure_database(url)

    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    settings.ALLOWED_HOSTS = ["*"]
    call_command("migrate", verbosity=0)
    print(f"command: DATABASE_URL={url} .venv/bin/python bench/{script} {' '.join(sys.argv[1:])}")
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"PostgreSQL: {connection.cursor().connection.info.server_version}; {os.cpu_count()} cores, load average {load}")
    return url


def seed(workspace, start: int, count: int, password_hash: str) -> None:
    """``count`` members numbered from ``start`` in ``workspace``, in batches (progress on stdout)."""
    from django.utils import timezone
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from workspaces.models import Membership, User

    now = timezone.now()
    done = 0
    while done < count:
        n = min(BATCH, count - done)
        numbers = range(start + done, start + done + n)
        users = User.objects.bulk_create([
            User(email=f"eng{k:07d}@{workspace.slug}.test", full_name=f"Engineer {k}", password=password_hash)
            for k in numbers
        ])
        Membership.objects.bulk_create([
            Membership(
                workspace=workspace, user=u, role=("manager" if k % 50 == 0 else "member"),
                is_active=k % 20 != 0, scim_username=u.email if k % 3 == 0 else "",
                saml_subject=f"00u{k}" if k % 6 == 1 else "", directory_email=u.email if k % 3 == 0 else "",
                last_login_at=now if k % 4 == 0 else None,
            )
            for k, u in zip(numbers, users, strict=True)
        ])
        TOTPDevice.objects.bulk_create([
            TOTPDevice(user=u, name="phone", confirmed=True) for k, u in zip(numbers, users, strict=True) if k % 5 == 0
        ])
        done += n
        print(f"  seeded {done:,} / {count:,} in {workspace.slug}", flush=True)


def measure(client, path: str, reps: int) -> tuple[float, float, int]:
    """Median and p95 server time (ms) of GET ``path``, after two warm-up calls; and the rows shown."""
    for _ in range(2):
        response = client.get(path)
        assert response.status_code == 200, (path, response.status_code)
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - t) * 1000)
    rows = len(response.context["members"]) if response.context and "members" in response.context else -1
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95) - 1], rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000])
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database afterwards")
    args = parser.parse_args()

    url = start_on_fresh_database("members_page_bench.py")
    from django.contrib.auth.hashers import make_password
    from django.db import connection
    from django.test.utils import setup_test_environment

    from tests.conftest import login_client
    from workspaces.models import Membership, User, Workspace

    setup_test_environment()  # the test client records each response's template context (rows shown)

    ws = Workspace.objects.create(slug="bench", name="Bench")
    other = Workspace.objects.create(slug="other", name="Other")
    owner = Membership.objects.create(
        workspace=ws, role="owner", user=User.objects.create(email="owner@bench.test", password=make_password("x"))
    )
    password_hash = make_password("not-used-by-the-benchmark")
    seeded = 0
    results = []
    for size in sorted(args.sizes):
        print(f"\n== {size:,} members (+{size // 10:,} in another workspace)", flush=True)
        seed(ws, seeded, size - seeded, password_hash)
        seed(other, seeded // 10, size // 10 - seeded // 10, password_hash)
        seeded = size
        with connection.cursor() as cur:
            cur.execute("ANALYZE")
        client = login_client(owner)
        last_but_one = (
            Membership.objects.filter(workspace=ws).order_by("-user__email", "-pk").values_list("pk", flat=True)[40]
        )
        cases = [
            ("first page", "/w/bench/members/"),
            ("last page (keyset)", f"/w/bench/members/?after={last_but_one}"),
            ("search 'eng00012'", "/w/bench/members/?q=eng00012"),
            ("search 'Engineer 9'", "/w/bench/members/?q=Engineer+9"),
            ("role=manager", "/w/bench/members/?role=manager"),
            ("two_factor=on", "/w/bench/members/?two_factor=on"),
            ("source=scim, deactivated", "/w/bench/members/?source=scim&status=deactivated"),
            ("sso=unlinked, 2FA off", "/w/bench/members/?sso=unlinked&two_factor=off"),
            ("workspace home (first 10)", "/w/bench/"),
        ]
        print(f"{'request':<28} {'rows':>5} {'p50 ms':>8} {'p95 ms':>8} {'p95 / 200 ms':>13}")
        for label, path in cases:
            p50, p95, rows = measure(client, path, args.reps)
            results.append((size, label, rows, p50, p95))
            print(f"{label:<28} {rows:>5} {p50:>8.1f} {p95:>8.1f} {p95 / TARGET_MS:>12.2f}x", flush=True)

    print("\n| members | request | rows | p50 ms | p95 ms | p95 / 200 ms |")
    print("|---:|---|---:|---:|---:|---:|")
    for size, label, rows, p50, p95 in results:
        print(f"| {size:,} | {label} | {rows} | {p50:.1f} | {p95:.1f} | {p95 / TARGET_MS:.2f}x |")
    worst = max(r[4] for r in results if r[0] == min(args.sizes))
    print(f"\nslowest p95 at {min(args.sizes):,} members: {worst:.1f} ms (target < {TARGET_MS:.0f} ms)")
    if not args.keep:
        drop_database(url)


if __name__ == "__main__":
    main()
