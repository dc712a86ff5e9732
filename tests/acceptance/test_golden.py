"""Golden scenarios: scripted streams whose every fill, fee and PnL is computed by hand.

Common setup (tests/streams.py): A is spot, B a linear perp, both taker fee 1 bps, lot 0.001,
tick 0.01, 5.0 size at the touch unless stated. Entry threshold
thr = entry_bps - exit_bps + 2*(1+1) = 2 - 0 + 4 = 6 bps unless stated.
At t=2s B's bid jumps to 100.10 while A asks 100.01:
    mid_ref = (100.00+100.01+100.10+100.11)/4 = 100.055
    e_AB = (100.10-100.01)/100.055*1e4 = 8.995 bps >= 6  -> buy A, sell B
    qty = min(notional 1000/100.01 = 9.999, depth 5) = 5
"""

from __future__ import annotations

import math

import polars as pl
import pytest

from arbkit.config import from_dict
from arbkit.data.events import build_events
from arbkit.engine.backtest import run_arrays
from arbkit.errors import ConfigError
from arbkit.metrics.summary import build_result
from tests.streams import MS, S, config, run
from tests.streams import frame as frame_rows

pytestmark = pytest.mark.nojit  # also run with NUMBA_DISABLE_JIT=1 (second CI step)

OPEN_ROWS = [(1 * S, "A", 100.00, 100.01), (1 * S, "B", 100.00, 100.01),
             (2 * S, "B", 100.10, 100.11)]
STRAT = "entry_bps = 2.0\nexit_bps = 0.0\nnotional = 1000.0\n"


def one_trade(res) -> dict:
    closed = res.trades.filter(pl.col("is_open") == 0)
    assert closed.height == 1, res.trades
    return closed.to_dicts()[0]


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def test_converge_round_trip_hand_computed():
    res = run(config(STRAT), OPEN_ROWS + [
        (3 * S, "A", 100.00, 100.01),
        (4 * S, "B", 100.01, 100.02),  # e_BA = (100.00-100.02) < 0: hold
        (5 * S, "A", 100.03, 100.04),  # e_BA = (100.03-100.02) > 0 = exit_bps: converge
        (6 * S, "A", 100.03, 100.04),
    ])
    t = one_trade(res)
    assert t["exit_reason_text"] == "converge" and t["qty"] == 5.0 and t["dir"] == 1
    assert close(t["entry_edge_bps"], 0.09 / 100.055 * 1e4)
    # gross = 5*(100.03-100.01) + 5*(100.10-100.02) = 0.10 + 0.40 = 0.50
    assert close(t["gross_pnl"], 0.50) and close(t["price_pnl"], 0.50) and close(t["slippage"], 0)
    # fees = 1e-4 * 5 * (100.01 + 100.10 + 100.03 + 100.02) = 0.20008
    assert close(t["fees"], 0.20008)
    assert close(t["net_pnl"], 0.50 - 0.20008)
    # R with the stop off = net / (entry notional 5*100.01 * fees4 4 bps)
    assert close(t["r_multiple"], 0.29992 / (500.05 * 4e-4))
    fills = res.fills.sort("oid")
    assert fills.get_column("px").to_list() == [100.01, 100.10, 100.03, 100.02]
    assert fills.get_column("side").to_list() == [1, -1, -1, 1]
    assert close(res.metric("final_equity"), 100000 + 0.29992)


def test_order_fills_at_the_arrival_book_not_the_decision_book():
    # B orders take 10 ms. The B book changes twice during the latency; the one stamped exactly
    # at arrival (2.010 s) is applied before matching (documented tie rule).
    rows = OPEN_ROWS + [
        (2 * S + 5 * MS, "B", 100.07, 100.08),
        (2 * S + 10 * MS, "B", 100.06, 100.07),  # the book at arrival
        (2 * S + 20 * MS, "B", 100.01, 100.02),
        (3 * S, "A", 100.05, 100.06),  # e_BA = (100.05-100.02) > 0: converge
        (4 * S, "A", 100.05, 100.06),
    ]
    res = run(config(STRAT, lat_b=10.0), rows)
    t = one_trade(res)
    sell_b = res.fills.filter((pl.col("inst") == 1) & (pl.col("purpose") == 0)).to_dicts()[0]
    assert sell_b["px"] == 100.06 and sell_b["dec_px"] == 100.10
    assert sell_b["ts"] == 2 * S + 10 * MS
    # slippage cost = -1 * 5 * (100.06 - 100.10) = 0.20
    assert close(sell_b["slip_cost"], 0.20) and close(t["slippage"], 0.20)
    # price at decision prices: A 5*(100.05-100.01)=0.20, B 5*(100.10-100.02)=0.40 -> 0.60
    # gross = A 0.20 + B 5*(100.06-100.02)=0.20 -> 0.40 = 0.60 - 0.20
    assert close(t["price_pnl"], 0.60) and close(t["gross_pnl"], 0.40)
    # fees = 1e-4*5*(100.01+100.06+100.05+100.02) = 0.20007
    assert close(t["fees"], 0.20007) and close(t["net_pnl"], 0.40 - 0.20007)


def test_stop_loss_then_cooldown_blocks_reentry():
    strat = STRAT + "stop_loss_bps = 10.0\ncooldown_after_stop_s = 5.0\n"
    res = run(config(strat), OPEN_ROWS + [
        # premium p0 = (100.105-100.005)/100.055*1e4 = 9.9945 bps at entry
        # p = (100.255-100.005)/100.13*1e4 = 24.9675: moved +14.97 >= 10 against dir +1
        (3 * S, "B", 100.25, 100.26),
        (4 * S, "A", 100.00, 100.01),  # e_AB = 24 bps >= 6, but within the 5 s cooldown
        (5 * S, "A", 100.00, 100.01),
    ])
    t = one_trade(res)
    assert t["exit_reason_text"] == "stop_loss"
    # gross = 5*(100.00-100.01) + 5*(100.10-100.26) = -0.05 - 0.80 = -0.85
    assert close(t["gross_pnl"], -0.85)
    # fees = 1e-4*5*(100.01+100.10+100.00+100.26) = 0.200185
    assert close(t["fees"], 0.200185) and close(t["net_pnl"], -1.050185)
    assert close(t["r_multiple"], -1.050185 / (500.05 * 10e-4))
    assert res.metric("skipped_cooldown") == 2


def test_time_stop_fires_on_the_kernel_clock_when_the_market_is_quiet():
    strat = STRAT + "max_hold_s = 10.0\n"
    res = run(config(strat), OPEN_ROWS + [
        (3 * S, "A", 100.00, 100.01),
        (70 * S, "A", 100.05, 100.06),  # first event after 67 s of silence
    ])
    t = one_trade(res)
    assert t["exit_reason_text"] == "time"
    # deadline = entry 2 s + 10 s; the exit is decided and filled at 12 s on the quiet book
    assert t["exit_ts"] == 12 * S
    exits = res.fills.filter(pl.col("purpose") == 1)
    assert exits.get_column("ts").to_list() == [12 * S, 12 * S]
    # gross = 5*(100.00-100.01) + 5*(100.10-100.11) = -0.10; fees = 1e-4*5*400.22 = 0.20011
    assert close(t["gross_pnl"], -0.10) and close(t["net_pnl"], -0.30011)


def test_take_profit_at_executable_prices():
    strat = 'entry_bps = 2.0\nexit_bps = "off"\nreversal = false\ntake_profit_bps = 5.0\nnotional = 1000.0\n'
    # thr with converge off = 2 + 4 = 6 bps. TP needs net >= 5 bps of 500.05 = 0.250025
    res = run(config(strat), OPEN_ROWS + [
        (3 * S, "A", 100.10, 100.11),  # net if closed now: 0.19984 < 0.250025
        (4 * S, "A", 100.12, 100.13),  # net if closed now: 0.29983 >= 0.250025
        (5 * S, "A", 100.12, 100.13),
    ])
    t = one_trade(res)
    assert t["exit_reason_text"] == "take_profit" and t["exit_ts"] == 4 * S
    # gross = 5*(100.12-100.01) + 5*(100.10-100.11) = 0.55 - 0.05 = 0.50
    # fees = 1e-4*5*(100.01+100.10+100.12+100.11) = 0.20017
    assert close(t["gross_pnl"], 0.50) and close(t["net_pnl"], 0.29983)


def test_reversal_exit_and_no_entry_on_the_same_event():
    strat = 'entry_bps = 2.0\nexit_bps = "off"\nnotional = 1000.0\n'
    res = run(config(strat, inv_a=10.0), OPEN_ROWS + [
        # mid_ref = (100.205+100.105)/2 = 100.155; e_BA = 0.09/100.155*1e4 = 8.986 >= 6
        (3 * S, "A", 100.20, 100.21),
        # flat now, but the exit took B's 5 at the ask and B has not updated: liquidity taken
        # stays taken, so this opportunity is skipped for depth
        (4 * S, "A", 100.20, 100.21),
        (5 * S, "B", 100.10, 100.11),  # B refreshes: the opposite entry happens here
    ])
    assert res.metric("skipped_depth") == 1
    closed = res.trades.filter(pl.col("is_open") == 0).to_dicts()
    opened = res.trades.filter(pl.col("is_open") == 1).to_dicts()
    assert len(closed) == 1 and closed[0]["exit_reason_text"] == "reversal"
    # gross = 5*(100.20-100.01) + 5*(100.10-100.11) = 0.90; fees = 1e-4*5*400.42 = 0.20021
    assert close(closed[0]["gross_pnl"], 0.90) and close(closed[0]["net_pnl"], 0.69979)
    assert len(opened) == 1 and opened[0]["dir"] == -1 and opened[0]["entry_ts"] == 5 * S


def test_partial_fill_is_unwound_and_costed_as_a_legging_incident():
    rows = OPEN_ROWS + [
        (2 * S + 5 * MS, "B", 100.10, 100.11, 2.0, 5.0),  # B bid size drops to 2 in flight
        (2 * S + 20 * MS, "A", 100.00, 100.01),
        (2 * S + 500 * MS, "B", 100.01, 100.02),
        (3 * S, "A", 100.03, 100.04),  # converge
        (4 * S, "A", 100.03, 100.04),
    ]
    res = run(config(STRAT, lat_b=10.0), rows)
    t = one_trade(res)
    statuses = res.orders.sort("oid").get_column("status_text").to_list()
    # entry buy A filled 5, entry sell B partially filled 2, unwind sell A 3, exit A, exit B
    assert statuses == ["filled", "partially_filled", "filled", "filled", "filled"]
    legs = res.legs.to_dicts()
    assert len(legs) == 1 and legs[0]["excess_qty"] == pytest.approx(3.0)
    assert legs[0]["residual_qty"] == 0.0
    # unwind sold 3 at 100.00 vs the leg's decision ask 100.01: 3*0.01 + fee 3*100*1e-4 = 0.06
    assert close(legs[0]["cost"], 0.06) and close(t["legging_cost"], 0.06)
    assert t["qty"] == pytest.approx(2.0)
    # gross: A -5*100.01 + 3*100.00 + 2*100.03 = 0.01; B 2*(100.10-100.02) = 0.16 -> 0.17
    # fees = 1e-4*(500.05 + 200.20 + 300.00 + 200.06 + 200.04) = 0.140035
    assert close(t["gross_pnl"], 0.17) and close(t["net_pnl"], 0.17 - 0.140035)
    assert t["n_leg_incidents"] == 1


def test_ioc_beyond_its_limit_is_cancelled_and_the_filled_leg_unwound():
    rows = OPEN_ROWS + [
        # sell-B limit = ceil(100.10*(1-5 bps)/0.01)*0.01 = 100.05; the bid collapses to 99.90
        (2 * S + 5 * MS, "B", 99.90, 99.91),
        (3 * S, "A", 100.00, 100.01),
    ]
    res = run(config(STRAT, lat_b=10.0), rows)
    t = one_trade(res)
    assert t["exit_reason_text"] == "entry_legged"
    statuses = res.orders.sort("oid").get_column("status_text").to_list()
    assert statuses == ["filled", "cancelled", "filled"]
    # bought 5 at 100.01, unwound at 100.00: gross -0.05; fees 1e-4*5*(100.01+100.00)
    assert close(t["gross_pnl"], -0.05) and close(t["net_pnl"], -0.05 - 0.100005)


def test_same_market_round_trips_always_lose_at_least_the_fees():
    # Both legs read the same book, so every "edge" is minus the spread. A negative entry
    # threshold forces trades: thr = -20 - (-5) + 4 = -11 bps; closing edge -1 >= -5 exits.
    strat = "entry_bps = -20.0\nexit_bps = -5.0\nnotional = 1000.0\n"
    with pytest.raises(ConfigError, match="entry_bps -20.0 is negative"):  # refused ...
        run(config(strat), OPEN_ROWS)
    strat += "allow_infeasible = true\n"  # ... unless asked for
    rows = []
    for k in range(1, 40):
        px = 100.0 + 0.01 * (k % 7)
        rows += [(k * S, "A", px, px + 0.01), (k * S, "B", px, px + 0.01)]
    res = run(config(strat), rows)
    closed = res.trades.filter(pl.col("is_open") == 0)
    assert closed.height >= 5
    for t in closed.to_dicts():
        assert t["price_pnl"] <= 1e-12
        assert t["net_pnl"] <= -t["fees"] + 1e-12


def test_crossed_book_is_untradable():
    res = run(config(STRAT), [(1 * S, "A", 100.00, 100.01), (2 * S, "B", 100.10, 100.05),
                              (3 * S, "A", 100.00, 100.01)])
    assert res.trades.height == 0 and res.metric("skipped_crossed_book") == 2


def test_a_threshold_below_the_round_trips_fees_is_refused():
    with pytest.raises(ConfigError, match="below the fees of the round trip"):
        run(config("entry_bps = 2.0\nexit_bps = 60.0\nnotional = 1000.0\n"), OPEN_ROWS)


def test_infeasible_stop_inside_round_trip_cost_is_reported_not_run():
    with pytest.raises(ConfigError, match="inside the round-trip cost"):
        run(config(STRAT + "stop_loss_bps = 3.0\n"), OPEN_ROWS)
    res = run(config(STRAT + "stop_loss_bps = 3.0\nallow_infeasible = true\n"), OPEN_ROWS)
    assert any("INFEASIBLE" in n for n in res.meta["notes"])


def test_exchange_timeline_matches_the_book_as_it_was_on_the_exchange_at_arrival():
    # B's feed arrives 50 ms after the exchange stamps it. Decision at recv 2.000 s; the B order
    # reaches the exchange at 2.010 (10 ms latency). On the exchange, B's bid moved to 100.07 at
    # 2.005 (we receive it at 2.055) and to 100.02 at 2.015 (received 2.065). The order meets
    # the 2.005 book: 100.07. On one (receive) timeline it would have met 100.10.
    def frame_with_exch(rows):
        f = frame_rows(rows)
        return f.with_columns(pl.Series("ts_exch_ns", [r[4] for r in rows], dtype=pl.Int64))

    rows = [
        (1 * S, "A", 100.00, 100.01, 1 * S), (1 * S, "B", 100.00, 100.01, 1 * S - 50 * MS),
        (2 * S, "B", 100.10, 100.11, 2 * S - 50 * MS),
        (2 * S + 55 * MS, "B", 100.07, 100.08, 2 * S + 5 * MS),
        (2 * S + 65 * MS, "B", 100.02, 100.03, 2 * S + 15 * MS),
        (3 * S, "A", 100.00, 100.01, 3 * S),
    ]
    for timeline, expect in (("exch", 100.07), ("recv", 100.10)):
        cfg = config(STRAT, lat_b=10.0)
        cfg = from_dict({**cfg.to_dict(), "run": {**cfg.to_dict()["run"], "timeline": timeline}})
        arrays = build_events(frame_with_exch(rows), [i.key for i in cfg.instruments],
                              timeline=timeline)
        res = build_result(run_arrays(cfg, arrays), {"events": 6})
        sell_b = res.fills.filter((pl.col("inst") == 1) & (pl.col("purpose") == 0)).to_dicts()[0]
        assert sell_b["px"] == expect, timeline


def test_spot_leg_cannot_sell_inventory_it_does_not_hold():
    # A is spot with no BTC. The gap is in the direction that sells A: e_BA = (100.10-100.01)
    # / 100.055 * 1e4 = 9 bps >= 6, but there is nothing to sell.
    res = run(config(STRAT), [(1 * S, "A", 100.00, 100.01), (1 * S, "B", 100.00, 100.01),
                              (2 * S, "A", 100.10, 100.11), (3 * S, "A", 100.10, 100.11)])
    assert res.trades.height == 0 and res.metric("skipped_balance") == 2


def test_min_notional_blocks_a_too_small_order():
    strat = "entry_bps = 2.0\nexit_bps = 0.0\nnotional = 50.0\n"  # 0.499 -> 0.499 x 100 < 100
    cfg = config(strat)
    cfg = from_dict({**cfg.to_dict(), "instruments": [
        {**i, "min_notional": 100.0} for i in cfg.to_dict()["instruments"]]})
    res = run(cfg, OPEN_ROWS + [(3 * S, "A", 100.00, 100.01)])
    # skipped at 2 s and again at 3 s (the gap is still there)
    assert res.trades.height == 0 and res.metric("skipped_min_notional") == 2


def test_an_order_reaching_a_stale_book_is_rejected_and_the_other_leg_unwound():
    # max quote age 100 ms; B orders take 500 ms and B does not quote again: at arrival B's
    # book is 500 ms old, so the venue is treated as unavailable.
    strat = STRAT + "max_quote_age_ms = 100.0\n"
    rows = OPEN_ROWS + [(2 * S + 100 * k * MS, "A", 100.00, 100.01) for k in range(1, 8)]
    res = run(config(strat, lat_b=500.0), rows + [(3 * S, "B", 100.00, 100.01)])
    orders = res.orders.sort("oid").to_dicts()
    assert orders[1]["status_text"] == "rejected" and orders[1]["reject_reason"] == "stale_book"
    t = one_trade(res)
    assert t["exit_reason_text"] == "entry_legged" and res.legs.height == 1


def test_unwind_that_keeps_failing_reports_the_naked_residual():
    # The B entry is cancelled (its bid collapses beyond the limit). A's bid empties (size 0)
    # right after the A entry filled and does not refill: three unwinds find nothing, then the
    # 5 unhedged BTC are reported as a naked residual.
    rows = OPEN_ROWS + [
        (2 * S + 5 * MS, "B", 99.90, 99.91),
        (2 * S + 6 * MS, "A", 100.00, 100.01, 0.0, 5.0),
        (3 * S, "B", 99.90, 99.91),
    ]
    res = run(config(STRAT, lat_b=10.0), rows)
    legs = res.legs.to_dicts()
    assert legs[0]["tries"] == 3 and legs[0]["residual_qty"] == 5.0
    assert legs[0]["start_ts"] == 2 * S + 10 * MS
    # the route then holds the naked leg OPEN; at 3 s an exit rule fires, the exit finds no bid
    # either, and that is a second incident (still naked): nothing is hidden
    assert all(leg["residual_qty"] == 5.0 for leg in legs)
    statuses = res.orders.sort("oid").get_column("status_text").to_list()
    assert statuses[:2] == ["filled", "cancelled"] and statuses[2:5] == ["cancelled"] * 3


def test_chase_completes_the_hedge_on_the_lagging_leg():
    # as in the unwind case, B fills 2 of 5 (its bid size dropped in flight); with "chase" the
    # missing 3 are SOLD on B when B's book refills (100.09 bid, 5), instead of selling A back
    rows = OPEN_ROWS + [
        (2 * S + 5 * MS, "B", 100.10, 100.11, 2.0, 5.0),
        (2 * S + 12 * MS, "B", 100.09, 100.10),  # refilled before the chase arrives (10 ms)
        (2 * S + 500 * MS, "B", 100.01, 100.02),
        (3 * S, "A", 100.03, 100.04),  # converge: closing edge (100.03-100.02) >= 0
        (4 * S, "A", 100.03, 100.04),
    ]
    strat = STRAT + 'legging = "chase"\n'
    res = run(config(strat, lat_b=10.0), rows)
    t = one_trade(res)
    orders = res.orders.sort("oid")
    assert orders["purpose_text"].to_list() == ["entry", "entry", "chase", "exit", "exit"]
    chase = orders.row(2, named=True)
    # chase: sell 3 on B, limit = touch 100.10 (at decision, the ack time) - 20 bps, on ticks
    assert chase["side"] == -1 and chase["filled"] == pytest.approx(3.0)
    assert close(chase["fill_px"], 100.09)
    assert t["qty"] == pytest.approx(5.0)  # fully hedged: the round trip is 5 long / 5 short
    legs = res.legs.to_dicts()
    # chase cost vs B's decision bid 100.10: 3 x (100.10 - 100.09) + fee 3 x 100.09 x 1e-4
    assert len(legs) == 1 and close(legs[0]["cost"], 0.03 + 3 * 100.09 * 1e-4)
    assert legs[0]["residual_qty"] == 0.0


def test_hold_keeps_the_naked_leg_reports_it_and_the_exit_closes_both():
    rows = OPEN_ROWS + [
        (2 * S + 5 * MS, "B", 100.10, 100.11, 2.0, 5.0),
        (2 * S + 500 * MS, "B", 100.01, 100.02),
        (3 * S, "A", 100.03, 100.04),
        (4 * S, "A", 100.03, 100.04),
    ]
    res = run(config(STRAT + 'legging = "hold"\n', lat_b=10.0), rows)
    t = one_trade(res)
    assert res.orders.sort("oid")["purpose_text"].to_list() == ["entry", "entry", "exit", "exit"]
    legs = res.legs.to_dicts()
    assert len(legs) == 2 and legs[0]["residual_qty"] == pytest.approx(3.0)  # 3 long A naked
    assert legs[0]["cost"] == 0.0 and legs[0]["closes"] == 0 and res.metric("legging_incidents") == 1
    assert t["exit_reason_text"] == "converge"
    # what holding the naked 3 A cost, counted when the exit closed it: sold at 100.03 against
    # the leg's decision price 100.01 (a gain of 3 x 0.02), plus 3/5 of that exit fill's fee;
    # a row of its own (closes = 1) after the incident, and in the trade's legging cost
    naked = -3 * (100.03 - 100.01) + 3 * 100.03 * 1e-4
    assert legs[1]["closes"] == 1 and legs[1]["excess_qty"] == pytest.approx(3.0)
    assert legs[1]["end_ts"] == 3 * S and legs[1]["start_ts"] == legs[0]["end_ts"]
    assert close(legs[1]["cost"], naked) and close(t["legging_cost"], naked)
    exits = res.fills.filter(pl.col("purpose_text") == "exit")
    # the exit sold all 5 A (not just the hedged 2) and bought back the 2 B
    assert sorted(exits["qty"].to_list()) == pytest.approx([2.0, 5.0])


def test_scale_out_closes_half_first_and_the_rest_at_convergence():
    rows = OPEN_ROWS + [
        (2 * S + 500 * MS, "B", 100.03, 100.04),  # closing edge (100.00-100.04) = -4 bps
        (3 * S, "A", 100.03, 100.04),  # closing edge (100.03-100.04) = -1 bp: scale-out
        (4 * S, "B", 100.01, 100.02),  # closing edge (100.03-100.02) = +1 bp: converge
        (5 * S, "A", 100.03, 100.04),
    ]
    strat = STRAT + "scale_out_bps = -2.0\nscale_out_fraction = 0.5\n"
    res = run(config(strat), rows)
    t = one_trade(res)
    assert t["exit_reason_text"] == "converge" and t["scaled_out"] == 1
    exits = res.fills.filter(pl.col("purpose_text") == "exit").sort("ts")
    assert exits["qty"].to_list() == pytest.approx([2.5, 2.5, 2.5, 2.5])
    assert exits["ts"].to_list()[:2] == [3 * S, 3 * S] and exits["ts"].to_list()[2:] == [4 * S] * 2
    # scale-out: sell 2.5 A at 100.03, buy 2.5 B at 100.04; rest: sell 2.5 A at 100.03, buy B
    # at 100.02. gross = A: 5 x (100.03-100.01) = 0.10; B: 5 x 100.10 - 2.5 x (100.04+100.02)
    # = 0.35; in all 0.45
    assert close(t["gross_pnl"], 0.45)
