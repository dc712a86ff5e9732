"""Ctrl-C at random moments leaves nothing half-written (issue 13, "Half-written").

Real processes, real SIGINT: ``data import``, ``data add`` and ``backtest --out`` are each run
once to the end (the time that takes and the state they leave), then started again from the
same state and interrupted at random moments across that time. Every run must end either
finished (exit 0, the whole result) or interrupted (exit 130, exactly one ``interrupted: ...``
line, no traceback) with the touched folders exactly as before or exactly as a finished run
leaves them, and no temporary file or folder anywhere.

The moments are drawn from ``ARBKIT_SIGINT_SEED`` (default 13); a failure prints them.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl

from arbkit.config import dump_config
from arbkit.data.synth import generate, generate_l1_events_fast
from tests.cli_harness import snapshot

SEED = int(os.environ.get("ARBKIT_SIGINT_SEED", "13"))
TRIES = 2  # interrupted runs per command


def _start(args: list[str], cwd: Path) -> subprocess.Popen:
    # a shell's background job may start with SIGINT ignored: the child gets the default,
    # as a command typed in a terminal has
    return subprocess.Popen([sys.executable, "-m", "arbkit", *args], cwd=cwd, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _finish(args: list[str], cwd: Path) -> float:
    t0 = time.perf_counter()
    p = _start(args, cwd)
    out, err = p.communicate(timeout=300)
    assert p.returncode == 0, err
    return time.perf_counter() - t0


def _handles_sigint(pid: int) -> bool:
    """The process has installed its SIGINT handler (Python does so early at start-up; a
    signal before that kills the process as any program's would). Linux /proc."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True
    caught = next((ln.split()[1] for ln in status.splitlines() if ln.startswith("SigCgt:")),
                  "0")
    return bool(int(caught, 16) & (1 << (signal.SIGINT - 1)))


def _interrupt(args: list[str], cwd: Path, after_s: float) -> tuple[int, str]:
    t0 = time.perf_counter()
    p = _start(args, cwd)
    while not _handles_sigint(p.pid) and p.poll() is None:
        time.sleep(0.002)
    time.sleep(max(0.0, after_s - (time.perf_counter() - t0)))
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=300)
    return p.returncode, err


def _relative(snap: dict[str, str], root: Path) -> dict[str, str]:
    return {str(Path(k).relative_to(root)): v for k, v in snap.items()}


def _leftovers(root: Path) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.name.endswith(".tmp")
            or p.name.startswith(".arbkit-") and p.name != ".arbkit-results"]


def _check(name: str, args: list[str], make: Callable[[Path], None], watch: str,
           tmp_path: Path, key: Callable[[dict[str, str]], object] = lambda s: s,
           warm: bool = False) -> None:
    """Run ``args`` in fresh copies of the state ``make`` builds; ``watch`` is the folder
    (relative to the work folder) whose before/after states are compared through ``key``.
    ``warm``: run once first, untimed (a kernel compiled into numba's cache, not timed)."""
    if warm:
        (tmp_path / "warm").mkdir()
        make(tmp_path / "warm")
        _finish(args, tmp_path / "warm")
    done_dir = tmp_path / "done"
    done_dir.mkdir()
    make(done_dir)
    before = key(_relative(snapshot(done_dir / watch), done_dir))
    total = _finish(args, done_dir)
    done = key(_relative(snapshot(done_dir / watch), done_dir))
    assert done != before
    rng = random.Random(f"{SEED}:{name}")
    delays = sorted(round(rng.uniform(0.3, 1.0) * total, 3) for _ in range(TRIES))
    outcomes = []
    for k, delay in enumerate(delays):
        work = tmp_path / f"try{k}"
        work.mkdir()
        make(work)
        code, err = _interrupt(args, work, delay)
        where = f"{name}: SIGINT after {delay} s of ~{total:.1f} s (seed {SEED}): {err[-1500:]}"
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert "Traceback" not in err, where
        if code == 130:
            assert len(lines) == 1 and lines[0].startswith("interrupted: "), where
        else:
            assert code == 0, where
        state = key(_relative(snapshot(work / watch), work))
        assert state in (before, done), where
        assert code != 0 or state == done, where
        assert not _leftovers(work), (where, _leftovers(work))
        outcomes.append((delay, code, "unchanged" if state == before else "whole"))
    print(f"{name}: {total:.1f} s uninterrupted; {outcomes}")


# ------------------------------------------------------------------ data import


def test_ctrl_c_during_an_import_leaves_the_catalog_as_it_was_or_whole(tmp_path):
    n = 100 * 1440  # 100 days of 1-minute bars: 101 day files
    ts = 1_704_067_200_000 + np.arange(n, dtype=np.int64) * 60_000
    px = 40_000 + np.cumsum(np.random.default_rng(1).normal(0, 5, n))
    src = tmp_path / "bars.csv"
    pl.DataFrame({"timestamp": ts, "open": px, "high": px + 5, "low": px - 5,
                  "close": px + 1, "volume": np.ones(n)}).write_csv(src)

    def make(work: Path) -> None:
        (work / "cat").mkdir()

    _check("import", ["data", "import", "ohlcv-csv", str(src), "--venue", "v", "--symbol",
                      "S", "--interval", "1m", "--root", "cat"], make, "cat", tmp_path)


# ------------------------------------------------------------------ data add


def test_ctrl_c_during_data_add_leaves_the_catalog_as_it_was_or_whole(tmp_path):
    frame = generate_l1_events_fast(200_000)
    t0 = int(frame["ts_recv_ns"][0])
    span = int(frame["ts_recv_ns"][-1]) - t0
    days = 40 * 86_400 * 10**9  # spread over 40 days, merged into a catalog holding 3 of them
    frame = frame.with_columns(
        ((pl.col(c) - t0) * (days // span) + t0).alias(c) for c in ("ts_recv_ns", "ts_exch_ns"))
    src = tmp_path / "q.parquet"
    frame.write_parquet(src)
    seed_cat = tmp_path / "seed"
    first = frame.filter(pl.col("ts_recv_ns") < t0 + 3 * 86_400 * 10**9)
    from arbkit.data.catalog import Catalog

    Catalog(seed_cat).add_quotes(first)

    def make(work: Path) -> None:
        shutil.copytree(seed_cat, work / "cat")

    _check("add", ["data", "add", str(src), "--root", "cat"], make, "cat", tmp_path)


# ------------------------------------------------------------------ backtest --out


def test_ctrl_c_during_backtest_out_leaves_no_result_or_a_whole_one(tmp_path):
    frame, cfg = generate("normal", n_events=200_000, depth=1)
    src = tmp_path / "src"
    src.mkdir()
    frame.write_parquet(src / "q.parquet")
    (src / "config.toml").write_text(dump_config(cfg))

    def make(work: Path) -> None:
        (work / "runs").mkdir()

    def names(snap: dict[str, str]) -> object:  # timings in meta.json differ run to run
        return sorted(snap)

    _check("backtest", ["backtest", "--data", str(src / "q.parquet"), "--config",
                        str(src / "config.toml"), "--out", "runs/r1"], make, "runs", tmp_path,
           key=names, warm=True)
