#!/usr/bin/env bash
# Prometheus server and promtool for the monitoring tests (tests/integration/test_monitor_*.py:
# a real Prometheus scraping a paper session; `promtool check rules` / `promtool test rules`
# on deploy/prometheus/alerts.yml). Idempotent: installs Debian's `prometheus` package with
# apt-get only when /usr/bin/prometheus or /usr/bin/promtool is missing (needs root). The
# package's own service is not used (the tests start their own server on a free port).
# Prints one line.
set -euo pipefail

BINS=(/usr/bin/prometheus /usr/bin/promtool)

present() { local b; for b in "${BINS[@]}"; do [[ -x "$b" ]] || return 1; done; }

if present; then
    echo "prometheus: present ($(/usr/bin/prometheus --version 2>&1 | head -n1))"
    exit 0
fi
if [[ "$(id -u)" -ne 0 ]]; then
    echo "prometheus: ERROR: ${BINS[*]} missing and not root; run as root: apt-get install -y prometheus" >&2
    exit 1
fi
command -v apt-get >/dev/null 2>&1 || { echo "prometheus: ERROR: apt-get not found" >&2; exit 1; }
log=/tmp/arbkit-prometheus-install.log
# policy-rc.d 101: the package's postinst must not start its own server (port 9090) here
policy=/usr/sbin/policy-rc.d
made_policy=0
if [[ ! -e "$policy" ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && made_policy=1
fi
rc=0
{ apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus; } \
    >"$log" 2>&1 || rc=$?
[[ $made_policy -eq 1 ]] && rm -f "$policy"
if [[ $rc -ne 0 ]]; then
    echo "prometheus: ERROR: apt-get install prometheus failed (log: $log)" >&2
    exit 1
fi
present || { echo "prometheus: ERROR: installed, but ${BINS[*]} still missing" >&2; exit 1; }
echo "prometheus: installed ($(/usr/bin/prometheus --version 2>&1 | head -n1))"
