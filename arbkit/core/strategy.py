"""Spread-convergence strategy (BRIEF §5): edges, entry and exit decisions.

Edges are in bps of ``mid_ref`` (mean of the two mids), all prices in the reference currency
(each leg's quote-currency price x its FX, ``inst["fx"]``: exactly 1.0 when the leg is quoted
in the reference currency). Direction +1 buys leg A and sells leg B:
``e_AB = (bid_B - ask_A) / mid_ref``; its closing edge is ``e_BA = (bid_A - ask_B) / mid_ref``.
Signs are never taken with abs(). Exit precedence when several rules hold on one event:
stop-loss > time > take-profit > reversal > converge.
"""

from __future__ import annotations

import math

import numpy as np

from arbkit.core.book import available, floor_lot, ref_touch, vwap
from arbkit.core.inverse import to_base, to_contracts
from arbkit.core.jit import njit, njit_inline
from arbkit.core.orders import limit_price, send_order
from arbkit.core.risk import blocked, pre_guards, sized_guards
from arbkit.core.types import (
    ASK,
    BID,
    BUY,
    ENTERING,
    EXITING,
    FLAT,
    KIND_INVERSE_PERP,
    KIND_SPOT,
    OPEN,
    P_ENTRY,
    P_EXIT,
    SELL,
    SK_BALANCE,
    SK_BUSY,
    SK_COOLDOWN,
    SK_CROSSED,
    SK_DATA_GAP,
    SK_DEPTH,
    SK_MIN_NOTIONAL,
    SK_SANITY,
    SK_STALE,
    SK_STALE_FX,
    SK_TAKEN,
    X_CONVERGE,
    X_DATA_GAP,
    X_KILL,
    X_NONE,
    X_REVERSAL,
    X_RISK,
    X_SCALE_OUT,
    X_STOP_LOSS,
    X_TAKE_PROFIT,
    X_TIME,
)
from arbkit.core.wallet import wallet_cash, wallet_coins, wallet_settle

# on_market's result, one int (a tuple return goes through memory on the per-event path):
# 0 nothing; A_ENTRY_AB / A_ENTRY_BA an entry in direction +1 / -1; A_EXIT + reason an exit
A_NONE = 0
A_ENTRY_AB = 1
A_ENTRY_BA = 2
A_EXIT = 8


@njit_inline
def on_market(inst, route, book_px, skips, fx, glob, r, t):
    """Evaluate route ``r`` after a book update at receive time ``t`` (hot path).

    Returns an action code; the caller runs the rare slow path (``try_entry`` /
    ``send_exit``) with the whole state.
    """
    rt = route[r]
    a = rt["inst_a"]
    b = rt["inst_b"]
    bid_a, ask_a, bid_b, ask_b = ref_touch(inst, book_px, a, b)
    # edges in bps = diff * 1e4 / mid_ref = diff * 4e4 / sum4. Books start as NaN, so nothing
    # below is true until both legs have quoted.
    sum4 = bid_a + ask_a + bid_b + ask_b
    thr = rt["thr_entry_bps"]
    state = rt["state"]
    adj = 0.0  # the anchor in price units: edges are measured against it, not against 0
    if rt["anchor_on"] == 1:
        adj = anchor_update(rt, t, bid_a + ask_a, bid_b + ask_b, sum4) * sum4 * 2.5e-5
    if state == FLAT:
        d_ab = bid_b - ask_a - adj
        d_ba = bid_a - ask_b + adj
        if rt["anchor_on"] == 1 and t < rt["anchor_t0"] + rt["anchor_warm_ns"]:
            return A_NONE  # the anchor is still warming up
        if PLUGIN:  # a user signal decides (a compile-time constant: see core/plugin.py)
            sig = entry_signal(bid_a, ask_a, bid_b, ask_b, adj * 4e4 / sum4, thr, t)
            if sig == 0:
                return A_NONE
            rt["sig_force"] = 1 if sig == 2 or sig == -2 else 0
            rt["signal_ts"] = t
            return A_ENTRY_AB if sig > 0 else A_ENTRY_BA
        best_d = d_ab if d_ab >= d_ba else d_ba
        # common path without a division: is this edge maybe a new nearest miss, or an entry?
        # (the pre-test is loose by 1e-9 bps; the exact test follows, so an edge equal to the
        # nearest miss never replaces it through rounding)
        if (best_d * 4e4 - thr * sum4) > (rt["best_miss_bps"] - 1e-9) * sum4:
            inv = 4e4 / sum4
            best = best_d * inv
            d = 1 if d_ab >= d_ba else -1
            if best - thr > rt["best_miss_bps"] and _clean(inst, fx, glob, rt, t, best):
                # nearest miss only from data the entry guards would accept (a stale or
                # crossed book, or an implausible edge, is a data fault, not a near miss)
                rt["best_miss_bps"] = best - thr
                rt["best_miss_ts"] = t
                rt["best_miss_dir"] = d
            if best_d * 4e4 >= thr * sum4:
                rt["signal_ts"] = t
                return A_ENTRY_AB if d == 1 else A_ENTRY_BA
        elif best_d * 4e4 >= thr * sum4:
            rt["signal_ts"] = t
            return A_ENTRY_AB if d_ab >= d_ba else A_ENTRY_BA
        return A_NONE
    if (bid_b - ask_a - adj) * 4e4 >= thr * sum4 or (bid_a - ask_b + adj) * 4e4 >= thr * sum4:
        skips[r, SK_BUSY] += 1
    if state == OPEN:
        if not _tradable(inst, rt, t):
            return A_NONE
        reason = exit_reason(inst, route, book_px, r, t)
        if reason != X_NONE:
            return A_EXIT + reason
    return A_NONE


# numba freezes module globals at compile time: in the built-in kernel ``PLUGIN`` is False and
# the signal branch is removed before code generation (a branch left in the per-event path,
# even one never taken, measured ~30% slower: registers spilled around the call).
# ``core/plugin.py`` compiles a copy of the loop with PLUGIN = True and the user's function.
PLUGIN = False


@njit_inline
def entry_signal(bid_a, ask_a, bid_b, ask_b, anchor_bps, thr_bps, t) -> int:
    """The built-in kernel's placeholder for a user signal (never called there)."""
    return 0


@njit_inline
def anchor_update(rt, t, sum_a, sum_b, sum4) -> float:
    """EWMA of the mid premium (bps), time-weighted: ``A += (1 - exp(-dt / tau)) (p - A)``.

    The premium of routes with a persistent level (the Korean premium) is traded as its
    deviation from this anchor. Returns the updated anchor in bps."""
    p = (sum_b - sum_a) * 2e4 / sum4
    if p != p:  # a leg has not quoted yet
        return rt["anchor_bps"] if rt["anchor_n"] > 0 else 0.0
    if rt["anchor_n"] == 0:
        rt["anchor_bps"] = p
        rt["anchor_t0"] = t
    else:
        dt = t - rt["anchor_ts"]
        if dt > 0:
            rt["anchor_bps"] += (1.0 - math.exp(-dt / rt["anchor_tau_ns"])) * (p - rt["anchor_bps"])
    rt["anchor_ts"] = t
    rt["anchor_n"] += 1
    return rt["anchor_bps"]


@njit
def _guards_block(s, r, edge, t) -> int:
    """Data-quality guards first, so the logged reason is the root one; each block is counted
    and logged (one guard-log row per episode: reason, value, limit). -1 = clear."""
    rt = s.route[r]
    a = rt["inst_a"]
    b = rt["inst_b"]
    if s.inst[a]["crossed"] == 1 or s.inst[b]["crossed"] == 1:
        blocked(s, r, SK_CROSSED, t, 1.0, 0.0)
        return SK_CROSSED
    age = max(t - s.inst[a]["ts_recv"], t - s.inst[b]["ts_recv"])
    gap = s.glob[0]["gap_ns"]
    if gap > 0 and age > gap:
        blocked(s, r, SK_DATA_GAP, t, age * 1e-9, gap * 1e-9)
        return SK_DATA_GAP
    if rt["stale_on"] == 1 and age > rt["stale_ns"]:
        blocked(s, r, SK_STALE, t, age * 1e-6, rt["stale_ns"] * 1e-6)
        return SK_STALE
    fx_age = max(_fx_age(s.inst, s.fx, a, t), _fx_age(s.inst, s.fx, b, t))
    if fx_age > 0.0:
        blocked(s, r, SK_STALE_FX, t, fx_age, _fx_limit(s, a, b))
        return SK_STALE_FX
    if edge > rt["sanity_bps"]:
        blocked(s, r, SK_SANITY, t, edge, rt["sanity_bps"])
        return SK_SANITY
    if t < rt["cooldown_until"]:  # the strategy's own rule, not a guard: counted only
        s.skips[r, SK_COOLDOWN] += 1
        return SK_COOLDOWN
    return -1


@njit
def _fx_age(inst, fx, i, t) -> float:
    """Age in seconds of the FX rate leg ``i`` needs when it is past its series' limit (inf:
    no rate yet; 0: fresh, or the leg needs none)."""
    k = inst[i]["fx_id"]
    if k < 0:
        return 0.0
    rec = fx[k]
    if rec["n"] == 0:
        return np.inf
    if rec["max_age_ns"] > 0 and t - rec["ts"] > rec["max_age_ns"]:
        return (t - rec["ts"]) * 1e-9
    return 0.0


@njit
def _fx_limit(s, a, b) -> float:
    k = s.inst[a]["fx_id"] if s.inst[a]["fx_id"] >= 0 else s.inst[b]["fx_id"]
    return s.fx[k]["max_age_ns"] * 1e-9 if k >= 0 else 0.0


@njit
def try_entry(s, r, d, t) -> None:
    """Size, re-check at VWAP and send both IOC legs, or count why not."""
    rt = s.route[r]
    a = rt["inst_a"]
    b = rt["inst_b"]
    bid_a, ask_a, bid_b, ask_b = ref_touch(s.inst, s.book_px, a, b)
    # the same sum, in the same order, as on_market's sum4 (bit-identical thresholds)
    inv = 4e4 / (bid_a + ask_a + bid_b + ask_b)
    anchor = rt["anchor_bps"] if rt["anchor_on"] == 1 else 0.0
    if d == 1:
        edge = (bid_b - ask_a) * inv - anchor
    else:
        edge = (bid_a - ask_b) * inv + anchor
    if _guards_block(s, r, edge, t) >= 0:  # counted and logged there
        return
    if pre_guards(s, r, t) >= 0:
        return
    buy_i = rt["inst_a"] if d == 1 else rt["inst_b"]
    sell_i = rt["inst_b"] if d == 1 else rt["inst_a"]
    ask = s.book_px[buy_i, ASK, 0]
    bid = s.book_px[sell_i, BID, 0]
    buy_lim = limit_price(ask, BUY, rt["slip"], s.inst[buy_i]["tick"])
    sell_lim = limit_price(bid, SELL, rt["slip"], s.inst[sell_i]["tick"])
    f_buy = s.inst[buy_i]["fx"]
    f_sell = s.inst[sell_i]["fx"]
    # notional is in the reference currency; strategy.qty sizes in coins instead
    qty = rt["fixed_qty"] if rt["fixed_qty"] > 0.0 else rt["notional"] / (ask * f_buy)
    depth_q = min(_depth(s, buy_i, ASK, buy_lim, ask), _depth(s, sell_i, BID, sell_lim, bid))
    bal_q = qty
    wallet_settle(s, t)
    if s.inst[buy_i]["kind"] == KIND_SPOT:
        bal_q = min(bal_q, wallet_cash(s, buy_i) / (buy_lim * (1.0 + s.inst[buy_i]["fee_rate"])))
    if s.inst[sell_i]["kind"] == KIND_SPOT:
        bal_q = min(bal_q, wallet_coins(s, sell_i))
    qty = floor_lot(min(qty, depth_q, bal_q), rt["lot"])
    rt["hedge_tol"] = 0.0
    if qty > 0.0 and (s.inst[buy_i]["kind"] == KIND_INVERSE_PERP
                      or s.inst[sell_i]["kind"] == KIND_INVERSE_PERP):
        qty = _whole_contracts(s, r, buy_i, sell_i, qty, ask, bid)
    if s.inst[buy_i]["fee_in_base"] == 1:
        # the buy pays its fee in the coins it receives: that many fewer arrive, by design
        # (not a legging incident); the position is what arrived, and closing sells that
        rt["hedge_tol"] += qty * s.inst[buy_i]["fee_rate"] * (1.0 + 1e-9) + 1e-12 * qty
    if qty <= 0.0:
        s.skips[r, SK_BALANCE if bal_q < depth_q else SK_DEPTH] += 1
        return
    vb = _vwap(s, buy_i, ASK, qty, buy_lim, ask)
    vs = _vwap(s, sell_i, BID, qty, sell_lim, bid)
    e_vwap = (vs * f_sell - vb * f_buy) * inv  # the executable edge itself
    forced = rt["plugin"] == 1 and rt["sig_force"] == 1
    if not forced and not (e_vwap - d * anchor >= rt["thr_entry_bps"]):  # against the anchor
        s.skips[r, SK_DEPTH] += 1
        return
    if qty * vb < s.inst[buy_i]["min_notional"] or qty * vs < s.inst[sell_i]["min_notional"]:
        s.skips[r, SK_MIN_NOTIONAL] += 1
        return
    if sized_guards(s, r, t, buy_i, sell_i, qty, vb, vs, ask, bid) >= 0:
        return
    s.skips[r, SK_TAKEN] += 1
    _start_trade(s, r, d, e_vwap, inv, t)
    send_order(s, r, buy_i, BUY, qty, buy_lim, ask, P_ENTRY, t)
    send_order(s, r, sell_i, SELL, qty, sell_lim, bid, P_ENTRY, t)
    rt["dec_px_a"] = ask if d == 1 else bid
    rt["dec_px_b"] = bid if d == 1 else ask


@njit
def _depth(s, i, side_idx, limit, touch) -> float:
    """Size within ``limit``, in base units (an inverse perpetual's book is in contracts)."""
    n = available(s, i, side_idx, limit)
    return to_base(s.inst[i], n, touch) if s.inst[i]["kind"] == KIND_INVERSE_PERP else n


@njit
def _vwap(s, i, side_idx, qty, limit, touch) -> float:
    """VWAP of a base quantity (as the contracts it will be sent as, for an inverse leg)."""
    if s.inst[i]["kind"] == KIND_INVERSE_PERP:  # (an entry: the route holds nothing yet)
        inst = s.inst[i]
        n = to_contracts(0.0, 0.0, inst["cv"], inst["lot"], BUY if side_idx == ASK else SELL,
                         qty, touch)
        return vwap(s, i, side_idx, n, limit)
    return vwap(s, i, side_idx, qty, limit)


@njit
def _whole_contracts(s, r, buy_i, sell_i, qty, ask, bid) -> float:
    """Size a route with an inverse leg: whole lots of contracts first (at the touch), then
    the other leg's quantity to match their base-equivalent; the hedge tolerance is half a
    lot of contracts. Returns 0 when the size is under one lot of contracts."""
    rt = s.route[r]
    inv_i = buy_i if s.inst[buy_i]["kind"] == KIND_INVERSE_PERP else sell_i
    k = s.inst[inv_i]["cv"] / (ask if inv_i == buy_i else bid)  # coins per contract
    lot = s.inst[inv_i]["lot"]
    n = math.floor(qty / k / lot + 1e-9) * lot
    rt["hedge_tol"] = 0.5 * lot * k
    return floor_lot(n * k, rt["lot"])


@njit
def _start_trade(s, r, d, e_vwap, inv, t) -> None:
    g = s.glob[0]
    rt = s.route[r]
    a = rt["inst_a"]
    b = rt["inst_b"]
    g["trade_seq"] += 1
    rt["trade_id"] = g["trade_seq"]
    rt["state"] = ENTERING
    rt["dir"] = d
    rt["entry_ts"] = t
    rt["entry_edge_bps"] = e_vwap
    rt["fx_a0"] = s.inst[a]["fx"]
    rt["fx_b0"] = s.inst[b]["fx"]
    mid_a = 0.5 * (s.book_px[a, BID, 0] + s.book_px[a, ASK, 0]) * rt["fx_a0"]
    mid_b = 0.5 * (s.book_px[b, BID, 0] + s.book_px[b, ASK, 0]) * rt["fx_b0"]
    rt["entry_prem_bps"] = (mid_b - mid_a) * inv
    rt["funding"] = 0.0
    _reset_ledger(rt)
    rt["naked_leg"] = -1
    rt["naked_qty"] = 0.0
    rt["entry_anchor_bps"] = rt["anchor_bps"] if rt["anchor_on"] == 1 else 0.0
    rt["pending_reason"] = X_NONE
    rt["qty"] = 0.0
    rt["entry_notional"] = 0.0
    rt["entry_buy_px"] = 0.0
    rt["dec_pnl"] = 0.0
    rt["slip_cost"] = 0.0
    rt["fee_sum"] = 0.0
    rt["leg_cost"] = 0.0
    rt["leg_cost0"] = 0.0
    rt["n_fills"] = 0
    rt["n_legs"] = 0
    rt["leg_open"] = 0
    rt["hold_fired"] = 0
    rt["unwind_tries"] = 0
    rt["exit_edge_bps"] = 0.0
    rt["exit_prem_bps"] = 0.0
    rt["scaled"] = 0
    rt["n_entries"] += 1


@njit
def _reset_ledger(rt) -> None:
    """A new round trip's own ledger starts empty (ledger.book_fill fills it)."""
    rt["cq_a"] = 0.0
    rt["cq_b"] = 0.0
    rt["fq_a"] = 0.0
    rt["fq_b"] = 0.0
    rt["fr_a"] = 0.0
    rt["fr_b"] = 0.0
    rt["uq_a"] = 0.0
    rt["uq_b"] = 0.0
    rt["ur_a"] = 0.0
    rt["ur_b"] = 0.0
    rt["vp_a"] = 0.0
    rt["vp_b"] = 0.0
    rt["ctr_a"] = 0.0
    rt["ctr_b"] = 0.0


@njit_inline
def exit_reason(inst, route, book_px, r, t) -> int:
    """Which exit rule holds now (precedence: stop > time > take-profit > reversal > converge).

    Pure, division-free and call-free (it runs on every event while a position is open): a bps
    test ``diff / mid_ref * 1e4 >= x`` is made as ``diff * 4e4 >= x * sum4``, with ``sum4``
    the sum of the four touch prices.
    """
    rt = route[r]
    if rt["force_exit"] != 0:  # a running guard or the kill switch flattens
        return rt["force_exit"]
    a = rt["inst_a"]
    b = rt["inst_b"]
    bid_a, ask_a, bid_b, ask_b = ref_touch(inst, book_px, a, b)
    sum4 = bid_a + ask_a + bid_b + ask_b
    d = rt["dir"]
    if rt["sl_on"] == 1:
        prem4 = (bid_b + ask_b - bid_a - ask_a) * 2e4  # mid premium x sum4, in bps
        if d * (prem4 - rt["entry_prem_bps"] * sum4) >= rt["sl_bps"] * sum4:
            return X_STOP_LOSS
    if rt["hold_on"] == 1 and t >= rt["hold_deadline"]:
        return X_TIME
    if rt["tp_on"] == 1:
        # round-trip net PnL if both legs closed at the touch now, after taker fees
        # (terms precomputed when the route became OPEN: lifecycle._take_profit_terms)
        fa = inst[a]["fx"]
        fb = inst[b]["fx"]
        if ((rt["tp_ca"] * book_px[a, rt["tp_sa"], 0] + rt["tp_qa"]) * fa
                + (rt["tp_cb"] * book_px[b, rt["tp_sb"], 0] + rt["tp_qb"]) * fb >= rt["tp_k"]):
            return X_TAKE_PROFIT
    close4 = ((bid_a - ask_b) if d == 1 else (bid_b - ask_a)) * 4e4
    if rt["anchor_on"] == 1:  # converged = the premium is back at its anchor
        close4 += d * rt["anchor_bps"] * sum4
    if rt["rev_on"] == 1 and close4 >= rt["thr_entry_bps"] * sum4:
        return X_REVERSAL
    if rt["scale_on"] == 1 and rt["scaled"] == 0 and close4 >= rt["scale_bps"] * sum4:
        return X_SCALE_OUT
    if rt["conv_on"] == 1 and close4 >= rt["exit_bps"] * sum4:
        return X_CONVERGE
    return X_NONE


@njit
def _clean(inst, fx, glob, rt, t, edge) -> bool:
    """The data-quality guards pass (same tests as ``_guards_block``, without counting): a
    nearest miss is never an edge made of a crossed, stale or gapped book or a stale FX."""
    a = rt["inst_a"]
    b = rt["inst_b"]
    gap = glob[0]["gap_ns"]
    if gap > 0 and (t - inst[a]["ts_recv"] > gap or t - inst[b]["ts_recv"] > gap):
        return False
    return (_tradable(inst, rt, t) and edge <= rt["sanity_bps"]
            and _fx_age(inst, fx, a, t) == 0.0 and _fx_age(inst, fx, b, t) == 0.0)


@njit_inline
def _tradable(inst, rt, t) -> bool:
    """Both books uncrossed and (with a quote-age limit) fresh: exits wait otherwise, since an
    order would meet a crossed or stale book (the venue may be down)."""
    a = rt["inst_a"]
    b = rt["inst_b"]
    if inst[a]["crossed"] == 1 or inst[b]["crossed"] == 1:
        return False
    if rt["stale_on"] == 1:
        return t - inst[a]["ts_recv"] <= rt["stale_ns"] and t - inst[b]["ts_recv"] <= rt["stale_ns"]
    return True


@njit
def check_exit(s, r, t) -> None:
    """Exit an OPEN route if a rule holds and both books are tradable (timer path)."""
    if not _tradable(s.inst, s.route[r], t):
        return
    reason = exit_reason(s.inst, s.route, s.book_px, r, t)
    if reason != X_NONE:
        send_exit(s, r, reason, t)


@njit
def send_exit(s, r, reason, t) -> None:
    """Record the exit decision's edge and premium, then send IOC orders closing each leg."""
    rt = s.route[r]
    a = rt["inst_a"]
    b = rt["inst_b"]
    bid_a, ask_a, bid_b, ask_b = ref_touch(s.inst, s.book_px, a, b)
    inv = 4e4 / (bid_a + ask_a + bid_b + ask_b)
    rt["exit_edge_bps"] = ((bid_a - ask_b) if rt["dir"] == 1 else (bid_b - ask_a)) * inv
    rt["exit_prem_bps"] = (bid_b + ask_b - bid_a - ask_a) * 0.5 * inv
    gap = reason == X_DATA_GAP
    forced = (reason == X_STOP_LOSS or reason == X_TIME or reason == X_RISK or reason == X_KILL
              or gap)
    bound = rt["force_slip"] if forced else rt["slip"]
    scale = reason == X_SCALE_OUT
    if scale:
        rt["scaled"] = 1
    for leg in range(2):
        i = a if leg == 0 else b
        pos = rt["pos_a"] if leg == 0 else rt["pos_b"]
        if scale:
            qty = floor_lot(abs(pos) * rt["scale_frac"], rt["lot"])
        elif s.inst[i]["kind"] == KIND_INVERSE_PERP:
            qty = abs(pos)
        else:  # whole lots: a fee paid in coins can leave a fraction of a lot (dust)
            qty = floor_lot(abs(pos), s.inst[i]["lot"])
        if qty == 0.0:
            continue
        side = SELL if pos > 0 else BUY
        touch = s.book_px[i, BID, 0] if side == SELL else s.book_px[i, ASK, 0]
        lim = limit_price(touch, side, bound, s.inst[i]["tick"])
        slot = send_order(s, r, i, side, qty, lim, touch, P_EXIT, t)
        if gap:  # the data stopped: close against the last books we saw, whatever their age
            o = s.orders[slot]
            o["last_book"] = 1
            o["stale_ns"] = 0
            o["t_deadline"] = o["t_arrive"]
            if o["t_deadline"] < s.glob[0]["next_wakeup"]:
                s.glob[0]["next_wakeup"] = o["t_deadline"]
        if leg == 0:
            rt["dec_px_a"] = touch
        else:
            rt["dec_px_b"] = touch
    if rt["inflight"] == 0:  # nothing could be sent (only dust left): flat at once
        rt["pending_reason"] = reason
        rt["state"] = EXITING
        return
    rt["state"] = EXITING
    rt["pending_reason"] = X_NONE if scale else reason  # a scale-out is not the trade's end
    rt["hold_armed"] = 1 if scale and rt["hold_on"] == 1 and rt["hold_fired"] == 0 else 0
