"""Accounting inside the kernel: per-fill accumulation, round-trip records, equity samples.

Everything a round trip records is in the reference currency. A fill's cash flow and fee are
in the instrument's quote currency and are converted at the FX of the fill; price move and
slippage use each leg's FX at the entry decision, and the difference is the FX effect:
``cf x fx_fill = cf x fx_entry + cf x (fx_fill - fx_entry)``. Identity kept by construction
(and tested): ``gross_pnl = price_pnl - slippage + fx_pnl`` and
``net_pnl = price_pnl - slippage - fees + fx_pnl + funding``.
"""

from __future__ import annotations

import math

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
    inventory revaluation never shows up as arbitrage PnL.
    """
    eq = glob[0]["capital"]
    gross = 0.0
    for i in range(inst.shape[0]):
        rec = inst[i]
        dpos = rec["pos"]
        fx = rec["fx"]
        if rec["cash"] != 0.0:  # (fx is NaN before a leg's first FX rate; nothing traded then)
            eq += rec["cash"] * fx
        if dpos != 0.0:
            m = 0.5 * (book_px[i, BID, 0] + book_px[i, ASK, 0]) * fx
            eq += dpos * m
            gross += abs(dpos) * m
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


@njit
def write_equity(s, ts) -> None:
    write_equity_arrays(s.glob, s.inst, s.route, s.book_px, s.equity, ts)


@njit
def book_fill(s, o, ts, filled, qty, px, fee, levels) -> None:
    """Record one fill: fill row, route trade accumulators, legging cost attribution.

    ``filled`` is in the instrument's units (the row's ``qty``), ``qty`` its base-equivalent
    (the same number except for inverse perpetuals' contracts), which the money uses."""
    g = s.glob[0]
    rt = s.route[o["route"]]
    side = o["side"]
    fx = s.inst[o["inst"]]["fx"]
    fx0 = rt["fx_a0"] if o["inst"] == rt["inst_a"] else rt["fx_b0"]
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
    rt["cash_flow"] += cf * fx
    rt["dec_pnl"] += -side * qty * o["dec_px"] * fx0
    rt["slip_cost"] += slip
    rt["fee_sum"] += fee * fx
    rt["fx_pnl"] += cf * (fx - fx0)
    rt["n_fills"] += 1
    if o["purpose"] >= 2:  # unwind or chase: what legging cost vs the leg's decision price
        rt["leg_cost"] += side * qty * (px - rt["leg_ref_px"]) * fx0 + fee * fx


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
    g["n_legs"] += 1
    rt["leg_open"] = 0
    rt["n_legs"] += 1


@njit
def close_value(inst, route, book_px, r, use_mid, at_entry_fx):
    """Value of closing the route's open legs now, in the reference currency: at mid, or at the
    touch net of taker fees; at today's FX, or at each leg's FX at entry (``at_entry_fx``)."""
    rt = route[r]
    total = 0.0
    for leg in range(2):
        i = rt["inst_a"] if leg == 0 else rt["inst_b"]
        pos = rt["pos_a"] if leg == 0 else rt["pos_b"]
        if pos == 0.0:
            continue
        fx = (rt["fx_a0"] if leg == 0 else rt["fx_b0"]) if at_entry_fx else inst[i]["fx"]
        if use_mid:
            total += pos * 0.5 * (book_px[i, BID, 0] + book_px[i, ASK, 0]) * fx
        else:
            px = book_px[i, BID, 0] if pos > 0 else book_px[i, ASK, 0]
            total += (pos * px - close_fee(inst[i], pos, px)) * fx
    return total


@njit
def close_fee(rec, pos, px) -> float:
    """Taker fee of closing a base-equivalent position ``pos`` at ``px`` (quote currency): on
    the notional, or for an inverse perpetual on the contracts that closing sends
    (``contracts x cv x fee``, core/inverse.py), which does not depend on the price."""
    if rec["kind"] == KIND_INVERSE_PERP and rec["pos"] != 0.0:
        n = abs(pos) * abs(rec["contracts"]) / abs(rec["pos"])
        return math.floor(n / rec["lot"] + 0.5) * rec["lot"] * rec["cv"] * rec["fee_rate"]
    return abs(pos) * px * rec["fee_rate"]


@njit
def write_trade(s, r, ts, reason, is_open) -> None:
    """Write the round-trip record of route ``r`` (closed, or open and marked at the end)."""
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
    mark_mid = close_value(s.inst, s.route, s.book_px, r, True, False) if is_open else 0.0
    mark_mid0 = close_value(s.inst, s.route, s.book_px, r, True, True) if is_open else 0.0
    mark_exec = close_value(s.inst, s.route, s.book_px, r, False, False) if is_open else 0.0
    rec["gross_pnl"] = rt["cash_flow"] + mark_mid
    rec["price_pnl"] = rt["dec_pnl"] + mark_mid0
    rec["slippage"] = rt["slip_cost"]
    rec["fees"] = rt["fee_sum"]
    rec["fx_pnl"] = rt["fx_pnl"] + (mark_mid - mark_mid0)
    rec["funding"] = rt["funding"]
    rec["net_pnl_mid"] = rt["cash_flow"] + mark_mid - rt["fee_sum"] + rt["funding"]
    rec["net_pnl"] = (rt["cash_flow"] + (mark_exec if is_open else 0.0) - rt["fee_sum"]
                      + rt["funding"])
    denom = rt["entry_notional"] if rt["entry_notional"] > 0.0 else rt["notional"]
    rec["r_multiple"] = rec["net_pnl"] / (denom * rt["r_unit_bps"] * 1e-4)
    rec["exit_reason"] = X_OPEN_AT_END if is_open else reason
    rec["legging_cost"] = rt["leg_cost"]
    rec["n_fills"] = rt["n_fills"]
    rec["n_leg_incidents"] = rt["n_legs"]
    rec["scaled_out"] = rt["scaled"]
    g["n_trades"] += 1
