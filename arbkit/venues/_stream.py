"""One websocket of a :class:`~arbkit.venues.feed.FeedSet`: a batched ccxt.pro watch of
several symbols (one channel, one market type, one venue), its watchdog, and its redials."""

from __future__ import annotations

import asyncio
import random
from typing import TYPE_CHECKING, Any

from arbkit.venues._venue import rest_limit
from arbkit.venues.explain import one_line
from arbkit.venues.feed import ewma, idle_limit
from arbkit.venues.normalize import from_book, from_ticker

if TYPE_CHECKING:
    from arbkit.venues._venue import Venue
    from arbkit.venues.feed import FeedSet, KeyState

RECREATE_AFTER = 4  # failed sessions in a row before the exchange object is rebuilt
MAX_GAPS_PER_SESSION = 5  # more sequence gaps than this in one session: redial
CONNECT_GRACE_S = 1.0  # extra time for the first update of a session (dial, snapshot)
BOOK_SNAPSHOT_MIN = 100  # REST snapshot depth ccxt syncs a book from (Binance weight 5)


def _retrieve(task: asyncio.Future) -> None:
    """Done callback: read a finished task's exception so asyncio does not log it."""
    if not task.cancelled():
        task.exception()


class Group:
    """A batched watch of ``keys`` (same venue, channel and market type) on one socket."""

    def __init__(self, feeds: FeedSet, venue: Venue, channel: str,
                 keys: list[KeyState]) -> None:
        self.feeds, self.venue, self.channel, self.keys = feeds, venue, channel, keys
        self.name = f"{venue.name}:{channel}:{keys[0].spec.symbol}+{len(keys) - 1}"
        self.sessions = 0
        self._client: Any = None
        self.gap_ewma_s: float | None = None  # typical time between wake-ups
        self.snapshot_limit = rest_limit(max([BOOK_SNAPSHOT_MIN] + [k.spec.levels for k in keys]))

    def note_all(self, line: str) -> None:
        for ks in self.keys:
            self.feeds.note(ks, line)

    # ---- redial loop -----------------------------------------------------------------------
    async def run(self) -> None:
        """Sessions until stopped: jittered exponential backoff between failed ones, the
        venue's gate before each connect, the exchange rebuilt after repeated failures."""
        failures, attempts = 0, 0
        while not self.feeds.stopping:
            if not await self.venue.gate(0.0 if attempts == 0 else self._backoff(failures)):
                return
            attempts += 1
            try:
                delivered = await self._attempt()
            except Exception as exc:  # noqa: BLE001 - one line in stats, never out of run()
                self.note_all(f"{self.channel} feed: {type(exc).__name__}: {exc}")
                delivered = False
            failures = 0 if delivered else failures + 1
            if failures and failures % RECREATE_AFTER == 0 and not self.feeds.stopping:
                await self.venue.recreate(f"{failures} failed {self.channel} sessions in a row")

    def _backoff(self, failures: int) -> float:
        lo, hi = self.feeds.backoff_min_s, self.feeds.backoff_max_s
        return min(hi, lo * 2**failures * random.uniform(1.0, 1.25))

    async def _attempt(self) -> bool:
        ex = await self.venue.exchange()
        if ex is None:
            return False
        keys = [ks for ks in self.keys if ks.valid]
        if not keys:  # no market to watch (noted by the venue): wait and look again
            await self.feeds.sleep(self.feeds.backoff_max_s)
            return False
        self.sessions += 1
        if self.sessions > 1:
            for ks in keys:
                ks.reconnects += 1
        return await self._session(ex, keys)

    # ---- one session -----------------------------------------------------------------------
    async def _session(self, ex: Any, keys: list[KeyState]) -> bool:
        """Watch until the socket fails or goes silent; True if it delivered anything."""
        loop = asyncio.get_running_loop()
        self._forget(ex, keys)  # a fresh book from a fresh REST snapshot: no ghost levels
        self._client = None  # the socket of this session, once it has delivered
        pending = self._watch(ex, keys)
        got, gaps, last = False, 0, loop.time()
        try:
            while True:
                base = self.feeds.idle_timeout_s
                limit = idle_limit(base, self.gap_ewma_s) + (0.0 if got else max(CONNECT_GRACE_S, base))
                if not await self.feeds.wait(pending, last + limit - loop.time()):
                    if self.feeds.stopping:
                        return got
                    self._silent(loop.time() - last, limit)
                    return got
                error = _error_of(pending)
                if error is not None:
                    if _is_gap(error) and gaps < MAX_GAPS_PER_SESSION:
                        gaps += 1
                        self._gap(ex, keys, error)
                        pending = self._watch(ex, keys)
                        continue
                    self.note_all(one_line(error, action=f"watch {self.channel}",
                                           url=self.venue.url, advice=_advice(error)))
                    return got
                now = loop.time()
                if got:
                    self.gap_ewma_s = ewma(self.gap_ewma_s, now - last)
                else:
                    got = True
                    self._client = self._find_client(ex, keys)
                    for ks in keys:
                        ks.connected, ks.connected_at = True, now
                last = now
                self._read(ex, keys, now)
                pending = self._watch(ex, keys)
        finally:
            self._teardown(ex, pending, keys)

    def _watch(self, ex: Any, keys: list[KeyState]) -> asyncio.Task:
        task = asyncio.ensure_future(self._call(ex, [ks.spec.symbol for ks in keys]))
        task.add_done_callback(_retrieve)
        return task

    async def _call(self, ex: Any, symbols: list[str]) -> Any:
        # A socket that died while no watch was waiting rejects nothing: ccxt forgets it and
        # the next watch silently dials a new one (no backoff, no gate, nothing counted).
        # The check and ccxt's client lookup run without an await in between.
        if self._client is not None and not _same_open(ex, self._client):
            import ccxt

            raise ccxt.NetworkError("connection closed while no watch was waiting")
        if self.channel == "bbo":
            return await ex.watch_bids_asks(symbols)
        return await ex.watch_order_book_for_symbols(symbols, self.snapshot_limit)

    def _find_client(self, ex: Any, keys: list[KeyState]) -> Any:
        clients = list((getattr(ex, "clients", None) or {}).values())
        return next((c for c in clients if _carries(c, self.channel, keys)), None)

    def _read(self, ex: Any, keys: list[KeyState], now: float) -> None:
        """Every symbol's cached state on every wake-up (ccxt 4.5.x resolves a batched
        watch for one symbol and may never wake up for another)."""
        now_ns = self.feeds.clock()
        cache = ex.bidsasks if self.channel == "bbo" else ex.orderbooks
        for ks in keys:
            obj = cache.get(ks.spec.symbol)
            if obj is None:
                continue
            if self.channel == "bbo":
                if obj is ks.seen:
                    continue
                ks.seen = obj
                quote = from_ticker(ks.spec.key, obj, self.feeds.stamp(ks, now_ns))
            else:
                nonce = obj.get("nonce")
                if nonce is None or (obj is ks.seen and nonce == ks.seen_nonce):
                    continue  # not synced yet, or unchanged
                ks.seen, ks.seen_nonce = obj, nonce
                if ks.rest_nonce is not None and nonce < ks.rest_nonce:
                    ks.stale += 1  # older than the REST snapshot already emitted
                    continue
                quote = from_book(ks.spec.key, obj, self.feeds.stamp(ks, now_ns),
                                  ks.spec.levels)
            if quote is None:
                continue
            if ks.ws_at is not None and ks.state == "live":
                ks.gap_ewma_s = ewma(ks.gap_ewma_s, now - ks.ws_at)
            ks.ws_at, ks.quiet = now, False
            self.feeds.publish(ks, quote, websocket=True)

    def _silent(self, silent_s: float, limit_s: float) -> None:
        for ks in self.keys:
            if ks.valid:
                ks.silences += 1
        self.note_all(f"{self.channel} socket silent for {silent_s:.1f} s (limit "
                      f"{limit_s:.1f} s): closed, polling REST, redialling")

    def _gap(self, ex: Any, keys: list[KeyState], error: BaseException) -> None:
        """A sequence gap: ccxt dropped the book; a REST snapshot replaces it meanwhile."""
        lost = [ks for ks in keys if ks.spec.symbol not in ex.orderbooks] or keys
        for ks in lost:
            ks.gaps += 1
            ks.want_snapshot = True
            ks.seen = ks.seen_nonce = None
            self.feeds.note(ks, f"sequence gap in the depth stream ({type(error).__name__}): "
                            "book dropped, REST snapshot requested, resubscribing")
        self.venue.poke.set()

    def _forget(self, ex: Any, keys: list[KeyState]) -> None:
        cache = ex.bidsasks if self.channel == "bbo" else ex.orderbooks
        for ks in keys:
            cache.pop(ks.spec.symbol, None)
            ks.seen = ks.seen_nonce = None

    def _teardown(self, ex: Any, pending: asyncio.Task, keys: list[KeyState]) -> None:
        """Close this group's socket (ccxt would keep a silent one forever), drop its cached
        books, hand its instruments to the REST poller."""
        if not pending.done():
            pending.cancel()
        clients = getattr(ex, "clients", None) or {}
        for url, client in list(clients.items()):
            if not _carries(client, self.channel, keys):
                continue
            import ccxt

            if client.error is None:  # ccxt's on_close then leaves the client list to us
                client.error = ccxt.NetworkError("closed by the arbkit feed watchdog")
            if clients.get(url) is client:
                del clients[url]
            closing = asyncio.ensure_future(client.close())
            closing.add_done_callback(_retrieve)
        self._forget(ex, keys)
        for ks in keys:
            ks.connected = False
            if ks.state == "live":
                ks.state = "down"
        self.venue.poke.set()


def _hash(channel: str, symbol: str) -> str:
    """ccxt binance's message hash of one symbol's stream (also its subscription key)."""
    return f"bidask:bookTicker@{symbol}" if channel == "bbo" else f"orderbook::{symbol}"


def _carries(client: Any, channel: str, keys: list[KeyState]) -> bool:
    """Whether a ccxt client holds the subscriptions of ``keys``: Binance's exact hashes, or
    (other venues spell them differently) a subscription naming the channel and a symbol."""
    subs = [k for k in getattr(client, "subscriptions", {}) if isinstance(k, str)]
    if {_hash(channel, ks.spec.symbol) for ks in keys}.intersection(subs):
        return True
    words = ("bidask", "bookticker", "ticker", "bbo") if channel == "bbo" else ("orderbook",
                                                                               "depth", "book")
    return any(ks.spec.symbol in sub and any(w in sub.lower() for w in words)
               for sub in subs for ks in keys)


def _same_open(ex: Any, client: Any) -> bool:
    """``client`` is still the exchange's socket for its URL, and open."""
    clients = getattr(ex, "clients", None) or {}
    return clients.get(client.url) is client and not client.closed()


def _error_of(task: asyncio.Task) -> BaseException | None:
    if task.cancelled():
        import ccxt

        return ccxt.NetworkError("watch cancelled (its connection was closed)")
    return task.exception()


def _advice(error: BaseException) -> str | None:
    """For a watch that failed mid-session: what the feed does about it (None: the generic
    hint, e.g. for a rate limit or a refused subscription)."""
    import ccxt

    if isinstance(error, ccxt.NetworkError) and not isinstance(
            error, ccxt.DDoSProtection | ccxt.RateLimitExceeded):
        return "polling REST, redialling after a backoff"
    return None


def _is_gap(error: BaseException) -> bool:
    import ccxt

    return isinstance(error, ccxt.ChecksumError | ccxt.InvalidNonce)
