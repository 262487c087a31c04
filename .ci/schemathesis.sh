#!/usr/bin/env bash
# Schema-driven API fuzzing of the reference service (issue 11):
# schemathesis (PyPI) generates requests from the service's own
# /openapi.json and checks every response against it.
#
#   .ci/schemathesis.sh            # bounded run (CI): ~2-3 minutes on 2 cores
#   MAX_EXAMPLES=200 MAX_TIME=1800 .ci/schemathesis.sh   # longer local run
#
# Steps: install schemathesis into .ci/.venv-schemathesis (pinned, once);
# `cargo build -p ferrapi-service`; start target/debug/ferrapi-service on
# 127.0.0.1 with a fresh SQLite file, a known ADMIN_PASSWORD and JWT_SECRET
# and a rate limit high enough never to answer 429; log in as the admin
# (POST /api/v1/auth/token) and run schemathesis with that bearer token;
# stop the service by its PID. Exit status: schemathesis's (0 = no failure).
#
# Checks: every schemathesis check except those listed in EXCLUDED below,
# each with its reason. Among them: not_a_server_error (no 5xx),
# status_code_conformance (only documented statuses),
# content_type_conformance, response_headers_conformance and
# response_schema_conformance (bodies match the documented schemas),
# negative_data_rejection (invalid input is refused with 4xx),
# positive_data_acceptance, unsupported_method (405 with Allow),
# ignored_auth (protected routes refuse without the token).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
schemathesis_version="4.32.5"
venv="$root/.ci/.venv-schemathesis"
max_examples="${MAX_EXAMPLES:-25}"
max_time="${MAX_TIME:-150}"
port="${SCHEMATHESIS_PORT:-18731}"
base="http://127.0.0.1:$port"

step() { echo "== $*"; }

stamp="$venv/.schemathesis-$schemathesis_version"
if [ ! -f "$stamp" ]; then
    step "installing schemathesis $schemathesis_version into .ci/.venv-schemathesis"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        "schemathesis==$schemathesis_version"
    touch "$stamp"
fi

step "cargo build -p ferrapi-service"
cargo build --quiet -p ferrapi-service
target_dir="${CARGO_TARGET_DIR:-$root/target}"
bin="$target_dir/debug/ferrapi-service"

work="$(mktemp -d "${TMPDIR:-/tmp}/ferrapi-schemathesis.XXXXXX")"
pid=""
cleanup() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

admin_email="admin@example.com"
admin_password="schemathesis-admin-password"
step "starting $bin on 127.0.0.1:$port (log: $work/service.log)"
HOST=127.0.0.1 PORT="$port" \
    DATABASE_URL="sqlite://$work/app.db" \
    STORAGE_URL="file://$work/uploads" \
    ADMIN_EMAIL="$admin_email" ADMIN_PASSWORD="$admin_password" \
    JWT_SECRET="schemathesis-jwt-secret-0123456789abcdef" \
    INTERNAL_TOKEN="schemathesis-internal-token" \
    RATE_LIMIT="1000000/1s" LOG_FORMAT=json WORKERS=2 \
    NOTIFICATION_DELAY_MS=0 \
    "$bin" serve >"$work/service.log" 2>&1 &
pid=$!

ready=""
for _ in $(seq 1 300); do
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "the service exited during startup:" >&2
        cat "$work/service.log" >&2
        exit 1
    fi
    if curl -fsS -o /dev/null "$base/health/startup" 2>/dev/null; then
        ready=1
        break
    fi
    sleep 0.1
done
if [ -z "$ready" ]; then
    echo "the service did not start within 30 s:" >&2
    tail -n 50 "$work/service.log" >&2
    exit 1
fi

step "POST /api/v1/auth/token as $admin_email"
token="$(curl -fsS -X POST "$base/api/v1/auth/token" \
    --data-urlencode "username=$admin_email" \
    --data-urlencode "password=$admin_password" \
    | "$venv/bin/python" -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')"

# Checks left out, each a false positive for this service:
# - use_after_free, ensure_resource_availability (stateful checks): they
#   need the admin token to stay valid while schemathesis deletes random
#   users; it may delete the admin itself (DELETE /api/v1/users/1), after
#   which every later call rightly answers 401 and these checks report the
#   deletion as the API "losing" resources it never created.
#
# Operations left out:
# - DELETE /api/v1/users/{user_id}: with the admin's token it can delete the
#   admin account (id 1), which ends the run's authentication and turns
#   every later request into a 401. Its validation (422 on a non-integer id,
#   404 for a missing user, 403 for non-admins) is covered by the service's
#   e2e tests; the path parameter shares its parser with the other
#   /users/{user_id} operations fuzzed here.
# - PATCH /api/v1/users/{user_id} is kept, but it may change the admin's
#   password or email; the token stays valid (it names the user id), so the
#   run continues.
# - positive_data_acceptance: it expects 2xx for every schema-valid input,
#   but the contract asks for checks JSON Schema cannot state: an e-mail on a
#   special-use domain (`x@z.test`) is refused as email-validator (pydantic)
#   refuses it; an opaque v2 `cursor` that is not one the service issued is
#   a 422; an avatar part without a declared image/png or image/jpeg type is
#   a 415. Each is a documented 4xx, so the check's failures are not bugs.
excluded_checks="use_after_free,ensure_resource_availability,positive_data_acceptance"

step "schemathesis run $base/openapi.json (max $max_examples examples per operation, $max_time s)"
status=0
# From the scratch folder: schemathesis keeps a .schemathesis/ cache in its
# working directory.
(cd "$work" && "$venv/bin/schemathesis" run "$base/openapi.json" \
    --url "$base" \
    --header "Authorization: Bearer $token" \
    --header "X-Internal-Token: schemathesis-internal-token" \
    --checks all \
    --exclude-checks "$excluded_checks" \
    --exclude-method DELETE \
    --max-examples "$max_examples" \
    --max-time "$max_time" \
    --request-timeout 10 \
    --workers 2 \
    --seed "${SCHEMATHESIS_SEED:-1}" \
    --suppress-health-check all \
    --report junit --report-dir "$work/report") \
    || status=$?

if grep -q '"level":"ERROR"' "$work/service.log"; then
    step "ERROR lines in the service log:"
    grep '"level":"ERROR"' "$work/service.log" | head -n 20
fi

if [ "$status" -eq 0 ]; then
    step "schemathesis: no failures"
else
    step "schemathesis found failures (exit $status)"
fi
exit "$status"
