"""Speed regression guard that machine noise cannot fool (CI runs it: scripts/test.sh).

On a few million events of the bench_core data and config, in one process and interleaved:
- **bare**: ``run_chunk`` alone over the whole array on a freshly built state (the loop);
- **whole**: a whole backtest after loading, ``run_prepared`` (state, loop, finish, result
  frames and every metric).
Fails when the whole backtest runs below 0.8x the bare loop's throughput (each the best of
``--repeat``), or when a fresh process that loads the event array and runs the whole backtest
peaks above 1.3x the event array (above its warm baseline). Both limits are ratios measured
side by side, so a slow machine moves both numbers together.

    .venv/bin/python benchmarks/bench_guard.py [--events 3000000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MIN_RATIO = 0.8
MAX_MEMORY = 1.3

MEM_PROBE = """
import sys, numpy as np
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
sys.path.insert(0, {root!r})
from arbkit.config import load_config_text
from arbkit.data.events import EventArrays
from arbkit.engine.backtest import Prepared, run_prepared
cfg = load_config_text({cfg!r})
keys = [i.key for i in cfg.instruments]
def prep(ev):
    return Prepared(EventArrays(ev, np.zeros((0, 4, 0)), keys, 1, {{}}, {{}}, 0), "<bench>", 0.0,
                    0, {{k: "quotes" for k in keys}}, [])
run_prepared(cfg, prep(np.load({small!r})))  # warm: compiled code loaded, polars warmed up
base = hwm()
ev = np.load({path!r})
res = run_prepared(cfg, prep(ev))
print(base, hwm(), ev.nbytes, res.trades.height)
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=3_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()

    from arbkit.config import load_config_text
    from arbkit.core.loop import run_chunk, start
    from arbkit.data.events import build_events
    from arbkit.data.synth import generate_l1_events_fast
    from arbkit.engine.backtest import Prepared, Runner, run_prepared
    from benchmarks.bench_core import CONFIG

    cfg = load_config_text(CONFIG)
    keys = [i.key for i in cfg.instruments]
    arrays = build_events(generate_l1_events_fast(args.events), keys)
    prep = Prepared(arrays, "<bench>", 0.0, 0, {k: "quotes" for k in keys}, [])
    ev, depth = arrays.events, arrays.depth
    n = ev.shape[0]

    def bare() -> float:
        state = Runner(cfg, arrays, capacity=1 << 19).state  # (no buffer growth here)
        start(state, int(ev[0]["ts_recv"]))
        t = time.perf_counter()
        status, _ = run_chunk(state, ev, depth, 0, 1)
        dt = time.perf_counter() - t
        assert status == 0, "buffers filled up: raise the bench capacity"
        return dt

    def whole() -> float:
        t = time.perf_counter()
        res = run_prepared(cfg, prep)
        dt = time.perf_counter() - t
        assert res.trades.height > 100, "the benchmark strategy stopped trading"
        return dt

    bare(), whole()  # compile / load the cache, warm polars
    b = w = float("inf")
    for _ in range(args.repeat):
        b = min(b, bare())
        w = min(w, whole())
    ratio = b / w
    print(f"{n:,} events: bare run_chunk {n / b / 1e6:.1f} M events/s, whole backtest "
          f"{n / w / 1e6:.1f} M events/s (best of {args.repeat}, interleaved): "
          f"{ratio:.2f}x the loop (limit {MIN_RATIO}x)")

    with tempfile.TemporaryDirectory() as tmp:
        path, small = str(Path(tmp) / "ev.npy"), str(Path(tmp) / "small.npy")
        np.save(path, ev)
        np.save(small, ev[:20_000])
        code = MEM_PROBE.format(root=str(ROOT), cfg=CONFIG, path=path, small=small)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env=dict(os.environ), check=True).stdout.split()
    base, peak, nbytes, _ = map(int, out)
    mem = (peak - base) / nbytes
    print(f"memory: a process loading the {nbytes / 2**20:.0f} MiB event array and running the "
          f"whole backtest peaks {(peak - base) / 2**20:.0f} MiB above its warm baseline = "
          f"{mem:.2f}x the event array (limit {MAX_MEMORY}x)")
    bad = []
    if ratio < MIN_RATIO:
        bad.append(f"whole backtest at {ratio:.2f}x the bare loop (< {MIN_RATIO}x)")
    if mem > MAX_MEMORY:
        bad.append(f"peak memory {mem:.2f}x the event array (> {MAX_MEMORY}x)")
    print("speed guard: " + ("FAILED: " + "; ".join(bad) if bad else "ok"))
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
