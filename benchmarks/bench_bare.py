"""The machine's yardstick: a bare numba loop of the same entry/exit logic as the engine,
without latency, orders, guards, fees or metrics, on the bench_core data.

The issue's reference figure (~170 M events/s) was measured on another machine of the same
kind; run this beside bench_core.py to compare the engine with the bare loop on *this* machine.

    .venv/bin/python benchmarks/bench_bare.py [events, default 10000000]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numba
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from arbkit.config import load_config_text  # noqa: E402
from arbkit.data.events import build_events  # noqa: E402
from arbkit.data.synth import generate_l1_events_fast  # noqa: E402
from benchmarks.bench_core import CONFIG  # noqa: E402


@numba.njit(cache=True, error_model="numpy")
def bare(ev, thr_bps, exit_bps):
    bid = np.full(2, np.nan)
    ask = np.full(2, np.nan)
    state, d, n_trades, pnl, entry = 0, 0, 0, 0.0, 0.0
    for k in range(ev.shape[0]):
        e = ev[k]
        i = e["inst"]
        bid[i] = e["bid_px"]
        ask[i] = e["ask_px"]
        s4 = bid[0] + ask[0] + bid[1] + ask[1]
        if state == 0:
            d_ab = bid[1] - ask[0]
            d_ba = bid[0] - ask[1]
            if d_ab * 4e4 >= thr_bps * s4:
                state, d, entry, n_trades = 1, 1, d_ab, n_trades + 1
            elif d_ba * 4e4 >= thr_bps * s4:
                state, d, entry, n_trades = 1, -1, d_ba, n_trades + 1
        else:
            c = (bid[0] - ask[1]) if d == 1 else (bid[1] - ask[0])
            if c * 4e4 >= exit_bps * s4:
                pnl += entry + c
                state = 0
    return n_trades, pnl


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000_000
    cfg = load_config_text(CONFIG)
    ev = build_events(generate_l1_events_fast(n), [i.key for i in cfg.instruments]).events
    bare(ev[:1000], 3.0, 0.0)
    best = min(_timed(ev) for _ in range(5))
    print(f"bare loop: {n:,} events in {best:.3f} s = {n / best / 1e6:.1f} M events/s (best of 5)")


def _timed(ev: np.ndarray) -> float:
    t = time.perf_counter()
    bare(ev, 3.0, 0.0)
    return time.perf_counter() - t


if __name__ == "__main__":
    main()
