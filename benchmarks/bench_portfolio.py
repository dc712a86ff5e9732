"""Scaling with the number of symbols: 2 / 5 / 10 / 20 / 50 routes on two venues.

Each symbol is ``generate_l1_events_fast`` with its own seed, the two venues A and B, the
bench_core config's strategy; the events of all symbols are merged (the market gets busier as
symbols are added: events per second of market time grow with the symbols). Prints, for a
fixed total of events, the loop's events/s (best of 3) and the peak RSS of a fresh process
running it, next to the single-route figure.

    .venv/bin/python benchmarks/bench_portfolio.py [--events 10000000] [--symbols 1,2,5,10,20,50]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PROBE = """
import json, sys, time
sys.path.insert(0, {root!r})
import polars as pl
from arbkit.config import load_config_text
from arbkit.data.events import build_events
from arbkit.data.synth import generate_l1_events_fast
from arbkit.engine.backtest import Runner
from benchmarks.bench_core import CONFIG

def rss_mib():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM"):
            return int(line.split()[1]) / 1024

n_sym, total = {n_sym}, {events}
head, rest = CONFIG.split("[[instruments]]", 1)
inst_a, inst_b = ("[[instruments]]" + rest.split("[route]")[0]).split("[[instruments]]")[1:]
strategy = "[strategy]" + CONFIG.split("[strategy]")[1]
parts, frames = [head], []
per = total // n_sym
for k in range(n_sym):
    sym = f"S{{k:02d}}-USDT"
    parts += ["[[instruments]]" + inst_a.replace("BTC-USDT", sym),
              "[[instruments]]" + inst_b.replace("BTC-USDT", sym)]
    frames.append(generate_l1_events_fast(per, seed=100 + k).with_columns(pl.lit(sym).alias("symbol")))
for k in range(n_sym):
    sym = f"S{{k:02d}}-USDT"
    parts.append(f'[[routes]]\\na = "A:{{sym}}"\\nb = "B:{{sym}}"\\n')
cfg = load_config_text("\\n".join(parts) + "\\n" + strategy)
frame = pl.concat(frames).sort("ts_recv_ns", maintain_order=True)
del frames
arr = build_events(frame, [i.key for i in cfg.instruments])
del frame
n = arr.events.shape[0]
Runner(cfg, arr).feed(arr.events[:1000])  # compile / load the cache
base = rss_mib()
best = 1e9
for _ in range(3):
    r = Runner(cfg, arr, capacity=1 << 16)
    t = time.perf_counter()
    r.feed(arr.events)
    r.finish()
    best = min(best, time.perf_counter() - t)
trades = int(r.state.glob[0]["n_trades"])
print(json.dumps({{"symbols": n_sym, "events": n, "s": best, "trades": trades,
                  "events_mib": arr.events.nbytes / 2**20, "peak_mib": rss_mib()}}))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--symbols", default="1,2,5,10,20,50")
    args = ap.parse_args()
    base_rate = None
    print(f"{'symbols':>7} {'events':>12} {'M events/s':>11} {'vs 1 route':>10} {'trades':>7} "
          f"{'event array MiB':>15} {'peak RSS MiB':>12}")
    for n in (int(x) for x in args.symbols.split(",")):
        out = subprocess.run([sys.executable, "-c", PROBE.format(root=str(ROOT), n_sym=n,
                                                                 events=args.events)],
                             check=True, capture_output=True, text=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        rate = r["events"] / r["s"] / 1e6
        base_rate = base_rate or rate
        print(f"{n:>7} {r['events']:>12,} {rate:>11.1f} {rate / base_rate:>10.2f} "
              f"{r['trades']:>7,} {r['events_mib']:>15.0f} {r['peak_mib']:>12.0f}")


if __name__ == "__main__":
    main()
