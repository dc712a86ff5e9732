"""Regenerate the shipped sample data in ``data/samples/`` from ``../shared``.

Usage (from the repository root)::

    .venv/bin/python scripts/make_samples.py

Writes ``data/samples/binance_btcusdt_spot_usdm.parquet``: Binance BTCUSDT spot + USD-M
best bid/ask over the windows of sessions A (2023-04-05) and C (2024-08-08) where both
markets quote, validated, zstd level 19. Prints rows per venue and session, and the size.
"""

from __future__ import annotations

import sys
from pathlib import Path

import polars as pl

from arbkit.data.importers import import_bbo
from arbkit.data.load import manifest_hash, read_quotes
from arbkit.data.validate import validate_quotes

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "data" / "samples" / "binance_btcusdt_spot_usdm.parquet"


def build() -> pl.DataFrame:
    """Sessions A and C, BTCUSDT spot + usdm, overlap only, sorted by (ts_recv_ns, venue)."""
    df = pl.concat(
        [import_bbo(markets=("spot", "usdm"), symbol="BTCUSDT", session=s) for s in ("A", "C")]
    )
    validate_quotes(df, "import_bbo(sessions A+C)")  # fail before writing anything bad
    return df


def main() -> int:
    df = build()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    df.write_parquet(OUT, compression="zstd", compression_level=19, statistics=True)
    frame, report = read_quotes(OUT)
    summary = (
        frame.with_columns(pl.from_epoch("ts_recv_ns", time_unit="ns").alias("t"))
        .group_by(pl.col("t").dt.date().alias("date"), "venue")
        .agg(
            pl.len().alias("rows"),
            pl.col("t").min().alias("first"),
            pl.col("t").max().alias("last"),
        )
        .sort("date", "venue")
    )
    with pl.Config(tbl_rows=20, tbl_width_chars=200):
        print(summary)
    print(
        f"{OUT.relative_to(ROOT)}: {OUT.stat().st_size:,} bytes, {report.rows:,} rows, "
        f"{report.n_instruments} instruments, crossed {report.crossed_rows}, "
        f"manifest {manifest_hash(OUT)[:16]}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
