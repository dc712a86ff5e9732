#!/usr/bin/env bash
# Bring deploy/docker-compose.yml up offline and check it (its own CI stage: NOT called by
# scripts/test.sh; budget ~15 min on a cold machine, ~3 min with the images built).
#
#   bash scripts/compose_test.sh          # build, up, check, down -v
#   KEEP=1 bash scripts/compose_test.sh   # leave the stack running (docker-compose -p arbkit-test ...)
#
# No registry is reachable here, so the official images are replaced by local equivalents
# (deploy/docker-compose.test.yml): a Debian base made with debootstrap and imported, then
# Debian's redis-server, postgresql-15, prometheus and python3 on it. Grafana is not a Debian
# package: it is left out. Checks: every service healthy, Prometheus scrapes the arbkit
# service and evaluates the rules, the dashboard and /health answer, the paper session writes
# round trips to the PostgreSQL service. Needs root (apt-get, dockerd).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="${ARBKIT_COMPOSE_WORK:-/var/tmp/arbkit-compose}"
MIRROR="${ARBKIT_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
PROJECT=arbkit-test
export DOCKER_BUILDKIT=0 COMPOSE_DOCKER_CLI_BUILD=0   # no buildx here: the classic builder
export ARBKIT_BUILD_CONTEXT="$WORK/context" ARBKIT_CONTROL_TOKEN="compose-test"
mkdir -p "$WORK"

log() { echo "compose_test: $*" >&2; }
die() { echo "compose_test: FAIL: $*" >&2; exit 1; }
step() { echo "== $* (t=$((SECONDS))s)"; }

compose() { (cd "$ROOT/deploy" && docker-compose -p "$PROJECT" -f docker-compose.yml \
                 -f docker-compose.test.yml "$@"); }

step "1/7 docker.io, docker-compose, debootstrap"
if ! command -v dockerd >/dev/null || ! command -v docker-compose >/dev/null \
        || ! command -v debootstrap >/dev/null; then
    [[ "$(id -u)" -eq 0 ]] || die "not root: apt-get install -y docker.io docker-compose debootstrap"
    { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
          docker.io docker-compose debootstrap; } >"$WORK/apt.log" 2>&1 \
        || die "apt-get install failed (log: $WORK/apt.log)"
fi

step "2/7 the Docker daemon"
if ! docker info >/dev/null 2>&1; then
    nohup dockerd >"$WORK/dockerd.log" 2>&1 &
    for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
    docker info >/dev/null 2>&1 || die "dockerd did not start (log: $WORK/dockerd.log)"
fi

step "3/7 base image local/debian:bookworm (debootstrap, imported)"
if ! docker image inspect local/debian:bookworm >/dev/null 2>&1; then
    # a debootstrap cut short leaves its /proc (and /sys) mounted in the tree: unmount first
    grep -o " $WORK/rootfs/[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    rm -rf "$WORK/rootfs"
    debootstrap --variant=minbase bookworm "$WORK/rootfs" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 \
        || die "debootstrap failed (log: $WORK/debootstrap.log)"
    tar -C "$WORK/rootfs" -c . | docker import - local/debian:bookworm >/dev/null
    rm -rf "$WORK/rootfs"
fi
if ! docker image inspect local/python:3.11-bookworm >/dev/null 2>&1; then
    docker build -q -t local/python:3.11-bookworm -f "$ROOT/deploy/test/python.Dockerfile" \
        "$ROOT/deploy/test" >/dev/null || die "local/python image build failed"
fi

step "4/7 build the stack's images (build context: the committed tree, without .venv)"
rm -rf "$ARBKIT_BUILD_CONTEXT" && mkdir -p "$ARBKIT_BUILD_CONTEXT"
git -C "$ROOT" archive HEAD | tar -x -C "$ARBKIT_BUILD_CONTEXT"
# a machine whose package registry sits behind its own certificate authority (this one: pip
# trusts $PIP_CERT): the test's build trusts it too (the shipped Dockerfile is unchanged)
host_ca="${PIP_CERT:-}"
if [[ -n "$host_ca" && -f "$host_ca" ]]; then
    cp "$host_ca" "$ARBKIT_BUILD_CONTEXT/.host-ca.crt"
    sed -i 's|^FROM \${BASE}$|FROM ${BASE}\nCOPY .host-ca.crt /etc/ssl/certs/host-ca.crt\nENV PIP_CERT=/etc/ssl/certs/host-ca.crt|' \
        "$ARBKIT_BUILD_CONTEXT/deploy/Dockerfile"
fi
compose build >"$WORK/build.log" 2>&1 || { tail -n 30 "$WORK/build.log"; die "compose build (log: $WORK/build.log)"; }

step "5/7 up"
compose down -v >/dev/null 2>&1 || true
compose up -d >"$WORK/up.log" 2>&1 || { cat "$WORK/up.log"; die "compose up"; }
cleanup() {
    if [[ "${KEEP:-0}" != 1 ]]; then
        compose logs --no-color >"$WORK/compose.log" 2>&1 || true
        compose down -v >/dev/null 2>&1 || true
    fi
}
trap cleanup EXIT

health() { docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' \
               "$(compose ps -q "$1")" 2>/dev/null || echo missing; }
for svc in redis postgres prometheus arbkit; do
    for _ in $(seq 150); do [[ "$(health "$svc")" == healthy ]] && break; sleep 2; done
    [[ "$(health "$svc")" == healthy ]] || { compose logs --tail 40 "$svc"; die "$svc is $(health "$svc")"; }
    echo "ok: $svc healthy"
done

step "6/7 checks"
q() { curl -fsS --get "http://127.0.0.1:9090/api/v1/query" --data-urlencode "query=$1"; }
for _ in $(seq 60); do q 'up{job="arbkit"} == 1' | grep -q '"value"' && break; sleep 2; done
q 'up{job="arbkit"} == 1' | grep -q '"value"' || die "Prometheus does not scrape the arbkit service"
echo "ok: Prometheus scrapes arbkit:8787 (up == 1)"
# the container compiles the kernel on its first start (2-4 min) before its feeds run
for _ in $(seq 200); do
    q 'arbkit_feed_messages_total > 0' | grep -q '"venue":"binance_b"' && break; sleep 2
done
q 'arbkit_feed_messages_total > 0' | grep -q '"venue":"binance_b"' || die "no feed metrics in Prometheus"
echo "ok: arbkit_feed_messages_total in Prometheus"
curl -fsS http://127.0.0.1:9090/api/v1/rules | grep -q '"name":"ArbkitKillSwitchEngaged"' \
    || die "the alert rules are not loaded"
echo "ok: alert rules loaded"
curl -fsS http://127.0.0.1:8787/health/live | grep -q '"live":true' || die "/health/live"
curl -fsS http://127.0.0.1:8787/ | grep -q '<title>arbkit session</title>' || die "the dashboard page"
echo "ok: dashboard and /health/live on 127.0.0.1:8787"
trades=0
for _ in $(seq 90); do
    # (the server asks for the password on every connection, its own socket included)
    trades=$(compose exec -T -e PGPASSWORD="${POSTGRES_PASSWORD:-arbkit}" postgres \
             psql -h 127.0.0.1 -U arbkit -d arbkit -tAc \
             "SELECT count(*) FROM trades" 2>/dev/null | tr -d '[:space:]' || echo 0)
    [[ "${trades:-0}" =~ ^[0-9]+$ && "$trades" -gt 0 ]] && break
    sleep 2
done
[[ "${trades:-0}" =~ ^[0-9]+$ && "$trades" -gt 0 ]] || die "no round trip in PostgreSQL"
echo "ok: the paper session wrote $trades trade rows to the PostgreSQL service"

step "7/7 done"
echo "compose_test: PASS (redis, postgres, prometheus, arbkit healthy; grafana not run: not in Debian) in ${SECONDS}s"
