"""A websocket recorder through ccxt.pro: best bid/ask, order book and trades to rolling
Parquet files, then into the catalog.

Every message becomes a row with ``ts_recv_ns`` from this machine's clock when it arrived (a
recorder is the one place where the wall clock is the data) and ``ts_exch_ns`` from the
venue's message where it carries one (Binance spot's bookTicker does not: null there; ccxt's
first order book is the REST snapshot, with no exchange time: it is skipped and counted).
Trade ids that jump (Binance numbers trades consecutively) count trades never received. Rows are buffered per stream and flushed every
``flush_s`` seconds to ``<root>/_recording/<session>/<kind>/part-<n>.parquet`` (written to a
temporary name, then renamed), so a crash loses at most one flush interval; at the end the
parts are validated and merged into the catalog (``compact``), all or nothing.

A dropped connection (ccxt ``NetworkError``) is retried with exponential backoff; ccxt.pro
reconnects on the next ``watch_*`` call (silently, when no watch was waiting at the drop:
``connections_opened`` counts those too). Each stream's statistics count messages, errors
seen, the longest silence and silences longer than ``gap_s``; what was sent while
disconnected is lost (a gap), never invented.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from arbkit.data import schema
from arbkit.data.catalog import Catalog
from arbkit.data.load import read_file
from arbkit.errors import ConfigError, DataError, VenueError
from arbkit.venues.explain import local_url, one_line
from arbkit.venues.normalize import book_row, ticker_row

MS = 1_000_000
CHANNELS = ("bbo", "book", "trades")


@dataclass
class StreamStats:
    """Health of one recorded stream."""

    messages: int = 0
    rows: int = 0
    reconnects: int = 0
    errors: list[str] = field(default_factory=list)
    first_ns: int | None = None
    last_ns: int | None = None
    longest_gap_s: float = 0.0
    gaps: int = 0  # silences longer than gap_s
    missed: int = 0  # trades: ids skipped (the venue numbers them consecutively)
    skipped: int = 0  # book: updates without an exchange time (the REST snapshot), not kept
    refused: str | None = None  # the venue refused the stream (one line): nothing recorded

    def seen(self, ts: int, gap_ns: int) -> None:
        if self.last_ns is not None:
            d = ts - self.last_ns
            self.longest_gap_s = max(self.longest_gap_s, d / 1e9)
            self.gaps += d > gap_ns
        self.first_ns = ts if self.first_ns is None else self.first_ns
        self.last_ns = ts
        self.messages += 1


@dataclass
class RecordSpec:
    """What to record."""

    symbols: list[str]
    channels: tuple[str, ...] = ("bbo", "book", "trades")
    duration_s: float = 60.0
    levels: int = 5
    flush_s: float = 10.0
    gap_s: float = 5.0
    store_as: str | None = None
    max_backoff_s: float = 5.0

    def check(self) -> None:
        bad = [c for c in self.channels if c not in CHANNELS]
        if bad or not self.channels:
            raise ConfigError(f"--channels {','.join(self.channels)!r}: use some of "
                              f"{', '.join(CHANNELS)}")
        if self.duration_s <= 0 or self.flush_s <= 0 or self.levels < 1:
            raise ConfigError("record: duration_s > 0, flush_s > 0 and levels >= 1 needed")


class Recorder:
    """Records ``spec`` from a ccxt.pro exchange into ``catalog`` (see module doc)."""

    def __init__(self, exchange: Any, catalog: Catalog, spec: RecordSpec, *,
                 clock_ns: Callable[[], int] = time.time_ns) -> None:
        spec.check()
        self.ex, self.cat, self.spec, self.clock_ns = exchange, catalog, spec, clock_ns
        self.venue = spec.store_as or exchange.id
        self.session = time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + f"-{os.getpid()}"
        self.parts_dir = catalog.root / "_recording" / self.session
        self.stats: dict[str, StreamStats] = {}
        self._rows: dict[str, list[dict]] = {"quotes_bbo": [], "quotes_book": [], "trades": []}
        self._ids: dict[str, str] = {}
        self._seen_trades: set[str] = set()
        self._last_trade_id: dict[str, int] = {}
        self._n_parts = 0
        # websocket connections ccxt.pro opened: a drop with no watch waiting raises nothing,
        # and the next watch silently reconnects, so connections are counted, not only errors
        self._clients: set[int] = set()

    @property
    def connections_opened(self) -> int:
        """Websocket connections opened during the recording (1 per URL, plus reconnects)."""
        return len(self._clients)

    async def run(self) -> dict[str, StreamStats]:
        """Record for ``duration_s``, then flush and compact into the catalog.

        A stream the venue refuses (e.g. trades on an emulator serving quotes only) is not
        recorded and says so in its :attr:`StreamStats.refused`; the others go on. Raises
        :class:`VenueError` (one line) when the markets cannot be loaded or every stream
        was refused.
        """
        import ccxt

        try:
            await self.ex.load_markets()
        except ccxt.BaseError as exc:
            raise VenueError(one_line(exc, action=f"record: loading {self.ex.id} markets",
                                      url=local_url(self.ex))) from None
        for s in self.spec.symbols:
            if s not in self.ex.markets:
                raise ConfigError(f"--symbols {s!r}: not a market of {self.ex.id}; use the "
                                  "unified form, e.g. BTC/USDT")
            self._ids[s] = str(self.ex.market(s)["id"])
        deadline = time.monotonic() + self.spec.duration_s
        tasks = [asyncio.create_task(self._watch(ch, s, deadline))
                 for ch in self.spec.channels for s in self.spec.symbols]
        flusher = asyncio.create_task(self._flush_every(deadline))
        await asyncio.gather(*tasks)
        await flusher
        self._explain_refused()
        self.flush()
        if any(self._rows.values()) or recording_parts(self.parts_dir):
            self.compact()
        return self.stats

    def _explain_refused(self) -> None:
        """Add the ``--channels`` that would work to each refusal; all refused is an error."""
        refused = {k.split(":", 1)[0] for k, st in self.stats.items() if st.refused}
        if not refused:
            return
        kept = [c for c in self.spec.channels if c not in refused]
        for st in self.stats.values():
            if st.refused and kept:
                st.refused += f"; record without it: --channels {','.join(kept)}"
        if not kept:
            first = next(st.refused for st in self.stats.values() if st.refused)
            raise VenueError(f"record: the venue refused every stream ({first}); nothing was "
                             "recorded")

    async def _watch(self, channel: str, symbol: str, deadline: float) -> None:
        key = f"{channel}:{symbol}"
        st = self.stats.setdefault(key, StreamStats())
        gap_ns = round(self.spec.gap_s * 1e9)
        backoff = 0.1
        import ccxt

        while time.monotonic() < deadline:
            try:
                msg = await asyncio.wait_for(self._next(channel, symbol),
                                             timeout=max(0.05, deadline - time.monotonic()))
            except TimeoutError:
                break
            except ccxt.NetworkError as exc:  # dropped connection, timeout: reconnect
                st.reconnects += 1
                st.errors.append(f"{type(exc).__name__}: {str(exc)[:80]}")
                await asyncio.sleep(min(backoff, max(0.0, deadline - time.monotonic())))
                backoff = min(backoff * 2, self.spec.max_backoff_s)
                continue
            except ccxt.BaseError as exc:  # refused (stream not served, bad symbol): stop it
                st.refused = one_line(exc, action=f"{channel} {symbol}", url=local_url(self.ex),
                                      advice="")
                return
            backoff = 0.1
            ts = self.clock_ns()
            self._clients.update(id(c) for c in getattr(self.ex, "clients", {}).values())
            st.seen(ts, gap_ns)
            st.rows += self._take(channel, symbol, msg, ts)

    async def _next(self, channel: str, symbol: str) -> Any:
        if channel == "bbo":
            return await self.ex.watch_bids_asks([symbol])
        if channel == "book":
            return await self.ex.watch_order_book(symbol, self.spec.levels)
        return await self.ex.watch_trades(symbol)

    def _take(self, channel: str, symbol: str, msg: Any, ts: int) -> int:
        mid = self._ids[symbol]
        if channel == "bbo":
            row = ticker_row(msg.get(symbol) if isinstance(msg, dict) else None, ts,
                             self.venue, mid)
            if row is None:
                return 0
            self._rows["quotes_bbo"].append(row)
            return 1
        if channel == "book":
            if msg.get("timestamp") is None:
                # ccxt's first book is the REST snapshot, which has no exchange time: a book
                # row without one would keep the stream off the exchange timeline
                self.stats[f"book:{symbol}"].skipped += 1
                return 0
            row = book_row(msg, ts, f"{self.venue}_book", mid, self.spec.levels)
            if row is None:
                return 0
            self._rows["quotes_book"].append(row)
            return 1
        n = 0
        for tr in msg:  # ccxt returns the cached list: keep only trades not taken yet
            tid = str(tr.get("id"))
            if tid in self._seen_trades:
                continue
            self._seen_trades.add(tid)
            self._count_missed(symbol, tid)
            side = {"buy": 1, "sell": -1}.get(tr.get("side"), 0)
            self._rows["trades"].append({
                "ts_recv_ns": ts, "ts_exch_ns": int(tr["timestamp"]) * MS, "venue": self.venue,
                "symbol": mid, "price": float(tr["price"]), "qty": float(tr["amount"]),
                "side": side, "trade_id": tid})
            n += 1
        return n

    def _count_missed(self, symbol: str, tid: str) -> None:
        """Venues like Binance number trades consecutively: a jump is trades never received."""
        if not tid.isdigit():
            return
        n = int(tid)
        last = self._last_trade_id.get(symbol)
        if last is not None and n > last + 1:
            self.stats[f"trades:{symbol}"].missed += n - last - 1
        if last is None or n > last:
            self._last_trade_id[symbol] = n

    async def _flush_every(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            await asyncio.sleep(min(self.spec.flush_s, max(0.0, deadline - time.monotonic())))
            self.flush()

    def flush(self) -> None:
        """Write buffered rows as new part files (temporary name, then rename)."""
        for name, rows in self._rows.items():
            if not rows:
                continue
            kind_dir = self.parts_dir / name
            kind_dir.mkdir(parents=True, exist_ok=True)
            self._n_parts += 1
            target = kind_dir / f"part-{self._n_parts:05d}.parquet"
            tmp = target.with_suffix(".tmp")
            _frame(name, rows, self.spec.levels).write_parquet(tmp)
            os.replace(tmp, target)
            self._rows[name] = []

    def compact(self) -> dict[str, int]:
        """Validate every part and merge them into the catalog (planned first, then written)."""
        return compact(self.cat, self.parts_dir)


def _frame(name: str, rows: list[dict], levels: int) -> pl.DataFrame:
    df = pl.DataFrame(rows)
    if name == "quotes_book":
        return df.select(schema.quote_column_order(levels))
    if name == "trades":
        return df.with_columns(pl.col("side").cast(pl.Int8))
    return df


PART_TABLES = {"quotes_bbo": "quotes", "quotes_book": "quotes", "trades": "trades"}
_PART = re.compile(r"^part-\d{5}\.parquet$")


def recording_parts(parts_dir: Path) -> dict[str, list[Path]]:
    """The part files a recorder wrote in ``parts_dir``: ``<stream>/part-NNNNN.parquet`` for
    the streams it records (``quotes_bbo``, ``quotes_book``, ``trades``); nothing else."""
    out: dict[str, list[Path]] = {}
    for name in PART_TABLES:
        sub = parts_dir / name
        if sub.is_dir() and not sub.is_symlink():
            files = sorted(f for f in sub.iterdir() if _PART.match(f.name) and f.is_file()
                           and not f.is_symlink())
            if files:
                out[name] = files
    return out


def compact(catalog: Catalog, parts_dir: Path, *, remove: bool = True) -> dict[str, int]:
    """Merge a recording's part files into the catalog (all tables planned, staged, then
    published together); only then are those part files removed, and the folders they leave
    empty. Nothing else in ``parts_dir`` is touched, and a folder holding no part file is an
    error (it is not a recording). Returns rows per stream."""
    parts_dir = Path(parts_dir)
    if not parts_dir.is_dir():
        raise DataError(f"{parts_dir}: no such folder; pass a recording's parts folder, "
                        f"{catalog.root / '_recording' / '<session>'}")
    found = recording_parts(parts_dir)
    if not found:
        held = sorted(p.name for p in parts_dir.iterdir())[:5]
        raise DataError(f"{parts_dir}: not a recording's parts folder (it holds {held}, no "
                        f"{'/, '.join(PART_TABLES)}/ part-NNNNN.parquet files); pass "
                        f"{catalog.root / '_recording' / '<session>'}. Nothing was changed")
    plans, counts = [], {}
    for name, files in found.items():
        frame = pl.concat([read_file(f) for f in files], how="diagonal_relaxed")
        # rows of one stream were appended in arrival order; a stable sort by receive time
        # only matters where parts of two flushes interleave (they do not)
        frame = frame.sort("ts_recv_ns", maintain_order=True)
        plans += catalog.plan(PART_TABLES[name], frame, name=str(parts_dir / name))
        counts[name] = frame.height
    catalog.write(plans)
    if remove:
        from arbkit.atomic import deferred_interrupt

        with deferred_interrupt():
            for name, files in found.items():
                for f in files:
                    f.unlink()
                _rmdir_if_empty(parts_dir / name)
            _rmdir_if_empty(parts_dir)
            if parts_dir.parent.name == "_recording":  # when it held the last session
                _rmdir_if_empty(parts_dir.parent)
    return counts


def _rmdir_if_empty(d: Path) -> None:
    try:
        d.rmdir()
    except OSError:
        pass
