"""Routes across quote currencies through a recorded FX series, and perpetual funding: each
number computed by hand in the test; the FX traps of BRIEF §10 each caught."""

from __future__ import annotations

import polars as pl
import pytest

import arbkit
from arbkit.config import load_config_text
from arbkit.errors import ConfigError, DataError

S = 1_000_000_000
T0 = 1_700_000_000 * S

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
sanity_max_edge_bps = {sanity}
"""


def cfg(max_age: str = "3600.0", sanity: str = "500.0"):
    return load_config_text(KRW.format(max_age=max_age, sanity=sanity))


def quotes(rows):
    """rows: (t_s, venue, bid, ask)."""
    return pl.DataFrame({
        "ts_recv_ns": [T0 + round(t * S) for t, *_ in rows],
        "venue": [r[1] for r in rows],
        "symbol": ["BTC-KRW" if r[1] == "U" else "BTCUSDT" for r in rows],
        "bid_px": [float(r[2]) for r in rows], "bid_qty": [5.0] * len(rows),
        "ask_px": [float(r[3]) for r in rows], "ask_qty": [5.0] * len(rows)})


def fx(rows, symbol="USDT/KRW"):
    """rows: (t_s, rate) KRW per USDT."""
    base, quote = symbol.split("/")
    return pl.DataFrame({"ts_ns": [T0 + round(t * S) for t, _ in rows],
                         "venue": ["upbit"] * len(rows), "symbol": [symbol] * len(rows),
                         "base": [base] * len(rows), "quote": [quote] * len(rows),
                         "rate": [float(r) for _, r in rows]})


MARKET = [
    # t=1: fx 1000 KRW/USDT: U ask 100,000 KRW = 100.00 USDT; B bid 100.30: e_AB ~ +30 bps
    (1.0, "U", 99_990, 100_000), (1.0, "B", 100.30, 100.31),
    # t=2: KRW strengthens to 980 per USDT: U bid 100,000 KRW = 102.0408 USDT; B 102.10/102.11:
    # closing edge = (102.0408 - 102.11) / mid ~ -6.8 bps >= exit -10: converge
    (2.0, "U", 100_000, 100_010), (2.0, "B", 102.10, 102.11),
    (3.0, "U", 100_000, 100_010),
]


def test_a_krw_usdt_route_decomposes_price_move_and_fx_effect_by_hand() -> None:
    res = arbkit.backtest(quotes(MARKET), cfg(), fx=fx([(0.5, 1000.0), (1.5, 980.0)]))
    t = res.trades.row(0, named=True)
    assert res.trades.height == 1 and t["exit_reason_text"] == "converge"
    # qty = notional / (ask x fx) = 100 / (100,000 x 0.001) = 1.0 BTC
    assert t["qty"] == pytest.approx(1.0)
    # price move at each leg's FX at entry (U: 0.001 USDT/KRW, B: 1):
    #   U: -100,000 x 0.001 + 100,000 x 0.001 = 0 ; B: +100.30 - 102.11 = -1.81
    assert t["price_pnl"] == pytest.approx(-1.81, abs=1e-9)
    # The KRW it spent (100,000) came back (100,000): the round trip holds no KRW of its own,
    # so the FX move has no effect on it. The 100,000 KRW came from the pre-funded wallet,
    # whose revaluation (1 bn KRW at 1000 -> 980) is the treasury line's, counted once there.
    assert t["fx_pnl"] == 0.0
    assert t["slippage"] == 0.0 and t["fees"] == 0.0 and t["funding"] == 0.0
    assert t["net_pnl"] == pytest.approx(-1.81, abs=1e-9)
    assert t["net_pnl"] == pytest.approx(t["price_pnl"] - t["slippage"] - t["fees"]
                                         + t["fx_pnl"] + t["funding"], abs=1e-12)
    assert res.fills["fx"].to_list() == pytest.approx([1e-3, 1.0, 1 / 980, 1.0])
    # the strategy's effect on the account: the equity agrees with the trades
    assert res.metric("final_equity") - 100_000.0 == pytest.approx(-1.81, abs=1e-9)
    # treasury: 1 bn KRW x (1/980 - 1/1000) + 5 BTC x (U mid at the end x fx - at the start)
    tre = 1e9 * (1 / 980 - 1 / 1000) + 5 * (100_005 / 980 - 99_995 / 1000)
    assert res.metric("treasury_pnl") == pytest.approx(tre, rel=1e-12)
    assert res.metric("account_pnl") == pytest.approx(tre - 1.81, rel=1e-12)
    assert abs(res.metric("identity_gap")) <= 1e-9 * 100_000


def test_an_fx_route_profit_in_krw_is_valued_at_the_close_then_revalued_as_treasury() -> None:
    # U's KRW price rises 1000 KRW while FX goes 1000 -> 980, and on to 950 after the exit
    # (U then quoted at B's price through the new rate: no premium, no new entry)
    rows = [(1.0, "U", 99_990, 100_000), (1.0, "B", 100.30, 100.31),
            (2.0, "U", 101_000, 101_010), (2.0, "B", 102.15, 102.16),
            (3.0, "U", 97_040, 97_050)]
    res = arbkit.backtest(quotes(rows), cfg(),
                          fx=fx([(0.5, 1000.0), (1.5, 980.0), (2.5, 950.0)]))
    t = res.trades.row(0, named=True)
    assert t["exit_reason_text"] == "converge" and t["qty"] == pytest.approx(1.0)
    # U: -100,000 + 101,000 = +1,000 KRW left by the round trip; B: +100.30 - 102.16 = -1.86
    # price move at the entry FX: 1,000 x 0.001 - 1.86 = -0.86
    assert t["price_pnl"] == pytest.approx(-0.86, abs=1e-9)
    # FX effect: its own 1,000 KRW, valued at the close (1/980) instead of the entry (1/1000)
    assert t["fx_pnl"] == pytest.approx(1000 * (1 / 980 - 1 / 1000), abs=1e-12)
    assert t["net_pnl"] == pytest.approx(1000 / 980 - 1.86, abs=1e-9)
    # after the close the 1,000 KRW sit in the wallet: their move to 950 is treasury
    tre = (1e9 * (1 / 950 - 1 / 1000) + 5 * (97_045 / 950 - 99_995 / 1000)
           + 1000 * (1 / 950 - 1 / 980))
    assert res.trades.height == 1
    assert res.metric("treasury_pnl") == pytest.approx(tre, rel=1e-12)
    assert res.metric("final_equity") - 100_000.0 == pytest.approx(t["net_pnl"], abs=1e-9)
    assert res.metric("account_pnl") == pytest.approx(tre + t["net_pnl"], rel=1e-12)
    assert abs(res.metric("identity_gap")) <= 1e-9 * 100_000


def test_stale_fx_blocks_entries_and_fresh_fx_trades() -> None:
    rates = fx([(0.5, 1000.0), (1.5, 980.0)])
    fresh = arbkit.backtest(quotes(MARKET), cfg(max_age="3600.0"), fx=rates)
    stale = arbkit.backtest(quotes(MARKET), cfg(max_age="0.25"), fx=rates)  # 0.5 s old at t=1
    assert fresh.metric("trades") == 1
    assert stale.metric("trades") == 0 and stale.metric("skipped_stale_fx") >= 1


def test_a_wrong_constant_fx_is_caught_by_the_sanity_guard() -> None:
    # 1,500 KRW/USDT instead of ~1,000: U looks 33% cheap, an edge no real market offers
    res = arbkit.backtest(quotes(MARKET), cfg(), fx=fx([(0.5, 1500.0)]))
    assert res.metric("trades") == 0 and res.metric("skipped_sanity") >= 1


def test_an_fx_implied_from_the_traded_asset_is_refused() -> None:
    rows, rates = [], []
    for k in range(30):  # FX = U's KRW price / B's USDT price at each time: premium 0 by design
        b = 100.0 + 0.1 * k
        rows += [(1.0 + k, "U", b * 1000 - 5, b * 1000 + 5), (1.0 + k, "B", b - 0.005, b + 0.005)]
        rates.append((1.0 + k + 0.5, b * 1000 / b * (1.0 + 1e-6)))
    with pytest.raises(DataError, match="track the route .* own price ratio"):
        arbkit.backtest(quotes(rows), cfg(), fx=fx(rates))


def test_usd_usdt_and_usdc_are_never_one_currency() -> None:
    text = KRW.format(max_age="3600.0", sanity="500.0").replace('quote = "KRW"', 'quote = "USD"')
    with pytest.raises(ConfigError, match="quoted in USD: prices in USD need an \\[\\[fx\\]\\] "
                                          "series USDT/USD"):
        load_config_text(text)


def test_missing_fx_data_is_a_clear_error() -> None:
    with pytest.raises(DataError, match="has \\[\\[fx\\]\\] series but no FX data was given"):
        arbkit.backtest(quotes(MARKET), cfg())


# ---- funding ---------------------------------------------------------------------------

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
[[instruments]]
venue = "P"
symbol = "X"
kind = "linear_perp"
lot = 0.001
[route]
a = "A:X"
b = "P:X"
[strategy]
entry_bps = 5.0
exit_bps = -1.0
notional = 1000.0
reversal = false
"""


def perp_market():
    # t=1: P rich by ~30 bps: buy spot A, SHORT the perp P (qty 1000/100 = 10)
    # t=9: converged: exit
    return pl.DataFrame({
        "ts_recv_ns": [T0 + t * S for t in (1, 1, 5, 9, 9)],
        "venue": ["A", "P", "A", "A", "P"], "symbol": ["X"] * 5,
        "bid_px": [99.99, 100.30, 99.99, 100.00, 100.00], "bid_qty": [50.0] * 5,
        "ask_px": [100.00, 100.31, 100.00, 100.01, 100.01], "ask_qty": [50.0] * 5})


def funding(rows):
    """rows: (t_s, rate, mark)."""
    return pl.DataFrame({"ts_ns": [T0 + round(t * S) for t, _, _ in rows],
                         "venue": ["P"] * len(rows), "symbol": ["X"] * len(rows),
                         "rate": [r for _, r, _ in rows], "mark_px": [m for _, _, m in rows]})


def test_funding_is_paid_at_the_funding_time_with_the_realised_rate_by_hand() -> None:
    cfg = load_config_text(FUND)
    # at t=3 the short perp position (-10) receives: -(-10) x 100.2 x 0.0001 = +0.1002;
    # at t=7 it pays: -(-10) x 100.1 x (-0.0003) = -0.3003; t=12 is after the exit: nothing
    res = arbkit.backtest(perp_market(), cfg,
                          funding=funding([(3, 0.0001, 100.2), (7, -0.0003, 100.1),
                                           (12, 0.01, 100.0)]))
    t = res.trades.row(0, named=True)
    assert t["exit_ts"] == T0 + 9 * S and t["qty"] == pytest.approx(10.0)
    assert t["funding"] == pytest.approx(0.1002 - 0.3003, abs=1e-12)
    assert t["net_pnl"] == pytest.approx(t["price_pnl"] - t["slippage"] - t["fees"]
                                         + t["fx_pnl"] + t["funding"], abs=1e-12)
    perp = res.venues.filter(pl.col("venue") == "P").row(0, named=True)
    # the venue's cash holds the same funding (the t=12 rate met no position)
    assert perp["cash_change"] == pytest.approx(100.30 * 10 - 100.01 * 10 + 0.1002 - 0.3003,
                                                abs=1e-9)


def test_a_long_perp_pays_when_the_rate_is_positive() -> None:
    cfg = load_config_text(FUND.replace('a = "A:X"\nb = "P:X"', 'a = "P:X"\nb = "A:X"'))
    mkt = perp_market().with_columns(  # now A is rich: sell A, buy (long) the perp
        pl.Series("bid_px", [100.30, 99.99, 100.30, 100.00, 100.00]),
        pl.Series("ask_px", [100.31, 100.00, 100.31, 100.01, 100.01]))
    res = arbkit.backtest(mkt, cfg, funding=funding([(3, 0.0002, 100.0)]))
    t = res.trades.row(0, named=True)
    # selling spot A is capped by its 5.0 BTC of inventory: long 5 perps
    assert t["dir"] == 1 and t["qty"] == pytest.approx(5.0)
    assert t["funding"] == pytest.approx(-5 * 100.0 * 0.0002, abs=1e-12)  # the long pays


def test_a_perp_without_a_funding_series_says_so() -> None:
    res = arbkit.backtest(perp_market(), load_config_text(FUND))
    assert any("no funding series for P:X" in n for n in res.meta["notes"])


def test_treasury_line_is_the_buy_and_hold_of_the_starting_balances_by_hand() -> None:
    """U starts with 5 BTC and 1e9 KRW; holding them from the first quote (mid 99,995 KRW at
    1000 KRW/USDT) to the end (mid 100,005 KRW at 980) is the treasury line, in USDT; the
    perp leg (no starting position) adds nothing; the strategy's PnL is not in it."""
    res = arbkit.backtest(quotes(MARKET), cfg(), fx=fx([(0.5, 1000.0), (1.5, 980.0)]))
    inventory = 5.0 * (100_005 / 980 - 99_995 / 1000)
    cash = 1e9 * (1 / 980 - 1 / 1000)
    assert res.metric("treasury_pnl") == pytest.approx(inventory + cash, rel=1e-12)
    assert res.venues["treasury_pnl"].to_list() == pytest.approx([inventory + cash, 0.0])
    assert res.metric("account_pnl") == pytest.approx(
        res.metric("final_equity") - 100_000.0 + inventory + cash, rel=1e-12)
    # the arbitrage figures do not move with it (the KRW the trade spent and got back is the
    # wallet's: its FX move is in the treasury line, not in the trade)
    assert res.metric("net_pnl") == pytest.approx(-1.81)
