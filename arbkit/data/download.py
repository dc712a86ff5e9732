"""History through ccxt REST into the catalog: OHLCV bars (paged, resumable), order-book
snapshots (polled) and realised perpetual funding (paged, resumable).

- **Resumable**: bars are flushed into the catalog every ``flush_pages`` pages; a new run
  starts after the last bar the catalog holds for that venue and symbol, so an interrupted
  download continues where it stopped and never writes a bar twice.
- **Rate limits**: ccxt's own throttle is on (``enableRateLimit``); a 429 (ccxt
  ``RateLimitExceeded``/``DDoSProtection``) or a network error is retried with exponential
  backoff up to ``max_retries`` times, then reported as a :class:`TemporaryVenueError`.
- **No look-ahead**: a bar is stored only once it has closed on the exchange's clock (the
  last page's current bar is still forming).
- The stored symbol is the exchange's own market id (``BTCUSDT``), the venue is ``store_as``
  (default: the ccxt exchange id), as the importers do.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import polars as pl

from arbkit.data import schema
from arbkit.data.catalog import Catalog, Selection
from arbkit.data.importers.common import interval_ns
from arbkit.errors import ConfigError, DataError, TemporaryVenueError, VenueError
from arbkit.venues.explain import hint, local_url, one_line
from arbkit.venues.normalize import book_row

MS = 1_000_000
Progress = Callable[[str, int, int], None]  # (symbol, done, total) in bars or polls


@dataclass
class DownloadReport:
    """What one download did, per symbol."""

    rows: dict[str, int] = field(default_factory=dict)
    resumed_from_ms: dict[str, int | None] = field(default_factory=dict)
    retries: int = 0
    rate_limited: int = 0
    pages: int = 0
    notes: dict[str, str] = field(default_factory=dict)  # why a symbol got no rows


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")


def _none_served(url: str | None, option: str, what: str) -> str:
    if url is not None:
        return (f"; the emulator at {url} serves {what} only when started with `arbkit "
                f"emulator serve {option} SYMBOL=venue:symbol`")
    return ""


def parse_day(text: str, name: str) -> int:
    """``YYYY-MM-DD`` or ISO time (UTC) -> epoch ms."""
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"--{name} {text!r}: use YYYY-MM-DD or YYYY-MM-DDTHH:MM (UTC)") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


class _Caller:
    """ccxt calls with retry on rate limits and network errors (exponential backoff).

    A refused connection to a local emulator fails at once (nothing listens there: retrying
    cannot help); every other error ends as one line naming what to change.
    """

    def __init__(self, report: DownloadReport, max_retries: int, backoff_s: float,
                 sleep: Callable[[float], None], url: str | None = None) -> None:
        self.report, self.max_retries, self.backoff_s, self.sleep = (report, max_retries,
                                                                     backoff_s, sleep)
        self.url = url

    def __call__(self, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        import ccxt

        what = f"{fn.__name__}{'' if not args else ' ' + ' '.join(map(str, args[:2]))}"
        for attempt in range(self.max_retries + 1):
            try:
                return fn(*args, **kw)
            except (ccxt.RateLimitExceeded, ccxt.DDoSProtection) as exc:
                self.report.rate_limited += 1
                last: Exception = exc
            except ccxt.NetworkError as exc:  # timeouts, dropped connections
                if self.url is not None and _refused(exc):
                    raise VenueError(one_line(exc, action=what, url=self.url)) from None
                last = exc
            except ccxt.BaseError as exc:
                raise VenueError(one_line(exc, action=what, url=self.url)) from None
            if attempt == self.max_retries:
                break
            self.report.retries += 1
            self.sleep(min(self.backoff_s * 2**attempt, 30.0))
        more = hint(last, url=self.url)
        raise TemporaryVenueError(
            f"{what}: still failing after {self.max_retries} retries ({type(last).__name__}: "
            f"{' '.join(str(last).split())[:120]}); {more + '; ' if more else ''}rerun later: "
            "the download resumes")


def _refused(exc: BaseException) -> bool:
    """A connection refused somewhere in the exception's causes (nothing listens there)."""
    seen: BaseException | None = exc
    for _ in range(6):
        if seen is None:
            return False
        if isinstance(seen, ConnectionRefusedError) or "refused" in str(seen).lower():
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _market_id(exchange: Any, symbol: str) -> str:
    try:
        return str(exchange.market(symbol)["id"])
    except Exception:  # noqa: BLE001 - ccxt raises BadSymbol and friends
        known = ", ".join(sorted(exchange.symbols or [])[:8])
        raise ConfigError(f"--symbols {symbol!r}: not a market of {exchange.id} (known: "
                          f"{known}...); use the unified form, e.g. BTC/USDT") from None


def download_ohlcv(exchange: Any, catalog: Catalog, symbols: list[str], *, timeframe: str,
                   since_ms: int, until_ms: int | None = None, store_as: str | None = None,
                   limit: int = 1000, flush_pages: int = 20, max_retries: int = 6,
                   backoff_s: float = 0.5, progress: Progress | None = None,
                   sleep: Callable[[float], None] = time.sleep) -> DownloadReport:
    """Page OHLCV bars of ``symbols`` into the catalog's ``bars`` (see module doc)."""
    report = DownloadReport()
    call = _Caller(report, max_retries, backoff_s, sleep, local_url(exchange))
    call(exchange.load_markets)
    venue = store_as or exchange.id
    step_ms = interval_ns(timeframe) // MS
    for sym in symbols:
        mid = _market_id(exchange, sym)
        last = _last_bar_open_ms(catalog, venue, mid)
        report.resumed_from_ms[sym] = last
        since = max(since_ms, last + step_ms) if last is not None else since_ms
        now = int(call(exchange.fetch_time))
        end = min(until_ms if until_ms is not None else now, now)
        total = max(0, (end - since) // step_ms)
        got, buf, pages = 0, [], 0
        while since < end:
            page = call(exchange.fetch_ohlcv, sym, timeframe, since, limit)
            report.pages += 1
            pages += 1
            closed = [r for r in page if r[0] >= since and r[0] + step_ms <= end]
            if not closed:
                break
            buf += closed
            since = int(closed[-1][0]) + step_ms
            if pages % flush_pages == 0:
                got += _flush_bars(catalog, buf, venue, mid, step_ms)
                buf = []
            if progress:
                progress(sym, min(total, got + len(buf)), total)
        got += _flush_bars(catalog, buf, venue, mid, step_ms)
        report.rows[sym] = got
        if got == 0:
            report.notes[sym] = _no_bars(timeframe, since, end, last is not None, call.url)
        if progress:
            progress(sym, total, total)
    return report


def _no_bars(timeframe: str, since: int, end: int, resumed: bool, url: str | None) -> str:
    if since >= end:
        return (f"nothing to fetch: the start {_iso(since)} UTC is not before the venue's now "
                f"{_iso(end)} UTC" + (" (the catalog is up to date)" if resumed else ""))
    return (f"the venue returned no {timeframe} bars from {_iso(since)} to {_iso(end)} UTC"
            + (_none_served(url, "--bars", "bars") or "; check --since and --timeframe"))


def _last_bar_open_ms(catalog: Catalog, venue: str, symbol: str) -> int | None:
    parts = catalog.partitions(Selection("bars", venue, symbol))
    if not parts:
        return None
    last = pl.read_parquet(parts[-1].path, columns=["ts_open_ns"])["ts_open_ns"].max()
    return int(last) // MS  # type: ignore[arg-type]


def _flush_bars(catalog: Catalog, rows: list[list], venue: str, symbol: str,
                step_ms: int) -> int:
    if not rows:
        return 0
    df = pl.DataFrame(rows, schema=["t", "open", "high", "low", "close", "volume"],
                      orient="row").unique("t", keep="first", maintain_order=True)
    frame = df.select(
        (pl.col("t").cast(pl.Int64) * MS).alias("ts_open_ns"),
        ((pl.col("t").cast(pl.Int64) + step_ms) * MS).alias("ts_close_ns"),
        pl.lit(venue).alias("venue"), pl.lit(symbol).alias("symbol"),
        *(pl.col(c).cast(pl.Float64) for c in ("open", "high", "low", "close", "volume")))
    catalog.add("bars", frame, name=f"ccxt {venue} {symbol}")
    return frame.height


def poll_order_book(exchange: Any, catalog: Catalog, symbols: list[str], *, levels: int = 5,
                    every_s: float = 1.0, duration_s: float = 60.0,
                    store_as: str | None = None, max_retries: int = 6,
                    backoff_s: float = 0.5, progress: Progress | None = None,
                    sleep: Callable[[float], None] = time.sleep,
                    clock_ns: Callable[[], int] = time.time_ns) -> DownloadReport:
    """Poll ``fetch_order_book`` into ``quotes`` with ``levels`` of depth.

    ``ts_recv_ns`` is this machine's clock when the response arrived (a recorder's clock, as
    in any capture); ``ts_exch_ns`` the book's exchange timestamp when the venue gives one.
    """
    if levels < 1 or every_s <= 0 or duration_s <= 0:
        raise ConfigError("book polling: levels >= 1, every_s > 0 and duration_s > 0 needed")
    report = DownloadReport()
    call = _Caller(report, max_retries, backoff_s, sleep, local_url(exchange))
    call(exchange.load_markets)
    venue = store_as or exchange.id
    ids = {s: _market_id(exchange, s) for s in symbols}
    rows: list[dict] = []
    n_polls = max(1, round(duration_s / every_s))
    for k in range(n_polls):
        t_next = time.monotonic() + every_s
        for sym in symbols:
            ob = call(exchange.fetch_order_book, sym, levels)
            row = book_row(ob, clock_ns(), venue, ids[sym], levels)
            if row is not None:
                rows.append(row)
            if progress:
                progress(sym, k + 1, n_polls)
        if k + 1 < n_polls:
            sleep(max(0.0, t_next - time.monotonic()))
    if rows:
        frame = pl.DataFrame(rows).select(schema.quote_column_order(levels))
        catalog.add("quotes", frame, name=f"ccxt book {venue}")
    for sym in symbols:
        report.rows[sym] = sum(1 for r in rows if r["symbol"] == ids[sym])
        if report.rows[sym] == 0:
            report.notes[sym] = ("every book the venue returned had an empty side"
                                 + _none_served(call.url, "--quotes", "books"))
    return report


def download_funding(exchange: Any, catalog: Catalog, symbols: list[str], *, since_ms: int,
                     until_ms: int | None = None, store_as: str | None = None,
                     limit: int = 1000, max_retries: int = 6, backoff_s: float = 0.5,
                     sleep: Callable[[float], None] = time.sleep) -> DownloadReport:
    """Realised funding of perpetuals (``BTC/USDT:USDT``) into the catalog's ``funding``.

    Each row is a funding event that already happened (rate and time as the venue settled
    it, the mark price where the venue reports it); resumes after the last stored one.
    """
    report = DownloadReport()
    call = _Caller(report, max_retries, backoff_s, sleep, local_url(exchange))
    call(exchange.load_markets)
    venue = store_as or exchange.id
    for sym in symbols:
        mid = _market_id(exchange, sym)
        parts = catalog.partitions(Selection("funding", venue, mid))
        last = (int(pl.read_parquet(parts[-1].path, columns=["ts_ns"])["ts_ns"].max()) // MS
                if parts else None)
        report.resumed_from_ms[sym] = last
        since = max(since_ms, last + 1) if last is not None else since_ms
        rows: list[dict] = []
        while True:
            page = call(exchange.fetch_funding_rate_history, sym, since, limit)
            report.pages += 1
            new = [h for h in page if h["timestamp"] >= since
                   and (until_ms is None or h["timestamp"] < until_ms)]
            if not new:
                break
            rows += [{"ts_ns": int(h["timestamp"]) * MS, "venue": venue, "symbol": mid,
                      "rate": float(h["fundingRate"]),
                      "mark_px": _mark(h)} for h in new]
            since = int(new[-1]["timestamp"]) + 1
        if rows:
            catalog.add("funding", pl.DataFrame(rows, schema_overrides={"mark_px": pl.Float64}),
                        name=f"ccxt funding {venue}")
        report.rows[sym] = len(rows)
        if not rows:
            report.notes[sym] = (f"no funding settled from {_iso(since)} UTC"
                                 f"{'' if until_ms is None else ' to ' + _iso(until_ms) + ' UTC'}"
                                 + (_none_served(call.url, "--funding", "funding")
                                    or "; is it a perpetual (e.g. BTC/USDT:USDT)?"))
    return report


def _mark(h: dict) -> float | None:
    px = (h.get("info") or {}).get("markPrice")
    try:
        return float(px) if px not in (None, "") and float(px) > 0 else None
    except ValueError:
        return None


def check_kind(kind: str) -> None:
    if kind not in ("ohlcv", "book", "funding"):
        raise DataError(f"--kind {kind!r}: use ohlcv (bars, paged), book (order-book "
                        "snapshots, polled) or funding (realised perpetual funding)")
