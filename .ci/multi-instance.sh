#!/usr/bin/env bash
# The multi-instance test (issue 9): two instances of the reference service
# on different ports sharing real PostgreSQL (a fresh database), Redis and
# NATS, behind a real nginx on 127.0.0.1 (Debian package, installed if
# missing). tests/multi/check.py then shows that the instances behave as one
# and that killing one with SIGKILL under light load loses no acknowledged
# write. Everything started here is stopped by PID. Idempotent.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$root/target/debug/ferrapi-service"
[ -x "$bin" ] || (cd "$root" && cargo build -p ferrapi-service)
: "${TEST_POSTGRES_URL:=postgres://postgres@127.0.0.1:5432/test}"
: "${TEST_REDIS_URL:=redis://127.0.0.1:6379}"
: "${TEST_NATS_URL:=nats://127.0.0.1:4222}"

if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then
    echo "== installing Debian's nginx"
    # Do not let the package start its own server on port 80.
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx-light >/dev/null 2>&1 \
        || DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx >/dev/null
    rm -f /usr/sbin/policy-rc.d
fi
nginx_bin="$(command -v nginx || echo /usr/sbin/nginx)"

source "$root/.ci/lib.sh"
venv="$(pip_venv multi websockets==13.1)"

work="$(mktemp -d)"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port_a="$(free_port)"; port_b="$(free_port)"; port_lb="$(free_port)"
db="ferrapi_multi_$$_$(date +%s)"
psql "$TEST_POSTGRES_URL" -qc "CREATE DATABASE $db" >/dev/null
database_url="${TEST_POSTGRES_URL%/*}/$db"
redis_db=11
redis-cli -u "$TEST_REDIS_URL/$redis_db" FLUSHDB >/dev/null

pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    psql "$TEST_POSTGRES_URL" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

start_instance() { # name port
    HOST=127.0.0.1 PORT="$2" LOG_FORMAT=json DATABASE_URL="$database_url" \
        REDIS_URL="$TEST_REDIS_URL/$redis_db" NATS_URL="$TEST_NATS_URL" \
        JWT_SECRET="multi-instance-shared-secret" ADMIN_PASSWORD="multi-admin-password" \
        FORWARDED_ALLOW_IPS=127.0.0.1 RATE_LIMIT=200/1m STORAGE_URL="file://$work/uploads" \
        NOTIFICATION_DELAY_MS="${3:-0}" \
        "$bin" >"$work/$1.log" 2>&1 &
    pids+=($!)
    echo $! >"$work/$1.pid"
}
start_instance a "$port_a" 2500
start_instance b "$port_b" 0

mkdir -p "$work/nginx/logs"
cat >"$work/nginx/nginx.conf" <<CONF
worker_processes 1;
pid $work/nginx/nginx.pid;
error_log $work/nginx/logs/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $work/nginx/body;
    proxy_temp_path $work/nginx/proxy;
    fastcgi_temp_path $work/nginx/fastcgi;
    uwsgi_temp_path $work/nginx/uwsgi;
    scgi_temp_path $work/nginx/scgi;
    upstream ferrapi {
        server 127.0.0.1:$port_a max_fails=1 fail_timeout=10s;
        server 127.0.0.1:$port_b max_fails=1 fail_timeout=10s;
        keepalive 16;
    }
    map \$http_upgrade \$connection_upgrade { default upgrade; '' ''; }
    gzip off;
    client_max_body_size 6m;
    server {
        listen 127.0.0.1:$port_lb;
        location / {
            proxy_pass http://ferrapi;
            proxy_http_version 1.1;
            proxy_set_header Host \$host;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto \$scheme;
            proxy_set_header Connection "";
            proxy_next_upstream error timeout http_502 http_503;
            proxy_connect_timeout 2s;
        }
        location /ws/ {
            proxy_pass http://ferrapi;
            proxy_http_version 1.1;
            proxy_set_header Upgrade \$http_upgrade;
            proxy_set_header Connection \$connection_upgrade;
            proxy_read_timeout 3600s;
        }
    }
}
CONF
"$nginx_bin" -p "$work/nginx" -c "$work/nginx/nginx.conf" -g 'daemon off;' &
pids+=($!)

for port in "$port_a" "$port_b" "$port_lb"; do
    for _ in $(seq 1 150); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/health/startup")" = 200 ] && break
        sleep 0.2
    done
done

"$venv/bin/python" "$root/tests/multi/check.py" \
    --a "127.0.0.1:$port_a" --b "127.0.0.1:$port_b" --lb "127.0.0.1:$port_lb" \
    --a-pid "$(cat "$work/a.pid")" --password multi-admin-password \
    || { echo "--- a.log"; tail -20 "$work/a.log"; echo "--- b.log"; tail -20 "$work/b.log"; exit 1; }
