"""Canonical table schemas.

All timestamps are int64 nanoseconds since the Unix epoch, UTC. Prices are in the
instrument's quote currency; quantities in base units (or contracts for inverse perps).

``quotes``: one row per book update of one instrument. Level 0 is the best bid/ask
(``bid_px``/``bid_qty``/``ask_px``/``ask_qty``). Optional depth columns ``bid_px_1``,
``bid_qty_1``, ``ask_px_1``, ``ask_qty_1`` … ``*_{N-1}`` carry the next levels of a top-N
snapshot; a NaN level means "no level there". A file without them is L1 only.
"""

from __future__ import annotations

import re

import polars as pl

QUOTE_KEY_COLUMNS: dict[str, pl.DataType] = {
    "ts_recv_ns": pl.Int64(),
    "venue": pl.String(),
    "symbol": pl.String(),
}
QUOTE_PRICE_COLUMNS: dict[str, pl.DataType] = {
    "bid_px": pl.Float64(),
    "bid_qty": pl.Float64(),
    "ask_px": pl.Float64(),
    "ask_qty": pl.Float64(),
}
QUOTE_OPTIONAL_COLUMNS: dict[str, pl.DataType] = {
    # exchange timestamp; null where the source has none (one timeline then)
    "ts_exch_ns": pl.Int64(),
}
QUOTE_REQUIRED: dict[str, pl.DataType] = {**QUOTE_KEY_COLUMNS, **QUOTE_PRICE_COLUMNS}

_DEPTH_RE = re.compile(r"^(bid|ask)_(px|qty)_(\d+)$")

# A nanosecond epoch timestamp after 2001-09-09 is >= 1e18; seconds, ms and µs stamps of any
# date this century are orders of magnitude smaller, which is how unit mistakes are caught.
NS_MIN = 1_000_000_000_000_000_000
# 2100-01-01T00:00:00Z: anything later is a unit or corruption fault, not a real stamp.
NS_MAX = 4_102_444_800_000_000_000

# Column names other tools use for the canonical ones (lower case). Only used to suggest a
# rename in error messages: a file is never silently remapped.
QUOTE_ALIASES: dict[str, tuple[str, ...]] = {
    "ts_recv_ns": ("timestamp", "ts", "time", "ts_recv", "recv_ts", "local_ts", "local_ts_ns",
                   "local_timestamp", "receive_time", "ts_ns", "timestamp_ns", "ts_event"),
    "ts_exch_ns": ("ts_exch", "exch_ts", "exchange_ts", "exchange_time", "event_ts",
                   "event_ts_ms", "txn_ts_ms", "transaction_time"),
    "venue": ("exchange", "market", "source", "exchange_id"),
    "symbol": ("instrument", "ticker", "pair", "sym", "instrument_id", "market_symbol"),
    "bid_px": ("bid", "bid_price", "best_bid", "bidprice", "bid_px_0", "bid_0_px", "bids"),
    "bid_qty": ("bid_size", "bid_sz", "bid_amount", "bid_volume", "bidsize", "bid_qty_0",
                "bid_quantity", "best_bid_qty"),
    "ask_px": ("ask", "ask_price", "best_ask", "askprice", "ask_px_0", "ask_0_px", "asks",
               "offer", "offer_price"),
    "ask_qty": ("ask_size", "ask_sz", "ask_amount", "ask_volume", "asksize", "ask_qty_0",
                "ask_quantity", "best_ask_qty", "offer_size"),
}


def quote_column_order(n_levels: int) -> list[str]:
    """Canonical column order of a quotes table with ``n_levels`` book levels."""
    head = ["ts_recv_ns", "ts_exch_ns", "venue", "symbol"]
    return head + list(QUOTE_PRICE_COLUMNS) + depth_columns(n_levels)


def is_depth_column(name: str) -> bool:
    """True for a wide depth column of level >= 1, such as ``bid_px_3``."""
    m = _DEPTH_RE.match(name)
    return m is not None and int(m.group(3)) >= 1


def depth_levels(columns: list[str]) -> int:
    """Number of book levels a quotes table carries (1 for L1 only)."""
    top = 0
    for c in columns:
        m = _DEPTH_RE.match(c)
        if m:
            top = max(top, int(m.group(3)))
    return top + 1


def depth_columns(n_levels: int) -> list[str]:
    """Wide column names for levels 1..n_levels-1 (level 0 uses the plain names)."""
    cols: list[str] = []
    for lvl in range(1, n_levels):
        for side in ("bid", "ask"):
            cols += [f"{side}_px_{lvl}", f"{side}_qty_{lvl}"]
    return cols


def level_columns(side: str, lvl: int) -> tuple[str, str]:
    """(price column, qty column) for one side and level."""
    if lvl == 0:
        return f"{side}_px", f"{side}_qty"
    return f"{side}_px_{lvl}", f"{side}_qty_{lvl}"
