"""Headless Chromium for checking how a report renders (tests, docs screenshot).

Chromium itself is Debian's package, installed by ``scripts/chromium.sh``; nothing here
downloads a browser. Every run gets its own throw-away profile directory and a timeout.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from arbkit.errors import ArbkitError

TIMEOUT_S = 60.0
CANDIDATES = ("chromium", "chromium-browser", "/usr/bin/chromium")
# no network, no GPU, no first-run UI; --no-sandbox because tests run as root in containers
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars")


def find_chromium() -> str | None:
    """Path of the chromium binary, or None (install it with ``bash scripts/chromium.sh``)."""
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


def _run(args: list[str], timeout_s: float) -> tuple[subprocess.CompletedProcess[str], float]:
    exe = find_chromium()
    if exe is None:
        raise ArbkitError("chromium not found; install it with `bash scripts/chromium.sh`")
    with tempfile.TemporaryDirectory(prefix="arbkit-chromium-") as profile:
        cmd = [exe, *FLAGS, f"--user-data-dir={profile}", *args]
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s,
                                  check=False, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as exc:
            raise ArbkitError(f"chromium did not finish within {timeout_s:.0f} s: "
                              f"{' '.join(cmd)}") from exc
        return proc, time.perf_counter() - t0


def screenshot(html: str | Path, png: str | Path, width: int = 1280, height: int = 4000,
               timeout_s: float = TIMEOUT_S) -> float:
    """Render ``html`` to ``png`` at ``width``×``height``; returns the seconds it took."""
    png = Path(png).resolve()
    proc, took = _run([f"--screenshot={png}", f"--window-size={width},{height}",
                       Path(html).resolve().as_uri()], timeout_s)
    if proc.returncode != 0 or not png.exists():
        raise ArbkitError(f"chromium screenshot failed (exit {proc.returncode}): "
                          f"{proc.stderr.strip()[-500:]}")
    return took


def dump_dom(html: str | Path, timeout_s: float = TIMEOUT_S) -> str:
    """The DOM chromium built from ``html``, serialised."""
    proc, _ = _run(["--dump-dom", Path(html).resolve().as_uri()], timeout_s)
    if proc.returncode != 0 or "<html" not in proc.stdout:
        raise ArbkitError(f"chromium --dump-dom failed (exit {proc.returncode}): "
                          f"{proc.stderr.strip()[-500:]}")
    return proc.stdout
