#!/usr/bin/env bash
# Checks the local services the integration tests talk to (PostgreSQL,
# MariaDB, Redis, NATS with JetStream) and starts any that is down, with the
# machine's own start commands. Idempotent. Exports nothing: .ci/run sets the
# TEST_*_URL variables.
set -uo pipefail

up() { # host port
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

wait_up() { # name port
    for _ in $(seq 1 60); do
        up 127.0.0.1 "$2" && { echo "$1: up"; return 0; }
        sleep 1
    done
    echo "$1: still down on 127.0.0.1:$2 after 60 s" >&2
    return 1
}

ensure() { # name port start-command...
    local name=$1 port=$2
    shift 2
    if up 127.0.0.1 "$port"; then
        echo "$name: up"
        return 0
    fi
    echo "$name: down, starting it"
    "$@" || echo "$name: start command failed ($*)" >&2
    wait_up "$name" "$port"
}

status=0
ensure postgresql 5432 bash -c 'pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start' || status=1
ensure redis 6379 redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log || status=1
ensure nats 4222 start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log || status=1
ensure mariadb 3306 start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd || status=1

# The databases the tests use exist.
if command -v psql >/dev/null; then
    psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='test'" postgres 2>/dev/null | grep -q 1 \
        || psql -h 127.0.0.1 -U postgres -c "CREATE DATABASE test" postgres || status=1
fi
if command -v mariadb >/dev/null; then
    mariadb -h 127.0.0.1 -u root -e "CREATE DATABASE IF NOT EXISTS test" || status=1
fi
exit $status
