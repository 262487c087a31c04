#!/usr/bin/env bash
# Headless Chromium checks of a live service's docs pages.
#
#   tests/browser/run.sh [BASE_URL]        (default http://127.0.0.1:8000)
#
# Idempotent: installs Debian's chromium (apt-get) when /usr/bin/chromium is
# missing, and playwright-core from package-lock.json (npm ci) when
# node_modules is missing or older than the lock file; then runs docs.mjs.
# Starts no server: point it at one. Screenshots go to tests/browser/artifacts/.
set -euo pipefail
cd "$(dirname "$0")"

base_url="${1:-${BASE_URL:-http://127.0.0.1:8000}}"
chromium="${CHROMIUM:-/usr/bin/chromium}"

if [ ! -x "$chromium" ]; then
    echo "== installing Debian's chromium"
    if [ "$(id -u)" -ne 0 ]; then sudo=sudo; else sudo=; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
fi

if [ ! -d node_modules/playwright-core ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    echo "== npm ci (playwright-core; it downloads no browser)"
    npm ci --no-audit --no-fund --loglevel=error
fi

mkdir -p artifacts
CHROMIUM="$chromium" node docs.mjs "$base_url"
