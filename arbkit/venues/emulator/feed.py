"""What is replayed: the recorded rows of each market, as tapes indexed by row.

Each tape holds one stream's columns as numpy arrays sorted by the time the row becomes
visible (``ts_recv_ns`` for quotes and trades, ``ts_close_ns`` for bars, ``ts_ns`` for
funding). ``visible(now_ns)`` is the number of rows at or before a data time: the emulator
never shows a row before its time.

Book update ids: the book after quotes row ``i`` has id ``FIRST_UPDATE_ID + i + 1`` (the
empty book before row 0 has ``FIRST_UPDATE_ID``). REST ``lastUpdateId``, the ``@depth``
diffs' ``U``/``u`` and ``bookTicker``'s ``u`` all use it, so a client that syncs a REST
snapshot with the diff stream (Binance's documented recipe, which ccxt follows) rebuilds
exactly the replayed book.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from arbkit.data import schema
from arbkit.data.catalog import Catalog, Selection
from arbkit.data.tables import validate_any
from arbkit.errors import ConfigError, DataError
from arbkit.venues.emulator.config import MarketFeed, Source

FIRST_UPDATE_ID = 1_000_000
NS_PER_MS = 1_000_000
ZERO = "0.00000000"

Level = tuple[str, str]  # (price, qty) as Binance writes them


def fmt(x: float) -> str:
    """A decimal as Binance spot writes it: fixed point, 8 places (``"42000.10000000"``)."""
    return f"{x:.8f}"


def _exch_ms(frame: pl.DataFrame) -> np.ndarray:
    """Exchange time in ms, the receive time where the source has none."""
    recv = frame.get_column("ts_recv_ns")
    exch = frame.get_column("ts_exch_ns") if "ts_exch_ns" in frame.columns else recv
    return (exch.fill_null(recv).to_numpy() // NS_PER_MS).astype(np.int64)


class QuoteTape:
    """Book rows of one market: the top N levels of each side per row."""

    def __init__(self, frame: pl.DataFrame) -> None:
        self.ts_ns = frame.get_column("ts_recv_ns").to_numpy().astype(np.int64)
        self.event_ms = _exch_ms(frame)
        self.levels = schema.depth_levels(frame.columns)
        self._sides = {side: self._side_arrays(frame, side) for side in ("bid", "ask")}

    def _side_arrays(self, frame: pl.DataFrame, side: str) -> tuple[np.ndarray, np.ndarray]:
        cols = [schema.level_columns(side, lvl) for lvl in range(self.levels)]
        px = np.column_stack([frame.get_column(p).to_numpy() for p, _ in cols])
        qty = np.column_stack([frame.get_column(q).to_numpy() for _, q in cols])
        return px.astype(np.float64), qty.astype(np.float64)

    def __len__(self) -> int:
        return len(self.ts_ns)

    def visible(self, now_ns: int) -> int:
        return int(np.searchsorted(self.ts_ns, now_ns, side="right"))

    @staticmethod
    def update_id(i: int) -> int:
        """Book id after row ``i`` (``i = -1``: the empty book before the first row)."""
        return FIRST_UPDATE_ID + i + 1

    def side(self, i: int, side: str) -> list[Level]:
        """The levels of row ``i`` from the touch outwards (NaN or zero-size levels skipped)."""
        if i < 0:
            return []
        px, qty = self._sides[side]
        return [(fmt(p), fmt(q)) for p, q in zip(px[i], qty[i])
                if np.isfinite(p) and np.isfinite(q) and q > 0]

    def top(self, i: int) -> tuple[float, float, float, float]:
        """(bid_px, bid_qty, ask_px, ask_qty) of row ``i``."""
        (bp, bq), (ap, aq) = self._sides["bid"], self._sides["ask"]
        return float(bp[i, 0]), float(bq[i, 0]), float(ap[i, 0]), float(aq[i, 0])


def diff_levels(old: list[Level], new: list[Level]) -> list[list[str]]:
    """Levels of ``new`` that are new or resized, and the gone ones of ``old`` at size 0."""
    before = dict(old)
    after = dict(new)
    out = [[p, q] for p, q in new if before.get(p) != q]
    return out + [[p, ZERO] for p in before if p not in after]


class TradeTape:
    """Trade prints of one market."""

    def __init__(self, frame: pl.DataFrame) -> None:
        self.ts_ns = frame.get_column("ts_recv_ns").to_numpy().astype(np.int64)
        self.time_ms = _exch_ms(frame)
        self.price = frame.get_column("price").to_numpy().astype(np.float64)
        self.qty = frame.get_column("qty").to_numpy().astype(np.float64)
        self.side = frame.get_column("side").to_numpy().astype(np.int8)
        self.ids = self._ids(frame)

    @staticmethod
    def _ids(frame: pl.DataFrame) -> np.ndarray:
        """Numeric venue ids if every row has one, else 1, 2, 3 ... (Binance ids are ints)."""
        if "trade_id" in frame.columns:
            ids = frame.get_column("trade_id").cast(pl.Int64, strict=False)
            if ids.null_count() == 0 and (ids.diff().drop_nulls() > 0).all():
                return ids.to_numpy().astype(np.int64)
        return np.arange(1, frame.height + 1, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.ts_ns)

    def visible(self, now_ns: int) -> int:
        return int(np.searchsorted(self.ts_ns, now_ns, side="right"))

    def rest_trade(self, i: int) -> dict:
        """Row ``i`` as ``/api/v3/trades`` lists it."""
        return {"id": int(self.ids[i]), "price": fmt(self.price[i]), "qty": fmt(self.qty[i]),
                "quoteQty": fmt(self.price[i] * self.qty[i]), "time": int(self.time_ms[i]),
                "isBuyerMaker": bool(self.side[i] == -1), "isBestMatch": True}

    def agg_trade(self, i: int) -> dict:
        """Row ``i`` as ``/api/v3/aggTrades`` lists it (one print per aggregate)."""
        tid = int(self.ids[i])
        return {"a": tid, "p": fmt(self.price[i]), "q": fmt(self.qty[i]), "f": tid, "l": tid,
                "T": int(self.time_ms[i]), "m": bool(self.side[i] == -1), "M": True}

    def ws_trade(self, i: int, symbol: str) -> dict:
        """Row ``i`` as the ``<symbol>@trade`` stream sends it."""
        ms = int(self.time_ms[i])
        return {"e": "trade", "E": ms, "s": symbol, "t": int(self.ids[i]),
                "p": fmt(self.price[i]), "q": fmt(self.qty[i]), "T": ms,
                "m": bool(self.side[i] == -1), "M": True}


class BarTape:
    """OHLCV bars of one market, at one base interval; coarser ones are aggregated."""

    def __init__(self, frame: pl.DataFrame) -> None:
        opens = frame.get_column("ts_open_ns").to_numpy().astype(np.int64)
        closes = frame.get_column("ts_close_ns").to_numpy().astype(np.int64)
        widths = np.unique(closes - opens)
        if len(widths) != 1:
            raise DataError(f"bars: {len(widths)} different bar intervals in one stream "
                            f"(ns: {widths[:4].tolist()}); the emulator serves one base "
                            "interval per market: split the stream or resample it")
        self.interval_ns = int(widths[0])
        count = frame.get_column("trade_count").fill_null(0).to_numpy().astype(np.int64)
        cols = [frame.get_column(c).to_numpy().astype(np.float64)
                for c in ("open", "high", "low", "close", "volume")]
        self._by_interval = {self.interval_ns: (opens, *cols, count)}

    def bars(self, interval_ns: int) -> tuple[np.ndarray, ...] | None:
        """(open_ns, o, h, l, c, v, count) at ``interval_ns``, None if not a multiple."""
        if interval_ns in self._by_interval:
            return self._by_interval[interval_ns]
        if interval_ns % self.interval_ns:
            return None
        opens, o, h, lo, c, v, n = self._by_interval[self.interval_ns]
        keys = opens // interval_ns
        _, first = np.unique(keys, return_index=True)
        last = np.append(first[1:], len(keys)) - 1
        agg = (keys[first] * interval_ns, o[first], np.maximum.reduceat(h, first),
               np.minimum.reduceat(lo, first), c[last], np.add.reduceat(v, first),
               np.add.reduceat(n, first))
        self._by_interval[interval_ns] = agg
        return agg

    def klines(self, interval_ns: int, now_ns: int, start_ms: int | None, end_ms: int | None,
               limit: int) -> list[list] | None:
        """Closed bars as ``/api/v3/klines`` rows (None: interval not servable)."""
        data = self.bars(interval_ns)
        if data is None:
            return None
        opens, o, h, lo, c, v, n = data
        ok = opens + interval_ns <= now_ns  # closed bars only: no look-ahead
        open_ms = opens // NS_PER_MS
        if start_ms is not None:
            ok &= open_ms >= start_ms
        if end_ms is not None:
            ok &= open_ms <= end_ms
        idx = np.flatnonzero(ok)
        idx = idx[:limit] if start_ms is not None else idx[-limit:]
        iv_ms = interval_ns // NS_PER_MS
        return [[int(open_ms[i]), fmt(o[i]), fmt(h[i]), fmt(lo[i]), fmt(c[i]), fmt(v[i]),
                 int(open_ms[i] + iv_ms - 1), fmt(v[i] * c[i]), int(n[i]), ZERO, ZERO, "0"]
                for i in idx]


class FundingTape:
    """Realised funding of one perpetual."""

    def __init__(self, frame: pl.DataFrame) -> None:
        self.ts_ns = frame.get_column("ts_ns").to_numpy().astype(np.int64)
        self.rate = frame.get_column("rate").to_numpy().astype(np.float64)
        self.mark = frame.get_column("mark_px").to_numpy().astype(np.float64)

    def rows(self, symbol: str, now_ns: int, start_ms: int | None, end_ms: int | None,
             limit: int) -> list[dict]:
        """Funding events at or before now as ``/fapi/v1/fundingRate`` lists them."""
        ms = self.ts_ns // NS_PER_MS
        ok = self.ts_ns <= now_ns
        if start_ms is not None:
            ok &= ms >= start_ms
        if end_ms is not None:
            ok &= ms <= end_ms
        idx = np.flatnonzero(ok)
        idx = idx[:limit] if start_ms is not None else idx[-limit:]
        return [{"symbol": symbol, "fundingTime": int(ms[i]), "fundingRate": fmt(self.rate[i]),
                 "markPrice": fmt(self.mark[i]) if np.isfinite(self.mark[i]) else ""}
                for i in idx]


@dataclass
class Market:
    """One served symbol: its config and the tapes loaded for it."""

    symbol: str
    base: str
    quote: str
    tick_size: str
    step_size: str
    min_notional: str
    quotes: QuoteTape | None = None
    trades: TradeTape | None = None
    bars: BarTape | None = None
    funding: FundingTape | None = None

    def first_ns(self) -> int | None:
        """The earliest data time of any tape (bars count from their open)."""
        firsts = [t.ts_ns[0] for t in (self.quotes, self.trades, self.funding)
                  if t is not None and len(t.ts_ns)]
        if self.bars is not None:
            firsts.append(self.bars.bars(self.bars.interval_ns)[0][0])
        return int(min(firsts)) if firsts else None

    def last_ns(self) -> int | None:
        """The latest data time of any tape (bars count from their close)."""
        lasts = [t.ts_ns[-1] for t in (self.quotes, self.trades, self.funding)
                 if t is not None and len(t.ts_ns)]
        if self.bars is not None:
            opens = self.bars.bars(self.bars.interval_ns)[0]
            if len(opens):
                lasts.append(opens[-1] + self.bars.interval_ns)
        return int(max(lasts)) if lasts else None


# --------------------------------------------------------------------------- loading


def read_source(kind: str, source: Source, catalog_root: str | Path | None,
                label: str) -> pl.DataFrame:
    """One stream's rows, validated: a frame as given, or read from the catalog."""
    if isinstance(source, pl.DataFrame):
        frame = validate_any(kind, source, label).frame
    else:
        sel = source if isinstance(source, Selection) else Selection(kind, *source)
        if sel.kind != kind:
            raise ConfigError(f"{label}: the selection {sel} is of kind {sel.kind!r}, "
                              f"expected {kind!r}")
        frame = Catalog(catalog_root).read_table(sel).frame
    streams = frame.select("venue", "symbol").unique(maintain_order=True)
    if streams.height != 1:
        names = ", ".join(f"{v}/{s}" for v, s in streams.head(4).iter_rows())
        raise DataError(f"{label}: {streams.height} streams ({names}); one market replays "
                        "one stream: filter the frame or narrow the selection")
    return frame


def load_market(feed: MarketFeed, catalog_root: str | Path | None) -> Market:
    """The tapes of one :class:`~arbkit.venues.emulator.config.MarketFeed`."""

    def tape(kind: str, source: Source | None, cls: type) -> Any:
        if source is None:
            return None
        return cls(read_source(kind, source, catalog_root, f"emulator {feed.symbol} {kind}"))

    return Market(symbol=feed.symbol, base=feed.base, quote=feed.quote,
                  tick_size=feed.tick_size, step_size=feed.step_size,
                  min_notional=feed.min_notional,
                  quotes=tape("quotes", feed.quotes, QuoteTape),
                  trades=tape("trades", feed.trades, TradeTape),
                  bars=tape("bars", feed.bars, BarTape),
                  funding=tape("funding", feed.funding, FundingTape))
