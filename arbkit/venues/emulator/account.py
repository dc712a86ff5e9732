"""The emulated venue's trading account: balances, orders and fills, and the matching of an
order against the replayed book.

A taking order (LIMIT IOC/FOK/GTC, MARKET) is matched against the quotes row visible at its
match time (the replay clock's now + ``order_latency_ms``), walking the levels within its
limit; fills are whole lots at the levels' prices, each pays the taker fee. What an order takes
from a row stays taken for later orders until the replay moves to the next row (our orders
have no other market impact). The rest of an IOC/FOK/MARKET order expires; the rest of a GTC
or LIMIT_MAKER order rests, its funds locked, until it is cancelled: the replay has no queue
for it, so a resting order is never filled later.

Every change is published as Binance user-data events (``executionReport``,
``outboundAccountPosition``) to the listeners (the user streams). Thread-safe: REST handlers
run in the server's loop, tests call the inspection methods and :meth:`Account.place_by_hand`
from their own thread.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import ROUND_DOWN, Decimal

from arbkit.errors import ConfigError
from arbkit.venues.emulator import private_wire as pw
from arbkit.venues.emulator import wire
from arbkit.venues.emulator.clock import ReplayClock
from arbkit.venues.emulator.config import AccountConfig
from arbkit.venues.emulator.feed import Market
from arbkit.venues.emulator.matching import E8, ZERO, Fill, Filters, available, cut, mid, walk
from arbkit.venues.emulator.records import Balance, FillRecord, OrderRecord

FIRST_ORDER_ID = 10_000_001
FIRST_TRADE_ID = 50_000_001
NS_PER_MS = 1_000_000
ORDER_TYPES = ("LIMIT", "LIMIT_MAKER", "MARKET")
TIME_IN_FORCE = ("GTC", "IOC", "FOK")
Listener = Callable[[list[dict]], None]


@dataclass(frozen=True)
class OrderRequest:
    """A new order as the venue understood it (parsed, not yet checked against filters)."""

    symbol: str
    side: str  # "BUY" | "SELL"
    type: str  # ORDER_TYPES
    time_in_force: str  # TIME_IN_FORCE; "GTC" for LIMIT_MAKER and MARKET
    qty: Decimal | None
    price: Decimal | None = None
    quote_qty: Decimal | None = None  # MARKET only: spend/receive this much quote
    client_order_id: str | None = None

    @property
    def buy(self) -> bool:
        return self.side == "BUY"


class Account:
    """One venue's account (see the module doc). Built by the server from its config."""

    def __init__(self, config: AccountConfig, markets: dict[str, Market],
                 clock: ReplayClock) -> None:
        self.config = config
        self._markets = markets
        self._filters = {s: Filters.of(m) for s, m in markets.items()}
        self._clock = clock
        self._fee = Decimal(config.taker_fee_rate)
        self._lock = threading.RLock()
        assets = set(config.balances) | {a for m in markets.values() for a in (m.base, m.quote)}
        self._free = {a: Decimal(config.balances.get(a, ZERO)) for a in assets}
        self._locked = dict.fromkeys(assets, ZERO)
        self._orders: list[OrderRecord] = []
        self._index: dict[int, int] = {}  # order id -> position in _orders
        self._open_by_cid: dict[str, int] = {}  # client id -> open order id
        self._reserved: dict[int, tuple[str, Decimal]] = {}  # open order id -> funds locked
        self._taken: dict[str, tuple[int, dict, dict]] = {}  # symbol -> (row, bids, asks)
        self._ids = Counter({"order": FIRST_ORDER_ID, "trade": FIRST_TRADE_ID})
        self._update_ms = clock.now_ms()
        self._listeners: list[Listener] = []

    # ---- wiring ---------------------------------------------------------------------------
    def add_listener(self, fn: Listener) -> None:
        """``fn(events)`` gets every batch of user-data events (called under the lock)."""
        self._listeners.append(fn)

    def _publish(self, events: list[dict]) -> None:
        for fn in self._listeners:
            fn(events)

    # ---- orders ---------------------------------------------------------------------------
    def submit(self, req: OrderRequest, match_ns: int, *, source: str = "api",
               partial_ratio: float | None = None,
               received_wall_s: float | None = None) -> OrderRecord:
        """Book, check and match one order at data time ``match_ns``; raises
        :class:`~arbkit.venues.emulator.wire.ApiError` as Binance refuses it."""
        with self._lock:
            market = self._market(req.symbol)
            cid = req.client_order_id or self._new_client_id(source)
            if cid in self._open_by_cid:
                raise wire.ApiError(wire.NEW_ORDER_REJECTED, wire.MSG_DUPLICATE)
            bids, asks, bids_taken, asks_taken = self._book(market, match_ns)
            taken = asks_taken if req.buy else bids_taken
            self._check_filters(req, bids, asks)
            fills = self._match(req, asks if req.buy else bids)
            if partial_ratio is not None:
                fills = cut(fills, partial_ratio, self._filters[req.symbol].step)
            self._check_funds(req, market, fills)
            ms = match_ns // NS_PER_MS
            qty = req.qty if req.qty is not None else sum((q for _, q in fills), ZERO)
            order = OrderRecord(
                order_id=self._next("order"), client_order_id=cid, symbol=req.symbol,
                side=req.side, type=req.type, time_in_force=req.time_in_force,
                price=req.price or ZERO, orig_qty=qty, orig_quote_qty=req.quote_qty or ZERO,
                executed_qty=ZERO, cum_quote=ZERO, status="NEW", time_ms=ms, update_ms=ms,
                received_wall_s=received_wall_s or time.time(), source=source)
            events = [pw.execution_report(order, "NEW", ms)]
            for price, q in fills:
                order, fill = self._fill(order, market, price, q, ms)
                taken[price] = taken.get(price, ZERO) + q
                events.append(pw.execution_report(order, "TRADE", ms, fill))
            order = self._rest_or_expire(order, market)
            if order.status == "EXPIRED":
                events.append(pw.execution_report(order, "EXPIRED", ms))
            self._store(order)
            events.append(pw.account_position(self._assets(market), ms))
            self._publish(events)
            return order

    def cancel(self, symbol: str, order_id: int | None, client_order_id: str | None,
               new_client_order_id: str | None = None) -> OrderRecord:
        """Cancel an open order (by venue id, else client id); -2011 if none is open."""
        with self._lock:
            market = self._market(symbol)
            if order_id is not None:
                found = self.find(symbol, order_id, None)
                order = found if found is not None and found.is_open else None
            else:
                oid = self._open_by_cid.get(client_order_id or "")
                order = self._orders[self._index[oid]] if oid is not None else None
            if order is None or order.symbol != symbol:
                raise wire.ApiError(wire.CANCEL_REJECTED, wire.MSG_UNKNOWN_ORDER)
            ms = self._clock.now_ms()
            self._release(order)
            order = replace(order, status="CANCELED", update_ms=ms,
                            cancel_client_order_id=(new_client_order_id
                                                    or self._new_client_id("cancel")))
            self._store(order)
            self._publish([pw.execution_report(order, "CANCELED", ms),
                           pw.account_position(self._assets(market), ms)])
            return order

    def find(self, symbol: str, order_id: int | None,
             client_order_id: str | None) -> OrderRecord | None:
        """The order with this venue id, else the latest with this client id (Binance accepts
        a client id again once its order is closed; a lookup then finds the newest)."""
        with self._lock:
            if order_id is not None:
                i = self._index.get(order_id)
                o = self._orders[i] if i is not None else None
                return o if o is not None and o.symbol == symbol else None
            for o in reversed(self._orders):
                if o.client_order_id == client_order_id and o.symbol == symbol:
                    return o
            return None

    def mark_answer(self, order_id: int, answer: str) -> None:
        """Record what the client was told about an order (``lost``, ``unknown``)."""
        with self._lock:
            i = self._index[order_id]
            self._orders[i] = replace(self._orders[i], answer=answer)

    def place_by_hand(self, symbol: str, side: str, qty: str | Decimal,
                      price: str | Decimal | None = None, *, order_type: str | None = None,
                      time_in_force: str = "GTC",
                      client_order_id: str | None = None) -> OrderRecord:
        """An order no API client sent (placed on the venue's web page, say): booked and
        matched now like any other, published on the user streams, ``source="hand"``.

        For reconciliation tests: a GTC limit away from the touch stays open; a marketable
        one fills (a position the client does not know).
        """
        side = side.upper()
        if side not in ("BUY", "SELL"):
            raise ConfigError(f"place_by_hand: side={side!r}; use 'BUY' or 'SELL'")
        kind = order_type or ("MARKET" if price is None else "LIMIT")
        req = OrderRequest(symbol=symbol, side=side, type=kind,
                           time_in_force="GTC" if kind != "LIMIT" else time_in_force,
                           qty=Decimal(str(qty)),
                           price=None if price is None else Decimal(str(price)),
                           client_order_id=client_order_id)
        return self.submit(req, self._clock.now_ns(), source="hand")

    # ---- reading (REST handlers and tests) -------------------------------------------------
    def orders(self, symbol: str | None = None) -> list[OrderRecord]:
        """Every order the venue booked (oldest first), as it stands now."""
        with self._lock:
            return [o for o in self._orders if symbol is None or o.symbol == symbol]

    def open_orders(self, symbol: str | None = None) -> list[OrderRecord]:
        return [o for o in self.orders(symbol) if o.is_open]

    def orders_by_client_id(self, client_order_id: str) -> list[OrderRecord]:
        return [o for o in self.orders() if o.client_order_id == client_order_id]

    def duplicate_client_ids(self) -> dict[str, int]:
        """Client ids the venue booked more than once, with how many orders each."""
        counts = Counter(o.client_order_id for o in self.orders())
        return {cid: n for cid, n in counts.items() if n > 1}

    def trades(self, symbol: str | None = None) -> list[FillRecord]:
        """Every fill of the account (oldest first)."""
        return [f for o in sorted(self.orders(symbol), key=lambda o: o.order_id)
                for f in o.fills]

    def balances(self) -> dict[str, Balance]:
        with self._lock:
            return {a: Balance(self._free[a], self._locked[a]) for a in sorted(self._free)}

    def balance(self, asset: str) -> Balance:
        return self.balances().get(asset, Balance(ZERO, ZERO))

    @property
    def update_ms(self) -> int:
        return self._update_ms

    # ---- internals -------------------------------------------------------------------------
    def _market(self, symbol: str) -> Market:
        if symbol not in self._markets:
            raise wire.ApiError(wire.BAD_SYMBOL, "Invalid symbol.")
        return self._markets[symbol]

    def _next(self, kind: str) -> int:
        n = self._ids[kind]
        self._ids[kind] += 1
        return n

    def _new_client_id(self, source: str) -> str:
        prefix = {"hand": "web_", "cancel": "cancel_"}.get(source, "emu_")
        return f"{prefix}{self._next('client'):016d}"

    def _book(self, market: Market, match_ns: int
              ) -> tuple[list[Fill], list[Fill], dict[Decimal, Decimal], dict[Decimal, Decimal]]:
        """The row visible at ``match_ns`` as (bids, asks) less what earlier orders took from
        it, and the two "taken" maps (price -> qty) the new order's fills are added to."""
        step = self._filters[market.symbol].step
        tape = market.quotes
        if tape is None:
            return [], [], {}, {}
        i = tape.visible(match_ns) - 1
        row, bids_taken, asks_taken = self._taken.get(market.symbol, (None, {}, {}))
        if row != i:
            bids_taken, asks_taken = {}, {}
            self._taken[market.symbol] = (i, bids_taken, asks_taken)
        bids = available(tape.side(i, "bid"), bids_taken, step)
        asks = available(tape.side(i, "ask"), asks_taken, step)
        return bids, asks, bids_taken, asks_taken

    def _check_filters(self, req: OrderRequest, bids: list[Fill], asks: list[Fill]) -> None:
        f = self._filters[req.symbol]
        if req.type == "MARKET":
            if req.qty is not None:
                f.check_qty(req.qty, market=True)
                ref = mid(bids, asks)
                if ref is not None:
                    f.check_notional(req.qty * ref)
            else:
                assert req.quote_qty is not None
                f.check_notional(req.quote_qty)
            return
        assert req.price is not None and req.qty is not None
        f.check_price(req.price)
        f.check_qty(req.qty, market=False)
        f.check_notional(req.price * req.qty)

    def _match(self, req: OrderRequest, side: list[Fill]) -> list[Fill]:
        step = self._filters[req.symbol].step
        if req.type == "LIMIT_MAKER":
            assert req.price is not None
            if side and (side[0][0] <= req.price if req.buy else side[0][0] >= req.price):
                raise wire.ApiError(wire.NEW_ORDER_REJECTED,
                                    "Order would immediately match and take.")
            return []
        limit = req.price if req.type == "LIMIT" else None
        fills = walk(side, buy=req.buy, limit=limit, qty=req.qty, quote_qty=req.quote_qty,
                     step=step)
        if req.time_in_force == "FOK" and sum((q for _, q in fills), ZERO) < (req.qty or 0):
            return []
        return fills

    def _fee_in_quote(self, buy: bool) -> bool:
        return not buy or self.config.fee_asset == "quote"

    def _check_funds(self, req: OrderRequest, market: Market, fills: list[Fill]) -> None:
        if req.buy:
            fee = self._fee if self._fee_in_quote(True) else ZERO
            if req.type == "MARKET":
                spend = sum((p * q for p, q in fills), ZERO)
            else:
                assert req.price is not None and req.qty is not None
                spend = req.price * req.qty
            need, asset = spend * (1 + fee), market.quote
        else:
            need = req.qty if req.qty is not None else sum((q for _, q in fills), ZERO)
            asset = market.base
        if self._free[asset] < need:
            raise wire.ApiError(wire.NEW_ORDER_REJECTED, wire.MSG_INSUFFICIENT)

    def _fill(self, order: OrderRecord, market: Market, price: Decimal, qty: Decimal,
              ms: int) -> tuple[OrderRecord, FillRecord]:
        buy = order.side == "BUY"
        notional = price * qty
        if self._fee_in_quote(buy):
            fee, fee_asset = notional * self._fee, market.quote
        else:
            fee, fee_asset = qty * self._fee, market.base
        fee = fee.quantize(E8, rounding=ROUND_DOWN)
        base_delta, quote_delta = (qty, -notional) if buy else (-qty, notional)
        self._free[market.base] += base_delta
        self._free[market.quote] += quote_delta
        self._free[fee_asset] -= fee
        fill = FillRecord(trade_id=self._next("trade"), order_id=order.order_id,
                          client_order_id=order.client_order_id, symbol=order.symbol,
                          side=order.side, price=price, qty=qty, quote_qty=notional,
                          commission=fee, commission_asset=fee_asset, time_ms=ms)
        executed = order.executed_qty + qty
        order = replace(order, executed_qty=executed, cum_quote=order.cum_quote + notional,
                        fills=(*order.fills, fill),
                        status="FILLED" if executed >= order.orig_qty else "PARTIALLY_FILLED")
        self._update_ms = ms
        return order, fill

    def _rest_or_expire(self, order: OrderRecord, market: Market) -> OrderRecord:
        if order.status == "FILLED":
            return order
        if order.type == "MARKET" or order.time_in_force in ("IOC", "FOK"):
            return replace(order, status="EXPIRED")
        left = order.orig_qty - order.executed_qty
        if order.side == "BUY":
            fee = self._fee if self._fee_in_quote(True) else ZERO
            asset, amount = market.quote, order.price * left * (1 + fee)
        else:
            asset, amount = market.base, left
        self._free[asset] -= amount
        self._locked[asset] += amount
        self._reserved[order.order_id] = (asset, amount)
        return order

    def _release(self, order: OrderRecord) -> None:
        asset, amount = self._reserved.pop(order.order_id, ("", ZERO))
        if asset:
            self._free[asset] += amount
            self._locked[asset] -= amount

    def _store(self, order: OrderRecord) -> None:
        i = self._index.get(order.order_id)
        if i is None:
            self._index[order.order_id] = len(self._orders)
            self._orders.append(order)
        else:
            self._orders[i] = order
        if order.is_open:
            self._open_by_cid[order.client_order_id] = order.order_id
        elif self._open_by_cid.get(order.client_order_id) == order.order_id:
            del self._open_by_cid[order.client_order_id]
        self._update_ms = max(self._update_ms, order.update_ms)

    def _assets(self, market: Market) -> dict[str, Balance]:
        return {a: Balance(self._free[a], self._locked[a]) for a in (market.base, market.quote)}
