"""Statistics of a tuning study: Sharpe moments, the Probabilistic and the Deflated Sharpe Ratio.

The best of N trials has a Sharpe ratio that is high by selection even when every trial is
noise. Bailey & López de Prado (2014), "The Deflated Sharpe Ratio: Correcting for Selection
Bias, Backtest Overfitting and Non-Normality", J. Portfolio Management 40(5):

- Probabilistic Sharpe Ratio, the probability that the true Sharpe exceeds ``sr_star`` given
  an estimate ``sr`` from ``T`` returns with skewness ``g3`` and (Pearson, normal = 3)
  kurtosis ``g4``::

      PSR(sr*) = Φ( (sr − sr*) √(T − 1) / √(1 − g3·sr + (g4 − 1)/4 · sr²) )

- Expected maximum Sharpe of N independent trials whose Sharpes have variance V, when the true
  Sharpe of every one is 0 (γ = Euler–Mascheroni constant)::

      E[max SR] = √V · ((1 − γ) Φ⁻¹(1 − 1/N) + γ Φ⁻¹(1 − 1/(N·e)))

- Deflated Sharpe Ratio: ``DSR = PSR(E[max SR])``.

Every Sharpe here is per period (per day or per trade), never annualised: the formulas take
the period's own moments and count.

Only the standard library and numpy: Φ and Φ⁻¹ are ``statistics.NormalDist``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import polars as pl

EULER_GAMMA = 0.5772156649015329
_N01 = NormalDist()


@dataclass(frozen=True)
class SharpeMoments:
    """Per-period Sharpe ratio of a return series and the moments PSR needs."""

    sr: float  # mean / sample sd (ddof=1)
    skew: float  # population skewness (3rd standardised moment)
    kurt: float  # population kurtosis, Pearson's (normal = 3, not excess)
    n: int  # number of returns


def sharpe_moments(returns: np.ndarray) -> SharpeMoments:
    """Sharpe (mean / sd with ddof=1), skewness and kurtosis of one return series.

    NaN fields when there are fewer than 2 returns or they are constant.

    Examples
    --------
    >>> m = sharpe_moments(np.array([0.01, 0.02, 0.06]))
    >>> round(m.sr, 4), round(m.skew, 4), round(m.kurt, 4), m.n
    (1.1339, 0.5952, 1.5, 3)
    """
    r = np.asarray(returns, dtype=np.float64)
    r = r[np.isfinite(r)]
    n = int(r.size)
    if n < 2:
        return SharpeMoments(math.nan, math.nan, math.nan, n)
    mean = float(r.mean())
    dev = r - mean
    m2 = float(np.mean(dev**2))
    sd = float(np.std(r, ddof=1))
    if m2 <= 0.0 or sd <= 0.0:
        return SharpeMoments(math.nan, math.nan, math.nan, n)
    skew = float(np.mean(dev**3)) / m2**1.5
    kurt = float(np.mean(dev**4)) / m2**2
    return SharpeMoments(mean / sd, skew, kurt, n)


def probabilistic_sharpe(sr: float, sr_star: float, n: int, skew: float, kurt: float) -> float:
    """PSR: probability that the true per-period Sharpe exceeds ``sr_star`` (see module doc).

    NaN when ``n < 2``, an input is not finite, or the variance term is not positive (a
    heavy negative skew with a large Sharpe can make it so).

    Examples
    --------
    >>> round(probabilistic_sharpe(0.1, 0.0, 101, 0.0, 3.0), 4)  # Φ(0.1·10/√1.005)
    0.8407
    """
    vals = (sr, sr_star, skew, kurt)
    if n < 2 or not all(math.isfinite(v) for v in vals):
        return math.nan
    var = 1.0 - skew * sr + (kurt - 1.0) / 4.0 * sr * sr
    if var <= 0.0:
        return math.nan
    return _N01.cdf((sr - sr_star) * math.sqrt(n - 1) / math.sqrt(var))


def expected_max_sharpe(var_sr: float, n_trials: int) -> float:
    """E[max SR] of ``n_trials`` null trials whose Sharpes have variance ``var_sr``.

    0 for a single trial (nothing was selected); NaN for a variance that is not finite.

    Examples
    --------
    >>> round(expected_max_sharpe(0.5 / 250, 100), 4)  # the paper's example, per day
    0.1132
    """
    if n_trials < 1 or not math.isfinite(var_sr) or var_sr < 0.0:
        return math.nan
    if n_trials == 1:
        return 0.0
    z1 = _N01.inv_cdf(1.0 - 1.0 / n_trials)
    z2 = _N01.inv_cdf(1.0 - 1.0 / (n_trials * math.e))
    return math.sqrt(var_sr) * ((1.0 - EULER_GAMMA) * z1 + EULER_GAMMA * z2)


@dataclass(frozen=True)
class Deflated:
    """Everything the report prints about the selection bias of the best trial."""

    n_trials: int  # trials the best was selected from
    n_sharpes: int  # trials whose Sharpe entered the variance
    var_sr: float  # variance of the trials' per-period Sharpes (ddof=1)
    sr_max_expected: float  # E[max SR] under the null (the deflated benchmark)
    best: SharpeMoments  # of the best trial's returns
    psr0: float  # PSR against 0
    dsr: float  # PSR against E[max SR]


def deflated_sharpe(returns: np.ndarray, trial_sharpes: np.ndarray,
                    n_trials: int | None = None) -> Deflated:
    """Deflated Sharpe Ratio of the best trial.

    Parameters
    ----------
    returns : the best trial's per-period returns (per day or per trade).
    trial_sharpes : the per-period Sharpe of every trial, on the same basis (non-finite values
        are dropped from the variance).
    n_trials : how many trials the best was chosen from; by default the number of Sharpes.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> d = deflated_sharpe(rng.normal(0.001, 0.01, 500), rng.normal(0, 0.05, 200))
    >>> d.dsr < d.psr0
    True
    """
    srs = np.asarray(trial_sharpes, dtype=np.float64)
    srs = srs[np.isfinite(srs)]
    n = int(srs.size) if n_trials is None else int(n_trials)
    var = float(np.var(srs, ddof=1)) if srs.size >= 2 else math.nan
    best = sharpe_moments(returns)
    e_max = expected_max_sharpe(var, n)
    return Deflated(
        n_trials=n, n_sharpes=int(srs.size), var_sr=var, sr_max_expected=e_max, best=best,
        psr0=probabilistic_sharpe(best.sr, 0.0, best.n, best.skew, best.kurt),
        dsr=probabilistic_sharpe(best.sr, e_max, best.n, best.skew, best.kurt),
    )


def trade_returns(trades: pl.DataFrame) -> np.ndarray:
    """Per-trade returns of the closed round trips: ``net_pnl / entry_notional``.

    Round trips with no hedged notional (an entry that legged) are left out: they have no
    capital base to be a return on.
    """
    if trades.height == 0 or "entry_notional" not in trades.columns:
        return np.zeros(0)
    closed = trades.filter((pl.col("is_open") == 0) & (pl.col("entry_notional") > 0))
    if closed.height == 0:
        return np.zeros(0)
    return (closed.get_column("net_pnl") / closed.get_column("entry_notional")).to_numpy()


def trade_sharpe(trades: pl.DataFrame) -> float:
    """Per-trade Sharpe of a run's trades frame (the study's ``m_trade_sharpe`` column).

    The tuning code stores it per trial so the report can deflate the best trial's Sharpe on
    a per-trade basis when the data spans fewer than 30 days (no daily Sharpe).
    """
    return sharpe_moments(trade_returns(trades)).sr


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman rank correlation (average ranks for ties); NaN below 3 finite pairs.

    Examples
    --------
    >>> spearman(np.array([1.0, 2.0, 3.0]), np.array([10.0, 30.0, 20.0]))
    0.5
    """
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    if int(ok.sum()) < 3:
        return math.nan
    rx, ry = _ranks(x[ok]), _ranks(y[ok])
    sx, sy = float(np.std(rx)), float(np.std(ry))
    if sx == 0.0 or sy == 0.0:
        return math.nan
    return float(np.mean((rx - rx.mean()) * (ry - ry.mean())) / (sx * sy))


def _ranks(v: np.ndarray) -> np.ndarray:
    order = np.argsort(v, kind="stable")
    ranks = np.empty(v.size, np.float64)
    ranks[order] = np.arange(1, v.size + 1, dtype=np.float64)
    for u in np.unique(v):  # ties share their mean rank
        tie = v == u
        if int(tie.sum()) > 1:
            ranks[tie] = ranks[tie].mean()
    return ranks


def pareto_mask(values: np.ndarray, directions: list[str]) -> np.ndarray:
    """Rows of ``values`` (trials × objectives) not dominated by any other row.

    Examples
    --------
    >>> pareto_mask(np.array([[1.0, 5.0], [2.0, 6.0], [3.0, 9.0]]), ["maximize", "minimize"])
    array([ True,  True,  True])
    >>> pareto_mask(np.array([[1.0, 5.0], [2.0, 4.0]]), ["maximize", "minimize"])
    array([False,  True])
    """
    sign = np.array([1.0 if d == "maximize" else -1.0 for d in directions])
    v = np.asarray(values, np.float64) * sign  # larger is better on every column
    ok = np.isfinite(v).all(axis=1)
    keep = ok.copy()
    for i in np.flatnonzero(ok):
        others = v[ok]
        dominated = (others >= v[i]).all(axis=1) & (others > v[i]).any(axis=1)
        keep[i] = not bool(dominated.any())
    return keep
