#!/usr/bin/env bash
# Create/refresh the project venv (.venv) with arbkit installed editable plus dev and
# notebook-test tools. Idempotent and quick when nothing changed: the install is skipped
# while pyproject.toml is unchanged since the last successful run and the venv imports
# cleanly. ARBKIT_FORCE_SETUP=1 forces a reinstall.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

VENV="$ROOT/.venv"
PY="$VENV/bin/python"
STAMP="$VENV/.arbkit-setup-stamp"
EXTRA_PKGS=(nbclient ipykernel nbformat)

log() { echo "setup: $*" >&2; }
die() { echo "setup: ERROR: $*" >&2; exit 1; }

PYTHON="${PYTHON:-python3}"
command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found (need Python >= 3.11)"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || die "$PYTHON is $("$PYTHON" -V 2>&1); arbkit needs Python >= 3.11"

# A venv whose interpreter no longer runs (moved machine, deleted base python) is rebuilt.
if [[ -d "$VENV" ]] && ! "$PY" -c 'import sys' >/dev/null 2>&1; then
    log "existing .venv is broken; recreating it"
    rm -rf "$VENV"
fi

if [[ ! -d "$VENV" ]]; then
    log "creating .venv with $("$PYTHON" -V 2>&1)"
    if ! "$PYTHON" -m venv "$VENV" >/dev/null 2>&1; then
        rm -rf "$VENV"
        # Debian's system python ships venv/ensurepip separately.
        if [[ "$(id -u)" -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
            log "python venv support missing; installing python3-venv with apt-get"
            { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv; } \
                >/dev/null 2>&1 || die "apt-get install python3-venv failed"
            "$PYTHON" -m venv "$VENV" || { rm -rf "$VENV"; die "python -m venv failed"; }
        else
            die "'$PYTHON -m venv' failed (on Debian: apt-get install python3-venv)"
        fi
    fi
fi

# constraints.txt pins every dependency to the versions CI last proved (`pip freeze` of a
# passing run; regenerate it with `make lock` after a deliberate upgrade).
want="$(cat pyproject.toml constraints.txt "${BASH_SOURCE[0]}" | sha256sum | cut -d' ' -f1)"
have="$(cat "$STAMP" 2>/dev/null || true)"
if [[ "${ARBKIT_FORCE_SETUP:-0}" != 1 && "$want" == "$have" ]] \
    && "$PY" -c 'import arbkit, pytest, hypothesis, nbclient, nbformat, ipykernel' >/dev/null 2>&1; then
    exit 0
fi

log "installing arbkit (editable, [dev]) + ${EXTRA_PKGS[*]} into .venv"
rm -f "$STAMP"
pip_log="$(mktemp)"
trap 'rm -f "$pip_log"' EXIT
if ! "$PY" -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]' \
    "${EXTRA_PKGS[@]}" \
    >"$pip_log" 2>&1; then
    cat "$pip_log" >&2
    die "pip install failed"
fi
"$PY" -c 'import arbkit' || die "arbkit does not import after install"
echo "$want" >"$STAMP"
log "done"
