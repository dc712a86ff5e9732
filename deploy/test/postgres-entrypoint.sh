#!/bin/sh
# First start: initdb with the POSTGRES_* user, password and database; then run the server
# as the postgres user, listening on every interface with password authentication.
set -eu
mkdir -p "$PGDATA" /run/postgresql
chown -R postgres:postgres "$PGDATA" /run/postgresql
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    pw=$(mktemp) && echo "${POSTGRES_PASSWORD}" > "$pw" && chown postgres "$pw"
    su postgres -c "initdb -D '$PGDATA' -U '${POSTGRES_USER}' --pwfile='$pw' -A scram-sha-256" >/dev/null
    rm -f "$pw"
    echo "host all all 0.0.0.0/0 scram-sha-256" >> "$PGDATA/pg_hba.conf"
    su postgres -c "pg_ctl -D '$PGDATA' -o '-c listen_addresses=127.0.0.1' -w start" >/dev/null
    PGPASSWORD="${POSTGRES_PASSWORD}" psql -h 127.0.0.1 -U "${POSTGRES_USER}" -d postgres \
        -c "CREATE DATABASE \"${POSTGRES_DB}\"" >/dev/null 2>&1 || true
    su postgres -c "pg_ctl -D '$PGDATA' -m fast -w stop" >/dev/null
fi
exec su postgres -c "exec postgres -D '$PGDATA' -c listen_addresses='*'"
