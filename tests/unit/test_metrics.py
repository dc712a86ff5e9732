"""Every aggregate of docs/metrics.md computed by hand: the figures a user judges a strategy by.

Also the threshold tie (an edge exactly on the entry threshold enters, one ulp below does
not: prices on a binary grid so the tie is exact in floats) and an equity sample checked by
hand while a position is open."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from arbkit.metrics.summary import daily_returns, drawdown, ratios, too_good_checks, trade_stats
from tests.streams import S, config, run

pytestmark = pytest.mark.nojit
DAY = 86_400 * S


def trades(net: list[float], r: list[float] | None = None) -> pl.DataFrame:
    return pl.DataFrame({"net_pnl": net, "r_multiple": r or [x / 10 for x in net]})


def test_win_rate_profit_factor_expectancy_and_avg_r_by_hand() -> None:
    st = trade_stats(trades([1.0, 0.0, -1.0], [0.5, 0.0, -0.25]))
    assert st["win_rate"] == pytest.approx(1 / 3)  # a zero-PnL trade is not a win
    assert st["profit_factor"] == 1.0  # 1 won / 1 lost
    assert st["expectancy"] == 0.0
    assert st["avg_r"] == pytest.approx(0.25 / 3)
    st = trade_stats(trades([3.0, 2.0, -0.5, -1.5]))
    assert st["win_rate"] == 0.5 and st["profit_factor"] == pytest.approx(5.0 / 2.0)
    assert st["expectancy"] == pytest.approx(3.0 / 4)
    assert trade_stats(trades([1.0, 2.0]))["profit_factor"] == math.inf
    assert math.isnan(trade_stats(trades([0.0, 0.0]))["profit_factor"])
    assert math.isnan(trade_stats(trades([]).cast(pl.Float64))["win_rate"])


def equity_days(closes: list[float], capital: float = 1000.0) -> pl.DataFrame:
    """Two samples a day (noon and the day's close at 23:00), UTC."""
    ts, eq = [], []
    for d, c in enumerate(closes):
        ts += [d * DAY + 12 * 3600 * S, d * DAY + 23 * 3600 * S]
        eq += [capital, c]
    return pl.DataFrame({"ts": ts, "equity": eq})


def test_daily_returns_use_start_of_day_equity() -> None:
    r = daily_returns(equity_days([1010.0, 1010.0, 999.9]), 1000.0)
    assert r.tolist() == pytest.approx([0.01, 0.0, 999.9 / 1010.0 - 1])


def test_sharpe_and_sortino_on_31_days_by_hand_annualised_with_sqrt_365() -> None:
    rng = np.random.default_rng(7)
    rets = rng.normal(0.001, 0.01, 31)
    sharpe, sortino, note = ratios(rets)
    mean = sum(rets) / 31
    sd = math.sqrt(sum((x - mean) ** 2 for x in rets) / 30)
    down = math.sqrt(sum(min(x, 0.0) ** 2 for x in rets) / 31)
    assert note == ""
    assert sharpe == pytest.approx(mean / sd * math.sqrt(365), rel=1e-12)
    assert sortino == pytest.approx(mean / down * math.sqrt(365), rel=1e-12)
    s29, _, note29 = ratios(rets[:29])
    assert math.isnan(s29) and "29 day(s) of data < 30" in note29


def test_max_drawdown_by_hand() -> None:
    eq = pl.DataFrame({"ts": [1, 2, 3, 4, 5], "equity": [100.0, 120.0, 90.0, 130.0, 117.0]})
    dd, pct = drawdown(eq)
    assert dd == 30.0 and pct == pytest.approx(30.0 / 120.0)


def test_too_good_checks_flag_a_perfect_or_constant_record() -> None:
    assert any("100% win rate" in n for n in too_good_checks(trades([1.0] * 10), np.zeros(0)))
    assert any("constant PnL" in n for n in too_good_checks(trades([-2.0] * 10), np.zeros(0)))
    assert any("no losing day" in n for n in too_good_checks(trades([1.0, -1.0]),
                                                             np.full(30, 0.001)))


# ---- the summary of a run, by hand ------------------------------------------------------------

STRAT = "entry_bps = 2.0\nexit_bps = 0.0\nnotional = 1000.0\n"
ROWS = [(1 * S, "A", 100.00, 100.01), (1 * S, "B", 100.00, 100.01),
        (2 * S, "B", 100.10, 100.11),  # enter: buy 5 A at 100.01, sell 5 B at 100.10
        (3 * S, "A", 100.00, 100.01),
        (4 * S, "B", 100.01, 100.02),
        (5 * S, "A", 100.03, 100.04),  # converge: sell A at 100.03, buy B at 100.02
        (6 * S, "A", 100.03, 100.04)]


def test_a_runs_summary_by_hand() -> None:
    res = run(config(STRAT), ROWS)
    m = {r["metric"]: r["value"] for r in res.summary.iter_rows(named=True)}
    fees = 1e-4 * 5 * (100.01 + 100.10 + 100.03 + 100.02)
    net = 5 * (100.03 - 100.01) + 5 * (100.10 - 100.02) - fees
    assert m["trades"] == 1 and m["win_rate"] == 1.0 and m["expectancy"] == pytest.approx(net)
    assert m["profit_factor"] == math.inf and m["exits_converge"] == 1
    # R with the stop off: net / (entry notional x fees of 4 fills, 4 bps)
    assert m["avg_r"] == pytest.approx(net / (5 * 100.01 * 4e-4))
    assert m["fees"] == pytest.approx(fees) and m["net_pnl"] == pytest.approx(net)
    assert m["fee_share"] == pytest.approx(fees / 0.50)
    # turnover: the four fills' notional over the capital
    assert m["turnover"] == pytest.approx(5 * (100.01 + 100.10 + 100.03 + 100.02) / 100_000)
    # time in market: held from 2 s to 5 s of a 1 s .. 6 s span
    assert m["time_in_market"] == pytest.approx(3 / 5)
    assert m["final_equity"] == pytest.approx(100_000 + net)
    assert m["identity_gap"] == pytest.approx(0.0, abs=1e-9)
    assert m["entry_threshold_bps"] == 6.0


def test_an_equity_sample_while_a_position_is_open_by_hand() -> None:
    res = run(config(STRAT), ROWS)
    at = res.equity.filter(pl.col("ts") == 4 * S).row(0, named=True)
    # the 4 s sample comes after that instant's event (B 100.01/100.02): A long 5 bought at
    # 100.01 (fee 0.050005), mid 100.005; B short 5 sold at 100.10 (fee 0.05005), mid 100.015
    cash = -5 * 100.01 - 5 * 100.01 * 1e-4 + 5 * 100.10 - 5 * 100.10 * 1e-4
    marks = 5 * 100.005 - 5 * 100.015
    assert at["equity"] == pytest.approx(100_000 + cash + marks, abs=1e-9)
    assert at["gross_exposure"] == pytest.approx(5 * 100.005 + 5 * 100.015)
    assert at["n_open"] == 1


# ---- the entry threshold: >= at an exact tie ---------------------------------------------------

TIE = [(1 * S, "A", 63.875, 63.9375), (1 * S, "B", 63.875, 63.9375),
       # B: 64.0 / 64.1875; sum of the four touches = 256 and bid_B - ask_A = 0.0625:
       # e_AB = 0.0625 x 4e4 / 256 = 9.765625 bps exactly (binary fractions, no rounding)
       (2 * S, "B", 64.0, 64.1875), (3 * S, "A", 63.875, 63.9375)]
TIE_CFG = ("exit_bps = 0.0\nnotional = 100.0\nmax_slippage_bps = 1.0\nentry_bps = {thr}\n")


def test_an_edge_exactly_on_the_threshold_enters_and_one_ulp_below_does_not() -> None:
    def go(thr: float):
        return run(config(TIE_CFG.format(thr=repr(float(thr))), fee_a=0.0, fee_b=0.0), TIE)

    assert go(9.765625).metric("entries") == 1
    assert go(np.nextafter(9.765625, 100.0)).metric("entries") == 0
    assert go(9.765625).trades.row(0, named=True)["entry_edge_bps"] == 9.765625
