"""One venue of a :class:`~arbkit.venues.feed.FeedSet`: its ccxt.pro exchange object (made,
loaded, recreated), the gate that spaces connects, the guard against unreadable frames, and
the REST poller that keeps quotes flowing while a stream is down."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from arbkit.errors import ArbkitError
from arbkit.venues.explain import one_line
from arbkit.venues.normalize import from_book, from_ticker

if TYPE_CHECKING:
    from arbkit.venues.feed import FeedSet, KeyState

CLOSE_TIMEOUT_S = 5.0
REST_LIMITS = (5, 10, 20, 50, 100, 500, 1000, 5000)  # what Binance's /depth accepts


def rest_limit(levels: int) -> int:
    """The smallest depth limit a venue accepts that covers ``levels``."""
    return next((n for n in REST_LIMITS if n >= levels), levels)


def _noted(n: int) -> bool:
    """Note the 1st, 10th, 100th ... occurrence of a repeated event (not each one)."""
    return n in (1, 10, 100, 1000) or n % 10_000 == 0


def guard_frames(exchange: Any, on_garbage: Callable[[str, str], None]) -> None:
    """Make a ccxt.pro exchange skip frames it cannot read instead of dying on them.

    ccxt 4.5.x parses a frame inside its receive callback: a frame that looks like JSON but is
    not (a truncated message) raises there, the callback never re-arms and the socket stays
    open but unread: a silent hang. A non-JSON frame is handed to the venue's handler as a
    string (Binance's mistakes one holding "a" and "b" for a bookTicker and raises). Here each
    new client parses first; what does not parse, or makes the handler raise, is counted
    through ``on_garbage(url, text)`` and skipped.
    """
    import importlib

    wsclient = importlib.import_module("ccxt.async_support.base.ws.client")
    parse, looks_json = wsclient.json_parser.loads, wsclient.is_json_encoded_object
    make_client = exchange.client

    def client(url: str) -> Any:
        c = make_client(url)
        if getattr(c, "_arbkit_guarded", False):
            return c
        callback = c.on_message_callback

        def handle(data: Any) -> None:
            if isinstance(data, bytes):
                data = data.decode("utf-8", "replace")
            if not looks_json(data):
                on_garbage(url, str(data))
                return
            try:
                message = parse(data)
            except ValueError:
                on_garbage(url, str(data))
                return
            try:
                callback(c, message)
            except Exception as exc:  # noqa: BLE001 - a handler error must not kill the socket
                on_garbage(url, f"{type(exc).__name__} in ccxt's handler: {exc}")

        c.handle_text_or_binary_message = handle
        c._arbkit_guarded = True
        return c

    exchange.client = client


class Venue:
    """The exchange object of one (ccxt id, URL) and what is done with it."""

    def __init__(self, feeds: FeedSet, exchange_id: str, url: str | None) -> None:
        self.feeds, self.exchange_id, self.url = feeds, exchange_id, url
        self.name = f"{exchange_id}@{url or 'venue'}"
        self.keys: list[KeyState] = []
        self.ex: Any = None
        self.garbage = 0  # unreadable frames skipped
        self.recreated = 0  # exchange objects rebuilt as a last resort
        self.poke = asyncio.Event()  # wakes the poller (a stream went down, a gap)
        self._lock = asyncio.Lock()
        self._gate = asyncio.Lock()
        self._last_connect: float | None = None
        self._retry_after_s = 0.0

    def note_all(self, line: str) -> None:
        for ks in self.keys:
            self.feeds.note(ks, line)

    # ---- the exchange object ---------------------------------------------------------------
    async def exchange(self) -> Any:
        """The exchange object with its markets loaded, or None (the error is noted)."""
        async with self._lock:
            if self.ex is None:
                try:
                    self.ex = self._make()
                except ArbkitError as exc:  # a bad ccxt id: nothing will ever connect
                    self.note_all(str(exc))
                    return None
            if not self.ex.markets:
                try:
                    await self.ex.load_markets()
                except Exception as exc:  # noqa: BLE001 - ccxt raises more than BaseError
                    self.note_all(one_line(exc, action=f"loading {self.exchange_id} markets",
                                           url=self.url))
                    self._retry_after_s = max(self._retry_after_s, self._retry_after())
                    await self._discard()
                    return None
                self._check_symbols()
            return self.ex

    def _make(self) -> Any:
        from arbkit.venues.client import make_exchange

        ex = make_exchange(self.exchange_id, url=self.url, pro=True)
        guard_frames(ex, self._on_garbage)
        return ex

    def _check_symbols(self) -> None:
        for ks in self.keys:
            ok = ks.spec.symbol in self.ex.markets
            if not ok and ks.valid:
                self.feeds.note(ks, f"{ks.spec.symbol!r} is not a market of "
                                f"{self.exchange_id}{' at ' + self.url if self.url else ''}: "
                                "fix the StreamSpec symbol (ccxt's unified form, e.g. BTC/USDT)")
            ks.valid = ok
            if not ok:
                ks.state = "down"

    async def recreate(self, reason: str) -> None:
        """Throw the exchange object away (last resort); the next use makes a new one."""
        async with self._lock:
            self.recreated += 1
            self.note_all(f"recreating the {self.exchange_id} exchange object after {reason}")
            await self._discard()

    async def _discard(self) -> None:
        ex, self.ex = self.ex, None
        if ex is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ex.close(), CLOSE_TIMEOUT_S)

    async def close(self) -> None:
        await self._discard()

    def _on_garbage(self, url: str, text: str) -> None:
        self.garbage += 1
        if _noted(self.garbage):
            self.note_all(f"unreadable websocket frame #{self.garbage} skipped ({url}): "
                          f"{text[:60]!r}")

    def _retry_after(self) -> float:
        headers = getattr(self.ex, "last_response_headers", None) or {}
        try:
            return float(headers.get("Retry-After") or headers.get("retry-after") or 0.0)
        except (TypeError, ValueError):
            return 0.0

    # ---- connects ------------------------------------------------------------------------
    async def gate(self, delay_s: float) -> bool:
        """Wait ``delay_s``, and at least ``backoff_min_s`` since the venue's previous
        connect (Binance: 300 connections per 5 minutes per IP); False when stopping."""
        loop = asyncio.get_running_loop()
        async with self._gate:
            wait = max(delay_s, self._retry_after_s)
            self._retry_after_s = 0.0
            if self._last_connect is not None:
                wait = max(wait, self._last_connect + self.feeds.backoff_min_s - loop.time())
            if wait > 0 and await self.feeds.sleep(wait):
                return False
            self._last_connect = loop.time()
            return not self.feeds.stopping

    # ---- REST polling ----------------------------------------------------------------------
    async def poll_loop(self) -> None:
        """Poll what the websockets do not deliver, every ``poll_every_s`` (backing off on
        errors, never sooner than a 429's ``Retry-After``)."""
        failures = 0
        while not self.feeds.stopping:
            try:
                due = self._due()
                if due:
                    failures = 0 if await self._poll(due) else failures + 1
            except Exception as exc:  # noqa: BLE001 - one line, never out of run()
                self.note_all(f"REST poller: {type(exc).__name__}: {exc}")
                failures += 1
            delay = self.feeds.poll_every_s
            if failures:
                base = min(self.feeds.backoff_max_s, delay * 2**failures)
                delay = max(base * random.uniform(0.8, 1.0), self._retry_after())
            self.poke.clear()
            if await self.feeds.sleep(delay, None if failures else self.poke):
                return

    def _due(self) -> list[KeyState]:
        now = asyncio.get_running_loop().time()
        feeds = self.feeds
        out = []
        for ks in self.keys:
            if not ks.valid:
                continue
            if ks.want_snapshot:
                out.append(ks)
            elif now - ks.last_poll_at < feeds.poll_every_s * 0.9:
                continue
            elif not ks.connected:
                out.append(ks)
            else:
                since = ks.ws_at if ks.ws_at is not None else ks.connected_at
                if now - since > ks.idle_limit(feeds.idle_timeout_s):
                    if not ks.quiet:
                        ks.quiet = True
                        ks.silences += 1
                    out.append(ks)
        return out

    async def _poll(self, due: list[KeyState]) -> bool:
        ex = await self.exchange()
        if ex is None:
            self._mark_down(due)
            return False
        due = [ks for ks in due if ks.valid]  # the markets just loaded may rule some out
        started = asyncio.get_running_loop().time()
        for ks in due:
            ks.last_poll_at = started
        try:
            bbo = [ks for ks in due if ks.spec.channel == "bbo"]
            for group in _by_market_type(ex, bbo):
                tickers = await ex.fetch_bids_asks([ks.spec.symbol for ks in group])
                now_ns = self.feeds.clock()
                for ks in group:
                    self._emit(ks, started, tickers.get(ks.spec.symbol), now_ns)
            for ks in (ks for ks in due if ks.spec.channel == "book"):
                book = await ex.fetch_order_book(ks.spec.symbol, rest_limit(ks.spec.levels))
                self._emit(ks, started, book, self.feeds.clock())
        except Exception as exc:  # noqa: BLE001 - ccxt raises more than BaseError
            line = one_line(exc, action="REST poll", url=self.url)
            for ks in due:
                if _noted(ks.poll_errors + 1):
                    self.feeds.note(ks, f"{line} (#{ks.poll_errors + 1})")
                ks.poll_errors += 1
            self._mark_down(due)
            return False
        return True

    def _emit(self, ks: KeyState, started: float, payload: Any, now_ns: int) -> None:
        """A REST answer as a quote, unless the websocket delivered since it was asked."""
        if ks.ws_at is not None and ks.ws_at >= started and ks.connected:
            return
        ts = self.feeds.stamp(ks, now_ns)
        if ks.spec.channel == "bbo":
            quote = from_ticker(ks.spec.key, payload, ts)
        else:
            quote = from_book(ks.spec.key, payload, ts, ks.spec.levels)
            if quote is not None and payload.get("nonce") is not None:
                ks.rest_nonce = payload["nonce"]  # websocket books older than this are stale
        if quote is not None:
            self.feeds.publish(ks, quote, websocket=False)

    def _mark_down(self, keys: list[KeyState]) -> None:
        for ks in keys:
            if not ks.connected:
                ks.state = "down"


def _by_market_type(ex: Any, keys: list[KeyState]) -> list[list[KeyState]]:
    """One ``fetch_bids_asks`` per market type (spot and swap symbols cannot share one)."""
    groups: dict[str, list[KeyState]] = {}
    for ks in keys:
        groups.setdefault(str(ex.market(ks.spec.symbol).get("type")), []).append(ks)
    return list(groups.values())
