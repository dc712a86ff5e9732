"""Data benchmark: catalog → event arrays, and memory while streaming a big catalog.

1. Writes 10M L1 quote rows (two venues, ~70 h) into a catalog, then, each in a fresh
   process: the catalog read into one event array (``CatalogEvents.whole``), the day-by-day
   read (``CatalogEvents.chunks``, buffers reused), and for comparison the in-memory frame
   path (``build_events``). Prints rows/s (target: >= 20 M rows/s).
2. Writes a catalog 3x larger (30M rows, ~9 days) and runs a streamed backtest over it in a
   fresh process, printing its peak RSS above the process's baseline next to the size the
   whole event array would have (the "memory allowed" is a third of that).

    .venv/bin/python benchmarks/bench_data.py [--rows 10000000] [--big-factor 3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PROBE = """
import json, sys, time, resource
sys.path.insert(0, {root!r})
def rss_mib():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM"):
            return int(line.split()[1]) / 1024
from arbkit.config import load_config_text
from arbkit.data.stream import CatalogEvents
from benchmarks.bench_core import CONFIG
import polars as pl
cfg = load_config_text(CONFIG)
# load the compiled kernels (numba cache, ~0.5 s per kernel and signature in a fresh process:
# the warm start bench_core.py reports) on a tiny frame through the same code path, so what
# is timed below is the data path
from arbkit.data.events import build_events
from arbkit.data.synth import generate_l1_events_fast
tiny = generate_l1_events_fast(1000)
tiny.write_parquet("/tmp/arbkit-bench-tiny.parquet")
build_events(pl.read_parquet("/tmp/arbkit-bench-tiny.parquet"), [i.key for i in cfg.instruments])
ce = CatalogEvents({cat!r}, cfg)
base = rss_mib()
mode = {mode!r}
t = time.perf_counter()
if mode == "whole":
    n = ce.whole().events.shape[0]
elif mode == "chunks":
    n = sum(a.events.shape[0] for a in ce.chunks())
elif mode == "frame":
    from arbkit.data.events import build_events
    frame = pl.concat([pl.read_parquet(p.path) for ps in ce.parts.values() for p in ps])
    t = time.perf_counter()
    n = build_events(frame, ce.keys).events.shape[0]
elif mode == "stream_backtest":
    import arbkit
    res = arbkit.backtest({cat!r}, cfg, stream=True)
    n = res.meta["events"]
dt = time.perf_counter() - t
print(json.dumps({{"mode": mode, "rows": n, "s": dt, "peak_mib": rss_mib() - base}}))
"""


def probe(cat: Path, mode: str) -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE.format(root=str(ROOT), cat=str(cat),
                                                             mode=mode)],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def write_catalog(cat: Path, rows: int, seed: int = 7) -> float:
    from arbkit.data.catalog import Catalog
    from arbkit.data.synth import generate_l1_events_fast

    t = time.perf_counter()
    step = 5_000_000
    offset = 0
    c = Catalog(cat)
    for lo in range(0, rows, step):
        df = generate_l1_events_fast(min(step, rows - lo), seed=seed + lo)
        import polars as pl

        shift = offset - int(df["ts_recv_ns"][0]) + 1_704_067_200_000_000_000
        df = df.with_columns(pl.col("ts_recv_ns") + shift, pl.col("ts_exch_ns") + shift)
        offset = int(df["ts_recv_ns"][-1]) - 1_704_067_200_000_000_000 + 1_000_000_000
        c.add_quotes(df)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--big-factor", type=int, default=3)
    ap.add_argument("--keep", type=Path, default=None)
    args = ap.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="arbkit-bench-data-"))
    cat = work / "cat"
    if not cat.exists():
        print(f"writing {args.rows:,} rows into {cat}: {write_catalog(cat, args.rows):.1f} s")
    size = sum(f.stat().st_size for f in cat.rglob("*.parquet")) / 2**20
    print(f"catalog: {size:,.0f} MiB on disk (LZ4 Parquet)")
    for mode in ("whole", "chunks", "frame"):
        best = min((probe(cat, mode) for _ in range(3)), key=lambda r: r["s"])
        print(f"{mode:7s}: {best['rows']:,} rows in {best['s']:.3f} s = "
              f"{best['rows'] / best['s'] / 1e6:.1f} M rows/s (best of 3, fresh processes); "
              f"peak +{best['peak_mib']:.0f} MiB")
    big = work / "big"
    n_big = args.rows * args.big_factor
    if not big.exists():
        print(f"writing {n_big:,} rows into {big}: {write_catalog(big, n_big, seed=11):.1f} s")
    for c, n in ((cat, args.rows), (big, n_big)):
        r = probe(c, "stream_backtest")
        full = n * 64 / 2**20
        print(f"streamed backtest over {r['rows']:,} events: {r['s']:.1f} s "
              f"({r['rows'] / r['s'] / 1e6:.1f} M events/s incl. reading); peak RSS above "
              f"baseline {r['peak_mib']:.0f} MiB; the whole event array would be {full:,.0f} MiB")


if __name__ == "__main__":
    main()
