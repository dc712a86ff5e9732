"""Market-data feeds of the paper/live runtime: ccxt.pro websockets made dependable.

What breaks in ccxt pro and what is done instead (``RUNTIME.md`` §3):

- **Batched watches drop wake-ups** for quiet symbols (ccxt 4.5.x): every wake-up of a
  watch reads ccxt's caches (``exchange.bidsasks``, ``exchange.orderbooks``) for *every*
  symbol of the batch; an update is new when the cached object (best bid/ask) or the book's
  update id (order book) changed.
- **No reconnection, silent hangs**: an idle-timeout watchdog per socket (a silent liquid
  book is detected after ``idle_timeout_s``) and per instrument; the socket is then closed
  and redialled after a jittered exponential backoff, never less than ``backoff_min_s``
  after the previous connect to the same venue. After repeated failed sessions the ccxt
  exchange object itself is recreated.
- **Quotes keep flowing** while a stream is down: REST polling (``fetch_bids_asks`` /
  ``fetch_order_book``) every ``poll_every_s``, quotes marked ``"polling"`` in :meth:`FeedSet.stats`;
  rate limits (429) back the poller off (honouring ``Retry-After``).
- **Ghost levels**: on every (re)connect the cached book is dropped, so ccxt rebuilds it from
  a fresh REST snapshot; a sequence gap (ccxt ``ChecksumError``) drops it too and asks the
  poller for an immediate REST snapshot. Each quote carries the whole top of book, so a
  snapshot *replaces* what the kernel holds.
- **Unreadable frames** (HTML error pages, truncated JSON) are counted and skipped instead of
  killing ccxt's receive loop; every venue error is one line in :meth:`FeedSet.stats`,
  never an exception out of :meth:`FeedSet.run`.

Receive times come from the ``clock`` passed in and strictly increase per instrument (a tie
is bumped by 1 ns), so the kernel sees one timestamp per update. A crossed or locked book
from the venue is passed through (the kernel flags it) and counted.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from arbkit.errors import ConfigError
from arbkit.venues.normalize import Quote

CHANNELS = ("bbo", "book")
STATES = ("live", "polling", "down")
ERRORS_KEPT = 8
QUIET_FACTOR = 10.0  # a stream is silent after this many typical gaps (and >= idle_timeout_s)
MAX_IDLE_S = 60.0  # ... but never later than this (a quiet market)
GROUP_MAX = 100  # symbols per socket (Binance allows 200 subscriptions per connection)


@dataclass(frozen=True)
class StreamSpec:
    """One instrument's market data stream.

    Parameters
    ----------
    key
        The arbkit instrument key ``"venue:symbol"`` quotes are emitted under.
    exchange
        ccxt id, e.g. ``"binance"``.
    symbol
        ccxt unified symbol, e.g. ``"BTC/USDT"``.
    url
        An emulator's base URL (``http://127.0.0.1:PORT``); None = the real venue.
    channel
        ``"bbo"`` (``watch_bids_asks``: Binance ``bookTicker``) or ``"book"``
        (``watch_order_book``: snapshot + diffs, top ``levels`` emitted).
    levels
        Book levels per side emitted (1 for ``bbo``).

    Examples
    --------
    >>> StreamSpec("binance_spot:BTCUSDT", "binance", "BTC/USDT").channel
    'bbo'
    """

    key: str
    exchange: str
    symbol: str
    url: str | None = None
    channel: str = "bbo"
    levels: int = 1

    def __post_init__(self) -> None:
        if self.channel not in CHANNELS:
            raise ConfigError(f"StreamSpec {self.key}: channel={self.channel!r}; use one of "
                              f"{', '.join(CHANNELS)}")
        if not isinstance(self.levels, int) or self.levels < 1:
            raise ConfigError(f"StreamSpec {self.key}: levels={self.levels!r} must be >= 1")
        if self.channel == "bbo" and self.levels != 1:
            raise ConfigError(f"StreamSpec {self.key}: levels={self.levels} with channel 'bbo' "
                              "(a best bid/ask has one level); use channel='book' for depth")

    @property
    def venue_id(self) -> tuple[str, str | None]:
        """(exchange, url): the specs sharing it share one ccxt exchange object."""
        return self.exchange, self.url


@dataclass(eq=False)
class KeyState:
    """What the feeds know about one instrument (read through :meth:`FeedSet.stats`)."""

    spec: StreamSpec
    messages: int = 0  # websocket updates emitted
    rest_polls: int = 0  # REST quotes emitted
    last_recv_ns: int | None = None
    last_exch_ns: int | None = None
    reconnects: int = 0
    crossed: int = 0
    gaps: int = 0  # sequence gaps (book dropped and rebuilt)
    silences: int = 0  # watchdog timeouts (socket or this instrument silent)
    dropped: int = 0  # quotes not queued (queue full)
    stale: int = 0  # websocket books older than a REST snapshot already emitted: skipped
    rest_nonce: Any = None  # update id of the last REST book emitted
    state: str = "down"
    valid: bool = True  # False: not a market of the venue (nothing will come)
    errors: deque[str] = field(default_factory=lambda: deque(maxlen=ERRORS_KEPT))
    connected: bool = False  # its socket is up and has delivered in this session
    connected_at: float = 0.0  # loop time the socket first delivered in this session
    quiet: bool = False  # silent past its idle limit on a live socket (being polled)
    poll_errors: int = 0
    ws_at: float | None = None  # loop time of the last websocket update
    gap_ewma_s: float | None = None  # typical time between websocket updates
    last_poll_at: float = float("-inf")
    want_snapshot: bool = False
    seen: Any = None  # the ccxt cache object last emitted (best bid/ask dict or book)
    seen_nonce: Any = None

    def idle_limit(self, base_s: float) -> float:
        return idle_limit(base_s, self.gap_ewma_s)


def idle_limit(base_s: float, gap_ewma_s: float | None) -> float:
    """Silence after which a stream counts as dead: ``base_s`` for a liquid one, longer (up
    to ``MAX_IDLE_S``) for a stream whose updates are typically far apart."""
    if gap_ewma_s is None:
        return base_s
    return min(max(base_s, QUIET_FACTOR * gap_ewma_s), max(base_s, MAX_IDLE_S))


def ewma(prev: float | None, x: float, alpha: float = 0.05) -> float:
    return x if prev is None else prev + alpha * (x - prev)


class FeedSet:
    """Websocket feeds of many instruments on many venues, into one queue of :class:`Quote`.

    Parameters
    ----------
    specs
        One :class:`StreamSpec` per instrument (keys unique).
    queue
        Where quotes go (``put_nowait``; keep it unbounded: a full queue drops and counts).
    clock
        arbkit's receive clock in ns (the runtime's; ``time.time_ns`` for a plain script).
    idle_timeout_s
        A socket silent this long is closed and redialled (longer for a quiet stream, see
        :func:`idle_limit`); an instrument silent this long is polled over REST.
    backoff_min_s, backoff_max_s
        Redial backoff bounds; ``backoff_min_s`` is also the least time between two connects
        to one venue.
    poll_every_s
        REST polling period while a stream is down (growing on errors).

    Examples
    --------
    >>> async def main() -> None:  # doctest: +SKIP
    ...     queue: asyncio.Queue = asyncio.Queue()
    ...     feeds = FeedSet([StreamSpec("binance_spot:BTCUSDT", "binance", "BTC/USDT",
    ...                                 url=emu.http_url)], queue, time.time_ns)
    ...     task = asyncio.create_task(feeds.run())
    ...     quote = await queue.get()
    ...     feeds.stop()
    ...     await task
    """

    def __init__(self, specs: list[StreamSpec], queue: asyncio.Queue,
                 clock: Callable[[], int], *, idle_timeout_s: float = 2.0,
                 backoff_min_s: float = 1.0, backoff_max_s: float = 30.0,
                 poll_every_s: float = 0.5) -> None:
        import ccxt.pro  # noqa: F401 - seconds to import: here, not inside the event loop

        from arbkit.venues._stream import Group
        from arbkit.venues._venue import Venue

        _check_params(specs, idle_timeout_s, backoff_min_s, backoff_max_s, poll_every_s)
        self.queue, self.clock = queue, clock
        self.idle_timeout_s, self.poll_every_s = float(idle_timeout_s), float(poll_every_s)
        self.backoff_min_s, self.backoff_max_s = float(backoff_min_s), float(backoff_max_s)
        self.keys: dict[str, KeyState] = {s.key: KeyState(s) for s in specs}
        self.venues: dict[tuple[str, str | None], Venue] = {}
        for ks in self.keys.values():
            vid = ks.spec.venue_id
            if vid not in self.venues:
                self.venues[vid] = Venue(self, *vid)
            self.venues[vid].keys.append(ks)
        batches: dict[tuple, list[KeyState]] = {}
        for ks in self.keys.values():
            # one socket per venue, channel and market type (the part after ':' in a ccxt
            # symbol: '' spot, 'USDT' linear, 'BTC' inverse); ccxt sends a batch's
            # subscriptions on the socket of its first symbol's type
            kind = ks.spec.symbol.partition(":")[2]
            batches.setdefault((ks.spec.venue_id, ks.spec.channel, kind), []).append(ks)
        self.groups = [Group(self, self.venues[vid], channel, keys[i:i + GROUP_MAX])
                       for (vid, channel, _), keys in batches.items()
                       for i in range(0, len(keys), GROUP_MAX)]
        self._stopped: asyncio.Future | None = None  # done once stop() is called
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread_id: int | None = None
        self._stop_requested = False

    # ---- life cycle ----------------------------------------------------------------------
    async def run(self) -> None:
        """Feed the queue until :meth:`stop`; venue errors go to :meth:`stats`, never out."""
        self._loop = asyncio.get_running_loop()
        self._thread_id = threading.get_ident()
        self._stopped = self._loop.create_future()
        if self._stop_requested:
            self._stopped.set_result(None)
        tasks = [asyncio.create_task(g.run(), name=f"arbkit-feed-{g.name}") for g in self.groups]
        tasks += [asyncio.create_task(v.poll_loop(), name=f"arbkit-poll-{v.name}")
                  for v in self.venues.values()]
        try:
            await asyncio.shield(self._stopped)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await asyncio.gather(*(v.close() for v in self.venues.values()),
                                 return_exceptions=True)
            for ks in self.keys.values():
                ks.state = "down"

    def stop(self) -> None:
        """End :meth:`run` (callable from any thread, before or during the run)."""
        self._stop_requested = True
        loop, stopped = self._loop, self._stopped
        if loop is None or stopped is None:
            return
        if threading.get_ident() == self._thread_id:
            _settle(stopped)
        elif not loop.is_closed():
            loop.call_soon_threadsafe(_settle, stopped)

    @property
    def stopping(self) -> bool:
        return self._stop_requested

    async def sleep(self, seconds: float, poke: asyncio.Event | None = None) -> bool:
        """Sleep (or until ``poke`` is set); True when a stop was requested meanwhile."""
        assert self._stopped is not None
        waits: list[asyncio.Future] = [self._stopped]
        if poke is not None:
            waits.append(asyncio.ensure_future(poke.wait()))
        try:
            await asyncio.wait(waits, timeout=max(0.0, seconds),
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            if poke is not None:
                waits[1].cancel()
        return self.stopping

    async def wait(self, fut: asyncio.Future, timeout: float) -> bool:
        """Wait for ``fut`` (not cancelled on timeout, nor on stop); True when it is done."""
        assert self._stopped is not None
        await asyncio.wait([fut, self._stopped], timeout=max(0.0, timeout),
                           return_when=asyncio.FIRST_COMPLETED)
        return fut.done()

    # ---- emitting --------------------------------------------------------------------------
    def stamp(self, ks: KeyState, now_ns: int) -> int:
        """A receive time for ``ks``: ``now_ns``, bumped past its previous one on a tie."""
        last = ks.last_recv_ns
        return now_ns if last is None or now_ns > last else last + 1

    def publish(self, ks: KeyState, quote: Quote, *, websocket: bool) -> None:
        """Queue a quote and account for it (``websocket`` False: a REST poll)."""
        if websocket:
            ks.messages += 1
            ks.state = "live"
        else:
            ks.rest_polls += 1
            ks.state = "polling"
            ks.want_snapshot = False
        ks.crossed += quote.crossed
        ks.last_recv_ns, ks.last_exch_ns = quote.ts_recv_ns, quote.ts_exch_ns
        try:
            self.queue.put_nowait(quote)
        except asyncio.QueueFull:
            ks.dropped += 1
            if ks.dropped in (1, 10, 100, 1000) or ks.dropped % 10_000 == 0:
                self.note(ks, f"queue full: {ks.dropped} quote(s) dropped; drain the queue "
                              "faster or leave it unbounded")

    def note(self, ks: KeyState, line: str) -> None:
        """Keep one error line for ``ks`` (newest last, the last ``ERRORS_KEPT``)."""
        stamp = time.strftime("%H:%M:%S", time.gmtime(self.clock() / 1e9))
        ks.errors.append(f"{stamp} {' '.join(line.split())}")

    # ---- reading -------------------------------------------------------------------------
    def stats(self) -> dict[str, dict]:
        """Per instrument key: messages, last_recv_ns, age_s, reconnects, errors, state,
        lag_s, rest_polls, plus crossed, gaps, silences, dropped, stale, garbage (unreadable
        frames on its venue's sockets) and recreated (exchange objects rebuilt)."""
        now = self.clock()
        out: dict[str, dict] = {}
        for key, ks in self.keys.items():
            venue = self.venues[ks.spec.venue_id]
            last, exch = ks.last_recv_ns, ks.last_exch_ns
            out[key] = {
                "state": ks.state, "channel": ks.spec.channel, "messages": ks.messages,
                "rest_polls": ks.rest_polls, "last_recv_ns": last,
                "age_s": None if last is None else (now - last) / 1e9,
                "lag_s": None if last is None or exch is None else (last - exch) / 1e9,
                "reconnects": ks.reconnects, "silences": ks.silences, "gaps": ks.gaps,
                "crossed": ks.crossed, "dropped": ks.dropped, "stale": ks.stale,
                "garbage": venue.garbage,
                "recreated": venue.recreated, "errors": list(ks.errors)}
        return out


def _settle(fut: asyncio.Future) -> None:
    if not fut.done():
        fut.set_result(None)


def _check_params(specs: list[StreamSpec], idle_timeout_s: float, backoff_min_s: float,
                  backoff_max_s: float, poll_every_s: float) -> None:
    if not specs or not all(isinstance(s, StreamSpec) for s in specs):
        raise ConfigError("FeedSet: specs must be a non-empty list of StreamSpec")
    keys = [s.key for s in specs]
    dup = sorted({k for k in keys if keys.count(k) > 1})
    if dup:
        raise ConfigError(f"FeedSet: instrument key(s) {dup} given twice; one stream per key")
    for name, value in (("idle_timeout_s", idle_timeout_s), ("backoff_min_s", backoff_min_s),
                        ("poll_every_s", poll_every_s)):
        if not value > 0:
            raise ConfigError(f"FeedSet: {name}={value!r} must be > 0")
    if not backoff_max_s >= backoff_min_s:
        raise ConfigError(f"FeedSet: backoff_max_s={backoff_max_s!r} must be >= "
                          f"backoff_min_s={backoff_min_s!r}")


__all__ = ["CHANNELS", "FeedSet", "KeyState", "Quote", "StreamSpec", "idle_limit"]
