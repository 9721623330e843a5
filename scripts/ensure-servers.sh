#!/usr/bin/env bash
# Make sure PostgreSQL and RabbitMQ (with its management API) run on 127.0.0.1.
# Installs them from Debian's packages when missing, starts them when stopped,
# and fails loudly when they cannot be brought up: no test is skipped for them.
set -euo pipefail

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

apt_updated=""
apt_install() {
    [ -n "$apt_updated" ] || { as_root apt-get update -qq; apt_updated=1; }
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
}

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
    local seconds=$1 what=$2; shift 2
    for _ in $(seq "$seconds"); do "$@" >/dev/null 2>&1 && return 0; sleep 1; done
    echo "FATAL: $what did not come up within ${seconds}s" >&2
    return 1
}

# --- PostgreSQL -------------------------------------------------------------
if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    echo "PostgreSQL is not installed: installing it"
    apt_install postgresql
fi
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    echo "starting PostgreSQL $version"
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
fi
wait_for 60 PostgreSQL pg_isready -q -h 127.0.0.1 -p 5432
# The tests and `shopctl setup` act as the postgres superuser over TCP.
if ! psql -h 127.0.0.1 -U postgres -d postgres -Atc 'select 1' >/dev/null 2>&1; then
    echo "FATAL: cannot log in as postgres on 127.0.0.1:5432 (set TEST_POSTGRES_ADMIN_URL and SETUP_POSTGRES_URL to an admin DSN)" >&2
    exit 1
fi

# --- RabbitMQ ---------------------------------------------------------------
if ! command -v rabbitmq-server >/dev/null 2>&1; then
    echo "RabbitMQ is not installed: installing it"
    apt_install rabbitmq-server
fi
if ! as_root rabbitmq-diagnostics -q ping >/dev/null 2>&1; then
    echo "starting RabbitMQ"
    as_root rabbitmq-server -detached || true
fi
wait_for 90 RabbitMQ as_root rabbitmq-diagnostics -q check_running
as_root rabbitmq-plugins enable --quiet rabbitmq_management >/dev/null
wait_for 60 "RabbitMQ management API" curl -sf -u guest:guest http://127.0.0.1:15672/api/overview
echo "PostgreSQL and RabbitMQ are up"
