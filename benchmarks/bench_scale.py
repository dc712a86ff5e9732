"""Paper sessions against the local emulators at 2 / 5 / 10 / 20 / 50 symbols × 2 venues.

Per size: one emulator per venue (threads of this process) replays synthetic ``normal``
books at the synthetic market's own rate (40 book updates per second per symbol: venue A
~25/s, B ~15/s) at ``--speed`` (1 = real time), the real ccxt client reads them over loopback
(batched ``watch_bids_asks``: one socket per venue), and a paper node (Redis journal, kernel,
recording, checkpoints to a DuckDB results store) trades them. Printed per size: CPU % of one
core (the whole process, and the asyncio loop thread alone: ccxt + node), RSS, receive →
decision p50/p99 (from the feed's receive stamp to the kernel's decision, wall), the kernel
call per event p50/p99, queue lag p50/p99/max (receive stamp → taken off the node's queue),
events/s sustained vs offered, quotes delivered / messages the emulators sent (ccxt's batched
watch coalesces updates it could not hand over in time), websockets, trades.

    bash scripts/services.sh >/dev/null && source .services/env
    .venv/bin/python benchmarks/bench_scale.py [--symbols 2,5,10,20,50] [--seconds 30] [--json F]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def load() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--symbols", default="2,5,10,20,50")
    ap.add_argument("--seconds", type=float, default=30.0, help="wall seconds per size")
    ap.add_argument("--speed", type=float, default=1.0, help="data seconds per wall second")
    ap.add_argument("--json", type=Path, default=None, help="also write every figure here")
    args = ap.parse_args()
    redis = os.environ.get("ARBKIT_TEST_REDIS_URL") or os.environ.get("ARBKIT_REDIS_URL")
    if not redis:
        raise SystemExit("error: no Redis; start the services: bash scripts/services.sh "
                         ">/dev/null && source .services/env")
    try:
        sizes = [int(x) for x in args.symbols.split(",")]
    except ValueError:
        raise SystemExit(f"error: --symbols {args.symbols!r}: give whole numbers, e.g. "
                         "2,5,10,20,50") from None
    from arbkit.runtime.soak import SYNTH_HZ, run_measured, universe

    rows = []
    print(f"load average before: {load()} (2 cores, shared)", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            df, cfg = universe(n, span_s=args.seconds * args.speed)
            m = run_measured(df, cfg, speed=args.speed, redis_url=redis,
                             results=str(Path(tmp) / f"r{n}.duckdb"), out=Path(tmp) / f"s{n}",
                             check=False, tag="bench-scale")
            offered = n * SYNTH_HZ * args.speed
            d = asdict(m)
            d.pop("samples")
            d.update(offered_per_s=offered, load_after=load())
            rows.append(d)
            print(f"{n:3d} symbols × 2 venues: CPU {m.cpu_pct:.0f}% (loop thread "
                  f"{m.loop_cpu_pct:.0f}%), RSS {m.rss_end_mib:.0f} MiB (max "
                  f"{m.rss_max_mib:.0f}); receive→decision p50/p99 "
                  f"{m.recv_decision_us[0]:.0f}/{m.recv_decision_us[1]:.0f} µs; kernel "
                  f"p50/p99 {m.decide_us[0]:.1f}/{m.decide_us[1]:.1f} µs/event; queue lag "
                  f"p50/p99/max {m.queue_lag_ms[0]:.2f}/{m.queue_lag_ms[1]:.2f}/"
                  f"{m.queue_lag_ms[2]:.1f} ms; {m.events_per_s:,.0f} quotes/s sustained of "
                  f"{offered:,.0f} offered ({m.quotes:,} delivered / {m.emulator_sent:,} "
                  f"sent); {m.connections} websockets; {m.trades} round trips; load "
                  f"{load()}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1, default=str))


if __name__ == "__main__":
    main()
