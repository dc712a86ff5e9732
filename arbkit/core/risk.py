"""Risk guards (BRIEF §6): the pre-trade checks of an entry and the guard log.

Data-quality guards (crossed, stale quote, stale FX, sanity) run first, in
``strategy._guards_block``, so the counted reason is the root one; then these, in order:
halted (a running guard stopped trading), same jump on many routes at once (an entry signal
waits ``same_jump_window_ms`` to be confirmed, then is refused if enough routes signalled around
the same time), loss-streak pause (before sizing), then entry slippage, symbol cap, gross exposure cap, venue imbalance and the
order rate limit (after sizing, with the entry's size and prices). The running guards (daily
loss, drawdown, kill) are in ``core/halt.py``.

Each blocked entry is counted per route and reason (``skips``); the guard log gets one row
per *episode*: when the reason blocking a route changes, not on every event it persists.
"""

from __future__ import annotations

from arbkit.core.book import ref_touch
from arbkit.core.jit import njit
from arbkit.core.types import (
    ASK,
    BID,
    FLAT,
    HALT_NONE,
    SK_GROSS_CAP,
    SK_HALTED,
    SK_LOSS_STREAK,
    SK_RATE_LIMIT,
    SK_SAME_JUMP,
    SK_SAME_JUMP_WAIT,
    SK_SLIPPAGE,
    SK_SYMBOL_CAP,
    SK_SYMBOL_OFF,
    SK_VENUE_IMBALANCE,
)

SECOND = 1_000_000_000


@njit
def log_guard(s, t, code, r, value, limit) -> None:
    """One guard-log row (the caller made sure there is room)."""
    g = s.glob[0]
    n = g["n_guard"]
    if n >= s.guards.shape[0]:
        return  # never reached: has_room covers the guard log (kept as a safety net)
    rec = s.guards[n]
    rec["ts"] = t
    rec["code"] = code
    rec["route"] = r
    rec["value"] = value
    rec["limit"] = limit
    g["n_guard"] = n + 1


@njit
def blocked(s, r, code, t, value, limit) -> None:
    """Count a blocked entry; log it when the route's blocking reason changed."""
    s.skips[r, code] += 1
    rt = s.route[r]
    if rt["last_block"] != code:
        rt["last_block"] = code
        log_guard(s, t, code, r, value, limit)


@njit
def pre_guards(s, r, t) -> int:
    """Guards that need no size: -1 = clear, else the SK_* code (already counted/logged)."""
    g = s.glob[0]
    rk = s.risk[0]
    rt = s.route[r]
    if g["halt"] != HALT_NONE:
        blocked(s, r, SK_HALTED, t, float(g["halt"]), 0.0)
        return SK_HALTED
    if rt["off"] == 1:
        blocked(s, r, SK_SYMBOL_OFF, t, float(rt["base_id"]), 0.0)
        return SK_SYMBOL_OFF
    if rk["jump_routes"] >= 2:
        # confirm first: the entry waits one window, then counts the routes that signalled
        # around the same time (or clear their threshold on the books now: an FX jump)
        w = rk["jump_ns"]
        if t - rt["sig_first"] > 4 * w:
            rt["sig_first"] = t  # a new signal episode
        if t - rt["sig_first"] < w:
            s.skips[r, SK_SAME_JUMP_WAIT] += 1
            return SK_SAME_JUMP_WAIT
        n = _routes_signalling(s, rt["sig_first"] - w)
        if n >= rk["jump_routes"]:
            blocked(s, r, SK_SAME_JUMP, t, float(n), float(rk["jump_routes"]))
            return SK_SAME_JUMP
    if t < rt["streak_until"]:
        blocked(s, r, SK_LOSS_STREAK, t, float(rt["streak_until"]), 0.0)
        return SK_LOSS_STREAK
    return -1


@njit
def _routes_signalling(s, since) -> int:
    """Routes whose entry signal fired since ``since``, or whose edge clears its threshold on
    the books right now (an FX jump moves them all at once, before any of them trades)."""
    n = 0
    for j in range(s.route.shape[0]):
        rt = s.route[j]
        if rt["signal_ts"] >= since or _edge_now_clears(s, j):
            n += 1
    return n


@njit
def _edge_now_clears(s, j) -> bool:
    rt = s.route[j]
    a = rt["inst_a"]
    b = rt["inst_b"]
    bid_a, ask_a, bid_b, ask_b = ref_touch(s.inst, s.book_px, a, b)
    sum4 = bid_a + ask_a + bid_b + ask_b
    adj = rt["anchor_bps"] * sum4 * 2.5e-5 if rt["anchor_on"] == 1 else 0.0
    thr = rt["thr_entry_bps"] * sum4
    return (bid_b - ask_a - adj) * 4e4 >= thr or (bid_a - ask_b + adj) * 4e4 >= thr


@njit
def sized_guards(s, r, t, buy_i, sell_i, qty, vb, vs, ask, bid) -> int:
    """Guards on the sized entry: -1 = clear, else the SK_* code (counted and logged)."""
    rk = s.risk[0]
    slip = max((vb - ask) / ask, (bid - vs) / bid) * 1e4
    if slip > rk["slip_bps"]:
        blocked(s, r, SK_SLIPPAGE, t, slip, rk["slip_bps"])
        return SK_SLIPPAGE
    notional = qty * vb * s.inst[buy_i]["fx"]
    sym = _symbol_notional(s, s.route[r]["base_id"]) + notional
    if sym > rk["symbol_cap"]:
        blocked(s, r, SK_SYMBOL_CAP, t, sym, rk["symbol_cap"])
        return SK_SYMBOL_CAP
    gross = _gross(s) + 2.0 * notional
    if gross > rk["gross_cap"]:
        blocked(s, r, SK_GROSS_CAP, t, gross, rk["gross_cap"])
        return SK_GROSS_CAP
    for i, sign in ((buy_i, 1.0), (sell_i, -1.0)):
        net = _venue_net(s, s.inst[i]["venue_id"])
        new = net + sign * notional
        if abs(new) > rk["imbalance_cap"] and abs(new) > abs(net):
            blocked(s, r, SK_VENUE_IMBALANCE, t, new, rk["imbalance_cap"])
            return SK_VENUE_IMBALANCE
    for i in (buy_i, sell_i):
        v = s.venues[s.inst[i]["venue_id"]]
        used = v["orders"] if v["second"] == t // SECOND else 0
        if used + 1 > rk["rate"]:
            blocked(s, r, SK_RATE_LIMIT, t, float(used + 1), rk["rate"])
            return SK_RATE_LIMIT
    s.route[r]["last_block"] = -1
    return -1


@njit
def count_order(s, i, t) -> None:
    """An order to instrument ``i``'s venue, for the rate limit (fixed one-second windows)."""
    v = s.venues[s.inst[i]["venue_id"]]
    sec = t // SECOND
    if v["second"] != sec:
        v["second"] = sec
        v["orders"] = 0
    v["orders"] += 1


@njit
def _symbol_notional(s, base_id) -> float:
    total = 0.0
    for j in range(s.route.shape[0]):
        rt = s.route[j]
        if rt["base_id"] == base_id and rt["state"] != FLAT:
            total += rt["entry_notional"] if rt["entry_notional"] > 0.0 else rt["notional"]
    return total


@njit
def _mid_ref(s, i) -> float:
    return 0.5 * (s.book_px[i, BID, 0] + s.book_px[i, ASK, 0]) * s.inst[i]["fx"]


@njit
def _gross(s) -> float:
    total = 0.0
    for i in range(s.inst.shape[0]):
        pos = s.inst[i]["pos"]
        if pos != 0.0:
            total += abs(pos) * _mid_ref(s, i)
    return total


@njit
def _venue_net(s, v) -> float:
    total = 0.0
    for i in range(s.inst.shape[0]):
        if s.inst[i]["venue_id"] == v and s.inst[i]["pos"] != 0.0:
            total += s.inst[i]["pos"] * _mid_ref(s, i)
    return total
