#!/usr/bin/env bash
# /metrics parsed with the official Prometheus client parser, and the JSON
# log checked, against the reference service (the debug binary) on a free
# 127.0.0.1 port with a throw-away SQLite file (issue 7). Idempotent:
# prometheus-client is installed once into .ci/.venv-metrics.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$root/target/debug/ferrapi-service"
[ -x "$bin" ] || (cd "$root" && cargo build -p ferrapi-service)
source "$root/.ci/lib.sh"
venv="$(pip_venv metrics prometheus-client==0.26.0)"
work="$(mktemp -d)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
password="metrics-admin-password"
HOST=127.0.0.1 PORT="$port" LOG_FORMAT=json DATABASE_URL="sqlite://$work/app.db" \
    STORAGE_URL=memory:// ADMIN_PASSWORD="$password" RATE_LIMIT=1000/1s \
    "$bin" >"$work/service.log" 2>&1 &
pid=$!
cleanup() {
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$port/health/live" >/dev/null 2>&1 && break
    sleep 0.1
done
"$venv/bin/python" "$root/tests/metrics/check.py" "http://127.0.0.1:$port" "$work/service.log" "$password"
