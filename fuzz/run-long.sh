#!/usr/bin/env bash
# A longer local fuzzing session: every target for SECONDS (default 600)
# each, from the seeds and what earlier runs found (fuzz/corpus-run/).
#   fuzz/run-long.sh            # 10 minutes per target
#   fuzz/run-long.sh 3600 jwt   # one hour of the JWT target
set -euo pipefail
seconds="${1:-600}"
shift || true
FUZZ_SECONDS="$seconds" exec "$(dirname "$0")/../.ci/fuzz.sh" "$@"
