"""One encoder from a ccxt message to the catalog's quote row, shared by the recorder
(:mod:`arbkit.data.record`), the REST book poller (:mod:`arbkit.data.download`) and the
paper/live feeds (:mod:`arbkit.venues.feed`).

A :class:`Quote` is one observation of a book: the touch, optional deeper levels, arbkit's own
receive time and the venue's time where the message carries one. :meth:`Quote.row` writes it
as a row of the catalog's ``quotes`` table (:mod:`arbkit.data.schema`), so what a paper session
saw and what the recorder stores are the same bytes.

Receive time is always arbkit's clock, passed in: Binance spot's bookTicker carries no
exchange time at all, and a venue's clock is never what orders events (``docs/data.md``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from arbkit.data import schema

MS = 1_000_000  # ns per ms (ccxt timestamps are ms)

Level = tuple[float, float]


def instrument_key(venue: str, symbol: str) -> str:
    """The arbkit instrument key ``"venue:symbol"`` (as :attr:`InstrumentConfig.key`)."""
    return f"{venue}:{symbol}"


def split_key(key: str) -> tuple[str, str]:
    """``"binance_spot:BTCUSDT"`` -> ``("binance_spot", "BTCUSDT")`` (split at the first ``:``;
    a symbol may hold one, a venue name does not)."""
    venue, sep, symbol = key.partition(":")
    if not sep or not venue or not symbol:
        raise ValueError(f"instrument key {key!r}: expected 'venue:symbol'")
    return venue, symbol


@dataclass(frozen=True, slots=True)
class Quote:
    """One book observation of one instrument, as the kernel and the catalog take it.

    Parameters
    ----------
    key
        The arbkit instrument key ``"venue:symbol"``.
    ts_recv_ns
        arbkit's receive time (its own clock; never the venue's).
    ts_exch_ns
        The venue's time of the update, None where the message has none.
    bid_px, bid_qty, ask_px, ask_qty
        The touch.
    bids, asks
        Deeper levels 1..n-1 as (price, size), best first; empty for a best bid/ask feed.

    Examples
    --------
    >>> q = Quote("binance_spot:BTCUSDT", 1_700_000_000_000_000_000, None,
    ...           30000.0, 1.5, 30000.1, 2.0)
    >>> q.row()["ask_px"], q.crossed
    (30000.1, False)
    """

    key: str
    ts_recv_ns: int
    ts_exch_ns: int | None
    bid_px: float
    bid_qty: float
    ask_px: float
    ask_qty: float
    bids: tuple[Level, ...] = ()
    asks: tuple[Level, ...] = ()

    @property
    def crossed(self) -> bool:
        """Crossed or locked (``bid_px >= ask_px``), as the catalog's validator flags it."""
        return self.bid_px >= self.ask_px

    @property
    def levels(self) -> int:
        """Book levels carried on the deeper side (1 for a best bid/ask)."""
        return 1 + max(len(self.bids), len(self.asks))

    def row(self, levels: int | None = None, *, venue: str | None = None,
            symbol: str | None = None) -> dict[str, Any]:
        """This quote as a row of the catalog's ``quotes`` table.

        ``levels`` columns per side (default: what the quote carries); a level the book does
        not have is written NaN price, 0 size (the catalog's convention for a thin book).
        ``venue``/``symbol`` default to the two halves of :attr:`key`.
        """
        if venue is None or symbol is None:
            kv, ks = split_key(self.key)
            venue, symbol = venue or kv, symbol or ks
        n = self.levels if levels is None else levels
        row: dict[str, Any] = {"ts_recv_ns": self.ts_recv_ns, "ts_exch_ns": self.ts_exch_ns,
                               "venue": venue, "symbol": symbol, "bid_px": self.bid_px,
                               "bid_qty": self.bid_qty, "ask_px": self.ask_px,
                               "ask_qty": self.ask_qty}
        for lvl in range(1, n):
            for side, deeper in (("bid", self.bids), ("ask", self.asks)):
                px, qty = schema.level_columns(side, lvl)
                have = lvl - 1 < len(deeper)
                row[px] = deeper[lvl - 1][0] if have else math.nan
                row[qty] = deeper[lvl - 1][1] if have else 0.0
        return row


def _ms_to_ns(ts: Any) -> int | None:
    return None if ts is None else int(ts) * MS


def from_ticker(key: str, ticker: Mapping[str, Any] | None, ts_recv_ns: int,
                ts_exch_ns: int | None = None) -> Quote | None:
    """A ccxt ticker / bid-ask (``watch_bids_asks``, ``fetch_bids_asks``, ``fetch_ticker``)
    as a best bid/ask quote; None when a side is missing (no quote to trade on).

    ``ts_exch_ns`` overrides the ticker's own ``timestamp`` (ms), e.g. with None for a venue
    whose ticker time is not an exchange event time.

    Examples
    --------
    >>> t = {"bid": 100.0, "bidVolume": 2.0, "ask": 100.5, "askVolume": 1.0, "timestamp": None}
    >>> from_ticker("A:X", t, 5).ask_px
    100.5
    """
    if not ticker or ticker.get("bid") is None or ticker.get("ask") is None:
        return None
    exch = _ms_to_ns(ticker.get("timestamp")) if ts_exch_ns is None else ts_exch_ns
    return Quote(key, int(ts_recv_ns), exch, float(ticker["bid"]),
                 float(ticker.get("bidVolume") or 0.0), float(ticker["ask"]),
                 float(ticker.get("askVolume") or 0.0))


def _levels(side: Sequence[Sequence[Any]], n: int) -> tuple[Level, ...]:
    return tuple((float(lv[0]), float(lv[1])) for lv in side[:n])


def from_book(key: str, book: Mapping[str, Any] | None, ts_recv_ns: int,
              levels: int) -> Quote | None:
    """The top ``levels`` of a ccxt order book (``watch_order_book``, ``fetch_order_book``) as
    a quote; None when a side is empty (an empty side is no quote).

    Examples
    --------
    >>> ob = {"bids": [[99.0, 1.0], [98.0, 2.0]], "asks": [[101.0, 3.0]], "timestamp": 7}
    >>> q = from_book("A:X", ob, 5, 2)
    >>> q.bids, q.asks, q.ts_exch_ns
    (((98.0, 2.0),), (), 7000000)
    """
    if not book:
        return None
    bids, asks = book.get("bids") or [], book.get("asks") or []
    if not bids or not asks:
        return None
    top_b, top_a = bids[0], asks[0]
    return Quote(key, int(ts_recv_ns), _ms_to_ns(book.get("timestamp")), float(top_b[0]),
                 float(top_b[1]), float(top_a[0]), float(top_a[1]),
                 _levels(bids[1:], levels - 1), _levels(asks[1:], levels - 1))


def ticker_row(ticker: Mapping[str, Any] | None, ts_recv_ns: int, venue: str,
               symbol: str) -> dict[str, Any] | None:
    """A ccxt best bid/ask as a catalog L1 row (None: a side is missing)."""
    q = from_ticker(instrument_key(venue, symbol), ticker, ts_recv_ns)
    return None if q is None else q.row(1, venue=venue, symbol=symbol)


def book_row(book: Mapping[str, Any] | None, ts_recv_ns: int, venue: str, symbol: str,
             levels: int) -> dict[str, Any] | None:
    """A ccxt order book as a catalog row with exactly ``levels`` levels per side (None: a
    side is empty)."""
    q = from_book(instrument_key(venue, symbol), book, ts_recv_ns, levels)
    return None if q is None else q.row(levels, venue=venue, symbol=symbol)
