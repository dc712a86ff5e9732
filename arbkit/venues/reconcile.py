"""Reconciliation of an :class:`~arbkit.venues.execution.ExecutionClient` with the venue: at
start, and the periodic checks while it runs (``RUNTIME.md`` §4, after NautilusTrader's
``reconcile_execution_state``).

At start, before any intent is taken:

1. every journaled order without a final report is resolved by client id (an order whose
   send was unclear, or that was being sent when the process died);
2. the venue's open orders: one whose client id the journal does not know halts;
3. the venue's trades since the session's first start: a trade of an order the journal does
   not know halts; a missing trade of a known order is booked (it is ours);
4. balances: at the first start they are the baseline; later, once every order is final,
   venue balance = baseline + what the journal's fills changed, asset by asset, or halt.

A halt never touches the venue (no cancel, no flattening order): it alerts and refuses new
intents until a human looks. While running: unresolved/unacknowledged orders every
``check_every_s``, open orders every ``open_orders_every_s``, balances every
``balances_every_s`` (when no order is in flight).
"""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from arbkit.core import types as T
from arbkit.venues import order_rules as R

if TYPE_CHECKING:
    from arbkit.venues.execution import ExecutionClient
    from arbkit.venues.journal import OrderRecord

BALANCE_TOL = Decimal("1e-6")  # relative; fills are exact decimals, ccxt floats are not
START_RETRY_S = 30.0  # how long a start keeps asking a venue that rate limits or hiccups


async def ask(c: ExecutionClient, fn: Any, *args: Any) -> Any:
    """``await fn(*args)`` (a ccxt call), again after a network error, a timeout, a 5xx or a
    429/418 (waiting its Retry-After, else 0.5 s doubling to 5 s) for up to
    ``START_RETRY_S``; a definite answer (an exchange error) or the last failure is raised."""
    from arbkit.venues.explain import is_retryable

    deadline, pause = time.monotonic() + START_RETRY_S, 0.5
    while True:
        try:
            return await fn(*args)
        except Exception as exc:
            if not is_retryable(exc):
                raise
            headers = getattr(c.ex, "last_response_headers", None) or {}
            try:
                wait = max(pause, float(headers.get("Retry-After") or 0.0))
            except ValueError:
                wait = pause
            if time.monotonic() + wait > deadline:
                raise
            c._error(f"{getattr(fn, '__name__', 'venue call')}: {type(exc).__name__}, "
                     f"again in {wait:g} s")
            await asyncio.sleep(wait)
            pause = min(pause * 2, 5.0)


async def at_start(c: ExecutionClient) -> None:
    open_ = [rec for rec in c.orders.values() if rec.state != "done"]
    for rec in open_:
        if rec.state == "sending":
            rec.state = "unknown"  # the process died with this send in flight
    await asyncio.gather(*(check_order(c, rec) for rec in open_))  # one order each
    await c.flush()
    await open_orders(c)
    baseline = await c.journal.baseline()
    if baseline is None:
        # trades are listed by the venue's time (the emulator's is its replay clock)
        since = int(await ask(c, c.ex.fetch_time))
        await c.journal.set_baseline({**await _venue_totals(c), "_since_ms": str(since)})
        return
    await unknown_trades(c, int(baseline.get("_since_ms", "0")))
    await c.flush()
    if not c.pending():
        await balances(c, baseline)


async def run_checks(c: ExecutionClient) -> None:
    """The periodic checks, forever (cancelled by ``close``)."""
    o = c.options
    last_open = last_bal = time.monotonic()
    while True:
        await asyncio.sleep(o.check_every_s)
        try:
            for oid in c.pending():
                rec = c.orders[oid]
                if oid not in c.busy and _due(c, rec):
                    await check_order(c, rec)
            await c.flush()
            now = time.monotonic()
            if now - last_open >= o.open_orders_every_s:
                last_open = now
                await open_orders(c)
            if now - last_bal >= o.balances_every_s and not c.pending():
                last_bal = now
                baseline = await c.journal.baseline()
                if baseline is not None:
                    await balances(c, baseline)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a venue hiccup: the next round retries
            c._error(f"check: {type(exc).__name__} {R.error_code(exc) or ''}")


def _due(c: ExecutionClient, rec: OrderRecord) -> bool:
    if rec.state in ("unknown", "sending"):
        return True
    return c._wall_ms() - rec.updated_ms >= c.options.ack_timeout_s * 1000


async def check_order(c: ExecutionClient, rec: OrderRecord) -> None:
    """Bring one non-final order up to date: resolve an unknown send by client id, fetch
    the status and the missing trades of an acked one."""
    c.busy.add(rec.oid)
    try:
        if rec.venue_order_id is None:
            await _resolve(c, rec)
        if rec.venue_order_id is not None and rec.state != "done":
            await _refresh(c, rec)
    finally:
        c.busy.discard(rec.oid)
    await c.flush()


async def _resolve(c: ExecutionClient, rec: OrderRecord) -> None:
    import ccxt

    for cid in reversed(rec.cids):
        c.stats.lookups += 1
        c._step("lookup", rec.oid)
        try:
            order = await ask(c, c.ex.fetch_order, None, rec.symbol,
                              {"origClientOrderId": cid})
        except ccxt.BaseError as exc:
            if R.error_code(exc) == R.NO_SUCH_ORDER:
                continue  # definite for this client id (until its window passes: see below)
            c._error(f"order {rec.oid} lookup: {type(exc).__name__}")
            return  # not an answer: try again at the next check
        c.apply_order(rec, order)
        return
    last = rec.attempts[-1] if rec.attempts else None
    deadline = (last.sent_ms + last.recv_window_ms + c.options.clock_skew_ms) if last else 0
    if c._wall_ms() <= deadline:
        return  # the send may still be on its way: only after its window is "none" final
    if len(rec.attempts) < c.options.max_attempts and c.state == "ready":
        c.stats.resends += 1
        await c._send(rec)
        return
    c._final(rec, T.ST_CANCELLED, T.RJ_NONE)  # never booked, and now never can be


async def _refresh(c: ExecutionClient, rec: OrderRecord) -> None:
    if rec.venue_status is None:
        c.stats.lookups += 1
        order = await ask(c, c.ex.fetch_order, rec.venue_order_id, rec.symbol)
        c.apply_order(rec, order)
    if rec.state != "done" and rec.venue_status is not None:
        trades = await ask(c, c.ex.fetch_my_trades, rec.symbol, None, None,
                           {"orderId": rec.venue_order_id})
        c.apply_trades(rec, trades)
        c._save(rec)


async def open_orders(c: ExecutionClient) -> None:
    symbols = sorted(set(c.markets.values()))  # asked together, read in order
    pages = await asyncio.gather(*(ask(c, c.ex.fetch_open_orders, s) for s in symbols))
    for symbol, page in zip(symbols, pages, strict=True):
        for order in page:
            rec = c._lookup(order.get("clientOrderId"), order.get("id"))
            if rec is None:
                c.halt(f"unknown open order at the venue: {symbol} {order.get('side')} "
                       f"{order.get('amount')} @ {order.get('price')} client id "
                       f"{order.get('clientOrderId')}")


async def unknown_trades(c: ExecutionClient, since_ms: int) -> None:
    symbols = sorted(set(c.markets.values()))
    pages = await asyncio.gather(*(_trades_since(c, s, since_ms) for s in symbols))
    for symbol, trades in zip(symbols, pages, strict=True):
        for t in trades:
            rec = c._lookup(None, t.get("order"))
            if rec is None and t.get("order"):
                # an order of ours whose venue id we never learned (its send went unclear
                # and its lookup did not answer yet): the venue's order names its client id
                order = await ask(c, c.ex.fetch_order, t["order"], symbol)
                rec = c._lookup(order.get("clientOrderId"), None)
                if rec is not None:
                    c.apply_order(rec, order)
            if rec is None:
                c.halt(f"unknown fill at the venue: {symbol} {t.get('side')} {t.get('amount')}"
                       f" @ {t.get('price')} (order {t.get('order')}, trade {t.get('id')})")
            elif str(t.get("id")) not in rec.trades:
                c.apply_trades(rec, [t])
                c._save(rec)


async def _trades_since(c: ExecutionClient, symbol: str, since_ms: int) -> list:
    """Every trade of ``symbol`` since ``since_ms`` (pages of 1000, by trade id)."""
    out: list = []
    page = await ask(c, c.ex.fetch_my_trades, symbol, since_ms, 1000)
    while page:
        out += page
        if len(page) < 1000:
            break
        last = max(int(t["id"]) for t in page)
        page = await ask(c, c.ex.fetch_my_trades, symbol, None, 1000, {"fromId": last + 1})
    return out


async def _venue_totals(c: ExecutionClient) -> dict[str, str]:
    bal = await ask(c, c.ex.fetch_balance)
    assets = {a for s in c.markets.values() for a in c._assets(s)}
    return {a: repr(float((bal.get("total") or {}).get(a) or 0.0)) for a in sorted(assets)}


async def balances(c: ExecutionClient, baseline: dict[str, str]) -> None:
    """Venue balance = baseline + journaled fills, per asset of the traded markets."""
    venue = await _venue_totals(c)
    deltas = c.balance_deltas()
    for asset, got in venue.items():
        want = Decimal(baseline.get(asset, "0")) + deltas.get(asset, Decimal(0))
        have = Decimal(got)
        if abs(have - want) > BALANCE_TOL * max(Decimal(1), abs(want)):
            c.halt(f"balance of {asset} at the venue is {have}, the journal's fills make it "
                   f"{want}: a position arbkit does not know")

