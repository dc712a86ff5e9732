"""Tardis.dev CSV importers (``quotes``, ``book_snapshot_N``, ``incremental_book_L2``,
``trades``), gzipped or not. Tardis stamps are microseconds since the epoch: ``timestamp`` is
the exchange's time, ``local_timestamp`` the recorder's receive time. ``exchange`` becomes the
venue.

``incremental_book_L2`` rows carry absolute sizes (0 = delete) and an ``is_snapshot`` flag:
a run of snapshot rows after update rows starts a new book (Tardis writes one after every
reconnect), so the book is reset there. One quotes row is emitted per receive time, after all
rows of that time are applied, with the top ``n_levels`` of each side.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import polars as pl

from arbkit.data import schema
from arbkit.data.book_build import BookSide
from arbkit.data.importers.common import need_file, read_csv
from arbkit.errors import DataError

US = 1_000


def _read(path: str | Path, need: list[str], what: str) -> pl.DataFrame:
    p = need_file(path, f"tardis {what}")
    raw = read_csv(p)
    missing = [c for c in need if c not in raw.columns]
    if missing:
        raise DataError(f"{p}: columns={raw.columns[:10]}: missing {missing}; is this a "
                        f"Tardis {what} CSV?")
    return raw


def _times() -> list[pl.Expr]:
    return [(pl.col("local_timestamp").cast(pl.Int64) * US).alias("ts_recv_ns"),
            (pl.col("timestamp").cast(pl.Int64) * US).alias("ts_exch_ns"),
            pl.col("exchange").alias("venue"), pl.col("symbol").cast(pl.String)]


def read_quotes_csv(path: str | Path) -> tuple[pl.DataFrame, int]:
    """Tardis ``quotes`` -> canonical quotes. Returns (frame, rows dropped with an empty side:
    no best bid or ask means no quote, which is not tradable and not a price)."""
    raw = _read(path, ["exchange", "symbol", "timestamp", "local_timestamp", "bid_price",
                       "bid_amount", "ask_price", "ask_amount"], "quotes")
    frame = raw.select(*_times(), pl.col("bid_price").cast(pl.Float64).alias("bid_px"),
                       pl.col("bid_amount").cast(pl.Float64).alias("bid_qty"),
                       pl.col("ask_price").cast(pl.Float64).alias("ask_px"),
                       pl.col("ask_amount").cast(pl.Float64).alias("ask_qty"))
    kept = frame.drop_nulls(["bid_px", "ask_px"])
    return kept, frame.height - kept.height


_SNAP = re.compile(r"^(asks|bids)\[(\d+)\]\.(price|amount)$")


def read_book_snapshot_csv(path: str | Path, n_levels: int | None = None) -> pl.DataFrame:
    """Tardis ``book_snapshot_N`` (``asks[0].price, asks[0].amount, bids[0]...``) -> quotes
    with depth (levels that are empty in the source become NaN, "no level")."""
    raw = _read(path, ["exchange", "symbol", "timestamp", "local_timestamp",
                       "bids[0].price", "asks[0].price"], "book_snapshot")
    depth = 1 + max(int(m.group(2)) for c in raw.columns if (m := _SNAP.match(c)))
    n = min(depth, n_levels or depth)
    cols = _times()
    for lvl in range(n):
        for side, src in (("bid", "bids"), ("ask", "asks")):
            px, qty = schema.level_columns(side, lvl)
            cols += [pl.col(f"{src}[{lvl}].price").cast(pl.Float64).fill_null(np.nan).alias(px),
                     pl.col(f"{src}[{lvl}].amount").cast(pl.Float64).fill_null(0.0).alias(qty)]
    frame = raw.select(cols)
    # a snapshot with an empty best level is not a quote
    frame = frame.filter(pl.col("bid_px").is_not_nan() & pl.col("ask_px").is_not_nan())
    return frame.select(schema.quote_column_order(n))


def read_trades_csv(path: str | Path) -> pl.DataFrame:
    """Tardis ``trades`` -> canonical trades (side buy +1, sell -1, unknown 0)."""
    raw = _read(path, ["exchange", "symbol", "timestamp", "local_timestamp", "id", "side",
                       "price", "amount"], "trades")
    side = (pl.when(pl.col("side") == "buy").then(1)
            .when(pl.col("side") == "sell").then(-1).otherwise(0).cast(pl.Int8))
    return raw.select(*_times(), pl.col("price").cast(pl.Float64),
                      pl.col("amount").cast(pl.Float64).alias("qty"), side.alias("side"),
                      pl.col("id").cast(pl.String).alias("trade_id"))


def read_incremental_l2_csv(path: str | Path, n_levels: int = 5) -> pl.DataFrame:
    """Tardis ``incremental_book_L2`` -> quotes with ``n_levels`` of depth (see module doc)."""
    raw = _read(path, ["exchange", "symbol", "timestamp", "local_timestamp", "is_snapshot",
                       "side", "price", "amount"], "incremental_book_L2")
    if n_levels < 1:
        raise DataError(f"tardis incremental_book_L2: n_levels={n_levels}; pass 1 or more")
    out = []
    for (venue, symbol), g in raw.group_by("exchange", "symbol", maintain_order=True):
        out.append(_replay(g, str(venue), str(symbol), n_levels))
    return pl.concat(out).sort("ts_recv_ns", maintain_order=True)


def _replay(g: pl.DataFrame, venue: str, symbol: str, n: int) -> pl.DataFrame:
    recv = g["local_timestamp"].cast(pl.Int64).to_numpy() * US
    exch = g["timestamp"].cast(pl.Int64).to_numpy() * US
    snap = g["is_snapshot"].cast(pl.String).str.to_lowercase().is_in(["true", "1"]).to_numpy()
    is_bid = (g["side"] == "bid").to_numpy()
    price = g["price"].cast(pl.Float64).to_numpy()
    qty = g["amount"].cast(pl.Float64).to_numpy()
    bids, asks = BookSide(True), BookSide(False)
    rows: list[list[float]] = []
    ts_out: list[int] = []
    exch_out: list[int] = []
    prev_snap = False
    k = 0
    while k < len(recv):
        if snap[k] and not prev_snap:
            bids.reset()
            asks.reset()
        end = k
        while end < len(recv) and recv[end] == recv[k] and snap[end] == snap[k]:
            (bids if is_bid[end] else asks).set(float(price[end]), float(qty[end]))
            end += 1
        prev_snap = bool(snap[k])
        row: list[float] = []
        ok_b = bids.top(n, row)
        ok_a = asks.top(n, row)
        if ok_b and ok_a and not (end < len(recv) and snap[end] and prev_snap):
            rows.append(row)
            ts_out.append(int(recv[k]))
            exch_out.append(int(exch[end - 1]))
        k = end
    arr = np.array(rows, dtype=np.float64).reshape(len(rows), 4 * n)
    cols: dict[str, object] = {"ts_recv_ns": pl.Series(ts_out, dtype=pl.Int64),
                               "ts_exch_ns": pl.Series(exch_out, dtype=pl.Int64),
                               "venue": [venue] * len(rows), "symbol": [symbol] * len(rows)}
    for lvl in range(n):
        for side, base in (("bid", 0), ("ask", 2 * n)):
            px, q = schema.level_columns(side, lvl)
            cols[px], cols[q] = arr[:, base + 2 * lvl], arr[:, base + 2 * lvl + 1]
    return pl.DataFrame(cols).select(schema.quote_column_order(n))
