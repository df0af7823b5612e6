"""Starting gunicorn for a bench and waiting until it answers: shared by the SCIM and audit export benches."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent


def start_gunicorn(port: int, workers: int = 2, *, env: dict[str, str] | None = None,
                   ready_path: str = "/bench/floor/1/", extra: tuple[str, ...] = ()) -> subprocess.Popen:
    """gunicorn (``workers`` sync workers, ``gunicorn.conf.py``) with ``env`` (default: this process's environment),
    once ``ready_path`` answers 200."""
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    proc = subprocess.Popen(
        [gunicorn, "config.wsgi:application", "-w", str(workers), "-b", f"127.0.0.1:{port}", "--chdir", str(ROOT),
         "--log-level", "warning", *extra],
        env=env if env is not None else {**os.environ}, cwd=str(ROOT),
    )
    for _ in range(150):
        try:
            if requests.get(f"http://127.0.0.1:{port}{ready_path}", timeout=1).status_code == 200:
                return proc
        except requests.RequestException:
            pass
        time.sleep(0.2)
    proc.terminate()
    raise SystemExit("gunicorn did not start")
