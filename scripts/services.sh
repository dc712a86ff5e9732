#!/usr/bin/env bash
# Real PostgreSQL + Redis servers for the test suite, on loopback only.
#
#   bash scripts/services.sh          start (or reuse) both servers, write .services/env
#   bash scripts/services.sh start --started-file F
#                                     same, and append to F the name of each server this
#                                     call started (postgres, redis), none it reused
#   bash scripts/services.sh stop     stop the servers this checkout started
#   bash scripts/services.sh stop postgres|redis ...   stop only those (scripts/test.sh
#                                     passes the names it recorded with --started-file)
#   bash scripts/services.sh status   tell whether each server answers
#
# ARBKIT_SERVICES_PG_PORT / ARBKIT_SERVICES_REDIS_PORT move the ports (the test of this
# script runs its own pair beside the suite's).
# PostgreSQL: 127.0.0.1:55432, database arbkit_test, user arbkit / password arbkit.
# Redis:      127.0.0.1:56379, no persistence.
# State lives under .services/ (gitignored). Missing binaries are installed with apt-get
# (needs root). PostgreSQL refuses to run as root, so as root it runs as the `postgres`
# system user (created if absent).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SVC="$ROOT/.services"

PG_PORT="${ARBKIT_SERVICES_PG_PORT:-55432}"
REDIS_PORT="${ARBKIT_SERVICES_REDIS_PORT:-56379}"
STARTED_FILE=""  # --started-file: where a start records the servers it started
PG_DB=arbkit_test
PG_USER=arbkit
PG_PASSWORD=arbkit
PG_URL="postgresql://$PG_USER:$PG_PASSWORD@127.0.0.1:$PG_PORT/$PG_DB"
REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"

REDIS_DIR="$SVC/redis"
ENV_FILE="$SVC/env"

log() { echo "services: $*" >&2; }
started() { [[ -z "$STARTED_FILE" ]] || echo "$1" >>"$STARTED_FILE"; }
die() { echo "services: ERROR: $*" >&2; exit 1; }

is_root() { [[ "$(id -u)" -eq 0 ]]; }

# --------------------------------------------------------------------------- binaries

find_pg_bin() {
    # Directory holding initdb/pg_ctl/postgres. On Debian the real ones live in
    # /usr/lib/postgresql/<ver>/bin; this machine also has symlinks in /usr/local/bin.
    local p
    p="$(command -v pg_ctl 2>/dev/null || true)"
    if [[ -n "$p" ]]; then
        p="$(dirname "$(readlink -f "$p")")"
        if [[ -x "$p/initdb" && -x "$p/postgres" ]]; then echo "$p"; return 0; fi
    fi
    # shellcheck disable=SC2012
    p="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
    if [[ -n "$p" && -x "$p/pg_ctl" && -x "$p/initdb" && -x "$p/postgres" ]]; then
        echo "$p"; return 0
    fi
    return 1
}

ensure_binaries() {
    local pkgs=()
    command -v redis-server >/dev/null 2>&1 || pkgs+=(redis-server)
    find_pg_bin >/dev/null || pkgs+=(postgresql)
    [[ ${#pkgs[@]} -eq 0 ]] && return 0
    is_root || die "missing ${pkgs[*]}; install them (apt-get install -y ${pkgs[*]}) or rerun as root"
    log "installing ${pkgs[*]} with apt-get (one-time, takes a minute or two)"
    mkdir -p "$SVC"
    local aptlog="$SVC/apt.log"
    if ! { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${pkgs[@]}"; } \
        >"$aptlog" 2>&1; then
        tail -n 40 "$aptlog" >&2
        die "apt-get install ${pkgs[*]} failed (full log: $aptlog)"
    fi
    command -v redis-server >/dev/null 2>&1 || die "redis-server still missing after apt-get"
    find_pg_bin >/dev/null || die "PostgreSQL binaries still missing after apt-get"
}

# --------------------------------------------------------------------------- postgres

PG_BIN=""
PG_OWNER=""   # OS user the postgres server runs as
PG_BASE=""    # holds data/, run/ (socket), postgres.log
PG_SOCK=""

# Run a command as the PostgreSQL OS user (cwd / so it never trips over an unreadable cwd).
as_pg() {
    if is_root; then
        (cd / && runuser -u "$PG_OWNER" -- "$@")
    else
        (cd / && "$@")
    fi
}

pg_setup_paths() {
    PG_BIN="$(find_pg_bin)" || die "PostgreSQL binaries not found"
    if is_root; then
        PG_OWNER=postgres
        if ! id -u postgres >/dev/null 2>&1; then
            log "creating system user postgres"
            useradd --system --user-group --home-dir /var/lib/postgresql --shell /bin/bash postgres
        fi
    else
        PG_OWNER="$(id -un)"
    fi
    mkdir -p "$SVC"
    chmod 755 "$SVC"
    PG_BASE="$SVC/pg"
    # The postgres user must be able to reach .services/pg. If the checkout sits under a
    # directory it cannot traverse (e.g. /root), keep the cluster under /var/tmp instead
    # and leave a symlink at .services/pg pointing there.
    if is_root && ! runuser -u "$PG_OWNER" -- test -x "$SVC" 2>/dev/null; then
        local alt
        alt="/var/tmp/arbkit-services-$(printf '%s' "$ROOT" | md5sum | cut -c1-12)/pg"
        mkdir -p "$alt"
        [[ -L "$PG_BASE" || ! -e "$PG_BASE" ]] && ln -sfn "$alt" "$PG_BASE"
        PG_BASE="$alt"
    fi
    mkdir -p "$PG_BASE/run"
    is_root && chown -R "$PG_OWNER:" "$PG_BASE"
    PG_SOCK="$PG_BASE/run"
    # Unix socket paths are limited to ~107 bytes.
    if (( ${#PG_SOCK} > 80 )); then
        PG_SOCK="/tmp/arbkit-pg-$(printf '%s' "$ROOT" | md5sum | cut -c1-12)"
        mkdir -p "$PG_SOCK"
        is_root && chown "$PG_OWNER:" "$PG_SOCK"
    fi
    return 0
}

pg_ready() { "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -t 2 >/dev/null 2>&1; }

pg_url_works() {
    PGCONNECT_TIMEOUT=3 "$PG_BIN/psql" "$PG_URL" -XAtq -c 'select 1' >/dev/null 2>&1
}

# psql as the superuser over our own unix socket (trust auth there).
pg_super() {
    PGCONNECT_TIMEOUT=3 "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCK" -p "$PG_PORT" \
        -U postgres -d postgres "$@"
}

pg_init() {
    local data="$PG_BASE/data"
    [[ -f "$data/PG_VERSION" ]] && return 0
    log "initdb $data"
    rm -rf "$data"
    mkdir -p "$data"
    is_root && chown "$PG_OWNER:" "$data"
    chmod 700 "$data"
    local pwfile="$PG_BASE/.pw"
    echo "$PG_PASSWORD" >"$pwfile"
    is_root && chown "$PG_OWNER:" "$pwfile"
    as_pg "$PG_BIN/initdb" -D "$data" -U postgres --pwfile="$pwfile" -E UTF8 --locale=C.UTF-8 \
        --auth-local=trust --auth-host=scram-sha-256 >"$PG_BASE/initdb.log" 2>&1 \
        || { rm -f "$pwfile"; cat "$PG_BASE/initdb.log" >&2; die "initdb failed"; }
    rm -f "$pwfile"
    cat >>"$data/postgresql.conf" <<EOF

# ---- arbkit test server (scripts/services.sh) ----
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_SOCK'
max_connections = 100
# Throwaway test data: trade durability for speed.
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
    # Only loopback, password-checked; the unix socket (our own dir) is trusted.
    cat >"$data/pg_hba.conf" <<EOF
local   all   all                    trust
host    all   all   127.0.0.1/32     scram-sha-256
EOF
    is_root && chown "$PG_OWNER:" "$data/postgresql.conf" "$data/pg_hba.conf"
    return 0
}

pg_start() {
    local data="$PG_BASE/data" pidf="$PG_BASE/data/postmaster.pid"
    # A postmaster.pid left by a machine restart can name a pid now used by something else.
    if [[ -f "$pidf" ]]; then
        local pid
        pid="$(head -n 1 "$pidf" 2>/dev/null || true)"
        if [[ -z "$pid" ]] || [[ "$(cat "/proc/$pid/comm" 2>/dev/null || true)" != postgres* ]]; then
            log "removing stale $pidf"
            rm -f "$pidf"
        fi
    fi
    # The socket dir must point where the config says, even if it moved since initdb.
    sed -i "s|^unix_socket_directories = .*|unix_socket_directories = '$PG_SOCK'|" \
        "$data/postgresql.conf"
    log "starting PostgreSQL on 127.0.0.1:$PG_PORT"
    # 9>&-: the daemon must not inherit (and keep holding) our flock fd.
    as_pg "$PG_BIN/pg_ctl" -D "$data" -l "$PG_BASE/postgres.log" -w -t 60 start >/dev/null 9>&- \
        || { tail -n 30 "$PG_BASE/postgres.log" >&2 || true; die "PostgreSQL did not start"; }
}

pg_provision() {
    pg_super <<EOF
DO \$\$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$PG_USER') THEN
    CREATE ROLE $PG_USER LOGIN CREATEDB PASSWORD '$PG_PASSWORD';
  ELSE
    ALTER ROLE $PG_USER LOGIN CREATEDB PASSWORD '$PG_PASSWORD';
  END IF;
END
\$\$;
EOF
    if [[ "$(pg_super -XAt -c "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'")" != 1 ]]; then
        pg_super -c "CREATE DATABASE $PG_DB OWNER $PG_USER"
    fi
}

pg_up() {
    pg_setup_paths
    if pg_ready; then
        if pg_url_works; then
            log "PostgreSQL already running on 127.0.0.1:$PG_PORT (reused)"
            return 0
        fi
        # Ours but not provisioned yet? Try our socket; otherwise a foreign server holds the port.
        if pg_super -c 'select 1' >/dev/null 2>&1; then
            pg_provision
            pg_url_works || die "cannot log in as $PG_USER on 127.0.0.1:$PG_PORT"
            return 0
        fi
        die "a server on 127.0.0.1:$PG_PORT answers but rejects $PG_URL; stop it or free the port"
    fi
    pg_init
    pg_start
    started postgres
    pg_provision
    pg_url_works || die "PostgreSQL started but $PG_URL does not work (see $PG_BASE/postgres.log)"
}

pg_down() {
    local bin
    bin="$(find_pg_bin)" || { log "PostgreSQL binaries not found; nothing to stop"; return 0; }
    PG_BIN="$bin"
    local base="$SVC/pg"
    if [[ ! -f "$base/data/PG_VERSION" ]]; then
        log "no PostgreSQL cluster under $base"
        return 0
    fi
    base="$(readlink -f "$base")"
    if is_root; then PG_OWNER=postgres; else PG_OWNER="$(id -un)"; fi
    if as_pg "$PG_BIN/pg_ctl" -D "$base/data" status >/dev/null 2>&1; then
        log "stopping PostgreSQL"
        as_pg "$PG_BIN/pg_ctl" -D "$base/data" -m fast -w -t 60 stop >/dev/null
    else
        log "PostgreSQL (this checkout) not running"
    fi
}

# --------------------------------------------------------------------------- redis

redis_ping() {
    if command -v redis-cli >/dev/null 2>&1; then
        [[ "$(timeout 3 redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]]
    else
        # Plain RESP over bash's /dev/tcp, in case redis-tools is absent.
        # shellcheck disable=SC2016
        timeout 3 bash -c '
            exec 3<>/dev/tcp/127.0.0.1/'"$REDIS_PORT"' || exit 1
            printf "PING\r\n" >&3
            IFS= read -r line <&3
            [[ "$line" == "+PONG"* ]]' 2>/dev/null
    fi
}

redis_up() {
    if redis_ping; then
        log "Redis already running on 127.0.0.1:$REDIS_PORT (reused)"
        return 0
    fi
    mkdir -p "$REDIS_DIR"
    cat >"$REDIS_DIR/redis.conf" <<EOF
# arbkit test server (scripts/services.sh) - loopback only, no persistence
bind 127.0.0.1
port $REDIS_PORT
protected-mode yes
daemonize yes
pidfile "$REDIS_DIR/redis.pid"
logfile "$REDIS_DIR/redis.log"
dir "$REDIS_DIR"
save ""
appendonly no
databases 16
EOF
    rm -f "$REDIS_DIR/redis.pid"
    log "starting Redis on 127.0.0.1:$REDIS_PORT"
    (cd "$REDIS_DIR" && redis-server "$REDIS_DIR/redis.conf" 9>&-) \
        || { tail -n 30 "$REDIS_DIR/redis.log" >&2 || true; die "redis-server failed to start"; }
    started redis
    for _ in $(seq 1 50); do
        redis_ping && return 0
        sleep 0.2
    done
    tail -n 30 "$REDIS_DIR/redis.log" >&2 || true
    die "Redis did not answer PING on 127.0.0.1:$REDIS_PORT"
}

# True while pid exists and is not a zombie.
proc_alive() {
    [[ -r "/proc/$1/status" ]] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null
}

redis_down() {
    local pidf="$REDIS_DIR/redis.pid" pid
    if [[ ! -f "$pidf" ]]; then
        log "Redis (this checkout) not running"
        return 0
    fi
    pid="$(cat "$pidf" 2>/dev/null || true)"
    if [[ -n "$pid" && "$(cat "/proc/$pid/comm" 2>/dev/null || true)" == redis-server* ]]; then
        log "stopping Redis (pid $pid)"
        kill -TERM "$pid"
        for _ in $(seq 1 50); do
            proc_alive "$pid" || break
            sleep 0.2
        done
        proc_alive "$pid" && die "Redis pid $pid did not exit"
    else
        log "Redis (this checkout) not running"
    fi
    rm -f "$pidf"
}

# --------------------------------------------------------------------------- main

write_env() {
    cat >"$ENV_FILE" <<EOF
export ARBKIT_TEST_PG_URL=$PG_URL
export ARBKIT_TEST_REDIS_URL=$REDIS_URL
EOF
    cat "$ENV_FILE"
}

with_lock() {
    mkdir -p "$SVC"
    exec 9>"$SVC/.lock"
    flock -w 300 9 || die "timed out waiting for $SVC/.lock"
}

cmd="${1:-start}"
[[ $# -gt 0 ]] && shift
case "$cmd" in
    start|up)
        if [[ "${1:-}" == --started-file ]]; then
            [[ -n "${2:-}" ]] || die "--started-file needs a file name"
            STARTED_FILE="$2"
            touch "$STARTED_FILE"
        elif [[ $# -gt 0 ]]; then
            die "start: unknown argument '$1'; use: start [--started-file FILE]"
        fi
        with_lock
        ensure_binaries
        pg_up
        redis_up
        write_env
        ;;
    stop|down)
        which=("$@")
        [[ ${#which[@]} -eq 0 ]] && which=(postgres redis)
        for w in "${which[@]}"; do
            [[ "$w" == postgres || "$w" == redis ]] \
                || die "stop: unknown server '$w'; use postgres and/or redis (or none for both)"
        done
        with_lock
        for w in "${which[@]}"; do
            if [[ "$w" == postgres ]]; then pg_down; else redis_down; fi
        done
        if [[ ${#which[@]} -eq 2 ]]; then rm -f "$ENV_FILE"; fi
        ;;
    status)
        ok=0
        if bin="$(find_pg_bin)" && PG_BIN="$bin" && pg_ready; then
            echo "postgres: up on 127.0.0.1:$PG_PORT"
        else
            echo "postgres: down"; ok=1
        fi
        if redis_ping; then echo "redis: up on 127.0.0.1:$REDIS_PORT"; else echo "redis: down"; ok=1; fi
        exit "$ok"
        ;;
    *)
        die "usage: $0 [start|stop|status]"
        ;;
esac
