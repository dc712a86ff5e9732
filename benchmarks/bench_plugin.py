"""What a user entry signal costs: its kernel's compile time in a fresh process (the built-in
kernel is cached on disk; a plug-in's copy of the loop is compiled once per process), and the
loop's speed with it, on the bench_core data.

    .venv/bin/python benchmarks/bench_plugin.py [events, default 10000000]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numba

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from arbkit.config import load_config_text  # noqa: E402
from arbkit.data.events import build_events  # noqa: E402
from arbkit.data.synth import generate_l1_events_fast  # noqa: E402
from arbkit.engine.backtest import Runner  # noqa: E402
from benchmarks.bench_core import CONFIG  # noqa: E402


@numba.njit
def builtin_rule(bid_a, ask_a, bid_b, ask_b, anchor_bps, thr_bps, t):
    sum4 = bid_a + ask_a + bid_b + ask_b
    d_ab = bid_b - ask_a
    d_ba = bid_a - ask_b
    best = d_ab if d_ab >= d_ba else d_ba
    if best * 4e4 >= thr_bps * sum4:
        return 1 if d_ab >= d_ba else -1
    return 0


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000_000
    cfg = load_config_text(CONFIG)
    arr = build_events(generate_l1_events_fast(n), [i.key for i in cfg.instruments])
    small = arr.events[:2000]
    for name, sig in (("built-in", None), ("plug-in", builtin_rule)):
        t = time.perf_counter()
        Runner(cfg, arr, signal=sig).feed(small)
        first = time.perf_counter() - t
        best = 1e9
        for _ in range(3):
            r = Runner(cfg, arr, capacity=1 << 16, signal=sig)
            t = time.perf_counter()
            r.feed(arr.events)
            best = min(best, time.perf_counter() - t)
        print(f"{name:8s}: first call {first:6.2f} s (cache load or compile); loop "
              f"{n / best / 1e6:5.1f} M events/s; trades {int(r.state.glob[0]['n_trades'])}")


if __name__ == "__main__":
    main()
