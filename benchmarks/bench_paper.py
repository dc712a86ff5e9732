"""Paper sessions at scale: receive→decision latency, sustained events/s and memory.

A paper session (``arbkit.runtime.node.PaperNode``: Redis journal, kernel, recording,
checkpoints to the results store) fed by the deterministic replay source (no network, so the
figures are the session's own, not the emulator's), for 2, 10 and 50 routes (synthetic
two-venue books, one route per symbol). For each: the kernel call per event (p50/p99), the
whole batch path per event (journal write + kernel + recording: p50/p99), events/s sustained,
and RSS sampled through the run (growth after warm-up).

    bash scripts/services.sh && source .services/env
    .venv/bin/python benchmarks/bench_paper.py [--routes 2,10,50] [--minutes 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SYMBOLS = [f"S{k:02d}" for k in range(60)]


def rss_mib() -> float:
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run(n_routes: int, minutes: float, redis: str, tmp: Path) -> dict:
    from arbkit.data.universe import generate_universe
    from arbkit.engine.backtest import prepare
    from arbkit.runtime import node as node_mod
    from arbkit.runtime.node import NodeOptions, PaperNode
    from arbkit.runtime.replay import ReplaySource
    from arbkit.store import open_store
    from arbkit.store.redis import SessionStore

    per_symbol = int(minutes * 60 * 40)
    spec = {s: "normal" for s in SYMBOLS[:n_routes]}
    df, cfg = generate_universe(spec, n_events=per_symbol, depth=1)
    prep = prepare(df, cfg)
    name = f"bench-{n_routes}-{int(time.time())}"
    store = SessionStore(redis, name)
    results = open_store(path=tmp / f"r{n_routes}.duckdb")
    rss: list[tuple[int, float]] = []
    batch_us: list[float] = []

    class Timed(PaperNode):
        def _feed(self, rows: np.ndarray) -> None:  # the whole path per event
            t = time.perf_counter()
            super()._feed(rows)
            batch_us.append((time.perf_counter() - t) * 1e6 / rows.shape[0])
            if self.seq // 20_000 != (self.seq - rows.shape[0]) // 20_000:
                rss.append((self.seq, rss_mib()))

    node = Timed(cfg, store=store, results=results, record_dir=tmp / name,
                 clock=time.time_ns,
                 source_factory=lambda q, skip: ReplaySource(q, prep.arrays, skip, chunk=64),
                 options=NodeOptions(session=name, checkpoint_s=2.0, heartbeat_ms=None,
                                     max_batch=1))
    t0 = time.perf_counter()
    rep = asyncio.run(node.run())
    wall = time.perf_counter() - t0
    node.finish()
    store.clean(force=True)
    results.close()
    del node_mod
    warm = [m for s, m in rss if s >= len(prep.arrays.events) // 5]
    return {"routes": n_routes, "events": rep.events, "wall_s": wall,
            "events_per_s": rep.events / wall,
            "kernel_p50_us": float(np.percentile(rep.decide_us, 50)),
            "kernel_p99_us": float(np.percentile(rep.decide_us, 99)),
            "path_p50_us": float(np.percentile(batch_us, 50)),
            "path_p99_us": float(np.percentile(batch_us, 99)),
            "rss_warm_mib": warm[0] if warm else float("nan"),
            "rss_end_mib": rss[-1][1] if rss else float("nan"),
            "trades": rep.trades}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--routes", default="2,10,50")
    ap.add_argument("--minutes", type=float, default=10.0)
    args = ap.parse_args()
    redis = os.environ.get("ARBKIT_TEST_REDIS_URL") or os.environ.get("ARBKIT_REDIS_URL")
    if not redis:
        raise SystemExit("start the services: bash scripts/services.sh && source .services/env")
    with tempfile.TemporaryDirectory() as tmp:
        for n in (int(x) for x in args.routes.split(",")):
            r = run(n, args.minutes, redis, Path(tmp))
            growth = (r["rss_end_mib"] / r["rss_warm_mib"] - 1) * 100
            print(f"{r['routes']:3d} routes: {r['events']:,} events in {r['wall_s']:.1f} s = "
                  f"{r['events_per_s']:,.0f} events/s, one event per batch; kernel call "
                  f"p50/p99 {r['kernel_p50_us']:.1f}/{r['kernel_p99_us']:.1f} µs; whole path "
                  f"(journal + kernel + recording) p50/p99 {r['path_p50_us']:.1f}/"
                  f"{r['path_p99_us']:.1f} µs; RSS {r['rss_warm_mib']:.0f} → "
                  f"{r['rss_end_mib']:.0f} MiB after warm-up ({growth:+.1f}%); "
                  f"{r['trades']} round trips", flush=True)


if __name__ == "__main__":
    main()
