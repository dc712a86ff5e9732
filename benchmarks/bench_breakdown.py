"""Where the loop's time goes: run_chunk on the bench_core data with parts switched off.

    .venv/bin/python benchmarks/bench_breakdown.py [events, default 10000000]
"""

import sys
import time

sys.path.insert(0, __import__("os").path.dirname(__import__("os").path.dirname(__import__("os").path.abspath(__file__))))

from arbkit.config import load_config_text  # noqa: E402
from arbkit.core.loop import run_chunk, start  # noqa: E402
from arbkit.data.events import build_events  # noqa: E402
from arbkit.data.synth import generate_l1_events_fast  # noqa: E402
from arbkit.engine.state import build_state  # noqa: E402
from benchmarks.bench_core import CONFIG  # noqa: E402

cfg = load_config_text(CONFIG)
keys = [i.key for i in cfg.instruments]
n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000_000
arr = build_events(generate_l1_events_fast(n), keys)


def fresh(mod=None):
    s = build_state(cfg, keys, 1, {}, 1 << 20)
    if mod:
        mod(s)
    start(s, int(arr.events[0]["ts_recv"]))
    return s


def m_noroute(s):
    s.inst_route_ptr[:] = 0


def m_sample60(s):
    s.glob[0]["sample_ns"] = 60 * 10**9


def m_noentry(s):
    s.route[0]["thr_entry_bps"] = 1e9


run_chunk(fresh(), arr.events, arr.depth, 0)  # compile / load cache
for name, mod in [("full lifecycle", None), ("equity every 60 s", m_sample60),
                  ("no entries (always flat)", m_noentry), ("no route", m_noroute)]:
    best = 1e9
    for _ in range(3):
        s = fresh(mod)
        t = time.perf_counter()
        run_chunk(s, arr.events, arr.depth, 0)
        best = min(best, time.perf_counter() - t)
    g = s.glob[0]
    print(f"{name:26s} {n / best / 1e6:5.1f} M events/s  {best / n * 1e9:5.1f} ns/event  "
          f"samples={g['n_equity']} fills={g['n_fills']}")
