"""Many symbols in one run: per-symbol results of the right sign, each symbol's trades identical
to its solo run, portfolio figures = the sum of the symbols exactly, every symbol evaluated."""

from __future__ import annotations

import polars as pl
import pytest

import arbkit
from arbkit.data.synth import generate
from arbkit.data.universe import generate_universe

N = 40_000  # rows per symbol: ~17 min of market time, ~16 episodes per scenario
SAME = ["dir", "entry_ts", "exit_ts", "qty", "entry_edge_bps", "exit_edge_bps", "gross_pnl",
        "price_pnl", "slippage", "fees", "net_pnl", "exit_reason", "n_fills"]


@pytest.fixture(scope="module")
def btc_eth():
    spec = {"BTC": "always-win", "ETH": "always-lose"}
    df, cfg = generate_universe(spec, n_events=N, depth=3)
    return spec, df, cfg, arbkit.backtest(df, cfg)


def test_one_symbol_wins_the_other_loses_with_the_right_signs(btc_eth) -> None:
    _, _, _, res = btc_eth
    by = {r["base"]: r for r in res.symbols.to_dicts()}
    assert by["BTC"]["trades"] > 5 and by["ETH"]["trades"] > 5
    assert by["BTC"]["net_pnl"] > 0 > by["ETH"]["net_pnl"]
    eth = res.trades.filter(pl.col("route_name") == "ETH always-lose")
    assert (eth["exit_reason_text"] == "stop_loss").all()


def test_each_symbols_trades_are_identical_to_its_solo_run(btc_eth) -> None:
    spec, _, _, res = btc_eth
    for k, (base, scenario) in enumerate(spec.items()):
        df, cfg = generate(scenario, seed=7 + k, n_events=N, depth=3)
        solo = arbkit.backtest(df, cfg)
        mine = res.trades.filter(pl.col("route") == k)
        assert mine.height == solo.trades.height > 0
        assert mine.select(SAME).equals(solo.trades.select(SAME)), base
        fills = res.fills.filter(pl.col("route") == k).select("ts", "side", "qty", "px", "fee")
        assert fills.equals(solo.fills.select("ts", "side", "qty", "px", "fee")), base


def test_portfolio_additive_figures_equal_the_sum_of_the_symbols_exactly(btc_eth) -> None:
    _, _, _, res = btc_eth
    for col in ("net_pnl", "price_pnl", "slippage", "fees", "fx_pnl", "funding", "gross_pnl",
                "legging_cost", "open_net_pnl_mid", "trades", "entries", "open_at_end"):
        total = 0
        for v in res.symbols[col].to_list():
            total += v
        assert res.metric(col) == total, col
        # and each symbol is the sum of its routes, the routes the sum of their trades
    assert res.metric("trades") == res.trades.filter(pl.col("is_open") == 0).height
    assert res.metric("net_pnl") == pytest.approx(
        res.trades.filter(pl.col("is_open") == 0)["net_pnl"].sum(), abs=1e-9)


def test_risk_figures_come_from_the_portfolio_equity_itself(btc_eth) -> None:
    _, _, cfg, res = btc_eth
    eq = res.equity["equity"].to_numpy()
    import numpy as np

    dd = float((np.maximum.accumulate(eq) - eq).max())
    assert res.metric("max_drawdown") == dd
    # venues' balances (cash and inventory changed by trading, at mid) add up to the equity
    assert res.venues["pnl_mid"].sum() == pytest.approx(
        res.metric("final_equity") - cfg.run.capital, abs=1e-6)


def test_every_symbol_of_a_universe_is_loaded_and_evaluated() -> None:
    spec = {"BTC": "normal", "ETH": "flat", "SOL": "always-win", "XRP": "always-lose",
            "DOGE": "normal"}
    df, cfg = generate_universe(spec, n_events=8_000, depth=1)
    res = arbkit.backtest(df, cfg)
    assert res.routes.height == 5 and res.metric("routes") == 5
    assert set(res.symbols["base"]) == set(spec)
    seen = dict(zip(res.routes["route"], res.routes["opportunities_seen"]))
    best = dict(zip(res.routes["route"], res.routes["best_clean_edge_bps"]))
    for route, n in seen.items():
        # every route saw its books (a finite best edge) and the trading ones saw opportunities
        assert best[route] == best[route], route
        if "flat" not in route:
            assert n > 0, route
