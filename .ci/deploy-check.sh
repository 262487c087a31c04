#!/usr/bin/env bash
# Static checks of deploy/ (YAML parses, probe and health-check paths are
# service routes, variables are documented, topology as documented). No
# container runtime runs here; the same topology runs for real in
# .ci/multi-instance.sh. Idempotent: PyYAML goes into .ci/.venv-deploy.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$root/target/debug/ferrapi-service"
[ -x "$bin" ] || (cd "$root" && cargo build -p ferrapi-service)
venv="$root/.ci/.venv-deploy"
if [ ! -f "$venv/.pyyaml-6.0.2" ]; then
    echo "== installing PyYAML into .ci/.venv-deploy"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "PyYAML==6.0.2"
    touch "$venv/.pyyaml-6.0.2"
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$bin" --help >"$work/help.txt"
"$venv/bin/python" "$root/tests/deploy/check.py" "$root/service/openapi.json" "$work/help.txt"
