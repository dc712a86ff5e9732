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
