"""Core loop benchmark: 10M L1 events on two venues through the full lifecycle.

Prints events/s of the backtest loop (latency, fees, guards, equity sampling and trade
metrics all on), the cold (compile) and warm (cached) start of a small backtest in a fresh
process, and the loop's peak memory next to the size of the event array.

    .venv/bin/python benchmarks/bench_core.py [--events 10000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CONFIG = """
[run]
seed = 1
capital = 1000000.0
equity_interval_s = 1.0
[[instruments]]
venue = "A"
symbol = "BTC-USDT"
kind = "spot"
taker_fee_bps = 0.5
lot = 0.00001
order_latency_ms = 5.0
order_latency_jitter_ms = 2.0
ack_latency_ms = 5.0
initial_quote = 100000000.0
initial_base = 100.0
[[instruments]]
venue = "B"
symbol = "BTC-USDT"
kind = "linear_perp"
taker_fee_bps = 0.5
lot = 0.001
order_latency_ms = 10.0
ack_latency_ms = 10.0
[route]
a = "A:BTC-USDT"
b = "B:BTC-USDT"
[strategy]
entry_bps = 1.0
exit_bps = 0.0
stop_loss_bps = 8.0
take_profit_bps = 6.0
max_hold_s = 120.0
max_quote_age_ms = 2000.0
notional = 20000.0
cooldown_after_stop_s = 5.0
"""

# Runs in a fresh process: times import + a small backtest (cold when the cache dir is empty).
START_PROBE = """
import time, sys
t0 = time.perf_counter()
sys.path.insert(0, {root!r})
from arbkit.config import load_config_text
from arbkit.data.events import build_events
from arbkit.data.synth import generate_l1_events_fast
from arbkit.engine.backtest import run_arrays
cfg = load_config_text({cfg!r})
arr = build_events(generate_l1_events_fast(2000), [i.key for i in cfg.instruments])
t1 = time.perf_counter()
run_arrays(cfg, arr)
t2 = time.perf_counter()
print(t1 - t0, t2 - t1)
"""

# Runs in a fresh process. Peak RSS comes from VmHWM in /proc/self/status, which is per address
# space; ru_maxrss would carry over the parent's high-water mark across fork+exec.
MEM_PROBE = """
import sys, numpy as np
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
sys.path.insert(0, {root!r})
from arbkit.config import load_config_text
from arbkit.data.events import EventArrays
from arbkit.engine.backtest import run_arrays
cfg = load_config_text({cfg!r})
small = np.load({small!r})
run_arrays(cfg, EventArrays(small, np.zeros((0, 4, 0)), [i.key for i in cfg.instruments], 1,
                            {{}}, {{}}, 0))  # warm: compiled code loaded
base = hwm()
ev = np.load({path!r})
r = run_arrays(cfg, EventArrays(ev, np.zeros((0, 4, 0)), [i.key for i in cfg.instruments], 1,
                                {{}}, {{}}, 0))
peak = hwm()
print(base, peak, ev.nbytes, int(r.state.glob[0]["n_trades"]))
"""


def _probe(code: str, env: dict[str, str]) -> list[str]:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         check=True)
    return out.stdout.split()


def start_times() -> tuple[float, float, float, float]:
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        code = START_PROBE.format(root=str(ROOT), cfg=CONFIG)
        imp_c, run_c = map(float, _probe(code, env))
        imp_w, run_w = map(float, _probe(code, env))
    return imp_c, run_c, imp_w, run_w


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    from arbkit.config import load_config_text
    from arbkit.data.events import build_events
    from arbkit.data.synth import generate_l1_events_fast
    from arbkit.engine.backtest import run_arrays

    cfg = load_config_text(CONFIG)
    keys = [i.key for i in cfg.instruments]
    t0 = time.perf_counter()
    frame = generate_l1_events_fast(args.events)
    t1 = time.perf_counter()
    arrays = build_events(frame, keys)
    t2 = time.perf_counter()
    del frame
    print(f"generate {args.events:,} L1 rows: {t1 - t0:.2f} s; build event array: {t2 - t1:.2f} s "
          f"({args.events / (t2 - t1) / 1e6:.1f} M rows/s)")

    run_arrays(cfg, build_events(generate_l1_events_fast(2000), keys))  # compile / load cache
    best = float("inf")
    runner = None
    for _ in range(args.repeat):
        t = time.perf_counter()
        runner = run_arrays(cfg, arrays)
        best = min(best, time.perf_counter() - t)
    g = runner.state.glob[0]
    n = arrays.events.shape[0]
    print(f"loop: {n:,} events in {best:.3f} s = {n / best / 1e6:.1f} M events/s (best of "
          f"{args.repeat}); trades {int(g['n_trades'])}, fills {int(g['n_fills'])}, "
          f"equity samples {int(g['n_equity'])}")

    imp_c, run_c, imp_w, run_w = start_times()
    print(f"cold start (empty cache): import+data {imp_c:.2f} s, first backtest {run_c:.2f} s; "
          f"warm start (cached): import+data {imp_w:.2f} s, first backtest {run_w:.2f} s; "
          f"total warm {imp_w + run_w:.2f} s")

    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "events.npy")
        small = str(Path(tmp) / "small.npy")
        np.save(path, arrays.events)
        np.save(small, arrays.events[:1000])
        code = MEM_PROBE.format(root=str(ROOT), cfg=CONFIG, path=path, small=small)
        base, peak, nbytes, _ = map(int, _probe(code, dict(os.environ)))
    extra = peak - base
    print(f"memory: event array {nbytes / 2**20:.0f} MiB; peak RSS of a process that loads it "
          f"and runs the backtest, above its warm baseline: {extra / 2**20:.0f} MiB = "
          f"{extra / nbytes:.2f}x the event array (1.00x = the array itself)")
    print(json.dumps({"events": n, "events_per_s": n / best, "cold_run_s": run_c,
                      "warm_total_s": imp_w + run_w, "peak_over_events": extra / nbytes}))


if __name__ == "__main__":
    main()
