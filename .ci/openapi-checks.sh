#!/usr/bin/env bash
# The OpenAPI and AsyncAPI checks of issue 3, on documents written beforehand:
#
#   cargo run -p ferrapi-service -- openapi > /tmp/openapi.json
#   cargo run -p ferrapi-service -- asyncapi > /tmp/asyncapi.json
#   .ci/openapi-checks.sh /tmp/openapi.json [/tmp/asyncapi.json]
#
# 1. openapi-spec-validator (PyPI) validates the OpenAPI document;
# 2. openapi-typescript (npm) generates TypeScript types from it;
# 3. tsc --noEmit type-checks tests/openapi-client/client.ts, which calls
#    POST /api/v1/users through those types (and expects some misuses to be
#    type errors, so that loose `any` types fail too);
# 4. with a second argument, @asyncapi/parser (npm: the AsyncAPI
#    initiative's schemas and rules) validates the AsyncAPI 3.0 document
#    (tests/openapi-client/asyncapi-validate.mjs).
#
# Builds and starts nothing. Idempotent: installs on first use, into
# .ci/.venv (pinned below) and tests/openapi-client/node_modules (npm ci from
# its package-lock.json), and reinstalls only when the pins change.
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ] || [ ! -f "$1" ] || { [ $# -eq 2 ] && [ ! -f "$2" ]; }; then
    echo "usage: $0 OPENAPI_JSON [ASYNCAPI_JSON]   (existing files)" >&2
    exit 2
fi
root="$(cd "$(dirname "$0")/.." && pwd)"
doc="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
asyncapi_doc=""
if [ $# -eq 2 ]; then
    asyncapi_doc="$(cd "$(dirname "$2")" && pwd)/$(basename "$2")"
fi
validator_version="0.9.0"
venv="$root/.ci/.venv"
client="$root/tests/openapi-client"

step() { echo "== $*"; }

stamp="$venv/.openapi-spec-validator-$validator_version"
if [ ! -f "$stamp" ]; then
    step "installing openapi-spec-validator $validator_version into .ci/.venv"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        "openapi-spec-validator==$validator_version"
    touch "$stamp"
fi

if [ ! -d "$client/node_modules/openapi-typescript" ] \
    || [ ! -d "$client/node_modules/@asyncapi/parser" ] \
    || [ "$client/package-lock.json" -nt "$client/node_modules/.package-lock.json" ]; then
    step "npm ci in tests/openapi-client (openapi-typescript, typescript, @asyncapi/parser)"
    (cd "$client" && npm ci --no-audit --no-fund --loglevel=error)
fi

step "openapi-spec-validator $doc"
"$venv/bin/openapi-spec-validator" "$doc"

step "openapi-typescript → tests/openapi-client/generated/openapi.ts"
mkdir -p "$client/generated"
# --default-non-nullable false: a property with a default (say `"password":
# {"default": null}`) stays optional in request bodies, as the document says.
(cd "$client" && node_modules/.bin/openapi-typescript "$doc" \
    -o generated/openapi.ts --default-non-nullable false)

step "tsc --noEmit (tests/openapi-client/client.ts)"
(cd "$client" && node_modules/.bin/tsc --noEmit -p .)

if [ -n "$asyncapi_doc" ]; then
    step "@asyncapi/parser $asyncapi_doc"
    (cd "$client" && node asyncapi-validate.mjs "$asyncapi_doc")
fi

step "OpenAPI checks passed"
