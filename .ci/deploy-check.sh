#!/usr/bin/env bash
# Static checks of deploy/ (YAML parses, probe and health-check paths are
# service routes, variables are documented, topology as documented). No
# container runtime runs here; the same topology runs for real in
# .ci/multi-instance.sh. Idempotent: PyYAML goes into .ci/.venv-deploy.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$root/target/debug/ferrapi-service"
[ -x "$bin" ] || (cd "$root" && cargo build -p ferrapi-service)
source "$root/.ci/lib.sh"
venv="$(pip_venv deploy PyYAML==6.0.2)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$bin" --help >"$work/help.txt"
"$venv/bin/python" "$root/tests/deploy/check.py" "$root/service/openapi.json" "$work/help.txt"
