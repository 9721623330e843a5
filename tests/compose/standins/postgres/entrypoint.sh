#!/bin/sh
# TEST STAND-IN entrypoint: what the official image does with POSTGRES_*, in short.
set -eu
as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }

if [ "${1:-}" = postgres ] && [ "$(id -u)" = 0 ]; then
    : "${POSTGRES_PASSWORD:?the postgres stand-in needs POSTGRES_PASSWORD}"
    user=${POSTGRES_USER:-postgres}
    db=${POSTGRES_DB:-$user}
    mkdir -p "$PGDATA" /var/run/postgresql
    chown postgres:postgres "$PGDATA" /var/run/postgresql
    chmod 700 "$PGDATA"
    if [ ! -s "$PGDATA/PG_VERSION" ]; then
        pwfile=$(mktemp)
        printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
        chown postgres "$pwfile"
        as_postgres initdb --pgdata="$PGDATA" --username="$user" --pwfile="$pwfile" \
            --encoding=UTF8 --locale=C.UTF-8 --auth-local=trust --auth-host=scram-sha-256
        rm -f "$pwfile"
        echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
        if [ "$db" != postgres ]; then
            # Socket only while the database is created, as the official image.
            as_postgres pg_ctl --pgdata="$PGDATA" -w -o "-c listen_addresses=''" start
            as_postgres psql -v ON_ERROR_STOP=1 --username="$user" --dbname=postgres \
                -c "CREATE DATABASE \"$db\""
            as_postgres pg_ctl --pgdata="$PGDATA" -w -m fast stop
        fi
    fi
    shift
    exec setpriv --reuid=postgres --regid=postgres --init-groups \
        postgres -D "$PGDATA" -c listen_addresses='*' "$@"
fi
exec "$@"
