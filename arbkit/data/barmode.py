"""Bar mode: OHLCV trade bars and bid/ask quote bars drive the same event loop as quotes.

Each bar becomes one quote event **at its close** (``ts_recv_ns = ts_exch_ns =
ts_close_ns``): the close is the last thing the bar says, and it is only known when the bar
ends, so no decision can use it earlier.

- Quote bars: the book at the close is ``bid_close``/``ask_close`` with the bar's last sizes
  (``bid_qty``/``ask_qty``; ``bars.quote_size`` where the source has none).
- Trade bars have no book at all. The close is taken as the mid and an **assumed** half
  spread (``bars.half_spread_bps``, required: there is no neutral default) is put around it;
  each side offers ``bars.participation`` x the bar's volume. Bars with zero volume carry no
  price discovery (Binance.US writes the previous close again): they are dropped, so a quiet
  market ages the quote instead of refreshing it.

This is much coarser than book data: an order never fills at the close its decision saw,
but at the first bar of its instrument closing at or after its arrival (core/orders.py
``match_bar``), intra-bar moves are invisible, and every spread seen is an upper bound on what
was tradable.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from arbkit.errors import ConfigError


@dataclass(frozen=True)
class BarQuotes:
    """Quotes made from bars, and what was dropped."""

    frame: pl.DataFrame
    dropped_zero_volume: int


def quote_bars_to_quotes(qb: pl.DataFrame, *, quote_size: float | None) -> pl.DataFrame:
    """Validated ``quote_bars`` -> canonical quotes at each bar's close."""
    size = (lambda c: pl.col(c).fill_null(quote_size)) if quote_size is not None else pl.col
    missing = qb.filter(pl.col("bid_qty").is_null() | pl.col("ask_qty").is_null()).height
    if missing and quote_size is None:
        raise ConfigError(f"{missing} quote bars have no size at the close; set "
                          "[bars] quote_size (base units offered at each side) to use them")
    return qb.select(
        pl.col("ts_close_ns").alias("ts_recv_ns"), pl.col("ts_close_ns").alias("ts_exch_ns"),
        "venue", "symbol", pl.col("bid_close").alias("bid_px"), size("bid_qty").alias("bid_qty"),
        pl.col("ask_close").alias("ask_px"), size("ask_qty").alias("ask_qty"),
    )


def trade_bars_to_quotes(bars: pl.DataFrame, *, half_spread_bps: float | None,
                         participation: float) -> BarQuotes:
    """Validated ``bars`` -> canonical quotes around each traded bar's close."""
    if half_spread_bps is None:
        raise ConfigError("trade bars (OHLCV) carry no bid/ask: set [bars] half_spread_bps, the "
                          "half spread to assume around each close (an assumption, reported as "
                          "such); or use quote bars or book data")
    traded = bars.filter(pl.col("volume") > 0)
    h = half_spread_bps * 1e-4
    size = (pl.col("volume") * participation)
    frame = traded.select(
        pl.col("ts_close_ns").alias("ts_recv_ns"), pl.col("ts_close_ns").alias("ts_exch_ns"),
        "venue", "symbol", (pl.col("close") * (1.0 - h)).alias("bid_px"), size.alias("bid_qty"),
        (pl.col("close") * (1.0 + h)).alias("ask_px"), size.alias("ask_qty"),
    )
    return BarQuotes(frame, bars.height - traded.height)


def detect_kind(columns: list[str]) -> str:
    """Which table a frame is, from its columns: quotes, quote_bars or bars."""
    cols = set(columns)
    if {"bid_close", "ask_close"} <= cols:
        return "quote_bars"
    if {"open", "high", "low", "close", "volume"} <= cols:
        return "bars"
    return "quotes"
