"""The two I/O facts docs/benchmarks.md leans on for the data path:

1. Parquet codecs: reading 10M L1 quote rows (6 numeric columns) with polars and pyarrow, for
   zstd, lz4, snappy and none (best of 3 in one process, so allocations are warm).
2. Fresh memory: the cost of touching a new 640 MiB array (the size of 10M events), with and
   without numpy's transparent-huge-page advice, each in a fresh process.

    .venv/bin/python benchmarks/bench_io.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from arbkit.data.synth import generate_l1_events_fast  # noqa: E402

COLS = ["ts_recv_ns", "ts_exch_ns", "bid_px", "bid_qty", "ask_px", "ask_qty"]
TOUCH = """
import time, numpy as np
np._core.multiarray._set_madvise_hugepage({hp})
t = time.perf_counter(); x = np.empty(80_000_000); x[:] = 1.0
print(time.perf_counter() - t)
"""


def best(fn, n: int = 3) -> float:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return min(out)


def main() -> None:
    df = generate_l1_events_fast(10_000_000)
    work = Path(tempfile.mkdtemp(prefix="arbkit-bench-io-"))
    for codec in ("zstd", "lz4", "snappy", "uncompressed"):
        f = work / f"q_{codec}.parquet"
        df.write_parquet(f, compression=codec)
        t_pl = best(lambda f=f: pl.read_parquet(f, columns=COLS))
        t_pa = best(lambda f=f: pq.read_table(f, columns=COLS))
        print(f"{codec:12s} {f.stat().st_size / 2**20:6.0f} MiB  polars {t_pl:.3f} s "
              f"({10 / t_pl:5.1f} M rows/s)  pyarrow {t_pa:.3f} s ({10 / t_pa:5.1f} M rows/s)")
    for hp in (False, True):
        s = float(subprocess.run([sys.executable, "-c", TOUCH.format(hp=hp)], check=True,
                                 capture_output=True, text=True).stdout)
        print(f"touch a fresh 640 MiB array, huge-page advice {'on ' if hp else 'off'}: {s:.3f} s")


if __name__ == "__main__":
    main()
