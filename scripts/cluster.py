"""Gatehouse as several machines would run it, on this one (docs/deploy.md, "The multi-node topology").

    bash scripts/cluster up [--nodes 2] [--workers 2]   start everything, print the URLs and a demo login
    bash scripts/cluster status                          what runs, on which port
    bash scripts/cluster restart-node N                  drain node N at the load balancer, restart it, put it back
    bash scripts/cluster down [--keep-db]                stop everything it started (and drop its database)

haproxy (one port, health checks on /readyz, retries and redispatch) in front of N gunicorn nodes; PgBouncer in
transaction mode in front of this machine's PostgreSQL (DB_TRANSACTION_POOLING: no server-side cursors, no
prepared statements); a redis-server of its own (never the shared one on 6379); two Celery workers and two beats.
Everything lives in CLUSTER_DIR (default /tmp/gatehouse-cluster) on free loopback ports; ``state.json`` there
records ports and process ids, which ``down`` and the tests (tests/cluster/) read. PostgreSQL itself is the
machine's (CLUSTER_PG, default postgres://postgres@127.0.0.1:5432); the cluster's database is CLUSTER_DB
(default gatehouse_cluster), re-created by ``up``.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DIR = Path(os.environ.get("CLUSTER_DIR", "/tmp/gatehouse-cluster"))
PG = os.environ.get("CLUSTER_PG", "postgres://postgres@127.0.0.1:5432").rstrip("/")
DB = os.environ.get("CLUSTER_DB", "gatehouse_cluster")
STATE = DIR / "state.json"


def say(text: str) -> None:
    print(f"\033[1m==> {text}\033[0m", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:  # noqa: BLE001 - not up yet
            pass
        time.sleep(0.2)
    raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what} (logs in {DIR})")


def http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback URLs we built
        return bool(response.status == 200)


def load_state() -> dict:
    return json.loads(STATE.read_text()) if STATE.exists() else {}


def save_state(state: dict) -> None:
    STATE.write_text(json.dumps(state, indent=2))


def spawn(name: str, args: list[str], env: dict[str, str] | None = None) -> int:
    """Start a process in its own process group, output to DIR/<name>.log; returns its pid."""
    log = open(DIR / f"{name}.log", "ab")  # noqa: SIM115 - the child keeps it
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    return proc.pid


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:  # a zombie (exited, not reaped) is not alive
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def stop(pid: int, sig: int = signal.SIGTERM, timeout: float = 15) -> None:
    try:
        os.killpg(pid, sig)
    except OSError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive(pid):
        time.sleep(0.1)
    if alive(pid):
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass


def psql(sql: str, database: str = "postgres") -> None:
    subprocess.run(["psql", f"{PG}/{database}", "-v", "ON_ERROR_STOP=1", "-qc", sql], check=True, capture_output=True)


def app_env(state: dict) -> dict[str, str]:
    """The environment of every Gatehouse process: through PgBouncer, on the cluster's Redis, behind haproxy."""
    return {
        "PATH": f"{ROOT / '.venv' / 'bin'}:{os.environ.get('PATH', '')}",
        "HOME": os.environ.get("HOME", str(DIR)),
        "PYTHONPATH": str(ROOT),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "false",
        "SECRET_KEY": state["secret_key"],
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{state['ports']['pgbouncer']}/{DB}",
        "DB_TRANSACTION_POOLING": "true",
        "REDIS_URL": f"redis://127.0.0.1:{state['ports']['redis']}/0",
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{state['ports']['haproxy']}",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "TRUST_X_FORWARDED_FOR": "true",
        "LOG_LEVEL": "INFO",
        "DEPROVISION_SWEEP_INTERVAL": "2",
        "DEPROVISION_RETRY_AFTER": "3",
        **{k: v for k, v in os.environ.items() if k.startswith("CLUSTER_ENV_")},
    }


def write_pgbouncer(state: dict) -> list[str]:
    conf = DIR / "pgbouncer.ini"
    (DIR / "userlist.txt").write_text('"postgres" ""\n')
    host_port = PG.split("@", 1)[-1]
    host, _, port = host_port.partition(":")
    conf.write_text(f"""[databases]
{DB} = host={host} port={port or 5432} dbname={DB} user=postgres

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {state['ports']['pgbouncer']}
unix_socket_dir =
auth_type = trust
auth_file = {DIR / 'userlist.txt'}
pool_mode = transaction
max_client_conn = 400
default_pool_size = 20
server_reset_query =
ignore_startup_parameters = extra_float_digits,options
logfile = {DIR / 'pgbouncer.log'}
pidfile = {DIR / 'pgbouncer.pid'}
""")
    args = [shutil.which("pgbouncer") or "/usr/sbin/pgbouncer", str(conf)]
    if os.geteuid() == 0:  # pgbouncer refuses to run as root
        args[1:1] = ["-u", "postgres"]
        shutil.chown(DIR, "postgres")
        for path in DIR.iterdir():
            shutil.chown(path, "postgres")
    return args


def write_haproxy(state: dict) -> Path:
    servers = "\n".join(
        f"    server node{n} 127.0.0.1:{port} check inter 500ms fall 2 rise 2"
        for n, port in enumerate(state["ports"]["nodes"], start=1)
    )
    conf = DIR / "haproxy.cfg"
    conf.write_text(f"""global
    maxconn 2000
    stats socket {DIR / 'haproxy.sock'} mode 600 level admin

defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    # A connection refused or reset (a node stopping or killed) is tried again on another node. A request that
    # reached a node which then died without answering is retried only if it is idempotent (haproxy's rule for
    # empty-response and response-timeout): a POST or PATCH may have committed.
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response response-timeout
    option forwardfor

frontend gatehouse
    bind 127.0.0.1:{state['ports']['haproxy']}
    default_backend nodes

backend nodes
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
{servers}
""")
    return conf


def start_node(state: dict, n: int) -> None:
    """gunicorn node ``n`` (1-based); a restart reuses its port."""
    port = state["ports"]["nodes"][n - 1]
    metrics = DIR / f"metrics-node{n}"
    shutil.rmtree(metrics, ignore_errors=True)
    metrics.mkdir()
    env = {**app_env(state), "PROMETHEUS_MULTIPROC_DIR": str(metrics)}
    pid = spawn(f"node{n}", [str(ROOT / ".venv" / "bin" / "gunicorn"), "config.wsgi", "--workers",
                             str(state["workers"]), "--bind", f"127.0.0.1:{port}", "--graceful-timeout", "20",
                             "--access-logfile", "-"], env)
    state["pids"][f"node{n}"] = pid
    save_state(state)
    wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/readyz"), 60, f"node{n} on port {port}")


def haproxy_command(command: str) -> str:
    """One command on haproxy's admin socket (the runtime API); returns its answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(str(DIR / "haproxy.sock"))
        sock.sendall(command.encode() + b"\n")
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode()


def server_stat(n: int) -> dict[str, str]:
    """haproxy's statistics row for node ``n`` (status, current sessions...)."""
    lines = haproxy_command("show stat").splitlines()
    header = lines[0].lstrip("# ").split(",")
    for line in lines[1:]:
        row = dict(zip(header, line.split(","), strict=False))
        if row.get("pxname") == "nodes" and row.get("svname") == f"node{n}":
            return row
    raise SystemExit(f"haproxy has no node{n}")


def restart_node(state: dict, n: int) -> None:
    """A rolling restart's step: no new requests to node ``n`` (drained at the load balancer), requests in flight
    finish, the node restarts with the current code and comes back once /readyz and haproxy's checks pass."""
    haproxy_command(f"set server nodes/node{n} state drain")
    wait_until(lambda: server_stat(n)["scur"] == "0", 30, f"node{n}'s requests in flight to finish")
    stop(state["pids"][f"node{n}"])
    start_node(state, n)
    haproxy_command(f"set server nodes/node{n} state ready")
    wait_until(lambda: server_stat(n)["status"].startswith("UP"), 30, f"haproxy to see node{n} up")


def restart(args: argparse.Namespace) -> None:
    state = load_state()
    if not state:
        raise SystemExit("No cluster: bash scripts/cluster up first.")
    say(f"restarting node{args.node} (drained first)")
    restart_node(state, args.node)
    print(f"node{args.node} is back in rotation.")


def up(args: argparse.Namespace) -> None:
    if STATE.exists() and any(alive(pid) for pid in load_state().get("pids", {}).values()):
        raise SystemExit(f"A cluster is already running (state in {STATE}): bash scripts/cluster down first.")
    shutil.rmtree(DIR, ignore_errors=True)
    DIR.mkdir(parents=True)
    os.chmod(DIR, 0o755)
    state: dict = {
        "dir": str(DIR), "db": DB, "secret_key": secrets.token_urlsafe(50), "workers": args.workers,
        "ports": {"haproxy": free_port(), "pgbouncer": free_port(), "redis": free_port(),
                  "nodes": [free_port() for _ in range(args.nodes)]},
        "pids": {},
    }
    save_state(state)
    say(f"Database {DB} (re-created) on {PG}")
    psql(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
    psql(f'CREATE DATABASE "{DB}"')
    say(f"redis-server on 127.0.0.1:{state['ports']['redis']}")
    state["pids"]["redis"] = spawn("redis", [shutil.which("redis-server") or "redis-server", "--port",
                                             str(state["ports"]["redis"]), "--bind", "127.0.0.1", "--save", "",
                                             "--appendonly", "no", "--dir", str(DIR)])
    save_state(state)
    say(f"PgBouncer (transaction pooling) on 127.0.0.1:{state['ports']['pgbouncer']}")
    state["pids"]["pgbouncer"] = spawn("pgbouncer-stdout", write_pgbouncer(state))
    save_state(state)
    wait_until(lambda: socket.create_connection(("127.0.0.1", state["ports"]["pgbouncer"]), 1).close() is None,
               20, "PgBouncer")
    say("Migrations (through PgBouncer) and the demo workspace")
    subprocess.run([str(ROOT / ".venv" / "bin" / "python"), "manage.py", "migrate", "--no-input", "-v", "0"],
                   cwd=ROOT, env=app_env(state), check=True)
    demo = subprocess.run([str(ROOT / ".venv" / "bin" / "python"), "manage.py", "seed_demo"], cwd=ROOT,
                          env=app_env(state), check=True, capture_output=True, text=True).stdout
    for n in range(1, args.nodes + 1):
        say(f"gunicorn node{n} ({args.workers} workers) on 127.0.0.1:{state['ports']['nodes'][n - 1]}")
        start_node(state, n)
    for kind, count in (("worker", 2), ("beat", 2)):
        for n in range(1, count + 1):
            say(f"celery {kind} {n}")
            extra = (["worker", "--concurrency", "2", "-n", f"cluster{n}@%h", "--without-mingle", "--without-gossip"]
                     if kind == "worker" else ["beat", "-s", str(DIR / f"beat{n}-schedule")])
            state["pids"][f"{kind}{n}"] = spawn(f"{kind}{n}", [str(ROOT / ".venv" / "bin" / "celery"), "-A", "config",
                                                               *extra, "--loglevel", "INFO"], app_env(state))
            save_state(state)
    say(f"haproxy on 127.0.0.1:{state['ports']['haproxy']}")
    state["pids"]["haproxy"] = spawn("haproxy", [shutil.which("haproxy") or "/usr/sbin/haproxy", "-db", "-f",
                                                 str(write_haproxy(state))])
    save_state(state)
    base = f"http://127.0.0.1:{state['ports']['haproxy']}"
    wait_until(lambda: http_ok(f"{base}/readyz"), 30, "haproxy to find a ready node")
    print(demo.replace(f"http://127.0.0.1:{state['ports']['haproxy']}", base))
    print(f"Cluster up: {base} (load balancer); nodes {', '.join(str(p) for p in state['ports']['nodes'])}; "
          f"state and logs in {DIR}.\nStop it with: bash scripts/cluster down")


def status(_: argparse.Namespace) -> None:
    state = load_state()
    if not state:
        print("No cluster (bash scripts/cluster up starts one).")
        return
    for name, pid in state["pids"].items():
        print(f"  {name:10s} pid {pid:<8d} {'running' if alive(pid) else 'STOPPED'}")
    print(f"  load balancer http://127.0.0.1:{state['ports']['haproxy']}  nodes {state['ports']['nodes']}")


def down(args: argparse.Namespace) -> None:
    state = load_state()
    if not state:
        print("No cluster to stop.")
        return
    # Front to back: the load balancer, the web nodes, the schedulers and workers, then the stores.
    order = ["haproxy"] + sorted(k for k in state["pids"] if k.startswith("node")) + ["beat1", "beat2", "worker1",
                                                                                      "worker2", "pgbouncer", "redis"]
    for name in order:
        pid = state["pids"].get(name)
        if pid:
            say(f"stopping {name}")
            stop(pid)
    pid_file = DIR / "pgbouncer.pid"  # pgbouncer may have re-parented itself
    if pid_file.exists():
        try:
            os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)
        except (OSError, ValueError):
            pass
    if not args.keep_db:
        say(f"dropping database {DB}")
        try:
            psql(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
        except subprocess.CalledProcessError as exc:
            print(f"could not drop {DB}: {exc.stderr.decode(errors='replace')[:300]}", file=sys.stderr)
    STATE.unlink(missing_ok=True)
    print("Cluster stopped.")


def main() -> None:
    parser = argparse.ArgumentParser(prog="scripts/cluster", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_up = sub.add_parser("up", help="start the cluster")
    p_up.add_argument("--nodes", type=int, default=2)
    p_up.add_argument("--workers", type=int, default=2, help="gunicorn workers per node")
    p_up.set_defaults(run=up)
    sub.add_parser("status", help="what runs").set_defaults(run=status)
    p_restart = sub.add_parser("restart-node", help="drain one web node, restart it, put it back")
    p_restart.add_argument("node", type=int)
    p_restart.set_defaults(run=restart)
    p_down = sub.add_parser("down", help="stop everything it started")
    p_down.add_argument("--keep-db", action="store_true")
    p_down.set_defaults(run=down)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
