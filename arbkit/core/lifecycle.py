"""Route lifecycle on acknowledgements: open, close, and the ``unwind`` legging policy.

The strategy's view of its position changes only when an ack arrives (``ack_ns`` after the
match). When both legs' acks are in, the route either holds a hedged position (OPEN), is flat
(the round trip is written), or is legged: the excess is unwound at market (IOC with the wide
``force_slip`` bound), up to ``unwind_retries`` times; what remains after that is reported as
naked residual in the legging incident and the route goes OPEN so the exit rules flatten it.
"""

from __future__ import annotations

from arbkit.core.jit import njit
from arbkit.core.ledger import close_fee, write_leg, write_trade
from arbkit.core.orders import limit_price, send_order
from arbkit.core.risk import log_guard
from arbkit.core.types import (
    ASK,
    BID,
    BUY,
    FLAT,
    G_LOSS_STREAK,
    KIND_INVERSE_PERP,
    LEG_CHASE,
    LEG_HOLD,
    OPEN,
    P_CHASE,
    P_UNWIND,
    SELL,
    UNWINDING,
    X_ENTRY_LEGGED,
    X_NONE,
    X_STOP_LOSS,
)


@njit
def process_ack(s, slot, now) -> None:
    """The strategy learns an order's result; free its slot; advance the route when all are in."""
    o = s.orders[slot]
    r = o["route"]
    rt = s.route[r]
    signed = o["side"] * o["filled_be"]
    if o["inst"] == rt["inst_a"]:
        rt["pos_a"] = _snap(rt["pos_a"] + signed, rt["lot"])
    else:
        rt["pos_b"] = _snap(rt["pos_b"] + signed, rt["lot"])
    if o["purpose"] == 0 and o["side"] == BUY and o["filled"] > 0.0:
        # in the reference currency, at the leg's FX at entry (entry notional = qty x this)
        fx0 = rt["fx_a0"] if o["inst"] == rt["inst_a"] else rt["fx_b0"]
        rt["entry_buy_px"] = o["fill_px"] * fx0
    o["active"] = 0
    s.glob[0]["n_active"] -= 1
    rt["inflight"] -= 1
    if rt["inflight"] == 0:
        _all_acked(s, r, now)


@njit
def _snap(x, lot) -> float:
    return 0.0 if abs(x) < 1e-6 * lot else x


@njit
def _dust(inst, pos, tol) -> float:
    """0 when ``pos`` is less than the instrument can trade (under one lot; for an inverse
    perpetual, within the route's hedge tolerance), else ``pos``."""
    if inst["kind"] == KIND_INVERSE_PERP:
        return 0.0 if abs(pos) <= tol else pos
    return 0.0 if abs(pos) < inst["lot"] * (1.0 - 1e-9) else pos


@njit
def _all_acked(s, r, now) -> None:
    rt = s.route[r]
    if rt["pending_reason"] != X_NONE:
        # an exit is done: what is left under one lot of a leg cannot be sold (fee dust: a
        # buy that paid its fee in coins holds a fraction of a lot more or less than its hedge)
        rt["pos_a"] = _dust(s.inst[rt["inst_a"]], rt["pos_a"], rt["hedge_tol"])
        rt["pos_b"] = _dust(s.inst[rt["inst_b"]], rt["pos_b"], rt["hedge_tol"])
    net = _snap(rt["pos_a"] + rt["pos_b"], rt["lot"])
    if net != 0.0 and abs(net) <= rt["hedge_tol"]:
        net = 0.0  # an inverse leg is sized in whole contracts: within half of one is hedged
    if net != 0.0:
        if rt["leg_open"] == 0:
            rt["leg_open"] = 1
            rt["leg_start"] = now
            rt["leg_qty"] = abs(net)
            rt["leg_cost0"] = rt["leg_cost"]
            rt["unwind_tries"] = 0
            rt["chase_tries"] = 0
        policy = rt["legging"]
        entering = rt["pending_reason"] == X_NONE and rt["qty"] == 0.0
        if policy == LEG_CHASE and entering and rt["chase_tries"] < rt["chase_retries"]:
            _send_chase(s, r, net, now)
            return
        if policy != LEG_HOLD and rt["unwind_tries"] < rt["unwind_retries"]:
            _send_unwind(s, r, net, now)
            return
        write_leg(s, r, now, abs(net))  # held, or gave up: the naked residual is reported
        # what holding it costs is counted when the exit closes it (ledger._naked_close_cost)
        use_a = abs(rt["pos_a"]) >= abs(rt["pos_b"])
        rt["naked_leg"] = 0 if use_a else 1
        rt["naked_qty"] = net
        rt["naked_px"] = rt["dec_px_a"] if use_a else rt["dec_px_b"]
        rt["naked_start"] = now
        rt["naked_closed"] = 0.0
        rt["naked_cost"] = 0.0
        _go_open(s, r, now)
        return
    if rt["leg_open"] == 1:
        write_leg(s, r, now, 0.0)
    if rt["pos_a"] == 0.0 and rt["pos_b"] == 0.0:
        _go_flat(s, r, now)
    else:
        _go_open(s, r, now)


@njit
def _send_unwind(s, r, net, now) -> None:
    """Reduce the larger leg by the excess, at market within the wide bound."""
    rt = s.route[r]
    use_a = abs(rt["pos_a"]) >= abs(rt["pos_b"])
    i = rt["inst_a"] if use_a else rt["inst_b"]
    side = SELL if net > 0 else BUY
    touch = s.book_px[i, BID, 0] if side == SELL else s.book_px[i, ASK, 0]
    rt["leg_ref_px"] = rt["dec_px_a"] if use_a else rt["dec_px_b"]
    rt["unwind_tries"] += 1
    rt["state"] = UNWINDING
    lim = limit_price(touch, side, rt["force_slip"], s.inst[i]["tick"])
    send_order(s, r, i, side, abs(net), lim, touch, P_UNWIND, now)


@njit
def _send_chase(s, r, net, now) -> None:
    """Complete the hedge: the missing quantity on the smaller leg, within ``chase_slip``."""
    rt = s.route[r]
    use_a = abs(rt["pos_a"]) < abs(rt["pos_b"])
    i = rt["inst_a"] if use_a else rt["inst_b"]
    side = SELL if net > 0 else BUY
    touch = s.book_px[i, BID, 0] if side == SELL else s.book_px[i, ASK, 0]
    rt["leg_ref_px"] = rt["dec_px_a"] if use_a else rt["dec_px_b"]
    rt["chase_tries"] += 1
    rt["state"] = UNWINDING
    lim = limit_price(touch, side, rt["chase_slip"], s.inst[i]["tick"])
    send_order(s, r, i, side, abs(net), lim, touch, P_CHASE, now)


@njit
def _go_open(s, r, now) -> None:
    rt = s.route[r]
    if rt["pending_reason"] == X_NONE and rt["qty"] == 0.0:
        # first time hedged after the entry: the round trip's size and notional are fixed here
        rt["qty"] = abs(rt["pos_a"])
        rt["entry_notional"] = rt["qty"] * rt["entry_buy_px"]
        rt["hold_deadline"] = rt["entry_ts"] + rt["hold_ns"]
    rt["state"] = OPEN
    # The timer fires once per round trip (at once if its deadline passed while an exit or
    # unwind was in flight). After it fired, a time-stop exit that could not flatten must not
    # re-fire at the same instant forever: the time rule is re-checked on every book update
    # (strategy.exit_reason) instead, like every other exit rule.
    rt["hold_armed"] = 1 if rt["hold_on"] == 1 and rt["hold_fired"] == 0 else 0
    _take_profit_terms(s, r)
    g = s.glob[0]
    if rt["hold_armed"] == 1 and rt["hold_deadline"] < g["next_wakeup"]:
        g["next_wakeup"] = rt["hold_deadline"]
    if g["gap_ns"] > 0:  # the data-gap timer (loop._timers)
        ta = s.inst[rt["inst_a"]]["ts_recv"]
        tb = s.inst[rt["inst_b"]]["ts_recv"]
        dl = (ta if ta < tb else tb) + g["gap_ns"]
        if dl < g["next_wakeup"]:
            g["next_wakeup"] = dl


@njit
def _go_flat(s, r, now) -> None:
    rt = s.route[r]
    if rt["n_fills"] == 0:
        rt["n_unfilled"] += 1  # both IOCs missed: no position, no round trip
    else:
        reason = rt["pending_reason"]
        if reason == X_NONE:
            reason = X_ENTRY_LEGGED
        write_trade(s, r, now, reason, 0)
        if reason == X_STOP_LOSS:
            rt["cooldown_until"] = now + rt["cooldown_ns"]
        _loss_streak(s, r, now, s.trades[s.glob[0]["n_trades"] - 1]["net_pnl"])
    rt["state"] = FLAT
    rt["hold_armed"] = 0
    rt["qty"] = 0.0
    rt["force_exit"] = 0


@njit
def _loss_streak(s, r, now, net) -> None:
    """Count losing round trips in a row; at the limit the route pauses (risk.loss_streak)."""
    rt = s.route[r]
    n = s.risk[0]["streak"]
    if net >= 0.0 or n == 0:
        rt["streak"] = 0
        return
    rt["streak"] += 1
    if rt["streak"] >= n:
        rt["streak"] = 0
        rt["streak_until"] = now + s.risk[0]["streak_ns"]
        log_guard(s, now, G_LOSS_STREAK, r, float(n), float(n))


@njit
def _take_profit_terms(s, r) -> None:
    """Precompute the take-profit test for the per-event path.

    Closing a long leg sells at the bid and pays ``fee`` on it: ``pos*bid*(1-fee)``; closing a
    short leg buys at the ask: ``pos*ask*(1+fee)`` (pos < 0). The round trip's net PnL if closed
    now is ``sum over legs of (q + c*px) * fx`` with ``q`` the leg's quote cash so far (its own
    ledger: fills, fees, funding) and ``c*px`` the closing cash, valued at the leg's FX now; TP
    holds when it reaches ``tp_bps`` of the entry notional. Funding received later moves ``q``
    (core/carry.py).
    """
    rt = s.route[r]
    ia = s.inst[rt["inst_a"]]
    ib = s.inst[rt["inst_b"]]
    fa = ia["fee_rate"]
    fb = ib["fee_rate"]
    pa = rt["pos_a"]
    pb = rt["pos_b"]
    rt["tp_ca"] = pa * (1.0 - fa) if pa > 0 else pa * (1.0 + fa)
    rt["tp_cb"] = pb * (1.0 - fb) if pb > 0 else pb * (1.0 + fb)
    rt["tp_sa"] = BID if pa > 0 else ASK
    rt["tp_sb"] = BID if pb > 0 else ASK
    rt["tp_k"] = rt["tp_bps"] * 1e-4 * rt["entry_notional"]
    rt["tp_qa"] = rt["cq_a"] - rt["fq_a"] + rt["uq_a"]
    rt["tp_qb"] = rt["cq_b"] - rt["fq_b"] + rt["uq_b"]
    # an inverse leg's closing fee is on its contracts, not on the price: a constant in its
    # quote currency instead of a factor on the price
    if ia["kind"] == KIND_INVERSE_PERP and pa != 0.0:
        rt["tp_ca"] = pa
        rt["tp_qa"] -= close_fee(ia, pa, 0.0, rt["ctr_a"])
    if ib["kind"] == KIND_INVERSE_PERP and pb != 0.0:
        rt["tp_cb"] = pb
        rt["tp_qb"] -= close_fee(ib, pb, 0.0, rt["ctr_b"])
