"""Accounting inside the kernel: per-fill accumulation, round-trip records, equity samples.

Everything a round trip records is in the reference currency. A fill's cash flow and fee are
in the instrument's quote currency and are converted at the FX of the fill; price move and
slippage use each leg's FX at the entry decision, and the difference is the FX effect:
``cf x fx_fill = cf x fx_entry + cf x (fx_fill - fx_entry)``. Identity kept by construction
(and tested): ``gross_pnl = price_pnl - slippage + fx_pnl`` and
``net_pnl = price_pnl - slippage - fees + fx_pnl + funding``.
"""

from __future__ import annotations

import numpy as np

from arbkit.core.jit import njit
from arbkit.core.types import ASK, BID, FLAT, KIND_INVERSE_PERP, X_OPEN_AT_END


@njit
def mid(s, i) -> float:
    return 0.5 * (s.book_px[i, BID, 0] + s.book_px[i, ASK, 0])


@njit
def has_room(s, need) -> bool:
    """True when every output buffer can take ``need`` more records."""
    g = s.glob[0]
    return (
        g["n_fills"] + need <= s.fills.shape[0]
        and g["n_orders"] + need <= s.olog.shape[0]
        and g["n_trades"] + need <= s.trades.shape[0]
        and g["n_equity"] + need <= s.equity.shape[0]
        and g["n_legs"] + need <= s.legs.shape[0]
        and g["n_guard"] + need <= s.guards.shape[0]
    )


@njit
def equity_now(glob, inst, book_px):
    """(strategy equity, gross exposure) marked to mid.

    Only what trading changed counts (cash and inventory deltas since the start), so pre-funded
    inventory revaluation never shows up as arbitrage PnL. A closed round trip's foreign cash
    and leftover coins count at their value when it closed (``conv_*``: what they did since is
    the treasury line's), transfers at their own line (``xfer_*``).
    """
    eq = glob[0]["capital"]
    gross = 0.0
    for i in range(inst.shape[0]):
        rec = inst[i]
        dpos = rec["pos"] - rec["conv_b"]
        fx = rec["fx"]
        cash = rec["cash"] - rec["conv_q"] + rec["xfer_c"]
        if cash != 0.0:  # (fx is NaN before a leg's first FX rate; nothing traded then)
            eq += cash * fx
        if rec["conv_ref"] != 0.0:
            eq += rec["conv_ref"]
        if dpos != 0.0 or rec["xfer_p"] != 0.0:
            m = 0.5 * (book_px[i, BID, 0] + book_px[i, ASK, 0]) * fx
            if dpos != 0.0:
                eq += dpos * m
                gross += abs(dpos) * m
            if rec["xfer_p"] != 0.0:
                eq += rec["xfer_p"] * m
    return eq, gross


@njit
def write_equity_arrays(glob, inst, route, book_px, equity, ts) -> None:
    """Append one equity sample (takes arrays, not the state tuple: it runs every interval)."""
    g = glob[0]
    eq, gross = equity_now(glob, inst, book_px)
    n_open = 0
    for r in range(route.shape[0]):
        if route[r]["state"] != FLAT:
            n_open += 1
    rec = equity[g["n_equity"]]
    rec["ts"] = ts
    rec["equity"] = eq
    rec["gross_exposure"] = gross
    rec["n_open"] = n_open
    g["n_equity"] += 1
    g["last_eq"] = eq


@njit
def write_equity(s, ts) -> None:
    write_equity_arrays(s.glob, s.inst, s.route, s.book_px, s.equity, ts)


@njit
def book_fill(s, o, ts, filled, qty, px, fee, levels) -> None:
    """Record one fill: fill row, the round trip's ledger and decomposition, legging cost.

    ``filled`` is in the instrument's units (the row's ``qty``), ``qty`` what it moves the
    position by in base units: the base-equivalent of an inverse perpetual's contracts, and
    for a buy paying its fee in the received coins the coins that arrived. ``fee`` is in the
    quote currency (a coin fee: its value at the fill price)."""
    g = s.glob[0]
    rt = s.route[o["route"]]
    side = o["side"]
    fx = s.inst[o["inst"]]["fx"]
    leg_a = o["inst"] == rt["inst_a"]
    fx0 = rt["fx_a0"] if leg_a else rt["fx_b0"]
    slip = side * qty * (px - o["dec_px"]) * fx0
    cf = -side * qty * px
    f = s.fills[g["n_fills"]]
    f["ts"] = ts
    f["oid"] = o["oid"]
    f["trade_id"] = o["trade_id"]
    f["route"] = o["route"]
    f["inst"] = o["inst"]
    f["side"] = side
    f["purpose"] = o["purpose"]
    f["qty"] = filled
    f["px"] = px
    f["fee"] = fee
    f["dec_px"] = o["dec_px"]
    f["slip_cost"] = slip
    f["levels"] = levels
    f["fx"] = fx
    g["n_fills"] += 1
    if leg_a:
        rt["cq_a"] += cf
        rt["fq_a"] += fee
        rt["fr_a"] += fee * fx
        rt["vp_a"] += side * qty
    else:
        rt["cq_b"] += cf
        rt["fq_b"] += fee
        rt["fr_b"] += fee * fx
        rt["vp_b"] += side * qty
    rt["dec_pnl"] += -side * qty * o["dec_px"] * fx0
    rt["slip_cost"] += slip
    rt["fee_sum"] += fee * fx
    rt["n_fills"] += 1
    if o["purpose"] >= 2:  # unwind or chase: what legging cost vs the leg's decision price
        rt["leg_cost"] += side * qty * (px - rt["leg_ref_px"]) * fx0 + fee * fx
    elif rt["naked_leg"] >= 0 and o["purpose"] == 1 and (rt["naked_leg"] == 0) == leg_a:
        _naked_close_cost(s, o["route"], ts, side, qty, px, fee, fx, fx0)


@njit
def _naked_close_cost(s, r, ts, side, qty, px, fee, fx, fx0) -> None:
    """An exit fill closing a legging residual held naked: what holding it cost (its move from
    the leg's decision price, and its share of the fee) goes to the round trip's legging cost
    and to a row of its own once it is closed."""
    rt = s.route[r]
    n = rt["naked_qty"]
    if side * n >= 0.0:  # not reducing the naked position
        return
    part = qty if qty < abs(n) else abs(n)
    cost = side * part * (px - rt["naked_px"]) * fx0 + fee * fx * part / qty
    rt["leg_cost"] += cost
    rt["naked_cost"] += cost
    rt["naked_closed"] += part
    rest = abs(n) - part
    if rest <= 1e-9 * abs(n):  # closed: its own row, after the incident that left it
        g = s.glob[0]
        rec = s.legs[g["n_legs"]]
        rec["trade_id"] = rt["trade_id"]
        rec["route"] = r
        rec["start_ts"] = rt["naked_start"]
        rec["end_ts"] = ts  # the fill that closed it
        rec["excess_qty"] = rt["naked_closed"]
        rec["residual_qty"] = 0.0
        rec["cost"] = rt["naked_cost"]
        rec["tries"] = 0
        rec["closes"] = 1
        g["n_legs"] += 1
        rt["naked_leg"] = -1
        rt["naked_qty"] = 0.0
    else:
        rt["naked_qty"] = rest if n > 0 else -rest


@njit
def write_order_log(s, o) -> None:
    g = s.glob[0]
    rec = s.olog[g["n_orders"]]
    rec["oid"] = o["oid"]
    rec["trade_id"] = o["trade_id"]
    rec["route"] = o["route"]
    rec["inst"] = o["inst"]
    rec["side"] = o["side"]
    rec["purpose"] = o["purpose"]
    rec["qty"] = o["qty"]
    rec["limit_px"] = o["limit_px"]
    rec["dec_px"] = o["dec_px"]
    rec["t_send"] = o["t_send"]
    rec["t_match"] = o["t_match"]
    rec["filled"] = o["filled"]
    rec["fill_px"] = o["fill_px"]
    rec["fee"] = o["fee"]
    rec["status"] = o["status"]
    rec["reason"] = o["reason"]
    g["n_orders"] += 1


@njit
def write_leg(s, r, end_ts, residual) -> None:
    g = s.glob[0]
    rt = s.route[r]
    rec = s.legs[g["n_legs"]]
    rec["trade_id"] = rt["trade_id"]
    rec["route"] = r
    rec["start_ts"] = rt["leg_start"]
    rec["end_ts"] = end_ts
    rec["excess_qty"] = rt["leg_qty"]
    rec["residual_qty"] = residual
    rec["cost"] = rt["leg_cost"] - rt["leg_cost0"]  # this incident's cost only
    rec["tries"] = rt["unwind_tries"]
    rec["closes"] = 0
    g["n_legs"] += 1
    rt["leg_open"] = 0
    rt["n_legs"] += 1


@njit
def close_fee(rec, pos, px, contracts) -> float:
    """Taker fee of closing a base-equivalent position ``pos`` at ``px`` (quote currency): on
    the notional, or for an inverse perpetual on the ``contracts`` that closing sends
    (``contracts x cv x fee``, core/inverse.py), which does not depend on the price."""
    if rec["kind"] == KIND_INVERSE_PERP:
        return abs(contracts) * rec["cv"] * rec["fee_rate"]
    return abs(pos) * px * rec["fee_rate"]


@njit
def _leg_value(s, rt, leg, is_open):
    """One leg of a round trip now: (value at mid, value at the touch net of the closing fee,
    price move of its coins at the entry FX, FX effect), reference currency."""
    i = rt["inst_a"] if leg == 0 else rt["inst_b"]
    rec = s.inst[i]
    fx = rec["fx"]
    if leg == 0:
        cq, fq, fr, uq, ur, vp, fx0 = (rt["cq_a"], rt["fq_a"], rt["fr_a"], rt["uq_a"], rt["ur_a"],
                                       rt["vp_a"], rt["fx_a0"])
        ctr = rt["ctr_a"]
    else:
        cq, fq, fr, uq, ur, vp, fx0 = (rt["cq_b"], rt["fq_b"], rt["fr_b"], rt["uq_b"], rt["ur_b"],
                                       rt["vp_b"], rt["fx_b0"])
        ctr = rt["ctr_b"]
    q = cq - fq + uq
    m = 0.0
    ex = 0.0
    if vp != 0.0:
        m = vp * 0.5 * (s.book_px[i, BID, 0] + s.book_px[i, ASK, 0])
        if is_open:
            px = s.book_px[i, BID, 0] if vp > 0 else s.book_px[i, ASK, 0]
            ex = vp * px - close_fee(rec, vp, px, ctr)
    fxe = 0.0
    if rec["fx_id"] >= 0:  # a reference-currency leg has no FX effect (exactly 0)
        fxe = cq * (fx - fx0) - (fq * fx - fr) + (uq * fx - ur) + m * (fx - fx0)
    return (q + m) * fx, (q + ex) * fx, m * fx0, fxe


@njit
def _realise(s, rt, leg) -> None:
    """A closed round trip's foreign cash and leftover coins (fee dust) count at their value
    now from here on (``conv_*``); what they gain or lose afterwards is treasury."""
    i = rt["inst_a"] if leg == 0 else rt["inst_b"]
    rec = s.inst[i]
    if leg == 0:
        q = rt["cq_a"] - rt["fq_a"] + rt["uq_a"]
        vp = rt["vp_a"]
    else:
        q = rt["cq_b"] - rt["fq_b"] + rt["uq_b"]
        vp = rt["vp_b"]
    fx = rec["fx"]
    if rec["fx_id"] >= 0 and q != 0.0:
        rec["conv_q"] += q
        rec["conv_ref"] += q * fx
    if abs(vp) >= 1e-6 * rec["lot"]:  # (float noise of a flat position stays unconverted)
        rec["conv_b"] += vp
        rec["conv_ref"] += vp * 0.5 * (s.book_px[i, BID, 0] + s.book_px[i, ASK, 0]) * fx


@njit
def write_trade(s, r, ts, reason, is_open) -> None:
    """Write the round-trip record of route ``r`` (closed, or open and marked at the end).

    Its money comes from its own ledger as the venues booked it (docs/metrics.md): each leg's
    quote cash ``(cq - fq + uq)`` and coins ``vp``, valued now."""
    g = s.glob[0]
    rt = s.route[r]
    rec = s.trades[g["n_trades"]]
    rec["trade_id"] = rt["trade_id"]
    rec["route"] = r
    rec["dir"] = rt["dir"]
    rec["is_open"] = is_open
    rec["entry_ts"] = rt["entry_ts"]
    rec["exit_ts"] = ts
    rec["qty"] = rt["qty"]
    rec["entry_edge_bps"] = rt["entry_edge_bps"]
    rec["exit_edge_bps"] = rt["exit_edge_bps"] if not is_open else np.nan
    rec["entry_prem_bps"] = rt["entry_prem_bps"]
    rec["exit_prem_bps"] = rt["exit_prem_bps"] if not is_open else np.nan
    rec["entry_anchor_bps"] = rt["entry_anchor_bps"]
    rec["entry_notional"] = rt["entry_notional"]
    mid_a, ex_a, m_a, fx_a = _leg_value(s, rt, 0, is_open)
    mid_b, ex_b, m_b, fx_b = _leg_value(s, rt, 1, is_open)
    net_mid = mid_a + mid_b
    rec["net_pnl_mid"] = net_mid
    rec["net_pnl"] = (ex_a + ex_b) if is_open else net_mid
    rec["gross_pnl"] = net_mid + rt["fee_sum"] - rt["funding"]
    rec["price_pnl"] = rt["dec_pnl"] + m_a + m_b
    rec["slippage"] = rt["slip_cost"]
    rec["fees"] = rt["fee_sum"]
    rec["fx_pnl"] = fx_a + fx_b
    rec["funding"] = rt["funding"]
    denom = rt["entry_notional"] if rt["entry_notional"] > 0.0 else rt["notional"]
    rec["r_multiple"] = rec["net_pnl"] / (denom * rt["r_unit_bps"] * 1e-4)
    rec["exit_reason"] = X_OPEN_AT_END if is_open else reason
    rec["legging_cost"] = rt["leg_cost"]
    rec["n_fills"] = rt["n_fills"]
    rec["n_leg_incidents"] = rt["n_legs"]
    rec["scaled_out"] = rt["scaled"]
    g["n_trades"] += 1
    if not is_open:
        _realise(s, rt, 0)
        _realise(s, rt, 1)
