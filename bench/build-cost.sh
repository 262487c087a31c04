#!/usr/bin/env bash
# Build-cost figures: bench/build-cost.sh
#
#   - the hello-world ferrapi app with default features (bench/hello): crates
#     in `cargo tree` (normal + build edges, each name/version once, the app
#     itself excluded), clean release build time, binary size;
#   - the reference service: clean release build time and binary size.
#
# Clean builds go to their own target directories under target/build-cost/
# (deleted first), so they share nothing with other builds. The tree is the
# working tree, or, with BENCH_FERRAPI_REV=<git rev>, the repository as
# committed at that revision (exported with `git archive`). Timings on a
# shared machine vary with its load: the load average is printed beside them.
# Writes target/build-cost/build-cost.md. `build-cost.sh hello` or
# `build-cost.sh service` measures one of the two (the other row is kept from
# the last run).
set -euo pipefail
cd "$(dirname "$0")"
BENCH="$PWD"
out="$BENCH/target/build-cost"
mkdir -p "$out"

if [[ -n "${BENCH_FERRAPI_REV:-}" ]]; then
    rev=$(git rev-parse --short "$BENCH_FERRAPI_REV")
    root="$out/tree-$rev"
    rm -rf "$root"
    mkdir -p "$root"
    git -C .. archive "$rev" | tar -x -C "$root"
    mkdir -p "$root/bench"
    rm -rf "$root/bench/hello"
    cp -r hello "$root/bench/hello"
    desc="$rev"
    locked=()
else
    root="$(cd .. && pwd)"
    desc="$(git rev-parse --short HEAD)$(git status --porcelain -- ../crates ../service | grep -q . && echo ' + uncommitted changes' || true)"
    # Never rewrite the main workspace's lock file from here.
    locked=(--locked)
fi
parts="${1:-hello service}"

# The hello app's lock file starts from the main workspace's, so that it
# resolves to the same versions.
[[ -f "$root/bench/hello/Cargo.lock" ]] || cp "$root/Cargo.lock" "$root/bench/hello/Cargo.lock"

secs() { date +%s.%N; }
size_mib() { awk -v b="$(stat -c %s "$1")" 'BEGIN { printf "%.1f", b / 1048576 }'; }

if [[ "$parts" == *hello* ]]; then
echo "== hello world: cargo tree"
tree=$(cd "$root/bench/hello" && cargo tree -e normal,build --prefix none 2>/dev/null | sed 's/ (\*)$//; s/ (proc-macro)$//' | awk '{print $1, $2}' | sort -u)
crates=$(( $(echo "$tree" | wc -l) - 1 ))
normal=$(( $(cd "$root/bench/hello" && cargo tree -e normal --prefix none 2>/dev/null | sed 's/ (\*)$//; s/ (proc-macro)$//' | awk '{print $1, $2}' | sort -u | wc -l) - 1 ))
echo "$crates crates (normal + build), $normal (normal only)"

echo "== hello world: clean release build"
rm -rf "$out/hello-target"
load1=$(cut -d' ' -f1 /proc/loadavg)
t0=$(secs)
(cd "$root/bench/hello" && CARGO_TARGET_DIR="$out/hello-target" cargo build --release --quiet)
hello_secs=$(awk -v a="$t0" -v b="$(secs)" 'BEGIN { printf "%.0f", b - a }')
hello_size=$(size_mib "$out/hello-target/release/ferrapi-hello")
echo "${hello_secs}s, binary ${hello_size} MiB (load average at start $load1)"

echo "| hello world, default features ($desc) | $crates ($normal normal only) | ${hello_secs} s | ${hello_size} MiB | $load1 |" > "$out/row-hello.md"
echo "$tree" > "$out/hello-crates.txt"
fi

if [[ "$parts" == *service* ]]; then
echo "== reference service: clean release build"
rm -rf "$out/service-target"
load2=$(cut -d' ' -f1 /proc/loadavg)
t0=$(secs)
(cd "$root" && CARGO_TARGET_DIR="$out/service-target" cargo build --release "${locked[@]}" --quiet -p ferrapi-service)
svc_secs=$(awk -v a="$t0" -v b="$(secs)" 'BEGIN { printf "%.0f", b - a }')
svc_size=$(size_mib "$out/service-target/release/ferrapi-service")
svc_crates=$(( $(cd "$root" && cargo tree "${locked[@]}" -p ferrapi-service -e normal,build --prefix none 2>/dev/null | sed 's/ (\*)$//; s/ (proc-macro)$//' | awk '{print $1, $2}' | sort -u | wc -l) - 1 ))
echo "${svc_secs}s, binary ${svc_size} MiB, $svc_crates crates (load average at start $load2)"
echo "| reference service ($desc) | $svc_crates | ${svc_secs} s | ${svc_size} MiB | $load2 |" > "$out/row-service.md"
fi

{
    echo "| what | crates in cargo tree (normal + build) | clean release build | binary | load average at start |"
    echo "|---|---:|---:|---:|---:|"
    cat "$out"/row-hello.md "$out"/row-service.md 2>/dev/null || true
} > "$out/build-cost.md"
cat "$out/build-cost.md"
echo "written: $out/build-cost.md, $out/hello-crates.txt"
