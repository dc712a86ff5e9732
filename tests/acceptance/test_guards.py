"""Every risk guard: a run where it must fire (and what it blocks or flattens afterwards) and a
control run where it must not. A universe of BTC (always loses) and ETH (always wins) on the
two synthetic spot venues; each trade's notional is ~10,000 USDT."""

from __future__ import annotations

import dataclasses

import polars as pl
import pytest

import arbkit
from arbkit.config import RiskConfig
from arbkit.core import types as T
from arbkit.data.synth import START_NS
from arbkit.data.universe import generate_universe

N = 40_000
DAY = 86_400_000_000_000


@pytest.fixture(scope="module")
def uni():
    return generate_universe({"BTC": "always-lose", "ETH": "always-win"}, n_events=N, depth=3)


def run(uni, **risk):
    df, cfg = uni
    return arbkit.backtest(df, dataclasses.replace(cfg, risk=RiskConfig(**risk)))


def log(res, guard: str) -> pl.DataFrame:
    return res.guards.filter(pl.col("guard") == guard)


@pytest.fixture(scope="module")
def free(uni):
    return run(uni)


def test_the_control_run_trades_both_symbols(free) -> None:
    assert free.routes["trades"].to_list() == [17, 17] and free.guards.height == 0


@pytest.mark.parametrize(("key", "value", "skip"), [
    ("max_symbol_notional", 9_000.0, "symbol_cap"),  # a full trade's notional is ~10,000
    ("max_gross_exposure", 15_000.0, "gross_cap"),  # both legs of a full trade: ~20,000
    ("max_venue_imbalance", 5_000.0, "venue_imbalance"),
])
def test_a_pre_trade_cap_blocks_every_entry_that_breaks_it(uni, free, key, value, skip) -> None:
    res = run(uni, **{key: value})
    assert res.metric(f"skipped_{skip}") > 0 and log(res, skip).height >= 1
    assert res.metric("trades") < free.metric("trades")
    # what still traded fit under the cap (entries smaller because balances capped them)
    if skip == "symbol_cap":
        assert (res.trades["entry_notional"] <= value).all()
    if skip == "gross_cap":
        assert (2 * res.trades["entry_notional"] <= value).all()
    ok = run(uni, **{key: value * 1e6})  # the control: a limit no trade reaches
    assert ok.routes["trades"].to_list() == free.routes["trades"].to_list()
    assert ok.metric(f"skipped_{skip}") == 0 and ok.guards.height == 0


def test_the_slippage_guard_skips_entries_that_walk_the_book(uni, free) -> None:
    df, cfg = uni
    thin = df.with_columns(pl.col("bid_qty") / 1000, pl.col("ask_qty") / 1000)  # a thin touch
    res = arbkit.backtest(thin, dataclasses.replace(cfg, risk=RiskConfig(
        max_entry_slippage_bps=0.0005)))  # less than one tick (0.01 on ~50,000 = 0.002 bps)
    assert res.metric("trades") == 0 and res.metric("skipped_slippage") > 0
    ok = arbkit.backtest(thin, dataclasses.replace(cfg, risk=RiskConfig(
        max_entry_slippage_bps=1000.0)))
    assert ok.metric("trades") > 0 and ok.metric("skipped_slippage") == 0


def test_the_symbol_cap_is_per_symbol(uni) -> None:
    # 15,000: one open trade per symbol fits, a second one on the same symbol would not
    res = run(uni, max_symbol_notional=15_000.0)
    assert res.routes["trades"].to_list() == [17, 17]


def test_the_daily_loss_limit_stops_entries_and_losses_on_btc_stop_eth_too(uni, free) -> None:
    res = run(uni, daily_loss_limit=100.0)  # ~ four BTC losses of ~30 USDT
    hit = log(res, "daily_loss")
    assert hit.height == 1 and hit["route_name"][0] == "portfolio"
    t_halt = hit["ts"][0]
    assert (res.trades["entry_ts"] > t_halt).sum() == 0  # nothing after, on either symbol
    assert res.metric("skipped_halted") > 0
    eth = res.routes.filter(pl.col("route").str.starts_with("ETH")).row(0, named=True)
    assert eth["trades"] < 17  # ETH stopped because BTC lost: a portfolio limit
    assert run(uni, daily_loss_limit=1e6).guards.height == 0


def test_the_daily_halt_is_lifted_at_utc_midnight_on_the_kernels_clock(uni) -> None:
    df, cfg = uni
    t0 = START_NS - 8 * 3_600_000_000_000 + 20 * 60 * 1_000_000_000  # 16:20 UTC the day before
    stretched = df.with_columns(  # 17 min of market -> ~17 h: the run crosses midnight
        (t0 + (pl.col("ts_recv_ns") - START_NS) * 60).alias("ts_recv_ns"),
        (t0 + (pl.col("ts_exch_ns") - START_NS) * 60).alias("ts_exch_ns"))
    res = arbkit.backtest(stretched, dataclasses.replace(cfg, risk=RiskConfig(
        daily_loss_limit=100.0)))
    halts, resets = log(res, "daily_loss"), log(res, "day_reset")
    assert halts.height >= 2 and resets.height >= 1
    assert resets["ts"][0] % DAY == 0  # exactly 00:00:00 UTC, not at the next quote
    after = res.trades.filter(pl.col("entry_ts") > resets["ts"][0])
    assert after.height > 0  # trading resumed on the new day


def test_max_drawdown_halts_and_flattens_with_reason_risk(uni) -> None:
    res = run(uni, max_drawdown=80.0)
    hit = log(res, "drawdown")
    assert hit.height == 1
    assert (res.trades["entry_ts"] > hit["ts"][0]).sum() == 0
    assert res.metric("open_at_end") == 0
    assert run(uni, max_drawdown=1e6).guards.height == 0


def test_drawdown_flattens_an_open_position_at_once(uni) -> None:
    # a limit smaller than one losing trade's stop: the halt comes while BTC is still open
    res = run(uni, max_drawdown=12.0)
    assert (res.trades["exit_reason_text"] == "risk").sum() >= 1
    assert res.metric("open_at_end") == 0


def test_a_loss_streak_pauses_the_losing_route_only(uni, free) -> None:
    res = run(uni, loss_streak=3, loss_streak_cooldown_s=150.0)
    paused = log(res, "loss_streak")
    assert paused.height >= 1 and set(paused["route_name"]) == {"BTC always-lose"}
    btc, eth = res.routes["trades"].to_list()
    assert btc < 17 and eth == 17
    assert run(uni, loss_streak=50).guards.height == 0


def test_the_order_rate_limit_holds_back_entries_not_exits() -> None:
    # two symbols with the same data: both routes signal at the same instants on venues A, B
    df, cfg = generate_universe({"BTC": "always-win", "ETH": "always-win"}, n_events=N, depth=3,
                                seed=7)
    same = df.filter(pl.col("symbol") == "BTC-USDT")
    df = pl.concat([same, same.with_columns(pl.lit("ETH-USDT").alias("symbol"))]).sort(
        "ts_recv_ns", maintain_order=True)

    def seconds(res, r):
        return set((res.trades.filter(pl.col("route") == r)["entry_ts"] // 10**9).to_list())

    res = arbkit.backtest(df, dataclasses.replace(cfg, risk=RiskConfig(max_orders_per_s=1.0)))
    assert res.metric("skipped_rate_limit") > 0 and log(res, "rate_limit").height > 0
    assert seconds(res, 0).isdisjoint(seconds(res, 1))  # ETH waited for the next second
    assert res.metric("open_at_end") == 0  # exits were never held back
    ok = arbkit.backtest(df, dataclasses.replace(cfg, risk=RiskConfig(max_orders_per_s=10.0)))
    assert seconds(ok, 0) == seconds(ok, 1) and ok.metric("skipped_rate_limit") == 0


def test_the_same_jump_on_every_symbol_is_a_data_fault_not_an_opportunity() -> None:
    df, cfg = generate_universe({"BTC": "always-win", "ETH": "always-win", "SOL": "always-win"},
                                n_events=N, depth=3)
    same = df.filter(pl.col("symbol") == "BTC-USDT")  # the same jump on all three at once
    fault = pl.concat([same.with_columns(pl.lit(s).alias("symbol"))
                       for s in ("BTC-USDT", "ETH-USDT", "SOL-USDT")]).sort("ts_recv_ns",
                                                                           maintain_order=True)
    risk = RiskConfig(same_jump_routes=3, same_jump_window_ms=200.0)
    res = arbkit.backtest(fault, dataclasses.replace(cfg, risk=risk))
    assert res.metric("trades") == 0 and res.metric("skipped_same_jump") > 0
    assert log(res, "same_jump").height == 3  # one episode row per route
    # control: the same episodes, 20 and 40 s apart on the three symbols (not at once)
    apart = pl.concat([same.with_columns(pl.lit(s).alias("symbol"),
                                         pl.col("ts_recv_ns") + k * 20 * 10**9,
                                         pl.col("ts_exch_ns") + k * 20 * 10**9)
                       for k, s in enumerate(("BTC-USDT", "ETH-USDT", "SOL-USDT"))]).sort(
        "ts_recv_ns", maintain_order=True)
    ok = arbkit.backtest(apart, dataclasses.replace(cfg, risk=risk))
    assert ok.metric("trades") > 0 and ok.metric("skipped_same_jump") == 0


def test_the_kill_switch_flattens_and_halts(uni, free) -> None:
    df, cfg = uni
    t_kill = free.trades.filter(pl.col("route") == 0)["entry_ts"][5] + 1_000_000_000  # open
    res = arbkit.backtest(df, cfg, controls=[(t_kill, "kill")])
    assert log(res, "kill").height == 1
    assert (res.trades["exit_reason_text"] == "kill").sum() >= 1
    assert (res.trades["entry_ts"] > t_kill).sum() == 0 and res.metric("open_at_end") == 0


def test_stop_and_resume_and_a_symbol_off_and_on_act_on_entries_only(uni, free) -> None:
    df, cfg = uni
    btc = free.trades.filter(pl.col("route") == 0)
    t_stop = btc["entry_ts"][3] + 1_000_000_000  # BTC holds a position then
    t_resume = btc["entry_ts"][8]
    res = arbkit.backtest(df, cfg, controls=[(t_stop, "stop"), (t_resume, "resume")])
    entries = res.trades["entry_ts"]
    assert ((entries > t_stop) & (entries < t_resume)).sum() == 0  # nothing new in between
    assert (entries > t_resume).sum() > 0  # trading again after the resume
    # the position open at the stop still closed by its own rules, not flattened
    assert not (res.trades["exit_reason_text"] == "kill").any()
    assert log(res, "control")["value"].to_list() == [T.CTL_STOP, T.CTL_RESUME]
    assert res.metric("skipped_halted") > 0
    t_off = btc["entry_ts"][2]
    off = arbkit.backtest(df, cfg, controls=[(t_off, "symbol_off:ETH")])
    by = off.trades.group_by("route").agg(pl.col("entry_ts").max())
    eth_last = by.filter(pl.col("route") == 1)["entry_ts"][0]
    assert eth_last <= t_off  # no ETH entry after it
    assert off.routes["trades"][0] == free.routes["trades"][0]  # BTC unaffected
    assert off.metric("skipped_symbol_off") > 0
    on = arbkit.backtest(df, cfg, controls=[(t_off, "symbol_off:ETH"),
                                            (t_resume, "symbol_on:ETH")])
    assert (on.trades.filter(pl.col("route") == 1)["entry_ts"] > t_resume).sum() > 0
    from arbkit.errors import DataError

    with pytest.raises(DataError, match="one of BTC, ETH"):
        arbkit.backtest(df, cfg, controls=[(t_off, "symbol_off:DOGE")])


def test_guard_codes_have_names() -> None:
    for code in range(T.N_SKIP):
        assert T.guard_text(code) == T.SKIP_TEXT[code]
    for code in (T.G_DAILY_LOSS, T.G_DAY_RESET, T.G_DRAWDOWN, T.G_KILL, T.G_LOSS_STREAK):
        assert T.guard_text(code) != ""
