"""Simulated venue: IOC limit orders that travel with latency and fill at the arrival book.

An order sent at ``t`` arrives at ``t_arrive = t + latency (+ seeded jitter)`` on the exchange
timeline. It is matched against the book as it was at that moment: either when an update of its
instrument stamped later than ``t_arrive`` is about to be applied, or when the receive clock
passes ``t_deadline`` (``t_arrive`` on one timeline; ``t_arrive + match timeout`` when exchange
timestamps exist). The strategy learns the result ``ack_ns`` after the match.
"""

from __future__ import annotations

import math

import numpy as np

from arbkit.core.book import take
from arbkit.core.inverse import fill_be, to_contracts
from arbkit.core.jit import njit
from arbkit.core.ledger import book_fill, write_order_log
from arbkit.core.risk import count_order
from arbkit.core.types import (
    ASK,
    BID,
    BUY,
    KIND_INVERSE_PERP,
    KIND_SPOT,
    RJ_BALANCE,
    RJ_CROSSED,
    RJ_NO_BAR,
    RJ_NO_BOOK,
    RJ_NONE,
    RJ_STALE,
    ST_ACCEPTED,
    ST_CANCELLED,
    ST_FILLED,
    ST_NEW,
    ST_PARTIAL,
    ST_REJECTED,
)
from arbkit.core.wallet import wallet_book, wallet_cash, wallet_coins, wallet_settle

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


@njit
def splitmix64(x):
    """Counter-based generator: the n-th draw depends only on (seed, n)."""
    z = np.uint64(x) + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@njit
def limit_price(touch, side, bound, tick) -> float:
    """IOC limit: the touch moved by ``bound`` against us, on the tick grid, never inside it."""
    if side == BUY:
        px = math.floor(touch * (1.0 + bound) / tick + 1e-9) * tick
        return px if px > touch else touch
    px = math.ceil(touch * (1.0 - bound) / tick - 1e-9) * tick
    return px if px < touch else touch


@njit
def send_order(s, r, i, side, qty, limit_px, dec_px, purpose, t) -> int:
    """Put an order in flight (a free slot always exists: slots = 4 per route); its slot."""
    g = s.glob[0]
    inst = s.inst[i]
    if inst["kind"] == KIND_INVERSE_PERP:  # the route sizes in coins, the venue in contracts
        held, held_be = leg_contracts(s.route[r], i)
        qty = to_contracts(held, held_be, inst["cv"], inst["lot"], side, qty, dec_px)
    slot = 0
    while s.orders[slot]["active"] == 1:
        slot += 1
    o = s.orders[slot]
    g["order_seq"] += 1
    jitter = 0
    if inst["jitter_ns"] > 0:
        u = splitmix64(g["seed"] ^ (np.uint64(g["order_seq"]) * _GOLDEN))
        jitter = np.int64(u % np.uint64(inst["jitter_ns"] + 1))
    o["active"] = 1
    o["matched"] = 0
    o["oid"] = g["order_seq"]
    o["route"] = r
    o["inst"] = i
    o["side"] = side
    o["purpose"] = purpose
    o["trade_id"] = s.route[r]["trade_id"]
    o["qty"] = qty
    o["limit_px"] = limit_px
    o["dec_px"] = dec_px
    o["t_send"] = t
    o["t_arrive"] = t + inst["lat_ns"] + jitter
    o["t_deadline"] = o["t_arrive"] + (inst["match_timeout_ns"] if inst["use_exch"] == 1 else 0)
    o["t_match"] = -1
    o["t_ack"] = -1
    o["filled"] = 0.0
    o["filled_be"] = 0.0
    o["fill_px"] = np.nan
    o["fee"] = 0.0
    o["status"] = ST_NEW
    o["reason"] = RJ_NONE
    rt = s.route[r]
    o["stale_ns"] = rt["stale_ns"] if rt["stale_on"] == 1 else 0
    o["last_book"] = 0
    if inst["bar"] == 1:
        # bar mode: matched at the next bar of its instrument (loop.run_chunk), or given up
        # when none comes within the data-gap limit
        gap = g["gap_ns"]
        o["t_deadline"] = o["t_arrive"] + (gap if gap > 0 else 9_223_372_036_854_775_807
                                           - o["t_arrive"])
    o["out"] = 0
    if inst["ext"] == 1:
        # an EXTERNAL venue: the order waits in the outbox; the venue's reports (EV_ORDER,
        # apply_report) fill, end and acknowledge it
        o["t_arrive"] = t
        o["t_deadline"] = 9_223_372_036_854_775_807
        g["n_outbox_new"] += 1  # run_chunk hands it out (S_OUTBOX) before going on
    else:
        inst["n_pending"] += 1
    g["n_active"] += 1
    count_order(s, i, t)
    s.route[r]["inflight"] += 1
    if o["t_deadline"] < g["next_wakeup"]:
        g["next_wakeup"] = o["t_deadline"]
    return slot


@njit
def match_order(s, slot) -> None:
    """Fill an arrived IOC order against the current book of its instrument."""
    o = s.orders[slot]
    i = o["inst"]
    inst = s.inst[i]
    side = o["side"]
    ts = o["t_arrive"]
    o["matched"] = 1
    o["t_match"] = ts
    o["t_ack"] = ts + inst["ack_ns"]
    inst["n_pending"] -= 1
    g = s.glob[0]
    if o["t_ack"] < g["next_wakeup"]:
        g["next_wakeup"] = o["t_ack"]
    if inst["has_quote"] == 0:
        _finish(s, o, ST_REJECTED, RJ_NO_BOOK)
        return
    if inst["crossed"] == 1:
        _finish(s, o, ST_REJECTED, RJ_CROSSED)
        return
    if inst["bar"] == 1 and o["last_book"] == 0 and inst["ts_recv"] < ts:
        # bar mode: no bar closed at or after the order's arrival (the deadline passed)
        _finish(s, o, ST_REJECTED, RJ_NO_BAR)
        return
    # the book's age on the clock the venue matches on (t_arrive is an exchange time then)
    book_ts = inst["ts_exch"] if inst["use_exch"] == 1 else inst["ts_recv"]
    if o["stale_ns"] > 0 and ts - book_ts > o["stale_ns"]:
        _finish(s, o, ST_REJECTED, RJ_STALE)
        return
    if inst["kind"] == KIND_SPOT and not _balance_ok(s, i, side, o["qty"], o["limit_px"], ts):
        _finish(s, o, ST_REJECTED, RJ_BALANCE)
        return
    side_idx = ASK if side == BUY else BID
    filled, px, levels = take(s, i, side_idx, o["qty"], o["limit_px"], inst["lot"])
    if filled <= 0.0:
        _finish(s, o, ST_CANCELLED, RJ_NONE)
        return
    fee = filled * px * inst["fee_rate"]  # its value in the quote currency
    if inst["kind"] == KIND_INVERSE_PERP:
        fee = filled * inst["cv"] * inst["fee_rate"]
    apply_fill(s, o, ts, filled, px, fee, levels, -1.0)
    o["filled"] = filled
    o["fill_px"] = px
    o["fee"] = fee
    status = ST_FILLED if filled >= o["qty"] - 1e-6 * inst["lot"] else ST_PARTIAL
    _finish(s, o, status, RJ_NONE)


@njit
def apply_fill(s, o, ts, filled, px, fee, levels, fee_coins) -> None:
    """Book one fill of order ``o`` (``filled`` in the instrument's units at ``px``, ``fee``
    in the quote currency, or its value for a fee paid in coins; ``fee_coins`` the coins such
    a fee took, or -1: the instrument's fee rate of ``filled``): the venue's balances and
    wallets, and the round trip's ledger. The one fill function the simulated venue and an
    external venue's reports (``apply_report``) share."""
    i = o["inst"]
    inst = s.inst[i]
    side = o["side"]
    filled_be = filled
    if inst["kind"] == KIND_INVERSE_PERP:
        # coins in and out, valued at the fill price (core/inverse.py), at the round trip's
        # own average when it reduces its position
        rt = s.route[o["route"]]
        held, held_be = leg_contracts(rt, i)
        filled_be = fill_be(held, held_be, inst["cv"], side, filled, px)
        if i == rt["inst_a"]:
            rt["ctr_a"] += side * filled
        else:
            rt["ctr_b"] += side * filled
        inst["contracts"] += side * filled
        inst["pos"] += side * filled_be
        if inst["contracts"] == 0.0:
            inst["pos"] = 0.0  # (float noise of round trips' opposite positions)
        inst["cash"] += -side * filled_be * px - fee
    else:
        if inst["fee_in_base"] == 1 and side == BUY:
            # paid in the received asset (Binance spot buys): fewer coins arrive, no quote fee;
            # the position (venue's and route's) is what arrived
            d_cash = -filled * px
            d_pos = filled * (1.0 - inst["fee_rate"]) if fee_coins < 0.0 else filled - fee_coins
            filled_be = d_pos
        else:
            d_cash = -side * filled * px - fee
            d_pos = side * filled
        inst["cash"] += d_cash
        inst["pos"] += d_pos
        if inst["kind"] == KIND_SPOT:
            wallet_book(s, i, d_cash, d_pos, ts)
    inst["fees"] += fee
    o["filled_be"] += filled_be
    book_fill(s, o, ts, filled, filled_be, px, fee, levels)


@njit
def apply_report(s, oid, filled, px, fee, status, reason, ts) -> int:
    """A report of an EXTERNAL venue on order ``oid`` at receive time ``ts``: a fill (booked by
    ``apply_fill``, as the simulator books its own; ``reason`` then counts the venue trades it
    was made of, the book levels it took), and when ``status`` is final the order
    ends: its slot is returned and the caller processes the acknowledgement now (the report is
    the acknowledgement). -1 otherwise, also when no order in flight has that id (a duplicate or
    late report: ignored, never booked twice)."""
    slot = -1
    for k in range(s.orders.shape[0]):
        if s.orders[k]["active"] == 1 and s.orders[k]["oid"] == oid:
            slot = k
            break
    if slot < 0 or s.orders[slot]["matched"] == 1:
        return -1
    o = s.orders[slot]
    inst = s.inst[o["inst"]]
    if filled > 0.0:
        coins = fee / px if inst["fee_in_base"] == 1 and o["side"] == BUY else -1.0
        apply_fill(s, o, ts, filled, px, fee, reason if reason > 0 else 1, coins)
        reason = RJ_NONE  # (with a fill, the field counts the venue's trades: book levels)
        total = o["filled"] + filled
        o["fill_px"] = px if o["filled"] == 0.0 else (o["fill_px"] * o["filled"] + px * filled) / total
        o["filled"] = total
        o["fee"] += fee
    if status <= ST_ACCEPTED:  # still working
        return -1
    o["matched"] = 1
    o["t_match"] = ts
    o["t_ack"] = ts
    _finish(s, o, status, reason)
    return slot


@njit
def leg_contracts(rt, i):
    """(contracts, base-equivalent) the round trip of ``rt`` holds on its leg ``i``."""
    if i == rt["inst_a"]:
        return rt["ctr_a"], rt["vp_a"]
    return rt["ctr_b"], rt["vp_b"]


@njit
def _balance_ok(s, i, side, qty, limit_px, t) -> bool:
    """Venue-side check at arrival: spot cannot go short or spend cash its wallet lacks."""
    inst = s.inst[i]
    wallet_settle(s, t)
    if side == BUY:
        fee = 0.0 if inst["fee_in_base"] == 1 else inst["fee_rate"]
        return wallet_cash(s, i) >= qty * limit_px * (1.0 + fee)
    return wallet_coins(s, i) >= qty - 1e-6 * inst["lot"]


@njit
def _finish(s, o, status, reason) -> None:
    o["status"] = status
    o["reason"] = reason
    write_order_log(s, o)


@njit
def match_arrived(s, i, ts_exch) -> None:
    """Before an update of instrument ``i`` stamped ``ts_exch``: match its orders that arrived
    earlier on the exchange timeline (they meet the book as it was before this update)."""
    while True:
        best = -1
        for slot in range(s.orders.shape[0]):
            o = s.orders[slot]
            if o["active"] == 1 and o["matched"] == 0 and o["inst"] == i and o["t_arrive"] < ts_exch:
                if best < 0 or _earlier(o, s.orders[best]):
                    best = slot
        if best < 0:
            return
        match_order(s, best)


@njit
def _earlier(o, p) -> bool:
    """Venue priority: earlier arrival first, then the order sent first."""
    return o["t_arrive"] < p["t_arrive"] or (o["t_arrive"] == p["t_arrive"] and o["oid"] < p["oid"])


@njit
def match_bar(s, i, t) -> None:
    """Bar mode: the bar of instrument ``i`` that closed at ``t`` was just applied; every order
    that had arrived by then fills against it (orders never fill at the close their decision
    saw: the next bar is the first book they can meet). The fill is stamped ``t``."""
    while True:
        best = -1
        for slot in range(s.orders.shape[0]):
            o = s.orders[slot]
            if o["active"] == 1 and o["matched"] == 0 and o["inst"] == i and o["t_arrive"] <= t:
                if best < 0 or _earlier(o, s.orders[best]):
                    best = slot
        if best < 0:
            return
        s.orders[best]["t_arrive"] = t
        match_order(s, best)
