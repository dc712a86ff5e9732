#!/usr/bin/env bash
# Headless Chromium for the report render test (tests/integration/test_report.py) and
# scripts/report_screenshot.py. Idempotent: installs Debian's `chromium` package with apt-get
# (plus a font, so text renders) only when /usr/bin/chromium is missing (needs root).
# As root (containers, CI) Chromium starts only with --no-sandbox: every arbkit run passes
# it (arbkit/report/browser.py FLAGS), and so must a command typed by hand.
# Prints one line.
set -euo pipefail

BIN=/usr/bin/chromium
ROOT_NOTE="by hand as root: chromium --headless --no-sandbox ... (arbkit's runs pass --no-sandbox)"

if [[ -x "$BIN" ]]; then
    echo "chromium: present ($("$BIN" --version 2>/dev/null | head -n1 || echo "$BIN")); $ROOT_NOTE"
    exit 0
fi
if [[ "$(id -u)" -ne 0 ]]; then
    echo "chromium: ERROR: $BIN missing and not root; run as root: apt-get install -y chromium" >&2
    exit 1
fi
command -v apt-get >/dev/null 2>&1 || { echo "chromium: ERROR: apt-get not found" >&2; exit 1; }
if ! { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core; } \
        >/tmp/arbkit-chromium-install.log 2>&1; then
    echo "chromium: ERROR: apt-get install chromium failed (log: /tmp/arbkit-chromium-install.log)" >&2
    exit 1
fi
[[ -x "$BIN" ]] || { echo "chromium: ERROR: installed, but $BIN is still missing" >&2; exit 1; }
echo "chromium: installed ($("$BIN" --version 2>/dev/null | head -n1 || echo "$BIN")); $ROOT_NOTE"
