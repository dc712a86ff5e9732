"""Inverse (coin-margined) perpetuals: contract sizing, coin PnL, fees and funding, each
against a hand computation (core/inverse.py)."""

from __future__ import annotations

import polars as pl
import pytest

import arbkit
from arbkit.config import load_config_text
from arbkit.errors import ConfigError

S = 1_000_000_000
T0 = 1_700_000_000 * S
CV = 100.0  # USD per contract, as Binance COIN-M BTCUSD_PERP

CFG = """
[run]
capital = 100000.0
reference_ccy = "USD"
equity_interval_s = 1.0
[[instruments]]
venue = "A"
symbol = "BTC/USD"
quote = "USD"
kind = "spot"
lot = 0.00001
tick = 0.01
taker_fee_bps = 10.0
initial_base = 5.0
initial_quote = 1000000.0
[[instruments]]
venue = "P"
symbol = "BTCUSD_PERP"
quote = "USD"
kind = "inverse_perp"
contract_value = 100.0
lot = 1
tick = 0.1
taker_fee_bps = 5.0
initial_base = 1.0
[route]
a = "{a}"
b = "{b}"
[strategy]
entry_bps = 5.0
exit_bps = -1.0
notional = 10000.0
max_slippage_bps = 5.0
reversal = false
legging = "unwind"
"""


def cfg(a: str = "A:BTC/USD", b: str = "P:BTCUSD_PERP", **extra: str):
    text = CFG.format(a=a, b=b)
    for k, v in extra.items():
        text = text.replace(f"{k} = ", f"{k} = {v}  # ", 1) if f"\n{k} = " in text else text
    return load_config_text(text)


def market(rows, perp_qty: float = 10_000.0):
    """rows: (t_s, venue, bid, ask[, perp size]); spot sizes 50 BTC, perp sizes in contracts."""
    return pl.DataFrame({
        "ts_recv_ns": [T0 + round(t * S) for t, *_ in rows],
        "venue": [r[1] for r in rows],
        "symbol": ["BTC/USD" if r[1] == "A" else "BTCUSD_PERP" for r in rows],
        "bid_px": [float(r[2]) for r in rows],
        "bid_qty": [50.0 if r[1] == "A" else (r[4] if len(r) > 4 else perp_qty) for r in rows],
        "ask_px": [float(r[3]) for r in rows],
        "ask_qty": [50.0 if r[1] == "A" else (r[4] if len(r) > 4 else perp_qty) for r in rows]})


def funding(rows):
    """rows: (t_s, rate, mark)."""
    return pl.DataFrame({"ts_ns": [T0 + round(t * S) for t, _, _ in rows],
                         "venue": ["P"] * len(rows), "symbol": ["BTCUSD_PERP"] * len(rows),
                         "rate": [r for _, r, _ in rows], "mark_px": [m for _, _, m in rows]})


# t=1: the perp is rich by ~60 bps: buy spot A at 50,000, short the inverse perp at 50,300.
# t=9: converged (closing edge 0 >= exit -1 bps): sell spot at 50,500, buy back at 50,500
# (the perp's quote moved at t=8, when the spot's bid of 50,100 still kept the edge shut).
RICH_PERP = [(1, "A", 49_990, 50_000), (1, "P", 50_300, 50_310),
             (5, "A", 50_100, 50_110), (8, "P", 50_490, 50_500), (9, "A", 50_500, 50_510)]


def test_contract_sizing_coin_pnl_fees_and_funding_by_hand() -> None:
    res = arbkit.backtest(market(RICH_PERP), cfg(),
                          funding=funding([(3, 0.0001, 50_200.0), (7, 0.0002, 50_400.0),
                                           (12, 0.01, 50_500.0)]))
    assert res.trades.height == 1
    t = res.trades.row(0, named=True)
    # size: 10,000 USD at the perp's bid is 10,000 / 50,300 x 50,300 / 100 = 100.6 contracts
    # -> 100 whole contracts, worth 100 x 100 / 50,300 BTC; the spot leg buys that, in lots
    n = 100
    q0 = n * CV / 50_300
    q_spot = int(q0 / 1e-5) * 1e-5
    fills = res.fills.sort("ts", "inst")
    perp = fills.filter(pl.col("instrument") == "P:BTCUSD_PERP")
    assert perp["qty"].to_list() == [n, n]  # contracts, as the venue counts them
    assert perp["px"].to_list() == [50_300.0, 50_500.0]
    assert fills.filter(pl.col("instrument") == "A:BTC/USD")["qty"].to_list() == pytest.approx([q_spot] * 2)
    # the short's PnL is in coins: 100 x 100 x (1/50,500 - 1/50,300) BTC, valued at the exit
    coin_pnl = n * CV * (1 / 50_500 - 1 / 50_300)
    gross = q_spot * (50_500 - 50_000) + coin_pnl * 50_500
    # coin fees valued at the fill: 100 x 100 / P x 5 bps x P = 5 USD per fill
    fees = q_spot * (50_000 + 50_500) * 0.001 + 2 * n * CV * 0.0005
    # funding (short, positive rates: received), in coins 100 x 100 / mark x rate, valued at the
    # mark: 100 x 100 x rate; the mark does not change it; t=12 is after the exit
    fund = n * CV * 0.0001 + n * CV * 0.0002
    assert t["gross_pnl"] == pytest.approx(gross, abs=1e-9)
    assert t["fees"] == pytest.approx(fees, abs=1e-9)
    assert t["funding"] == pytest.approx(fund, abs=1e-12)
    assert t["net_pnl"] == pytest.approx(gross - fees + fund, abs=1e-9)
    assert t["net_pnl"] == pytest.approx(t["price_pnl"] - t["slippage"] - t["fees"]
                                         + t["fx_pnl"] + t["funding"], abs=1e-9)
    # the inverse short is a linear short of q0 coins: coin PnL x exit price = q0 x (P0 - P1)
    assert coin_pnl * 50_500 == pytest.approx(q0 * (50_300 - 50_500), rel=1e-12)
    # hedged within half a contract (q_spot vs q0): not a legging incident
    assert t["n_leg_incidents"] == 0 and abs(q_spot - q0) < 0.5 * CV / 50_300
    v = res.venues.filter(pl.col("venue") == "P").row(0, named=True)
    assert v["contracts"] == 0.0
    assert v["cash_change"] == pytest.approx(coin_pnl * 50_500 - 2 * n * CV * 0.0005 + fund,
                                             abs=1e-9)
    assert res.metric("final_equity") - 100_000.0 == pytest.approx(t["net_pnl"], abs=1e-9)
    # turnover counts contracts at their contract value, not as coins
    assert res.metric("turnover") == pytest.approx(
        (q_spot * (50_000 + 50_500) + 2 * n * CV) / 100_000.0, rel=1e-12)


def test_a_long_inverse_pays_positive_funding_sized_by_contracts_not_mark() -> None:
    # now the spot is rich: sell spot A (5 BTC held), buy (long) the inverse perp
    rows = [(1, "A", 50_300, 50_310), (1, "P", 49_990, 50_000), (8, "A", 50_500, 50_510),
            (9, "P", 50_510, 50_520)]
    res = arbkit.backtest(market(rows), cfg(a="P:BTCUSD_PERP", b="A:BTC/USD"),
                          funding=funding([(3, 0.0003, 40_000.0), (6, 0.0003, 60_000.0)]))
    t = res.trades.row(0, named=True)
    n = 100  # 10,000 / 50,000 x 50,000 / 100 = 100 contracts bought at the ask
    perp = res.fills.filter(pl.col("instrument") == "P:BTCUSD_PERP")
    assert perp["qty"].to_list() == [n, n]
    # both payments equal: -100 x 100 x 0.0003 USD each, whatever the mark (coins differ:
    # 0.00075 BTC at 40,000, 0.0005 BTC at 60,000, each worth 3 USD at its mark)
    assert t["funding"] == pytest.approx(2 * -n * CV * 0.0003, abs=1e-12)


def test_a_partial_inverse_fill_is_unwound_and_leaves_no_naked_exposure() -> None:
    # the perp's order takes 50 ms to arrive; by then only 40 contracts are left at its bid:
    # the spot leg's excess is sold back
    rows = RICH_PERP[:2] + [(1.01, "P", 50_300, 50_310, 40.0), (2, "A", 49_990, 50_000)]
    text = CFG.format(a="A:BTC/USD", b="P:BTCUSD_PERP").replace(
        "taker_fee_bps = 5.0", "taker_fee_bps = 5.0\norder_latency_ms = 50.0")
    res = arbkit.backtest(market(rows), load_config_text(text))
    legs = res.legs.row(0, named=True)
    assert legs["excess_qty"] > 0.0
    # what is left naked is under half a contract's worth of coins (the hedge tolerance)
    assert legs["residual_qty"] == 0.0
    v = {r["venue"]: r for r in res.venues.iter_rows(named=True)}
    spot_left = v["A"]["position_change"]
    perp_coins = 40 * CV / 50_300
    assert v["P"]["contracts"] == -40.0
    assert abs(spot_left - perp_coins) < 0.5 * CV / 50_300


@pytest.mark.parametrize("change, to, message", [
    ("contract_value = 100.0\n", "", "needs contract_value > 0 .*; got none"),
    ("lot = 1\ntick = 0.1", "lot = 0.5\ntick = 0.1", "lot = 0.5; an inverse_perp's lot is a whole"),
    ("lot = 1\ntick = 0.1", "lot = 1.5\ntick = 0.1", "lot = 1.5; an inverse_perp's lot is a whole"),
    ("initial_base = 5.0\n", "initial_base = 5.0\ncontract_value = 10.0\n",
     "contract_value = 10.0 is only for kind = 'inverse_perp'"),
])
def test_inverse_config_mistakes_are_one_clear_line(change: str, to: str, message: str) -> None:
    text = CFG.format(a="A:BTC/USD", b="P:BTCUSD_PERP")
    assert change in text
    with pytest.raises(ConfigError, match=message):
        load_config_text(text.replace(change, to, 1))


def test_two_inverse_legs_are_refused() -> None:
    text = CFG.format(a="P:BTCUSD_PERP", b="Q:BTCUSD_PERP") + """
[[instruments]]
venue = "Q"
symbol = "BTCUSD_PERP"
quote = "USD"
kind = "inverse_perp"
contract_value = 10.0
lot = 1
"""
    with pytest.raises(ConfigError, match="at most one inverse leg"):
        load_config_text(text)


def test_an_open_inverse_position_is_marked_with_the_fee_on_its_contracts() -> None:
    """Left open at the end: the execution mark closes the spot at its bid (fee on notional)
    and buys back 100 contracts at the perp's ask (fee on 100 x 100, not on q0 x price)."""
    res = arbkit.backtest(market(RICH_PERP[:3]), cfg())
    t = res.trades.row(0, named=True)
    assert t["is_open"] == 1
    n = 100
    q0 = n * CV / 50_300
    q_spot = int(q0 / 1e-5) * 1e-5
    cash = -q_spot * 50_000 + q0 * 50_300
    entry_fees = q_spot * 50_000 * 0.001 + n * CV * 0.0005
    close = (q_spot * 50_100 - q_spot * 50_100 * 0.001) + (-q0 * 50_310 - n * CV * 0.0005)
    assert t["fees"] == pytest.approx(entry_fees, abs=1e-9)
    assert t["net_pnl"] == pytest.approx(cash - entry_fees + close, abs=1e-9)
