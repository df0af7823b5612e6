#!/usr/bin/env bash
# Shared set-up for scripts/run and scripts/test: system packages, virtualenv, Python dependencies.
# Usage: source scripts/bootstrap.sh [test]   (with "test": test extras and Debian's chromium too)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
WANT_TEST="${1:-}"

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

# --- system packages (Debian/Ubuntu), installed only when missing -------------------------------
need_pkgs=()
command -v xmlsec1 >/dev/null 2>&1 || need_pkgs+=(xmlsec1)
[ -e /usr/include/xmlsec1/xmlsec/xmlsec.h ] || need_pkgs+=(libxmlsec1-dev pkg-config)
if [ "$WANT_TEST" = "test" ]; then
  command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || need_pkgs+=(chromium)
  command -v redis-server >/dev/null 2>&1 || need_pkgs+=(redis-server)
  # The multi-node cluster (scripts/cluster, tests/cluster): load balancer and connection pooler.
  command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || need_pkgs+=(haproxy)
  command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ] || need_pkgs+=(pgbouncer)
  # npm installs axe-core, which tests/browser/test_accessibility.py injects into each page.
  command -v npm >/dev/null 2>&1 || need_pkgs+=(nodejs npm)
fi
if [ ${#need_pkgs[@]} -gt 0 ]; then
  say "Installing system packages: ${need_pkgs[*]}"
  SUDO=""
  if [ "$(id -u)" != "0" ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
      echo "Missing system packages: ${need_pkgs[*]}. Install them (apt-get install ${need_pkgs[*]}) and re-run." >&2
      exit 1
    fi
  fi
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${need_pkgs[@]}"
fi

# --- virtualenv and Python dependencies -----------------------------------------------------------
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  for candidate in python3.11 python3.12 python3.13 python3; do
    if command -v "$candidate" >/dev/null 2>&1; then PY="$candidate"; break; fi
  done
fi
if [ ! -x .venv/bin/python ]; then
  say "Creating virtualenv .venv with $($PY --version)"
  "$PY" -m venv .venv
fi
extras=""
[ "$WANT_TEST" = "test" ] && extras="[test]"
stamp=".venv/.installed${extras}"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  say "Installing Python dependencies (pip install -e .${extras})"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".${extras}"
  touch "$stamp"
fi
export PATH="$ROOT/.venv/bin:$PATH"

# --- axe-core for the accessibility tests (pinned in package-lock.json, installed into node_modules/) -----
if [ "$WANT_TEST" = "test" ] && { [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; }; then
  say "Installing axe-core (npm ci from package-lock.json)"
  npm ci --no-audit --no-fund --ignore-scripts
fi
