#!/usr/bin/env bash
# Starts the reference service (the debug binary `cargo test` built) on a
# free 127.0.0.1 port with a throw-away SQLite file, runs the headless
# Chromium checks of /docs and /redoc against it, and stops it by PID.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$root/target/debug/ferrapi-service"
[ -x "$bin" ] || (cd "$root" && cargo build -p ferrapi-service)
work="$(mktemp -d)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
HOST=127.0.0.1 PORT="$port" LOG_FORMAT=json DATABASE_URL="sqlite://$work/app.db" \
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
curl -fsS "http://127.0.0.1:$port/health/live" >/dev/null || { cat "$work/service.log"; exit 1; }
bash "$root/tests/browser/run.sh" "http://127.0.0.1:$port"
