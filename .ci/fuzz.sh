#!/usr/bin/env bash
# libFuzzer targets of fuzz/ (issue 11), each run for a bounded time.
#
#   .ci/fuzz.sh                    # CI: 12 s per target (7 targets, ~1.5 min
#                                  # of fuzzing after the build)
#   FUZZ_SECONDS=600 .ci/fuzz.sh   # longer local run (fuzz/run-long.sh)
#   .ci/fuzz.sh jwt traceparent    # only these targets
#
# Toolchain: cargo fuzz passes `-Z` flags to rustc, which a stable rustc
# accepts only with RUSTC_BOOTSTRAP=1; the machine's one toolchain is
# stable, so the script sets it (harmless on nightly). Targets are built
# with `--sanitizer none` (the code under test is `forbid(unsafe_code)`
# Rust; libFuzzer still catches panics, aborts, stack overflows, timeouts
# and memory blow-ups) and with debug assertions (`-a`: integer overflow
# panics). Installs cargo-fuzz from crates.io once (pinned below).
#
# Corpora: fuzz/corpus/<target> is the committed seed corpus (read only
# here); what a run discovers goes to fuzz/corpus-run/<target> (ignored by
# git), so reruns start from it. A crash leaves its input in
# fuzz/artifacts/<target>/ and the script exits 1 after the other targets
# ran; replay it with
#   RUSTC_BOOTSTRAP=1 cargo fuzz run -s none -a -O <target> <artifact>
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cargo_fuzz_version="0.13.2"
seconds="${FUZZ_SECONDS:-12}"
all_targets=(json_body params multipart request_id forwarded_for traceparent jwt)
if [ $# -gt 0 ]; then
    targets=("$@")
else
    targets=("${all_targets[@]}")
fi

step() { echo "== $*"; }

if ! cargo fuzz --version 2>/dev/null | grep -q "$cargo_fuzz_version"; then
    step "installing cargo-fuzz $cargo_fuzz_version"
    cargo install --quiet --locked cargo-fuzz --version "$cargo_fuzz_version"
fi

export RUSTC_BOOTSTRAP=1
cd "$root/fuzz"
flags=(--sanitizer none --debug-assertions --release)

start=$(date +%s)
step "cargo fuzz build (${#targets[@]} targets)"
for t in "${targets[@]}"; do
    cargo fuzz build "${flags[@]}" "$t"
done
step "built in $(( $(date +%s) - start ))s"

failed=()
summary=()
for t in "${targets[@]}"; do
    mkdir -p "corpus-run/$t"
    log="$(mktemp "${TMPDIR:-/tmp}/ferrapi-fuzz-$t.XXXXXX")"
    step "fuzz $t for ${seconds}s"
    status=0
    cargo fuzz run "${flags[@]}" "$t" "corpus-run/$t" "corpus/$t" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 >"$log" 2>&1 || status=$?
    runs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)"
    cov="$(grep -E '^#[0-9]+' "$log" | tail -n 1 | grep -o 'cov: [0-9]*' || true)"
    if [ "$status" -ne 0 ]; then
        failed+=("$t")
        summary+=("$t: CRASH after ${runs:-?} runs")
        grep -E "panicked|ERROR|Test unit written|^Failing input" -A2 "$log" | head -n 30 || true
    else
        summary+=("$t: ${runs:-?} runs, ${cov:-cov: ?}, 0 crashes")
    fi
    rm -f "$log"
done

step "fuzz summary (${seconds}s per target, $(( $(date +%s) - start ))s in all)"
printf '  %s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
    echo "crashes in: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
