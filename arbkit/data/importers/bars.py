"""Bar importers: ccxt-style OHLCV CSVs, the Binance.US/Kraken OHLCV Parquet and Lean's
quote and trade bars. Every bar is stamped at its open by these sources; the importer adds
``ts_close_ns = ts_open_ns + interval``, the time the bar is known (no look-ahead)."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from arbkit.data.importers.common import (
    SHARED_REAL,
    check_unit,
    datetime_to_ns,
    guess_unit,
    interval_ns,
    need_columns,
    need_file,
    read_csv,
    read_parquet,
    to_ns,
)
from arbkit.data.tables import BARS, QUOTE_BARS
from arbkit.errors import DataError

_OHLCV = ("open", "high", "low", "close", "volume")


def _with_close(frame: pl.DataFrame, step_ns: int) -> pl.DataFrame:
    return frame.with_columns((pl.col("ts_open_ns") + step_ns).alias("ts_close_ns"))


def _select(frame: pl.DataFrame, columns: tuple) -> pl.DataFrame:
    """Canonical columns in the source's row order (never sorted here: a source whose bars go
    backwards in time must fail validation, not be silently repaired)."""
    names = [c.name for c in columns if c.name in frame.columns]
    return frame.select(names)


def read_ohlcv_csv(path: str | Path, *, venue: str, symbol: str, interval: str,
                   ts_column: str = "timestamp", ts_unit: str | None = None) -> pl.DataFrame:
    """A ccxt-style OHLCV CSV (``timestamp,open,high,low,close,volume``, optionally gzipped).

    ``timestamp`` is the bar open: epoch numbers (unit guessed from their size unless
    ``ts_unit`` is given) or text (``2025-05-25 23:30:00``, taken as UTC).

    Examples
    --------
    >>> bars = read_ohlcv_csv(SHARED_REAL / "binance-upbit-btc-2025" /
    ...     "binance_BTCUSDT_5m_20250525-20250823.csv.gz", venue="binance",
    ...     symbol="BTC/USDT", interval="5m")  # doctest: +SKIP
    """
    p = need_file(path, "ohlcv csv")
    raw = read_csv(p)
    missing = [c for c in (ts_column, *_OHLCV) if c not in raw.columns]
    if missing:
        raise DataError(f"{p}: columns={raw.columns}: missing {missing}; an OHLCV CSV has "
                        f"{ts_column},open,high,low,close,volume (rename the columns, or use "
                        "`arbkit data import csv --map`)")
    ts = raw.get_column(ts_column)
    unit = "iso" if ts.dtype == pl.String else (ts_unit or guess_unit(ts))
    check_unit(ts, unit, where=f"{p}: column {ts_column!r}")
    frame = raw.select(
        to_ns(pl.col(ts_column), unit, name="ts_open_ns"),
        pl.lit(venue).alias("venue"), pl.lit(symbol).alias("symbol"),
        *(pl.col(c).cast(pl.Float64) for c in _OHLCV),
    )
    return _select(_with_close(frame, interval_ns(interval)), BARS.columns)


def read_binanceus_kraken(path: str | Path | None = None, *, interval: str = "1m",
                          symbols: list[str] | None = None) -> pl.DataFrame:
    """The shared Binance.US/Kraken ``ohlcv.parquet`` (one interval) as ``bars``.

    Venue ids stay ``binanceus`` and ``kraken``; symbols stay the exchange's own
    (``BTCUSDC``, ``XBTUSDC``: Kraken calls bitcoin XBT).
    """
    p = need_file(path or SHARED_REAL / "binanceus-kraken-ohlcv-202303" / "ohlcv.parquet",
                  "binanceus-kraken import")
    raw = read_parquet(p)
    need_columns(raw, ["interval", "venue", "symbol", "bar_start_utc", *_OHLCV], p,
                 "binanceus-kraken-ohlcv-202303/ohlcv.parquet file")
    raw = raw.filter(pl.col("interval") == interval)
    if symbols:
        raw = raw.filter(pl.col("symbol").is_in(symbols))
    if raw.height == 0:
        raise DataError(f"{p}: no bars for interval={interval!r} symbols={symbols!r}; the file "
                        "holds 1m (binanceus, kraken XBTUSDC), 5m and 15m (kraken)")
    frame = raw.with_columns(datetime_to_ns(raw, "bar_start_utc", "ts_open_ns"))
    return _select(_with_close(frame, interval_ns(interval)), BARS.columns)


def _lean_venue(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns((pl.col("venue") + "_" + pl.col("market")).alias("venue"))


def read_lean_quote_bars(path: str | Path | None = None) -> pl.DataFrame:
    """Lean 1-minute quote bars (``quote_bars_1m.parquet``) as ``quote_bars``.

    Venues become ``<venue>_<market>`` (``bybit_spot``, ``binance_coinm_perp``); sizes are in
    the file's ``size_unit`` (contracts for the inverse perps: see its README).
    """
    p = need_file(path or SHARED_REAL / "lean-1m-bars-20221213" / "quote_bars_1m.parquet",
                  "lean quote bars import")
    raw = read_parquet(p)
    need_columns(raw, ["venue", "market", "symbol", "bar_start_utc", "last_bid_size",
                       "last_ask_size"], p, "Lean quote_bars_1m.parquet file")
    raw = _lean_venue(raw)
    frame = raw.with_columns(datetime_to_ns(raw, "bar_start_utc", "ts_open_ns")).rename(
        {"last_bid_size": "bid_qty", "last_ask_size": "ask_qty"})
    return _select(_with_close(frame, interval_ns("1m")), QUOTE_BARS.columns)


def read_lean_trade_bars(path: str | Path | None = None) -> pl.DataFrame:
    """Lean 1-minute trade bars (``trade_bars_1m.parquet``) as ``bars``."""
    p = need_file(path or SHARED_REAL / "lean-1m-bars-20221213" / "trade_bars_1m.parquet",
                  "lean trade bars import")
    raw = read_parquet(p)
    need_columns(raw, ["venue", "market", "symbol", "bar_start_utc", *_OHLCV], p,
                 "Lean trade_bars_1m.parquet file")
    raw = _lean_venue(raw)
    frame = raw.with_columns(datetime_to_ns(raw, "bar_start_utc", "ts_open_ns"))
    return _select(_with_close(frame, interval_ns("1m")), BARS.columns)
