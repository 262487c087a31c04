#!/usr/bin/env bash
# The benchmark harness against peers: bench/run.sh [--quick] [harness options]
#
#   1. installs wrk from Debian if missing (apt-get; idempotent);
#   2. builds the Rust servers in release mode (bench's own workspace);
#   3. creates bench/.venv with FastAPI, uvicorn[standard], pydantic v2,
#      asyncpg and matplotlib if missing (peers/fastapi/requirements.txt);
#   4. creates and seeds the table bench_users in PostgreSQL (database test on
#      127.0.0.1:5432 unless BENCH_DATABASE_URL says otherwise), idempotently;
#      without a reachable PostgreSQL the DB endpoint is skipped;
#   5. runs harness.py: each server pinned to core 1, wrk to core 0, warm-up,
#      then interleaved rounds; prints and writes the tables, the ratios and a
#      chart (bench/results/, or bench/target/bench-quick/ with --quick).
#
# --quick: three rounds of one second per server and endpoint, to prove the
# harness works (CI). Every process started is stopped by PID on exit.
#
# --callgrind: instead of the load runs, count instructions per request
# under callgrind (callgrind.py; noise-free, a few minutes), with the
# `profiling` build; results in bench/target/callgrind/.
#
# --service: the reference service under load (service.py): its own
# endpoints with its default stack, idle RSS and peak RSS at 64 and 256
# connections. Uses BENCH_SERVICE_BIN, default target/release/ferrapi-service
# at the repository root, built there (--locked) if missing.
# Options after --quick go to harness.py (see `bench/.venv/bin/python
# bench/harness.py --help`), e.g. --rounds 7 --duration 15 --servers ferrapi,axum
set -euo pipefail
cd "$(dirname "$0")"

HARNESS_PID=""
cleanup() {
    if [[ -n "$HARNESS_PID" ]] && kill -0 "$HARNESS_PID" 2>/dev/null; then
        kill -TERM "$HARNESS_PID" 2>/dev/null || true
        # The harness stops its servers on SIGTERM; give it a bounded time.
        for _ in $(seq 1 100); do
            kill -0 "$HARNESS_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$HARNESS_PID" 2>/dev/null || true
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step() { echo "== $*"; }

# 1. Tools.
if ! command -v wrk >/dev/null; then
    step "installing wrk (Debian package)"
    if [[ $(id -u) -eq 0 ]]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get install -y wrk >/dev/null 2>&1 || {
        $SUDO apt-get update >/dev/null && $SUDO apt-get install -y wrk >/dev/null
    }
fi
command -v taskset >/dev/null || { echo "taskset (util-linux) is missing" >&2; exit 2; }

# 2. The Rust servers, one build.
# (BENCH_FERRAPI_REV=<git rev> builds against the framework as committed at
# that revision: see build.sh.)
MODE=load
if [[ "${1:-}" == "--service" ]]; then
    MODE=service
    shift
    SERVICE_BIN="${BENCH_SERVICE_BIN:-$(cd .. && pwd)/target/release/ferrapi-service}"
    if [[ ! -x "$SERVICE_BIN" ]]; then
        step "cargo build --release -p ferrapi-service (main workspace)"
        (cd .. && cargo build --release --locked -p ferrapi-service)
    fi
elif [[ "${1:-}" == "--callgrind" ]]; then
    MODE=callgrind
    shift
    command -v valgrind >/dev/null || { echo "valgrind is missing (apt-get install valgrind)" >&2; exit 2; }
    BIN_DIR=$(./build.sh profiling | tail -1)
else
    BIN_DIR=$(./build.sh release | tail -1)
fi
if [[ -n "${BENCH_FERRAPI_REV:-}" ]]; then
    BENCH_FERRAPI_DESC="$(git rev-parse --short "$BENCH_FERRAPI_REV") (committed)"
else
    BENCH_FERRAPI_DESC="$(git rev-parse --short HEAD)$(git status --porcelain -- ../crates | grep -q . && echo ' + uncommitted changes to crates/' || true)"
fi
export BENCH_FERRAPI_DESC

# 3. The Python peer.
PY=".venv/bin/python"
if ! [[ -x "$PY" ]] || ! "$PY" -c "import fastapi, uvicorn, uvloop, httptools, pydantic, email_validator, asyncpg, matplotlib" 2>/dev/null; then
    step "creating bench/.venv (FastAPI peer)"
    python3 -m venv .venv
    "$PY" -m pip install --quiet --disable-pip-version-check -r peers/fastapi/requirements.txt
fi

# 4. The database table.
DB_URL="${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}"
DB_ARGS=()
if command -v psql >/dev/null && psql "$DB_URL" -qtAc "SELECT 1" >/dev/null 2>&1; then
    step "seeding bench_users"
    psql "$DB_URL" -q -v ON_ERROR_STOP=1 <<'SQL'
CREATE TABLE IF NOT EXISTS bench_users (
    id BIGINT PRIMARY KEY,
    name TEXT NOT NULL,
    email TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
INSERT INTO bench_users (id, name, email, created_at)
SELECT g, 'User ' || g, 'user' || g || '@example.com',
       TIMESTAMPTZ '2024-01-01 00:00:00+00' + g * INTERVAL '1 minute'
FROM generate_series(1, 10000) AS g
ON CONFLICT (id) DO NOTHING;
ANALYZE bench_users;
SQL
    DB_ARGS=(--database-url "$DB_URL")
else
    echo "PostgreSQL not reachable at $DB_URL: the DB endpoint is skipped" >&2
fi

# 5. The measurements.
if [[ "$MODE" == service ]]; then
    step "reference service under load"
    "$PY" service.py --bin "$SERVICE_BIN" "$@" &
elif [[ "$MODE" == callgrind ]]; then
    step "callgrind: instructions per request"
    "$PY" callgrind.py --bin-dir "$BIN_DIR" "${DB_ARGS[@]}" "$@" &
else
    step "harness"
    "$PY" harness.py --bin-dir "$BIN_DIR" "${DB_ARGS[@]}" "$@" &
fi
HARNESS_PID=$!
set +e
wait "$HARNESS_PID"
status=$?
set -e
HARNESS_PID=""
exit "$status"
