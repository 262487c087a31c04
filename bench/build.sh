#!/usr/bin/env bash
# Builds the Rust servers of the harness: bench/build.sh [cargo profile]
# (default release; `profiling` keeps line tables for perf and callgrind).
# Prints, as its last line, the directory holding the binaries.
#
# Not --locked: the framework's own dependencies (a path dependency) may have
# grown since bench/Cargo.lock was written; cargo adds them and keeps every
# version already locked.
#
# BENCH_FERRAPI_REV=<git rev>: build against the framework as committed at
# that revision instead of the working tree (whose crates may be mid-edit):
# the root manifest, lock file and crates/ are exported with `git archive`
# under target/rev-<rev>/, beside a copy of this workspace's Rust sources,
# and built there (target dir target/rev-target).
set -euo pipefail
cd "$(dirname "$0")"
profile="${1:-release}"
if [[ -n "${BENCH_FERRAPI_REV:-}" ]]; then
    rev=$(git rev-parse --short "$BENCH_FERRAPI_REV")
    snap="$PWD/target/rev-$rev"
    target="$PWD/target/rev-target"
    echo "== exporting the framework at $rev to $snap" >&2
    rm -rf "$snap"
    mkdir -p "$snap/bench/peers"
    git -C .. archive "$rev" Cargo.toml Cargo.lock crates | tar -x -C "$snap"
    cp -r Cargo.toml Cargo.lock ferrapi-bench micro "$snap/bench/"
    cp -r peers/axum peers/hyper "$snap/bench/peers/"
    echo "== cargo build --profile $profile (bench workspace, framework at $rev)" >&2
    (cd "$snap/bench" && CARGO_TARGET_DIR="$target" cargo build --profile "$profile" --workspace --bins >&2)
else
    target="$PWD/target"
    echo "== cargo build --profile $profile (bench workspace)" >&2
    cargo build --profile "$profile" --workspace --bins >&2
fi
echo "$target/$profile"
