"""Deprovisioning benchmark: N deactivations through SCIM over HTTP, revoked by 2 Celery worker processes.

Starts its own redis-server (free loopback port), gunicorn (``--web-workers`` sync workers, 2 by
default) and ``celery -A config worker --concurrency 2`` (prefork, prefetch 1, late acks: the
production settings) on the database in DATABASE_URL (PostgreSQL; migrated here), creates a workspace
of N members who each hold one database session with a grant for the workspace and one personal API
key, then sends one SCIM PATCH ``active: false`` per member over ``--clients`` connections and measures
the time from the first request until every revocation job is done, against the 5 s goal. Prints the
figures and the command. Never part of the test suite.

Set-up choices (say them when quoting a figure):

- Members are SCIM-provisioned (``userName`` and directory email = email, linked to the directory): the members an IdP
  deactivates. ``--unlinked`` adds them as in the web UI instead, so each one's SCIM PATCH also links
  it (sets its SCIM ``userName``: one more change and audit event per request).
- The client is wrk (Debian's ``wrk``; each member sent once, wrk stopped once every deactivation has
  committed), or with ``--client python`` threads of ``requests`` (about 1 ms of client CPU per request,
  on the same cores as the server).
- gunicorn reads ``gunicorn.conf.py`` (started from the repository root); ``GUNICORN_GRACEFUL_CLOSE=always``
  measures gunicorn's own close, which waits for each client to close first.
- 2 sync gunicorn workers on 2 cores. ``--web-workers 4`` lets requests overlap their PostgreSQL
  waits; on a machine shared with other work it used more CPU per request and was not faster.
- Celery as in production: new jobs' publishes are coalesced (``DEPROVISION_COALESCE_SECONDS``, here
  per web process: the bench gives gunicorn no REDIS_URL, so its cache is in-process), and a worker
  tops each message up with fresh pending jobs (``DEPROVISION_BATCH_SIZE``): revocations run in batches.
- It prints the CPU seconds each part used while it ran (process groups; PostgreSQL: the backends of
  its database only): on a shared machine the wall time says little, the CPU seconds say what it costs.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/gatehouse_bench \\
        .venv/bin/python bench/deprovision_bench.py [--members 1000] [--client wrk|python] [--clients 8] \\
        [--web-workers 2] [--unlinked]
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SCIM_JSON = "application/scim+json"
GOAL_SECONDS = 5.0  # 1,000 deactivations, first request to every revocation done
DEACTIVATE = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
              "Operations": [{"op": "replace", "value": {"active": False}}]}


def _cpu_by_group(pgids: dict[str, int], database: str) -> dict[str, float]:
    """CPU seconds (user + system) used so far by each process group (gunicorn, celery: their
    process groups), by this client process, and by the PostgreSQL backends serving ``database``."""
    tick = os.sysconf("SC_CLK_TCK")
    totals = dict.fromkeys([*pgids, "client", "postgres"], 0.0)
    group_of = {pgid: name for name, pgid in pgids.items()}
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", [database])
        backends = {row[0] for row in cursor.fetchall()}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        cpu = (int(fields[11]) + int(fields[12])) / tick
        pid, pgrp = int(entry.name), int(fields[2])
        if pid == os.getpid():
            totals["client"] += cpu
        elif pgrp in group_of:
            totals[group_of[pgrp]] += cpu
        elif pid in backends:
            totals["postgres"] += cpu
    return totals


_WRK_SCRIPT = """
local ids = {%(ids)s}
local threads = %(threads)d
local body = '%(body)s'
local index, mine, answered, base = 0, 0, 0, "%(base)s"
local counter = 0

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
end

function init(args)
  index = tid + 1
  -- wrk calls request() once on thread 0 before the run, to check it: that call gets a GET, not a member.
  if tid == 0 then index = index - threads end
  for i = tid + 1, #ids, threads do mine = mine + 1 end
  wrk.headers["Authorization"] = "Bearer %(token)s"
  wrk.headers["Content-Type"] = "application/scim+json"
  wrk.headers["Accept"] = "application/scim+json"
end

function request()
  if index < 1 then
    index = index + threads
    return wrk.format("GET", "/healthz")
  end
  if index > #ids then
    return wrk.format("GET", "/healthz")  -- this thread's members are all sent: wait for the last answers
  end
  local id = ids[index]
  index = index + threads
  return wrk.format("PATCH", base .. id, nil, body)
end

function response(status, headers, body)
  answered = answered + 1
  if answered >= mine then wrk.thread:stop() end
end
"""


def _wrk_deactivate(server: str, base: str, ids: list[int], token: str, connections: int, work: Path,
                    jobs: Any) -> tuple[list[int], str]:
    """One PATCH per member from wrk (2 threads, ``connections`` connections), each member once.

    wrk runs for a fixed duration; a thread stops sending once its members are answered, and wrk is
    interrupted (it then prints its figures) as soon as every deactivation has committed (``jobs``: one outbox
    row per deactivation, written in its transaction) and the last answers have had time to arrive."""
    import json
    import re

    threads = min(2, connections)
    script = work / "deactivate.lua"
    script.write_text(_WRK_SCRIPT % {"ids": ", ".join(map(str, ids)), "threads": threads, "base": base,
                                     "token": token, "body": json.dumps(DEACTIVATE)})
    proc = subprocess.Popen(["wrk", "-t", str(threads), "-c", str(connections), "-d", "300s", "--latency",
                             "-s", str(script), server], stdout=subprocess.PIPE, text=True)
    wait_for = time.monotonic() + 300
    while jobs.count() < len(ids) and time.monotonic() < wait_for and proc.poll() is None:
        time.sleep(0.01)
    time.sleep(0.05)  # the last answers: the log row and the response after the commit
    proc.send_signal(signal.SIGINT)
    out = proc.communicate(timeout=30)[0]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    failed = int(bad.group(1)) if bad else 0
    statuses = [200] * (len(ids) - failed) + [0] * failed

    def ms(name: str) -> float:
        value, unit = re.search(rf"^\s+{name}%\s+([\d.]+)(us|ms|s)\b", out, re.M).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1000.0}[unit]

    return statuses, f"p50 {ms('50'):.0f} ms, p90 {ms('90'):.0f} ms, p99 {ms('99'):.0f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=8, help="concurrent HTTP clients (connections)")
    parser.add_argument("--client", choices=("wrk", "python"), default="wrk" if shutil.which("wrk") else "python",
                        help="wrk (Debian's wrk: about 0.1 ms of client CPU per request) or Python threads with "
                             "requests (about 2 ms, on the same two cores as the server); default wrk when installed")
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn sync worker processes")
    parser.add_argument("--unlinked", dest="linked", action="store_false",
                        help="members added as in the web UI: each SCIM PATCH also links it (the default: SCIM-provisioned)")
    parser.add_argument("--linked", dest="linked", action="store_true", help="the default; kept for older commands")
    parser.add_argument("--timeout", type=float, default=300, help="give up after this many seconds")
    parser.add_argument("--worker-after", action="store_true",
                        help="start the worker only after the last response, to time the revocation backlog alone")
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        sys.exit("Set DATABASE_URL to a PostgreSQL database (web, worker and this script share it).")

    secret_key = secrets.token_urlsafe(50)
    os.environ.update({
        "DJANGO_SETTINGS_MODULE": "config.settings", "SECRET_KEY": secret_key, "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1", "CELERY_TASK_ALWAYS_EAGER": "true",
    })
    os.environ.pop("REDIS_URL", None)
    import django

    django.setup()
    import requests
    from django.core.management import call_command
    from django.db import connection

    from audit.record import Actor
    from scim.services import scim_credential_create
    from tests.deprov.harness import RedisServer, free_port, make_leavers, wait_until
    from workspaces.models import DeprovisionJob, DeprovisionStatus, Membership, Workspace

    load_at_start = os.getloadavg()[0]
    call_command("migrate", verbosity=0)
    slug = f"bench-{secrets.token_hex(3)}"
    workspace = Workspace.objects.create(slug=slug, name="Deprovisioning bench", scim_enabled=True)
    ids = make_leavers(workspace, args.members, prefix=f"{slug}-")
    if args.linked:  # as the directory provisioned them: userName = email
        from django.db.models import OuterRef, Subquery

        from workspaces.models import User

        # As SCIM creates them: userName and the directory email both the person's email (without the
        # directory email every PATCH would also record the member's email as a rename: one more UPDATE and event).
        email = Subquery(User.objects.filter(pk=OuterRef("user_id")).values("email")[:1])
        Membership.objects.filter(pk__in=ids).update(scim_username=email, directory_email=email)
    _, token = scim_credential_create(workspace=workspace, kind="bearer", name="bench", actor=Actor.system("bench"))

    work = Path(tempfile.mkdtemp(prefix="gatehouse-bench-"))
    redis_server = RedisServer(work)
    redis_server.start()
    port = free_port()
    env = {**os.environ, "CELERY_BROKER_URL": redis_server.url, "PYTHONPATH": str(ROOT), "LOG_LEVEL": "WARNING"}
    env.pop("CELERY_TASK_ALWAYS_EAGER")
    procs = [
        subprocess.Popen([sys.executable, "-m", "gunicorn", "config.wsgi", "--workers", str(args.web_workers), "--bind",
                          f"127.0.0.1:{port}", "--log-level", "warning"],
                         cwd=ROOT, env=env, stdout=open(work / "web.log", "wb"), stderr=subprocess.STDOUT,
                         start_new_session=True),
    ]

    def start_worker() -> None:
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "--concurrency", "2",
             "--loglevel", "INFO", "--without-mingle", "--without-gossip"],
            cwd=ROOT, env=env, stdout=open(work / "worker.log", "wb"), stderr=subprocess.STDOUT,
            start_new_session=True,
        ))
        wait_until(lambda: "ready." in (work / "worker.log").read_text(errors="replace"), 60, "celery worker")

    try:
        base = f"http://127.0.0.1:{port}/scim/v2/{slug}/Users/"
        probe = requests.Session()
        probe.headers.update({"Authorization": f"Bearer {token}", "Accept": SCIM_JSON})

        def web_up() -> bool:
            try:
                return probe.get(base, params={"count": 1}, timeout=2).status_code == 200
            except requests.RequestException:
                return False

        wait_until(web_up, 60, "gunicorn")
        if not args.worker_after:
            start_worker()

        sessions: dict[int, requests.Session] = {}
        latencies: list[float] = []

        def deactivate(pk: int) -> int:
            import threading

            s = sessions.setdefault(threading.get_ident(), requests.Session())
            s.headers.update({"Authorization": f"Bearer {token}", "Content-Type": SCIM_JSON, "Accept": SCIM_JSON})
            t = time.perf_counter()
            status = s.patch(f"{base}{pk}", json=DEACTIVATE, timeout=60).status_code
            latencies.append(time.perf_counter() - t)
            return status

        jobs = DeprovisionJob.objects.filter(workspace=workspace)
        groups = {"gunicorn": procs[0].pid, **({"celery": procs[1].pid} if len(procs) > 1 else {})}
        database = connection.settings_dict["NAME"]
        cpu_before = _cpu_by_group(groups, database)
        t0 = time.perf_counter()
        if args.client == "wrk":
            statuses, latency = _wrk_deactivate(f"http://127.0.0.1:{port}", f"/scim/v2/{slug}/Users/", ids, token,
                                                args.clients, work, jobs)
        else:
            with ThreadPoolExecutor(args.clients) as pool:
                statuses = list(pool.map(deactivate, ids))
            lat = sorted(latencies)
            latency = f"p50 {statistics.median(lat) * 1000:.0f} ms, p95 {lat[int(len(lat) * 0.95)] * 1000:.0f} ms"
        t_requests = time.perf_counter() - t0
        done_at_last_response = jobs.filter(status=DeprovisionStatus.DONE).count()
        t_worker = time.perf_counter()
        if args.worker_after:
            start_worker()
            t_worker = time.perf_counter()
        wait_until(lambda: jobs.filter(status=DeprovisionStatus.DONE).count() == len(ids), args.timeout,
                   "every revocation", interval=0.05)
        t_total = time.perf_counter() - t0
        if len(procs) > 1:
            groups["celery"] = procs[1].pid
        cpu_after = _cpu_by_group(groups, database)
        cpu = {k: cpu_after[k] - cpu_before.get(k, 0.0) for k in cpu_after}
        bad = [s for s in statuses if s != 200]
        results = {tuple(sorted(r.items())) for r in jobs.values_list("result", flat=True)}
        still_active = Membership.objects.filter(pk__in=ids, is_active=True).count()
        print(f"command: DATABASE_URL=postgres://... python bench/deprovision_bench.py --members {args.members} "
              f"--client {args.client} --clients {args.clients} --web-workers {args.web_workers}{'' if args.linked else ' --unlinked'}"
              f"{' --worker-after' if args.worker_after else ''}")
        print(f"setup: gunicorn {args.web_workers} sync workers, members {'linked' if args.linked else 'unlinked'}, celery worker --concurrency 2 (prefork), redis-server {redis_server.port}, "
              f"PostgreSQL; {os.cpu_count()} CPUs shared; load average {load_at_start:.1f} before set-up, {os.getloadavg()[0]:.1f} at the end")
        print(f"{len(ids)} SCIM PATCH deactivations, {args.clients} concurrent connections ({args.client}): "
              f"non-200 responses {len(bad)}, members still active {still_active}")
        print(f"  all responses in       {t_requests:6.2f} s  ({len(ids) / t_requests:.0f} req/s; {latency})")
        print(f"  revocations done then  {done_at_last_response} of {len(ids)}")
        print(f"  first request -> all revocations done: {t_total:6.2f} s ({t_total / GOAL_SECONDS:.2f}x the "
              f"{GOAL_SECONDS:g} s goal)")
        if args.worker_after:
            print(f"  worker started after the last response; it drained {len(ids)} jobs "
                  f"({len(ids)} one-job messages, topped up to batches) in {t0 + t_total - t_worker:6.2f} s after it was ready")
        print(f"  job results: {sorted(results)}")
        print("  CPU seconds used meanwhile: " + ", ".join(f"{k} {v:.1f}" for k, v in cpu.items())
              + f"; total {sum(cpu.values()):.1f} (PostgreSQL: its backends for this database only)")
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        redis_server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
