#!/usr/bin/env bash
# System-level reliability checks of the reference service (issue 11):
# tests/reliability/check.py drives the real service binary on 127.0.0.1
# and prints one FIGURE line per check (docs/reliability.md quotes them).
#
#   .ci/reliability.sh                 # CI: bounded, about 3 minutes
#   .ci/reliability.sh --long          # local: 10-minute soak, longer outages
#   .ci/reliability.sh --release       # against target/release (built if needed)
#   .ci/reliability.sh --only soak,idle   # some of: shutdown writes faults
#                                         # soak timeouts idle security
#   RELIABILITY_KEEP=1 .ci/reliability.sh # keep the scratch folder (logs)
#
# Checks: graceful shutdown under load (SIGTERM), fault injection (private
# PostgreSQL, Redis and NATS servers stopped and restarted under load),
# soak (RSS and descriptors sampled), 10,000 idle keep-alive connections,
# slow clients (slowloris, slow and stalled bodies), security cases over
# HTTP (injection, traversal, malformed heads, credentials, forged tokens,
# CORS, gzip bomb, passwords in responses and logs, a login flood).
#
# The fault-injection check runs its own PostgreSQL (initdb in the scratch
# folder, as the postgres user), redis-server and nats-server on free ports,
# from the machine's binaries and with the machine's flags: stopping the
# shared servers would break whatever else runs against them, and Redis
# keeps nothing on disk. The shared servers are never touched.
#
# Needs python3 (standard library only), redis-server, nats-server and the
# PostgreSQL server binaries; raises the open-file limit to its hard limit
# (10,000 idle connections). Everything started is stopped by PID (the
# private PostgreSQL by pg_ctl); the scratch folder is removed.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

profile=debug
args=()
long=0
for arg in "$@"; do
    case "$arg" in
        --release) profile=release ;;
        --long) long=1; args+=("$arg") ;;
        *) args+=("$arg") ;;
    esac
done

step() { echo "== $*"; }

for tool in redis-server nats-server; do
    command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || [ -x "/usr/bin/$tool" ] \
        || { echo "reliability: $tool not found" >&2; exit 1; }
done
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
    || { echo "reliability: no PostgreSQL server binaries under /usr/lib/postgresql" >&2; exit 1; }

step "cargo build -p ferrapi-service ($profile)"
if [ "$profile" = release ]; then
    cargo build --quiet --release -p ferrapi-service
else
    cargo build --quiet -p ferrapi-service
fi
bin="${CARGO_TARGET_DIR:-$root/target}/$profile/ferrapi-service"

# 10,000 idle connections: the checker and the service (which inherits the
# limit) each need that many descriptors.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 10500 ]; then
    echo "reliability: the open-file limit is $(ulimit -n) (hard $(ulimit -Hn)); 10,500 are needed" >&2
    exit 1
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/ferrapi-reliability.XXXXXX")"
chmod 755 "$work"   # the private PostgreSQL runs as the postgres user
checker=""
cleanup() {
    if [ -n "$checker" ] && kill -0 "$checker" 2>/dev/null; then
        kill -TERM "$checker" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$checker" 2>/dev/null || break; sleep 0.2; done
    fi
    # Processes the checker started and could not stop (it was killed):
    # by PID, and only while that PID is still one of ours (its command
    # line or environment names the scratch folder).
    ours() { grep -qsa -- "$work" "/proc/$1/cmdline" "/proc/$1/environ"; }
    if [ -f "$work/pids" ]; then
        while read -r pid; do
            ours "$pid" && kill -TERM "$pid" 2>/dev/null || true
        done <"$work/pids"
        sleep 1
        while read -r pid; do
            ours "$pid" && kill -KILL "$pid" 2>/dev/null || true
        done <"$work/pids"
    fi
    # A private PostgreSQL left by a checker that could not stop it.
    for data in "$work"/*-pg/data; do
        [ -f "$data/postmaster.pid" ] || continue
        pg_ctl="$(ls /usr/lib/postgresql/*/bin/pg_ctl | tail -1)"
        if [ "$(id -u)" = 0 ]; then
            runuser -u postgres -- "$pg_ctl" -D "$data" -m immediate stop >/dev/null 2>&1 || true
        else
            "$pg_ctl" -D "$data" -m immediate stop >/dev/null 2>&1 || true
        fi
    done
    if [ "${RELIABILITY_KEEP:-0}" = 1 ]; then
        echo "reliability: scratch folder kept: $work"
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# CI: the checks take about 3 minutes; a hung check is stopped at 6.
if [ "$long" = 1 ]; then limit=1800; else limit=360; fi
step "tests/reliability/check.py against $bin (at most ${limit} s)"
started=$(date +%s)
set +e
timeout --signal=TERM --kill-after=30 "$limit" \
    python3 -u "$root/tests/reliability/check.py" --bin "$bin" --work "$work" "${args[@]}" &
checker=$!
wait "$checker"
status=$?
set -e
checker=""
echo "== reliability checks: exit $status after $(( $(date +%s) - started )) s"
if [ "$status" -ne 0 ]; then
    for log in "$work"/*.log; do
        [ -f "$log" ] || continue
        echo "--- last warnings and errors of $(basename "$log")"
        grep -v '"level":"INFO"' "$log" | tail -n 8 | cut -c1-300
    done
fi
exit "$status"
