"""Throughput through the load balancer with one web node and with two: SCIM reads and the access check.

    .venv/bin/python bench/cluster_scaling.py [--rounds 2] [--seconds 5] [--concurrency 16] [--workers 2]

Starts the multi-node cluster (scripts/cluster.py: haproxy, two gunicorn nodes of ``--workers`` workers each,
PgBouncer in transaction mode, Redis, Celery workers and beats) in a directory of its own, seeds SCIM users and an
API key, then measures, in interleaved rounds, each request mix with one node in rotation (the other put in
maintenance through haproxy's runtime API) and with two. Prints requests/s, p50 and p99, and the CPU seconds each
process group used during the measurement (from /proc: haproxy, PgBouncer, PostgreSQL, gunicorn, Redis, Celery,
and the load generator itself), so a reader sees which part would use a bigger machine. Stops the cluster at the
end. Prints figures only.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

TICKS = os.sysconf("SC_CLK_TCK")


def cluster_module(directory: Path, database: str):
    os.environ["CLUSTER_DIR"] = str(directory)
    os.environ["CLUSTER_DB"] = database
    spec = importlib.util.spec_from_file_location("gatehouse_cluster", ROOT / "scripts" / "cluster.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _processes() -> dict[int, tuple[int, str, float]]:
    """pid -> (parent pid, command name, CPU seconds so far)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        found[int(entry.name)] = (int(fields[1]), name, (int(fields[11]) + int(fields[12])) / TICKS)
    return found


def cpu_by_group(state: dict) -> dict[str, float]:
    """CPU seconds so far of each process group of the cluster (a process counts with its descendants)."""
    procs = _processes()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in procs.items():
        children.setdefault(ppid, []).append(pid)

    def tree(pid: int) -> float:
        own = procs.get(pid, (0, "", 0.0))[2]
        return own + sum(tree(c) for c in children.get(pid, []))

    pids = state["pids"]
    groups = {
        "haproxy": tree(pids["haproxy"]),
        "pgbouncer": sum(cpu for _, name, cpu in procs.values() if name == "pgbouncer"),
        "postgresql": sum(cpu for _, name, cpu in procs.values() if name == "postgres"),
        "gunicorn": sum(tree(pid) for name, pid in pids.items() if name.startswith("node")),
        "redis": tree(pids["redis"]),
        "celery": sum(tree(pid) for name, pid in pids.items() if name.startswith(("worker", "beat"))),
    }
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    groups["load generator"] = usage.ru_utime + usage.ru_stime
    return groups


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers per node")
    args = parser.parse_args()
    from api_bench import run_load

    directory = Path(tempfile.mkdtemp(prefix="gatehouse-cluster-bench-"))
    module = cluster_module(directory, "gatehouse_cluster_bench")
    env = {**os.environ, "CLUSTER_DIR": str(directory), "CLUSTER_DB": "gatehouse_cluster_bench"}
    script = [sys.executable, str(ROOT / "scripts" / "cluster.py")]
    print(f"command: .venv/bin/python bench/cluster_scaling.py {' '.join(sys.argv[1:])}")
    print(f"{os.cpu_count()} cores, load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    subprocess.run([*script, "up", "--workers", str(args.workers)], env=env, check=True, stdout=subprocess.DEVNULL)
    try:
        state = module.load_state()

        def manage(*argv: str) -> str:
            return subprocess.run([sys.executable, "manage.py", *argv], cwd=ROOT, env=module.app_env(state),
                                  check=True, capture_output=True, text=True).stdout

        manage("scim_credential", "acme", "--enable")
        token = re.search(r"\bgs_\S+", manage("scim_credential", "acme", "--kind", "bearer", "--name", "bench")).group(0)
        api_key = manage("create_api_key", "acme", "member@acme.test", "--name", "bench").strip().split()[-1]
        print("seeding 200 SCIM users ...", flush=True)
        manage("shell", "-c", (
            "from audit.record import Actor; from workspaces import services; from workspaces.models import Workspace; "
            "w = Workspace.objects.get(slug='acme'); a = Actor.system('bench'); "
            "[services.membership_add(workspace=w, email=f'user{i}@acme.test', actor=a, role='member', source='scim', "
            "scim_username=f'user{i}@acme.test', external_id=f'00u{i}') for i in range(200)]"
        ))
        ids = [row for row in manage("shell", "-c", (
            "from workspaces.models import Membership; "
            "print(*Membership.objects.filter(workspace__slug='acme', scim_username__startswith='user')"
            ".values_list('pk', flat=True)[:200])"
        )).split()]
        port = state["ports"]["haproxy"]
        scim = {"Authorization": f"Bearer {token}", "Accept": "application/scim+json"}
        specs = {
            "SCIM GET Users/{id}": {"method": "GET", "path": f"/scim/v2/acme/Users/{ids[len(ids) // 2]}", "headers": scim},
            "SCIM userName eq": {"method": "GET", "headers": scim,
                                 "path": "/scim/v2/acme/Users?filter=userName%20eq%20%22user7%40acme.test%22"},
            "access check (decision + audit)": {
                "method": "POST", "path": "/api/v1/workspaces/acme/access-check",
                "headers": {"Authorization": f"Bearer {api_key}"},
                "body": {"repository": "staging-packages", "action": "pull"},
            },
        }
        for spec in specs.values():  # warm-up on both nodes
            run_load(port, spec, 1.0, 4)
        results: dict[tuple[str, int], list[dict]] = {}
        for round_no in range(1, args.rounds + 1):
            for nodes in (1, 2):
                module.haproxy_command(f"set server nodes/node2 state {'maint' if nodes == 1 else 'ready'}")
                if nodes == 2:
                    module.wait_until(lambda: module.server_stat(2)["status"].startswith("UP"), 30, "node2")
                for name, spec in specs.items():
                    before = cpu_by_group(state)
                    figures = run_load(port, spec, args.seconds, args.concurrency)
                    after = cpu_by_group(state)
                    figures["cpu"] = {g: after[g] - before[g] for g in after}
                    results.setdefault((name, nodes), []).append(figures)
                    split = ", ".join(f"{g} {v:.1f}" for g, v in figures["cpu"].items())
                    print(f"  round {round_no} {nodes} node{'s' if nodes > 1 else ''} {name:32s} "
                          f"{figures['rps']:7.0f} req/s p50 {figures['p50']:6.1f} ms p99 {figures['p99']:6.1f} ms "
                          f"errors {figures['errors']} | CPU s: {split}", flush=True)
        module.haproxy_command("set server nodes/node2 state ready")
        print(f"\n== medians of {args.rounds} rounds, {args.seconds:.0f} s each, {args.concurrency} clients, "
              f"{args.workers} gunicorn workers per node")
        groups = list(next(iter(results.values()))[0]["cpu"])
        print("| request | nodes | req/s | p50 ms | p99 ms | 2 nodes / 1 node | CPU s per 1,000 requests: "
              + ", ".join(groups) + " |")
        print("|---|---:|---:|---:|---:|---:|---|")
        for name in specs:
            one = statistics.median(r["rps"] for r in results[(name, 1)])
            for nodes in (1, 2):
                rows = results[(name, nodes)]
                rps = statistics.median(r["rps"] for r in rows)
                per = {g: statistics.median(1000 * r["cpu"][g] / max(1, r["requests"]) for r in rows) for g in groups}
                print(f"| {name} | {nodes} | {rps:,.0f} | {statistics.median(r['p50'] for r in rows):.1f} | "
                      f"{statistics.median(r['p99'] for r in rows):.1f} | {rps / one:.2f}x | "
                      + ", ".join(f"{per[g]:.2f}" for g in groups) + " |")
    finally:
        subprocess.run([*script, "down"], env=env, stdout=subprocess.DEVNULL)
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
