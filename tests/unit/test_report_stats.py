"""Probabilistic and Deflated Sharpe Ratio (arbkit/report/stats.py) against hand computations.

Φ is computed here from ``math.erf`` and Φ⁻¹ by bisection on it, independently of the
``statistics.NormalDist`` the module uses.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from arbkit.report.stats import (
    EULER_GAMMA,
    deflated_sharpe,
    expected_max_sharpe,
    pareto_mask,
    probabilistic_sharpe,
    sharpe_moments,
    spearman,
    trade_returns,
    trade_sharpe,
)


def phi(z: float) -> float:
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def phi_inv(p: float) -> float:
    lo, hi = -10.0, 10.0
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if phi(mid) < p else (lo, mid)
    return (lo + hi) / 2


def test_sharpe_moments_of_three_returns_by_hand() -> None:
    # r = 1 %, 2 %, 6 %: mean 3 %, deviations −2, −1, +3 (in %)
    m = sharpe_moments(np.array([0.01, 0.02, 0.06]))
    sd = math.sqrt((0.02**2 + 0.01**2 + 0.03**2) / 2)  # ddof=1
    m2 = (0.02**2 + 0.01**2 + 0.03**2) / 3
    m3 = (-(0.02**3) - 0.01**3 + 0.03**3) / 3
    m4 = (0.02**4 + 0.01**4 + 0.03**4) / 3
    assert m.n == 3
    assert m.sr == pytest.approx(0.03 / sd, rel=1e-12)  # 1.1339
    assert m.skew == pytest.approx(m3 / m2**1.5, rel=1e-12)  # 0.5952
    assert m.kurt == pytest.approx(m4 / m2**2, rel=1e-12)  # 1.5 exactly
    assert m.kurt == pytest.approx(1.5, rel=1e-12)


def test_sharpe_moments_of_normal_draws_approach_normal_shape() -> None:
    r = np.random.default_rng(1).normal(0.001, 0.01, 200_000)
    m = sharpe_moments(r)
    assert m.skew == pytest.approx(0.0, abs=0.02)
    assert m.kurt == pytest.approx(3.0, abs=0.05)
    assert m.sr == pytest.approx(0.1, abs=0.01)


@pytest.mark.parametrize("returns", [[], [0.01], [0.02, 0.02, 0.02], [math.nan, 0.01]])
def test_sharpe_moments_undefined_is_nan_not_zero(returns: list[float]) -> None:
    m = sharpe_moments(np.array(returns, dtype=np.float64))
    assert math.isnan(m.sr) and math.isnan(m.skew) and math.isnan(m.kurt)


def test_psr_matches_the_formula_by_hand() -> None:
    sr, sr_star, n, g3, g4 = 0.12, 0.05, 250, -0.8, 6.0
    z = (sr - sr_star) * math.sqrt(n - 1) / math.sqrt(1 - g3 * sr + (g4 - 1) / 4 * sr**2)
    assert probabilistic_sharpe(sr, sr_star, n, g3, g4) == pytest.approx(phi(z), abs=1e-12)


def test_psr_is_one_half_at_the_benchmark_and_penalises_negative_skew() -> None:
    assert probabilistic_sharpe(0.1, 0.1, 100, -2.0, 9.0) == pytest.approx(0.5)
    normal = probabilistic_sharpe(0.1, 0.0, 100, 0.0, 3.0)
    assert probabilistic_sharpe(0.1, 0.0, 100, -2.0, 3.0) < normal
    assert probabilistic_sharpe(0.1, 0.0, 100, 0.0, 9.0) < normal  # fat tails too
    assert probabilistic_sharpe(0.1, 0.0, 400, 0.0, 3.0) > normal  # more data, more sure


def test_psr_undefined_cases_are_nan() -> None:
    assert math.isnan(probabilistic_sharpe(0.1, 0.0, 1, 0.0, 3.0))
    assert math.isnan(probabilistic_sharpe(math.nan, 0.0, 100, 0.0, 3.0))
    # 1 − g3·sr + (g4 − 1)/4·sr² ≤ 0: the Sharpe's variance formula breaks down
    assert math.isnan(probabilistic_sharpe(1.0, 0.0, 100, 3.0, 1.0))


def test_expected_max_sharpe_by_hand() -> None:
    var, n = 0.004, 37
    z1, z2 = phi_inv(1 - 1 / n), phi_inv(1 - 1 / (n * math.e))
    hand = math.sqrt(var) * ((1 - EULER_GAMMA) * z1 + EULER_GAMMA * z2)
    assert expected_max_sharpe(var, n) == pytest.approx(hand, rel=1e-9)
    assert EULER_GAMMA == pytest.approx(0.5772156649015329)


def test_expected_max_sharpe_grows_with_trials_and_is_zero_for_one() -> None:
    vals = [expected_max_sharpe(0.01, n) for n in (1, 2, 10, 100, 1000)]
    assert vals[0] == 0.0
    assert all(a < b for a, b in zip(vals, vals[1:]))
    assert math.isnan(expected_max_sharpe(math.nan, 10))


def test_deflated_sharpe_reproduces_the_papers_example() -> None:
    # Bailey & López de Prado (2014), section 6: annualised SR 2.5 over T = 1250 daily
    # returns, skew −3, kurtosis 10, N = 100 trials whose annualised Sharpes have variance
    # 1/2; 250 periods a year. The paper finds E[max SR] ≈ 0.1132 per day and DSR ≈ 0.9004.
    sr = 2.5 / math.sqrt(250)
    e_max = expected_max_sharpe(0.5 / 250, 100)
    assert e_max == pytest.approx(0.1132, abs=5e-5)
    dsr = probabilistic_sharpe(sr, e_max, 1250, -3.0, 10.0)
    assert dsr == pytest.approx(0.9004, abs=5e-5)
    z = (sr - e_max) * math.sqrt(1249) / math.sqrt(1 + 3 * sr + 9 / 4 * sr**2)
    assert dsr == pytest.approx(phi(z), abs=1e-12)


def test_deflated_sharpe_end_to_end_by_hand() -> None:
    rets = np.array([0.010, -0.004, 0.007, 0.002, -0.001, 0.012, -0.006, 0.003, 0.005, 0.0])
    trial_srs = np.array([0.05, -0.10, 0.20, 0.00, 0.15, math.nan])  # NaN: a trial with no Sharpe
    d = deflated_sharpe(rets, trial_srs, n_trials=8)
    # by hand: the best trial's moments, the variance of the 5 finite Sharpes, N = 8
    mean = rets.mean()
    dev = rets - mean
    sr = mean / math.sqrt((dev**2).sum() / (rets.size - 1))
    g3 = (dev**3).mean() / (dev**2).mean() ** 1.5
    g4 = (dev**4).mean() / (dev**2).mean() ** 2
    finite = [0.05, -0.10, 0.20, 0.00, 0.15]
    mu = sum(finite) / 5
    var = sum((s - mu) ** 2 for s in finite) / 4
    e_max = math.sqrt(var) * ((1 - EULER_GAMMA) * phi_inv(1 - 1 / 8)
                              + EULER_GAMMA * phi_inv(1 - 1 / (8 * math.e)))
    den = math.sqrt(1 - g3 * sr + (g4 - 1) / 4 * sr**2)
    assert (d.n_trials, d.n_sharpes, d.best.n) == (8, 5, 10)
    assert d.var_sr == pytest.approx(var, rel=1e-12)
    assert d.sr_max_expected == pytest.approx(e_max, rel=1e-9)
    assert d.psr0 == pytest.approx(phi(sr * 3 / den), abs=1e-12)
    assert d.dsr == pytest.approx(phi((sr - e_max) * 3 / den), abs=1e-9)
    assert d.dsr < d.psr0


def test_more_trials_deflate_more() -> None:
    rets = np.random.default_rng(5).normal(0.002, 0.01, 300)
    srs = np.random.default_rng(6).normal(0.0, 0.05, 50)
    few, many = deflated_sharpe(rets, srs, 10), deflated_sharpe(rets, srs, 1000)
    assert many.dsr < few.dsr < few.psr0


def test_trade_returns_use_closed_hedged_round_trips_only() -> None:
    trades = pl.DataFrame({"net_pnl": [10.0, -5.0, 3.0, 7.0],
                           "entry_notional": [1000.0, 500.0, 0.0, 700.0],
                           "is_open": [0, 0, 0, 1]})
    assert trade_returns(trades).tolist() == [0.01, -0.01]
    assert trade_sharpe(trades) == pytest.approx(0.0)
    assert trade_returns(trades.head(0)).size == 0
    assert math.isnan(trade_sharpe(trades.head(0)))


def test_spearman_by_hand_with_ties() -> None:
    assert spearman(np.array([1.0, 2.0, 3.0, 4.0]), np.array([4.0, 3.0, 2.0, 1.0])) == pytest.approx(-1.0)
    # x ranks 1, 2.5, 2.5, 4; y ranks 1, 2, 3, 4 → Pearson of the ranks
    rx, ry = np.array([1, 2.5, 2.5, 4]), np.array([1, 2, 3, 4.0])
    hand = float(np.corrcoef(rx, ry)[0, 1])
    got = spearman(np.array([1.0, 5.0, 5.0, 9.0]), np.array([0.1, 0.2, 0.3, 0.4]))
    assert got == pytest.approx(hand)
    assert math.isnan(spearman(np.array([1.0, 2.0]), np.array([1.0, 2.0])))


def test_pareto_mask_respects_directions() -> None:
    v = np.array([[10.0, 5.0], [12.0, 6.0], [9.0, 7.0], [12.0, 5.0], [math.nan, 1.0]])
    # maximise the first, minimise the second: row 3 dominates rows 0, 1 and 2
    assert pareto_mask(v, ["maximize", "minimize"]).tolist() == [False, False, False, True,
                                                                  False]
    assert pareto_mask(v, ["maximize", "maximize"]).tolist() == [False, True, True, False, False]
