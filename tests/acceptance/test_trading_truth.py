"""Issue 11, "trading truth": each defect a skeptical review reproduced, as a scenario whose
numbers are computed by hand before the run (FX routes are in test_fx_funding.py, bar mode in
tests/unit/test_barmode.py, the naked legging residual in test_golden.py)."""

from __future__ import annotations

import dataclasses
import math

import polars as pl
import pytest

import arbkit
from arbkit.config import StrategyConfig, load_config_text
from arbkit.config.model import OFF
from arbkit.data.events import build_events
from arbkit.engine.state import build_state
from tests.streams import MS, S, config, frame, run

pytestmark = pytest.mark.nojit

T0 = 1_700_000_000 * S
STRAT = "entry_bps = 2.0\nexit_bps = 0.0\nnotional = 1000.0\n"


def close(a: float, b: float, tol: float = 1e-9) -> bool:
    return math.isclose(a, b, rel_tol=tol, abs_tol=tol)


def identity_ok(res) -> bool:
    return res.metric("identity_gap_rel") <= 1e-9


# ---- 3. events sharing a receive time ------------------------------------------------------


def test_both_venues_moving_at_one_instant_is_no_premium_and_no_trade() -> None:
    # t=2: A and B both +50 bps in the same receive timestamp: every consistent snapshot has
    # premium 0. Applied one at a time, the first update alone shows a 50 bps edge.
    rows = [(1 * S, "A", 100.00, 100.01), (1 * S, "B", 100.00, 100.01),
            (2 * S, "A", 100.50, 100.51), (2 * S, "B", 100.50, 100.51),
            (3 * S, "A", 100.50, 100.51)]
    cfg = config(STRAT, inv_a=10.0)  # A holds coins: either direction could trade
    for chunk in (None, 1, 3):
        res = run(cfg, rows, chunk=chunk)
        assert res.metric("entries") == 0 and res.trades.height == 0, chunk
        assert res.metric("opportunities_seen") == 0
    # the same move split over two timestamps is a real (if brief) premium: it trades
    split = rows[:3] + [(2 * S + 1, "B", 100.50, 100.51), (3 * S, "A", 100.50, 100.51)]
    assert run(cfg, split).metric("entries") == 1


def test_a_decision_sees_every_leg_of_its_timestamp() -> None:
    # at t=2 B's bid jumps (an edge) while A's ask jumps too in the same instant: measured on
    # both new books the edge is (100.10 - 100.09) = 1 bp < thr 6: no entry; on B's update
    # alone (A's old ask 100.01) it would be 9 bps
    rows = [(1 * S, "A", 100.00, 100.01), (1 * S, "B", 100.00, 100.01),
            (2 * S, "B", 100.10, 100.11), (2 * S, "A", 100.08, 100.09),
            (3 * S, "A", 100.08, 100.09)]
    res = run(config(STRAT), rows)
    assert res.metric("entries") == 0
    assert close(res.metric("best_clean_edge_bps"), 0.01 / ((100.08 + 100.09 + 100.10 + 100.11)
                                                             / 4) * 1e4)


# ---- 4. fees paid in the received coins ------------------------------------------------------

RECEIVED = """
[run]
capital = 100000.0
equity_interval_s = 1.0
[[instruments]]
venue = "A"
symbol = "X"
kind = "spot"
taker_fee_bps = 10.0
fee_ccy = "received"
lot = 0.001
initial_quote = 1000000.0
initial_base = {inv}
[[instruments]]
venue = "B"
symbol = "X"
kind = "linear_perp"
lot = 0.001
[route]
a = "A:X"
b = "B:X"
[strategy]
entry_bps = 2.0
exit_bps = 0.0
notional = 100000.0
"""

FEE_ROWS = [(1 * S, "A", 100.00, 100.01), (1 * S, "B", 100.00, 100.01),
            (2 * S, "B", 100.30, 100.31),  # e_AB = 29 bps >= thr 2 + 2 x (10 + 0) = 22
            (3 * S, "A", 100.03, 100.04), (3 * S, "B", 100.01, 100.02),  # converge
            (4 * S, "A", 100.03, 100.04)]


@pytest.mark.parametrize("inventory", [0.0, 10.0])
def test_a_buy_paying_its_fee_in_coins_holds_what_arrived_and_closes_it(inventory) -> None:
    res = run(load_config_text(RECEIVED.format(inv=inventory)), FEE_ROWS)
    assert (res.orders["status_text"] == "filled").all()  # no exit rejected for balance
    t = res.trades.row(0, named=True)
    assert t["exit_reason_text"] == "converge" and res.legs.height == 0
    # buy 5 A at 100.01: 0.005 BTC of fee, 4.995 arrive; sell 5 B at 100.30. The exit sells
    # the 4.995 held at 100.03 (fee in USDT: 4.995 x 100.03 x 0.001) and buys 5 B at 100.02.
    fills = res.fills.sort("oid").select("inst", "side", "qty", "px").rows()
    assert fills == [(0, 1, 5.0, 100.01), (1, -1, 5.0, 100.30), (0, -1, 4.995, 100.03),
                     (1, 1, 5.0, 100.02)]
    a_cash = -5 * 100.01 + 4.995 * 100.03 - 4.995 * 100.03 * 0.001
    b_cash = 5 * 100.30 - 5 * 100.02
    assert close(t["net_pnl"], a_cash + b_cash)
    assert close(t["fees"], 5 * 100.01 * 0.001 + 4.995 * 100.03 * 0.001)
    assert close(t["net_pnl"], t["price_pnl"] - t["slippage"] - t["fees"] + t["fx_pnl"])
    # nothing drained from the inventory: A holds what it started with, coin for coin
    a = res.venues.row(0, named=True)
    assert abs(a["position_change"]) < 1e-12
    assert close(res.metric("final_equity") - 100_000.0, t["net_pnl"])
    assert identity_ok(res)


# ---- 2. carry series outside the market data ------------------------------------------------

KRW = """
[run]
capital = 100000.0
reference_ccy = "USDT"
equity_interval_s = 1.0
[[instruments]]
venue = "U"
symbol = "BTC-KRW"
quote = "KRW"
kind = "spot"
lot = 0.001
tick = 1.0
initial_base = 5.0
initial_quote = 1000000000.0
[[instruments]]
venue = "B"
symbol = "BTCUSDT"
quote = "USDT"
kind = "linear_perp"
lot = 0.001
[[fx]]
venue = "upbit"
symbol = "USDT/KRW"
max_age_s = {max_age}
[route]
a = "U:BTC-KRW"
b = "B:BTCUSDT"
[strategy]
entry_bps = 5.0
exit_bps = -10.0
notional = 100.0
max_slippage_bps = 5.0
reversal = false
"""


def krw_quotes(rows):
    return pl.DataFrame({
        "ts_recv_ns": [T0 + round(t * S) for t, *_ in rows],
        "venue": [r[1] for r in rows],
        "symbol": ["BTC-KRW" if r[1] == "U" else "BTCUSDT" for r in rows],
        "bid_px": [float(r[2]) for r in rows], "bid_qty": [5.0] * len(rows),
        "ask_px": [float(r[3]) for r in rows], "ask_qty": [5.0] * len(rows)})


def krw_fx(rows):
    return pl.DataFrame({"ts_ns": [T0 + round(t * S) for t, _ in rows],
                         "venue": ["upbit"] * len(rows), "symbol": ["USDT/KRW"] * len(rows),
                         "base": ["USDT"] * len(rows), "quote": ["KRW"] * len(rows),
                         "rate": [float(r) for _, r in rows]})


DAY = 86_400


def test_fx_rows_before_and_after_the_market_data_do_not_stretch_the_run() -> None:
    # market: t = 1..3 s; FX: 400 days before (the rate in force), 0.5 s, and 400 days after
    rows = [(1.0, "U", 99_990, 100_000), (1.0, "B", 100.30, 100.31),
            (2.0, "U", 100_000, 100_010), (2.0, "B", 100.40, 100.41),  # open: no converge
            (3.0, "U", 100_000, 100_010)]
    rates = krw_fx([(-400 * DAY, 1200.0), (0.5, 1000.0), (400 * DAY, 500.0)])
    res = arbkit.backtest(krw_quotes(rows), load_config_text(KRW.format(max_age="3600.0")),
                          fx=rates)
    eq = res.equity["ts"]
    assert eq.min() >= T0 + 1 * S and eq.max() == T0 + 3 * S  # the market's span only
    assert res.metric("days") == 1
    t = res.trades.row(0, named=True)
    assert t["is_open"] == 1 and t["exit_ts"] == T0 + 3 * S
    # the open trade is marked at the FX in force at the last quote (1000), not a year later
    # (500): U long 1 BTC at mid 100,005 KRW, B short 1 at mid 100.405
    assert close(t["net_pnl_mid"], (-100_000 + 100_005) / 1000 + (100.30 - 100.405))
    assert any("after the last market event were not used" in n
               for n in res.meta["data_notes"])
    # time in market: held from t=1 to the end (2 s) over the market's span (2 s)
    assert res.metric("time_in_market") == 0.0  # (only closed round trips count)
    assert identity_ok(res)


def test_a_rate_from_before_the_data_keeps_its_age_and_blocks_entries_when_stale() -> None:
    rows = [(1.0, "U", 99_990, 100_000), (1.0, "B", 100.30, 100.31),
            (2.0, "U", 99_990, 100_000)]
    res = arbkit.backtest(krw_quotes(rows), load_config_text(KRW.format(max_age="3600.0")),
                          fx=krw_fx([(-2 * DAY, 1000.0)]))
    assert res.metric("trades") == 0 and res.metric("skipped_stale_fx") >= 1
    g = res.guards.filter(pl.col("guard") == "stale_fx").row(0, named=True)
    assert close(g["value"], 2 * DAY + 1.0) and g["limit"] == 3600.0  # age and limit, s
    # an edge blocked by a stale FX is not a nearest miss
    assert math.isnan(res.metric("best_clean_edge_bps"))


# ---- 6. data gaps --------------------------------------------------------------------------

MONTH = 30 * DAY * S


def test_a_position_is_not_held_across_a_data_gap() -> None:
    rows = [(1 * S, "A", 100.00, 100.01), (1 * S, "B", 100.00, 100.01),
            (2 * S, "B", 100.10, 100.11),  # entry: buy A, sell B (5)
            (3 * S, "A", 100.00, 100.01),
            # 16 months of nothing, then a new session at other prices
            (16 * MONTH, "A", 120.00, 120.01), (16 * MONTH, "B", 120.00, 120.01),
            (16 * MONTH + 5 * S, "A", 120.00, 120.01)]
    res = run(config(STRAT), rows)
    t = res.trades.row(0, named=True)
    # A's last quote was at t=3 s, B's at 2 s: B has been silent 300 s at 302 s
    assert t["exit_reason_text"] == "data_gap" and t["exit_ts"] == 302 * S
    fills = res.fills.filter(pl.col("purpose_text") == "exit").sort("inst")
    assert fills["px"].to_list() == [100.00, 100.11]  # the last books: A's bid, B's ask
    assert close(t["gross_pnl"], 5 * (100.00 - 100.01) + 5 * (100.10 - 100.11))
    # time in market leaves the silence out of the span and out of the holding: held 2 s..3 s
    # while the market quoted (3 s..302 s was the silence), over (16 months + 5 s - 1 s) -
    # (16 months - 3 s) = 7 s of data
    span = (16 * MONTH + 5 * S - 1 * S) - (16 * MONTH - 3 * S)
    assert span == 7 * S and close(res.metric("time_in_market"), 1 * S / span)
    assert res.meta["gaps_ns"] == 16 * MONTH - 3 * S
    gap = res.guards.filter(pl.col("guard") == "market_gap").row(0, named=True)
    assert gap["ts"] == 3 * S and close(gap["value"], (16 * MONTH - 3 * S) / S)
    assert identity_ok(res)
    # a 60 s time stop fires on the kernel's clock at 62 s, not when data comes back
    timed = run(config(STRAT + "max_hold_s = 60.0\n"), rows).trades.row(0, named=True)
    assert timed["exit_reason_text"] == "time" and timed["exit_ts"] == 62 * S


def test_entries_wait_until_both_legs_quote_again_after_a_gap() -> None:
    rows = [(1 * S, "A", 100.00, 100.01), (1 * S, "B", 100.00, 100.01),
            (1000 * S, "B", 100.10, 100.11),  # B is back, A has been silent 999 s
            (1001 * S, "A", 100.00, 100.01)]  # A is back: the edge is still there
    res = run(config(STRAT), rows)
    assert res.metric("skipped_data_gap") == 1
    assert res.trades.row(0, named=True)["entry_ts"] == 1001 * S
    assert res.guards.filter(pl.col("guard") == "data_gap").height == 1


def test_max_gap_off_holds_through_the_silence_as_before() -> None:
    rows = [(1 * S, "A", 100.00, 100.01), (1 * S, "B", 100.00, 100.01),
            (2 * S, "B", 100.10, 100.11), (1000 * S, "A", 100.03, 100.04),
            (1000 * S, "B", 100.01, 100.02), (1001 * S, "A", 100.03, 100.04)]
    cfg = config(STRAT)
    cfg = dataclasses.replace(cfg, run=dataclasses.replace(cfg.run, max_gap_s=OFF))
    res = run(cfg, rows)
    assert res.trades.row(0, named=True)["exit_reason_text"] == "converge"


# ---- 7. funding is paid on what the venue holds -----------------------------------------

FUND = """
[run]
capital = 100000.0
equity_interval_s = 1.0
[[instruments]]
venue = "A"
symbol = "X"
kind = "spot"
lot = 0.001
initial_base = 5.0
initial_quote = 1000000.0
ack_latency_ms = 100.0
[[instruments]]
venue = "P"
symbol = "X"
kind = "linear_perp"
lot = 0.001
ack_latency_ms = 100.0
[route]
a = "A:X"
b = "P:X"
[strategy]
entry_bps = 5.0
exit_bps = -1.0
notional = 1000.0
reversal = false
"""


def test_funding_follows_the_venues_position_not_the_acks() -> None:
    mkt = pl.DataFrame({
        "ts_recv_ns": [T0 + t * S for t in (1, 1, 5, 9, 9)],
        "venue": ["A", "P", "A", "A", "P"], "symbol": ["X"] * 5,
        "bid_px": [99.99, 100.30, 99.99, 100.00, 100.00], "bid_qty": [50.0] * 5,
        "ask_px": [100.00, 100.31, 100.00, 100.01, 100.01], "ask_qty": [50.0] * 5})
    # entry matched at t=1 (acked 1.1); exit matched at t=9 (acked 9.1)
    fund = pl.DataFrame({"ts_ns": [T0 + 1 * S + 50 * MS, T0 + 9 * S + 50 * MS],
                         "venue": ["P", "P"], "symbol": ["X", "X"],
                         "rate": [0.0001, 0.0001], "mark_px": [100.0, 100.0]})
    res = arbkit.backtest(mkt, load_config_text(FUND), funding=fund)
    t = res.trades.row(0, named=True)
    # at 1.05 s the venue holds -10 (short receives 10 x 100 x 0.0001 = 0.1) although the
    # strategy learns of the fill only at 1.1 s; at 9.05 s the venue holds nothing
    assert t["qty"] == pytest.approx(10.0) and close(t["funding"], 0.1)
    p = res.venues.filter(pl.col("venue") == "P").row(0, named=True)
    assert close(p["cash_change"], 100.30 * 10 - 100.01 * 10 + 0.1)
    assert res.metric("funding_other") == 0.0 and identity_ok(res)


# ---- 8. every [strategy] key works per route ---------------------------------------------

# a non-default value for each key (valid together with the base strategy below)
PER_ROUTE = {
    "entry_bps": 3.0, "exit_bps": -1.0, "take_profit_bps": 50.0, "stop_loss_bps": 40.0,
    "max_hold_s": 30.0, "reversal": False, "notional": 600.0, "max_slippage_bps": 9.0,
    "latency_allowance_bps": 0.5, "cooldown_after_stop_s": 4.0, "max_quote_age_ms": 20.0,
    "unwind_max_slippage_bps": 70.0, "sanity_max_edge_bps": 300.0, "legging": "hold",
    "unwind_retries": 2, "allow_infeasible": True, "anchor": "ewma",
    "anchor_halflife_s": 60.0, "anchor_warmup_s": 1.0, "chase_retries": 3,
    "chase_max_slippage_bps": 10.0, "scale_out_bps": -3.0, "scale_out_fraction": 0.25,
    "qty": 0.5,
}

ROUTE_ROWS = [(t * 100 * MS, v, b, a) for t, v, b, a in [
    (10, "A", 100.00, 100.01), (10, "B", 100.00, 100.01), (21, "B", 100.10, 100.11),
    (25, "A", 100.02, 100.03), (31, "A", 100.05, 100.06), (36, "B", 100.04, 100.05),
    (47, "B", 100.20, 100.21), (52, "A", 100.00, 100.01), (61, "A", 100.01, 100.02),
    (70, "B", 100.00, 100.01), (80, "A", 100.00, 100.01)]]


def test_every_strategy_key_set_per_route_behaves_as_the_global_key() -> None:
    assert set(PER_ROUTE) == {f.name for f in dataclasses.fields(StrategyConfig)}
    base = config(STRAT + 'legging = "unwind"\n', lat_b=30.0)
    arrays = build_events(frame(ROUTE_ROWS), [i.key for i in base.instruments])
    for key, value in PER_ROUTE.items():
        glob = dataclasses.replace(base, strategy=dataclasses.replace(base.strategy,
                                                                      **{key: value}))
        route = dataclasses.replace(base, routes=(dataclasses.replace(
            base.routes[0], strategy={key: value}),))
        assert glob.route_strategy(0) == route.route_strategy(0)
        s_glob = build_state(glob, arrays.inst_keys, 1, arrays.use_exch)
        s_route = build_state(route, arrays.inst_keys, 1, arrays.use_exch)
        for name in s_glob._fields:  # the kernel sees exactly the same parameters
            a, b = getattr(s_glob, name), getattr(s_route, name)
            assert a.tobytes() == b.tobytes(), (key, name)
        r_glob, r_route = run(glob, ROUTE_ROWS), run(route, ROUTE_ROWS)
        for name in ("trades", "fills", "orders", "equity", "legs"):
            assert getattr(r_glob, name).equals(getattr(r_route, name)), (key, name)


def test_a_per_route_quote_age_limit_reaches_the_simulated_venue() -> None:
    # B's order takes 600 ms; B's book is 0.5 s old at its arrival
    rows = [(1 * S, "A", 100.00, 100.01), (1 * S, "B", 100.00, 100.01),
            (2 * S, "B", 100.10, 100.11), (2 * S + 100 * MS, "A", 100.00, 100.01),
            (3 * S, "A", 100.00, 100.01), (3 * S, "B", 100.00, 100.01)]
    base = config(STRAT, lat_b=600.0)
    route = dataclasses.replace(base, routes=(dataclasses.replace(
        base.routes[0], strategy={"max_quote_age_ms": 450.0}),))
    sells = run(route, rows).orders.filter(pl.col("inst") == 1).sort("oid")
    assert sells.row(0, named=True)["reject_reason"] == "stale_book"


# ---- 9. a multi-venue bars frame ----------------------------------------------------------


def test_a_time_sorted_bars_frame_of_two_venues_is_accepted() -> None:
    from arbkit.data.tables import validate_table

    m = 60 * S
    rows = []
    for k in range(3):
        for venue in ("A", "B"):
            rows.append({"ts_open_ns": T0 + k * m, "ts_close_ns": T0 + (k + 1) * m,
                         "venue": venue, "symbol": "X", "open": 1.0, "high": 1.0, "low": 1.0,
                         "close": 1.0, "volume": 1.0})
    assert validate_table("bars", pl.DataFrame(rows), "two venues").rows == 6
    from arbkit.errors import DataError

    dup = pl.DataFrame(rows + [{**rows[0], "close": 1.5, "high": 1.5}])
    with pytest.raises(DataError, match="two different bars rows at the same time"):
        validate_table("bars", dup.sort("ts_close_ns"), "dup")


# ---- smaller findings -----------------------------------------------------------------------


def test_a_sanity_block_writes_a_guard_row_with_the_value_and_the_limit() -> None:
    rows = [(1 * S, "A", 100.00, 100.01), (1 * S, "B", 100.00, 100.01),
            (2 * S, "B", 110.00, 110.01)]  # ~950 bps: a data fault, not an opportunity
    res = run(config(STRAT), rows)
    g = res.guards.filter(pl.col("guard") == "sanity").row(0, named=True)
    assert g["value"] > 900 and g["limit"] == 500.0 and g["route_name"] == "A:X~B:X"
    assert res.metric("trades") == 0 and res.metric("skipped_sanity") == 1


def test_qty_sizes_each_entry_in_coins() -> None:
    rows = [(1 * S, "A", 100.00, 100.01), (1 * S, "B", 100.00, 100.01),
            (2 * S, "B", 100.10, 100.11), (3 * S, "A", 100.03, 100.04),
            (4 * S, "B", 100.01, 100.02), (5 * S, "A", 100.03, 100.04)]
    res = run(config("entry_bps = 2.0\nexit_bps = 0.0\nqty = 0.25\n"), rows)
    assert res.trades.row(0, named=True)["qty"] == 0.25
