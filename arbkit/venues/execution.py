"""Live order execution on Binance spot through ccxt: IOC limit orders by client order id,
journaled before they are sent, never duplicated, never lost (``RUNTIME.md`` §4).

The kernel's EXTERNAL venue mode hands each order intent to :meth:`ExecutionClient.submit`;
what the venue does with it comes back as reports (the kernel's ``EV_ORDER`` events)::

    report = (ts_ns, oid, filled, px, fee, status, reason, levels)

``filled``/``px``/``fee``: this report's fill (instrument units, its average price, its fee
as a quote-currency value), ``status`` 0 while the order works and the final ``ST_*`` in the
last report (``ST_FILLED``, ``ST_PARTIAL``: IOC rest expired, ``ST_CANCELLED``: nothing
filled, ``ST_REJECTED`` with ``reason``), ``levels`` the number of venue trades in the fill.
Fills come one report per batch of new venue trades; the final report has ``filled = 0``.
Every report is appended to the journal before ``on_report(seq, report)`` is called; a
consumer that restarts asks :meth:`ExecutionClient.reports_after` for what it missed.

How an order goes: round (lot, tick on the safe side, min notional: a refusal is reported,
never sent) -> journaled with its client id and signing time, made durable
(:mod:`arbkit.venues.journal`) -> sent with ``timestamp`` = the journaled time and
``recvWindow`` -> answered: booked | refused (only a definite Binance refusal,
:mod:`arbkit.venues.order_rules`) | UNKNOWN (timeout, cut, 5xx, -1007). UNKNOWN is resolved
by looking the order up by client id; only when every attempt is a definite "no such order"
(-2013) *after* its recvWindow passed (so the venue will refuse it if it ever arrives) is the
order sent again, under the next client id (``options.max_attempts``), else cancelled.
Fills arrive from the user-data websocket (ccxt.pro's caches, read on every wake-up) and
from REST (order answer, lookups, ``myTrades``); each venue trade id is applied once.
Reconciliation at start and the running checks: :mod:`arbkit.venues.reconcile`.

Keys come from the environment only (``ARBKIT_BINANCE_KEY``, ``ARBKIT_BINANCE_SECRET``) and
are held by the ccxt object alone: never logged, journaled or put in a report.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from arbkit.core import types as T
from arbkit.errors import ConfigError, StorageError
from arbkit.runtime import faultpoints
from arbkit.venues import order_rules as R
from arbkit.venues import reconcile
from arbkit.venues.journal import Attempt, ExecJournal, OrderRecord

log = logging.getLogger(__name__)
KEY_ENV, SECRET_ENV = "ARBKIT_BINANCE_KEY", "ARBKIT_BINANCE_SECRET"
TERMINAL = ("closed", "canceled", "expired", "rejected")
Report = tuple[int, int, float, float, float, int, int, int]
CLOSE_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class ExecOptions:
    """Timing and policy of an :class:`ExecutionClient` (seconds unless named)."""

    recv_window_ms: int = 5000  # a signed order is refused by the venue after this
    clock_skew_ms: int = 1000  # how far the venue's clock may be behind ours
    timeout_ms: int = 5000  # ccxt's HTTP timeout
    max_attempts: int = 2  # sends of one intent (a resend needs a definite "no such order")
    check_every_s: float = 0.5  # unacknowledged / unresolved orders
    ack_timeout_s: float = 2.0  # an acked order not final after this is looked up by REST
    open_orders_every_s: float = 10.0
    balances_every_s: float = 30.0
    watch: bool = True  # the user-data websocket (REST lookups alone otherwise)
    durability: str = "auto"  # journal: auto | waitaof | fsync_always


@dataclass
class ExecStats:
    sent: int = 0
    booked: int = 0
    rejected: int = 0
    unknown: int = 0
    lookups: int = 0
    resends: int = 0
    trades_applied: int = 0
    trades_duplicate: int = 0  # venue trades seen again (websocket + REST) and skipped
    reports: int = 0
    fees_unconverted: int = 0  # fees paid in a third asset (reported as 0)
    errors: list[str] = field(default_factory=list)


def keys_from_env(env: Mapping[str, str] | None = None) -> tuple[str, str]:
    """(key, secret) from ``ARBKIT_BINANCE_KEY`` / ``ARBKIT_BINANCE_SECRET``."""
    env = os.environ if env is None else env
    missing = [n for n in (KEY_ENV, SECRET_ENV) if not env.get(n)]
    if missing:
        raise ConfigError(f"{' and '.join(missing)} not set: live trading reads the API key "
                          f"and secret from the environment only ({KEY_ENV}=... "
                          f"{SECRET_ENV}=... arbkit live ...)")
    return env[KEY_ENV], env[SECRET_ENV]


def make_private_exchange(env: Mapping[str, str] | None, url: str | None,
                          timeout_ms: int) -> Any:
    """A ccxt.pro binance with the environment's keys (pointed at an emulator if ``url``)."""
    import ccxt.pro

    key, secret = keys_from_env(env)
    # Binance's own rule, 6000 request weight per rolling minute (ccxt's costs are weight/5
    # at 50 ms a unit), instead of ccxt's default leaky bucket that spaces every request by
    # its weight (10 ms a unit: reconciling 10 symbols took 2-3 s of waiting)
    ex = ccxt.pro.binance({"apiKey": key, "secret": secret, "timeout": timeout_ms,
                           "enableRateLimit": True, "rateLimiterAlgorithm": "rollingWindow",
                           "rollingWindowSize": 60000})
    # ccxt logs every request's headers (the API key) at DEBUG: its own logger, redacted
    ex.logger = logging.getLogger(f"{__name__}.ccxt")
    ex.logger.addFilter(Redact((key, secret)))
    if url is not None:
        from urllib.parse import urlsplit

        from arbkit.venues.emulator import point_ccxt_at

        parts = urlsplit(url)
        point_ccxt_at(ex, url.rstrip("/"), f"ws://{parts.hostname}:{parts.port}",
                      market_types=["spot"])
    return ex


class Redact(logging.Filter):
    """Replace the API key and secret in every record of a logger with ``<redacted>``."""

    def __init__(self, secrets: tuple[str, ...]) -> None:
        super().__init__()
        self._secrets = tuple(s for s in secrets if s)

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if any(s in text for s in self._secrets):
            for s in self._secrets:
                text = text.replace(s, "<redacted>")
            record.msg, record.args = text, ()
        return True


class ExecutionClient:
    """Orders of one session on one Binance spot account (see the module doc).

    Parameters
    ----------
    session
        The session id: the journal's key prefix and the client order ids' tag.
    redis
        A ``redis.asyncio.Redis`` for the journal (durable: see :mod:`~arbkit.venues.journal`).
    markets
        Instrument key -> ccxt symbol, e.g. ``{"binance_spot:BTCUSDT": "BTC/USDT"}``.
    on_report
        ``on_report(seq, report)`` for every report, after it is journaled.
    on_alert
        ``on_alert(reason)`` when the client halts (an order, fill or balance it does not know).
    url
        An emulator's ``http://127.0.0.1:<port>``; None = the real venue.
    env
        Where the keys are read from (default ``os.environ``).
    exchange
        A ready ccxt.pro binance instead of one built from ``env``/``url`` (tests).
    step_hook
        ``step_hook(step, oid)`` at each journal step (``durable``, ``answered``,
        ``unknown``, ``lookup``, ``reported``, ``final``) — the crash tests kill the process
        there (as ``runtime.faultpoints`` does for the crash suite).

    Examples
    --------
    >>> client = ExecutionClient(session="live1", redis=r, markets={"binance_spot:BTCUSDT":
    ...                          "BTC/USDT"}, on_report=lambda seq, rep: print(rep))
    >>> await client.start()    # reconcile: "ready" or "halted" (client.halt_reasons)
    >>> await client.submit({"oid": 1, "inst": "binance_spot:BTCUSDT", "side": 1, "qty": 0.01,
    ...                      "limit_px": 30010.0, "purpose": 0, "route": 0, "trade_id": 1,
    ...                      "t_send": 0})
    >>> await client.close()
    """

    def __init__(self, *, session: str, redis: Any, markets: Mapping[str, str],
                 on_report: Callable[[int, Report], Any] | None = None,
                 on_alert: Callable[[str], Any] | None = None, url: str | None = None,
                 env: Mapping[str, str] | None = None, options: ExecOptions | None = None,
                 exchange: Any = None, clock_ns: Callable[[], int] = time.time_ns,
                 step_hook: Callable[[str, int], None] | None = None) -> None:
        if not markets:
            raise ConfigError("ExecutionClient: markets is empty; map each instrument key to "
                              "its ccxt symbol, e.g. {'binance_spot:BTCUSDT': 'BTC/USDT'}")
        self.session = session
        self.options = options or ExecOptions()
        self.markets = dict(markets)
        self.journal = ExecJournal(redis, session, durability=self.options.durability)
        self.ex = exchange or make_private_exchange(env, url, self.options.timeout_ms)
        self.on_report, self.on_alert = on_report, on_alert
        self.clock_ns = clock_ns
        self._hook = step_hook
        self.state = "new"  # new -> ready | halted; closed
        self.halt_reasons: list[str] = []
        self.stats = ExecStats()
        self.filters: dict[str, R.Filters] = {}
        self.orders: dict[int, OrderRecord] = {}
        self.by_cid: dict[str, int] = {}
        self.by_venue_id: dict[str, int] = {}
        self.busy: set[int] = set()  # orders with a send or lookup in flight
        self._rate_until = 0.0
        self._queue: list[tuple[str, Report | None]] = []  # (record json, report) to journal
        self._flush_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task] = []

    def __repr__(self) -> str:  # the exchange (and its keys) stay out of reprs and logs
        return f"ExecutionClient(session={self.session!r}, state={self.state!r})"

    # ---- life cycle ---------------------------------------------------------------------------
    async def start(self) -> str:
        """Load markets, check the journal's durability, reconcile with the venue, start the
        user-data stream and the periodic checks. Returns ``"ready"`` or ``"halted"``."""
        await reconcile.ask(self, self.ex.load_markets)
        faultpoints.hit("exec.markets")
        for inst, symbol in self.markets.items():
            if symbol not in self.ex.markets:
                raise ConfigError(f"ExecutionClient: {inst} -> {symbol!r} is not a market of "
                                  "the venue; use the ccxt symbol, e.g. 'BTC/USDT'")
            self.filters[symbol] = R.Filters.of(self.ex.market(symbol))
        await self.journal.check_durable()
        for rec in (await self.journal.all()).values():
            self._index(rec)
        await reconcile.at_start(self)
        if self.state == "new":
            self.state = "ready"
        if self.options.watch:
            self._tasks += [asyncio.create_task(self._watch("watch_my_trades")),
                            asyncio.create_task(self._watch("watch_orders"))]
        self._tasks.append(asyncio.create_task(reconcile.run_checks(self)))
        return self.state

    async def close(self) -> None:
        """Stop the stream and the checks, journal and deliver what is pending, close ccxt.
        Bounded: a venue call that does not end is abandoned after ``CLOSE_TIMEOUT_S``."""
        await self._close_flush()
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=CLOSE_TIMEOUT_S)
        self._tasks.clear()
        await self._close_flush()
        if self.state != "halted":
            self.state = "closed"
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ex.close(), CLOSE_TIMEOUT_S)

    async def _close_flush(self) -> None:
        try:
            await asyncio.wait_for(self.flush(), CLOSE_TIMEOUT_S)
        except TimeoutError:
            raise StorageError(f"execution {self.session}: {len(self._queue)} order updates not "
                               f"journaled within {CLOSE_TIMEOUT_S:g} s of closing (Redis not "
                               "answering); the venue holds them: --resume books them after "
                               "reconciliation") from None

    async def reports_after(self, seq: int) -> list[tuple[int, Report]]:
        """Every journaled report after sequence ``seq`` (a restarted consumer catches up)."""
        return await self.journal.reports_after(seq)  # type: ignore[return-value]

    def halt(self, reason: str) -> None:
        """Stop taking intents (reported RJ_HALTED) and alert; nothing at the venue is
        touched: a human decides (``RUNTIME.md`` §4, never an automatic fix)."""
        self.state = "halted"
        if reason not in self.halt_reasons:
            self.halt_reasons.append(reason)
            log.error("execution halted: %s", reason)
            if self.on_alert is not None:
                self.on_alert(reason)

    def pending(self) -> list[int]:
        """Orders without a final report yet."""
        return [oid for oid, r in self.orders.items() if r.state != "done"]

    # ---- intents ------------------------------------------------------------------------------
    def submit_nowait(self, intent: Mapping[str, Any]) -> asyncio.Task:
        """:meth:`submit` as a task (the caller's loop goes on)."""
        task = asyncio.create_task(self.submit(intent))
        self._tasks.append(task)
        return task

    async def submit(self, intent: Mapping[str, Any]) -> None:
        """Journal, round, send one IOC limit order; returns when the venue answered or the
        send went UNKNOWN (reports follow through ``on_report``). An order number already in
        the journal is ignored (a kernel replaying its outbox)."""
        oid = int(intent["oid"])
        if oid in self.orders:
            return
        inst = str(intent["inst"])
        if inst not in self.markets:
            raise ConfigError(f"intent {oid}: inst={inst!r} is not among the client's markets "
                              f"{sorted(self.markets)}")
        symbol = self.markets[inst]
        side = 1 if int(intent["side"]) > 0 else -1
        qty, px = self.filters[symbol].round(side, float(intent["qty"]), float(intent["limit_px"]))
        rec = OrderRecord(oid=oid, inst=inst, symbol=symbol, side=side, qty=str(qty), px=str(px),
                          intent=dict(intent), updated_ms=self._wall_ms())
        self._index(rec)
        why = self.filters[symbol].refusal(qty, px)
        reason = (R.RJ_HALTED if self.state != "ready" else
                  R.RJ_RATE_LIMIT if time.monotonic() < self._rate_until else
                  R.RJ_FILTER if why else None)
        if reason is not None:
            self._final(rec, T.ST_REJECTED, reason)
            await self.flush()
            return
        await self.send(rec)

    async def send(self, rec: OrderRecord) -> None:
        """One attempt: journal durably, then POST (never the other way round)."""
        self.busy.add(rec.oid)
        try:
            await self._send(rec)
        finally:
            self.busy.discard(rec.oid)
        await self.flush()

    async def _send(self, rec: OrderRecord) -> None:
        cid = R.client_order_id(self.session, rec.oid, len(rec.attempts))
        sent_ms = self._wall_ms() - int(self.ex.options.get("timeDifference") or 0)
        rec.attempts.append(Attempt(cid, sent_ms, self.options.recv_window_ms))
        rec.state = "sending"
        self.by_cid[cid] = rec.oid
        await self.journal.put(rec, durable=True)
        self._step("durable", rec.oid)
        params = {"timeInForce": "IOC", "newClientOrderId": cid, "newOrderRespType": "FULL",
                  "timestamp": sent_ms, "recvWindow": self.options.recv_window_ms}
        side = "buy" if rec.side > 0 else "sell"
        self.stats.sent += 1
        try:
            order = await self.ex.create_order(rec.symbol, "limit", side, float(rec.qty),
                                               float(rec.px), params)
        except Exception as exc:  # noqa: BLE001 - every failure is classified below
            headers = getattr(self.ex, "last_response_headers", None) or {}
            self._on_send_error(rec, exc, headers.get("Retry-After"))
            return
        self._step("answered", rec.oid)
        self.stats.booked += 1
        self.apply_order(rec, order)

    def _on_send_error(self, rec: OrderRecord, exc: Exception, retry_after: str | None) -> None:
        out = R.classify_send_error(exc, retry_after)
        self._error(f"order {rec.oid} send: {out.kind} ({out.detail})")
        if rec.venue_order_id is not None or rec.state == "done":
            return  # the user-data stream already showed the order at the venue
        if out.kind == R.REJECTED:
            self.stats.rejected += 1
            if out.reason == R.RJ_RATE_LIMIT:
                self._rate_until = time.monotonic() + out.retry_after_s
            self._final(rec, T.ST_REJECTED, out.reason)
            return
        self.stats.unknown += 1
        rec.state = "unknown"
        self._save(rec)
        self._step("unknown", rec.oid)

    # ---- what the venue says ----------------------------------------------------------------
    def apply_order(self, rec: OrderRecord, order: Mapping[str, Any]) -> None:
        """An order as ccxt parsed it (REST answer, lookup, websocket): its id, status and
        any fills it lists."""
        vid = str(order.get("id") or "")
        if vid and rec.venue_order_id is None:
            rec.venue_order_id = vid
            self.by_venue_id[vid] = rec.oid
        if rec.state in ("sending", "unknown") and vid:
            rec.state = "acked"
        status = order.get("status")
        if status in TERMINAL and rec.venue_status is None:
            rec.venue_status = str(status)
            rec.venue_filled = float(order.get("filled") or 0.0)
        self.apply_trades(rec, order.get("trades") or [])
        self._save(rec)

    def apply_trades(self, rec: OrderRecord, trades: list[Mapping[str, Any]]) -> None:
        """Book the venue trades not booked yet (by trade id) as one fill report, then the
        final report if the order is over and all its fills are in."""
        base, quote = self._assets(rec.symbol)
        new: list[tuple[float, float, float]] = []
        for t in trades:
            tid = str(t.get("id") or "")
            if not tid:
                continue
            if tid in rec.trades:
                self.stats.trades_duplicate += 1
                continue
            qty, px = float(t["amount"]), float(t["price"])
            fee = t.get("fee") or {}
            cost, ccy = float(fee.get("cost") or 0.0), fee.get("currency")
            rec.trades[tid] = [qty, px, cost, ccy]
            new.append((qty, px, self._fee_in_quote(cost, ccy, px, base, quote)))
        if new:
            self.stats.trades_applied += len(new)
            qty = sum(q for q, _, _ in new)
            vwap = sum(q * p for q, p, _ in new) / qty
            fee = sum(f for _, _, f in new)
            self._emit(rec, (self.clock_ns(), rec.oid, qty, vwap, fee, 0, T.RJ_NONE, len(new)))
        self._maybe_final(rec)

    def _maybe_final(self, rec: OrderRecord) -> None:
        if rec.state == "done" or rec.venue_status is None or rec.venue_filled is None:
            return
        step = float(self.filters[rec.symbol].step)
        if rec.filled + step / 2 < rec.venue_filled:
            return  # fills still to come (websocket or myTrades)
        if rec.filled <= step / 2:
            status = T.ST_CANCELLED
        elif rec.filled + step / 2 >= float(rec.qty):
            status = T.ST_FILLED
        else:
            status = T.ST_PARTIAL
        self._final(rec, status, T.RJ_NONE)

    def _final(self, rec: OrderRecord, status: int, reason: int) -> None:
        if rec.state == "done":
            return
        rec.state, rec.final_status, rec.reason = "done", status, reason
        self._emit(rec, (self.clock_ns(), rec.oid, 0.0, 0.0, 0.0, status, reason, 0))

    # ---- journal and delivery ---------------------------------------------------------------
    def _save(self, rec: OrderRecord) -> None:
        rec.updated_ms = self._wall_ms()
        self._queue.append((rec.dumps(), None))

    def _emit(self, rec: OrderRecord, report: Report) -> None:
        rec.updated_ms = self._wall_ms()
        self._queue.append((rec.dumps(), report))

    async def flush(self) -> None:
        """Journal what changed, in order, then hand each report to ``on_report``. Shielded:
        a task cancelled meanwhile (``close``) never leaves a report half-way."""
        await asyncio.shield(self._flush())

    async def _flush(self) -> None:
        async with self._flush_lock:
            while self._queue:
                text, report = self._queue[0]
                rec = OrderRecord.loads(text)
                if report is None:
                    await self.journal.put(rec)
                    self._queue.pop(0)
                    continue
                seq = await self.journal.put_with_report(rec, report)
                self._queue.pop(0)
                self.stats.reports += 1
                self._step("reported", rec.oid)
                if report[5] != 0:
                    self._step("final", rec.oid)
                if self.on_report is not None:
                    try:
                        self.on_report(seq, report)
                    except Exception as exc:  # noqa: BLE001 - the consumer's bug, not ours
                        self._error(f"on_report raised {type(exc).__name__}: {exc}")

    # ---- the user-data websocket ------------------------------------------------------------
    async def _watch(self, method: str) -> None:
        """Wake on every user-data event and read ccxt's caches whole (a watch call only
        returns what arrived since the last call, and drops wake-ups under load)."""
        backoff = 0.5
        while True:
            try:
                await getattr(self.ex, method)()
                backoff = 0.5
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a dropped stream: redial after a pause
                self._error(f"{method}: {type(exc).__name__}")
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            self.scan_ws()
            await self.flush()

    def scan_ws(self) -> None:
        for order in list(getattr(self.ex, "orders", None) or []):
            rec = self._lookup(order.get("clientOrderId"), order.get("id"))
            if rec is not None:
                self.apply_order(rec, order)
            elif order.get("symbol") in self.filters:
                self.halt(f"unknown order at the venue: client id {order.get('clientOrderId')}"
                          f" ({order.get('symbol')} {order.get('side')} {order.get('amount')})")
        for trade in list(getattr(self.ex, "myTrades", None) or []):
            info = trade.get("info") or {}
            rec = self._lookup(info.get("c"), trade.get("order"))
            if rec is not None:
                self.apply_trades(rec, [trade])

    # ---- helpers ------------------------------------------------------------------------------
    def _lookup(self, cid: Any, venue_id: Any) -> OrderRecord | None:
        oid = self.by_cid.get(str(cid)) if cid else None
        if oid is None and venue_id:
            oid = self.by_venue_id.get(str(venue_id))
        return self.orders.get(oid) if oid is not None else None

    def _index(self, rec: OrderRecord) -> None:
        self.orders[rec.oid] = rec
        for cid in rec.cids:
            self.by_cid[cid] = rec.oid
        if rec.venue_order_id:
            self.by_venue_id[rec.venue_order_id] = rec.oid

    def _assets(self, symbol: str) -> tuple[str, str]:
        m = self.ex.market(symbol)
        return m["base"], m["quote"]

    def _fee_in_quote(self, cost: float, ccy: Any, px: float, base: str, quote: str) -> float:
        if cost == 0 or ccy == quote:
            return cost
        if ccy == base:
            return cost * px
        self.stats.fees_unconverted += 1
        return 0.0

    def _wall_ms(self) -> int:
        return self.clock_ns() // 1_000_000

    def _step(self, step: str, oid: int) -> None:
        faultpoints.hit("exec." + step)
        if self._hook is not None:
            self._hook(step, oid)

    def _error(self, text: str) -> None:
        log.warning("execution %s: %s", self.session, text)
        self.stats.errors = (self.stats.errors + [text])[-20:]

    def balance_deltas(self) -> dict[str, Decimal]:
        """What every journaled fill changed per asset (buys add base, pay quote; fees)."""
        out: dict[str, Decimal] = {}
        for rec in self.orders.values():
            base, quote = self._assets(rec.symbol)
            for qty, px, fee, ccy in rec.trades.values():
                q, notional = Decimal(repr(qty)), Decimal(repr(qty)) * Decimal(repr(px))
                out[base] = out.get(base, Decimal(0)) + rec.side * q
                out[quote] = out.get(quote, Decimal(0)) - rec.side * notional
                if ccy:
                    out[ccy] = out.get(ccy, Decimal(0)) - Decimal(repr(fee))
        return out
