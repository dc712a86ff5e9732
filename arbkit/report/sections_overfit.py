"""Report sections about overfitting: train vs test, and the multiple-testing deflation."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl

from arbkit.metrics.summary import MIN_DAYS_FOR_RATIOS, daily_returns
from arbkit.report import figures
from arbkit.report.markup import bullets, img, kv, para, section, table
from arbkit.report.sections_study import best_index, floats, value_col
from arbkit.report.stats import Deflated, deflated_sharpe, sharpe_moments, spearman, trade_returns
from arbkit.report.study import StudyReport

BEST_METRICS = ("trades", "win_rate", "expectancy", "profit_factor", "net_pnl", "fees",
                "max_drawdown", "max_drawdown_pct", "sharpe", "time_in_market")
WEAK_RANK_CORR = 0.3  # rule of thumb for "the train ranking does not carry over"
DSR_CONFIDENCE = 0.95
NS_PER_HOUR = 3_600_000_000_000


def _metric(res: Any, row: dict[str, Any] | None, prefix: str, name: str) -> Any:
    """A metric from a full result when there is one, else from the trials row."""
    if res is not None and res.summary.height:
        hit = res.summary.filter(pl.col("metric") == name)
        if hit.height:
            return float(hit.get_column("value")[0])
    return None if row is None else row.get(f"{prefix}{name}")


def _hours(res: Any) -> float:
    span = (res.meta or {}).get("span_ns", 0) if res is not None else 0
    return span / NS_PER_HOUR if span else math.nan


# ----------------------------------------------------------------------------- train vs test


def train_test(rep: StudyReport) -> str:
    title = "Train vs test"
    o = rep.objectives[0]
    c = rep.complete()
    train, test = floats(c, value_col(o)), floats(c, f"t_{o}")
    paired = np.isfinite(train) & np.isfinite(test)
    row = rep.best_row()
    best_has_test = rep.best_test is not None or (
        row is not None and any(row.get(f"t_{m}") is not None for m in BEST_METRICS))
    if not paired.any() and not best_has_test:
        return section("train-test", title, para(
            "No train/test split: the study evaluated every trial on one window (no t_<metric> "
            "values and no test re-run of the best trial), so nothing here tells whether the "
            "best trial generalises. Tune with a train/test or walk-forward split before "
            "trusting a result."))
    parts = []
    best = best_index(c, rep.best_number)
    if paired.any():
        parts.append(para(f"{o} of each COMPLETE trial on the train window (x) and the test "
                          f"window (y); {int(paired.sum())} trials have both. The windows "
                          "differ in length, so the dashed line is a guide, not a target."))
        parts.append(img(figures.train_test(train, test, best, o), "train vs test scatter"))
    else:
        parts.append(para(f"Per-trial test values (t_{o}) are missing: only the best trial was "
                          "re-run on the test window."))
    parts.append("<h3>Best trial on both windows</h3>")
    names = list(BEST_METRICS) + [m for m in rep.objectives if m not in BEST_METRICS]
    rows = [(m, _metric(rep.best, row, "m_", m), _metric(rep.best_test, row, "t_", m))
            for m in names]
    rows.append(("span (hours)", _hours(rep.best), _hours(rep.best_test)))
    parts.append(table(["metric", "train", "test"], rows))
    notes = overfit_notes(rep, train, test, paired, best, row)
    if notes:
        parts.append("<h3>Overfitting checks</h3>" + bullets(notes))
    return section("train-test", title, "\n".join(parts))


def overfit_notes(rep: StudyReport, train: np.ndarray, test: np.ndarray, paired: np.ndarray,
                  best: int | None, row: dict[str, Any] | None) -> list[str]:
    o, direction = rep.objectives[0], rep.directions[0]
    notes = []
    rho = spearman(train[paired], test[paired])
    if math.isfinite(rho):
        verdict = ("weak: the train ranking barely predicts the test ranking, so picking the "
                   "best trial is mostly fitting noise" if rho < WEAK_RANK_CORR else
                   "the train ranking carries over to the test window, at least in part")
        notes.append(f"Spearman rank correlation of train and test {o} over {int(paired.sum())} "
                     f"trials: {rho:.3f} ({verdict}; rule of thumb {WEAK_RANK_CORR}).")
    if best is not None and paired[best]:
        sign = -1.0 if direction == "maximize" else 1.0
        rank = 1 + int((sign * test[paired] < sign * test[best]).sum())
        notes.append(f"The best trial on train ranks {rank} of {int(paired.sum())} on test.")
    tr = None if row is None else row.get(value_col(o))
    te = _metric(rep.best_test, row, "t_", o)
    if direction == "maximize" and tr is not None and te is not None and math.isfinite(te):
        if tr > 0 >= te:
            notes.append(f"The best trial's {o} is positive on train ({tr:.4g}) but not on test "
                         f"({te:.4g}): overfit to the train window, or a regime change.")
    h_tr, h_te = _hours(rep.best), _hours(rep.best_test)
    if o == "net_pnl" and tr is not None and te is not None and h_tr > 0 and h_te > 0:
        notes.append(f"net_pnl per hour: train {tr / h_tr:.4g}, test {te / h_te:.4g}.")
    return notes


# ----------------------------------------------------------------------------- multiple testing


def sharpe_basis(rep: StudyReport) -> tuple[str, np.ndarray, np.ndarray, str]:
    """(basis, trial Sharpes per period, the best trial's returns, why-not) for the DSR.

    Daily returns when the best trial spans at least 30 days and the trials carry
    ``m_sharpe`` (annualised ×√365, de-annualised here); else per-trade returns when the
    trials carry ``m_trade_sharpe``; else an empty basis and the reason.
    """
    c = rep.complete()
    daily = daily_returns(rep.best.equity, rep.best.config.run.capital)
    if daily.size >= MIN_DAYS_FOR_RATIOS and "m_sharpe" in c.columns:
        srs = floats(c, "m_sharpe") / math.sqrt(365.0)
        if int(np.isfinite(srs).sum()) >= 2:
            return "day", srs, daily, ""
    if "m_trade_sharpe" in c.columns:
        srs = floats(c, "m_trade_sharpe")
        if int(np.isfinite(srs).sum()) >= 2:
            return "trade", srs, trade_returns(rep.best.trades), ""
    why = (f"the best trial spans {daily.size} day(s) (< {MIN_DAYS_FOR_RATIOS}: no daily "
           "Sharpe) and fewer than 2 COMPLETE trials carry a finite m_trade_sharpe "
           "(arbkit.report.stats.trade_sharpe of each trial's trades)")
    return "", np.zeros(0), trade_returns(rep.best.trades), why


def multiple_testing(rep: StudyReport) -> str:
    title = "Multiple testing: deflated Sharpe ratio"
    n_eval = rep.trials.filter(pl.col("state").is_in(["COMPLETE", "PRUNED"])).height
    basis, srs, rets, why = sharpe_basis(rep)
    parts = [para(
        f"The best of {n_eval} evaluated trials (COMPLETE + PRUNED) looks good partly by "
        "selection. The Deflated Sharpe Ratio (Bailey & López de Prado, 2014) is the "
        "probability that the best trial's true Sharpe exceeds the Sharpe the best of that "
        "many skill-less trials would show, E[max SR], given the spread of the trials' "
        "Sharpes and the skew and fat tails of the best trial's returns.")]
    if not basis:
        m = sharpe_moments(rets)
        parts.append(para(f"Deflated Sharpe not computed: {why}.", "warn"))
        d = deflated_sharpe(rets, np.zeros(0), n_trials=1)
        parts.append(kv([("trials evaluated (N)", n_eval),
                         ("best trial: per-trade Sharpe", m.sr), ("round trips (T)", m.n),
                         ("PSR against 0 (no deflation)", d.psr0)]))
        return section("multiple-testing", title, "\n".join(parts))
    d = deflated_sharpe(rets, srs, n_trials=max(n_eval, 1))
    parts.append(kv(_rows(d, basis)))
    parts.append(para(_verdict(d), "warn" if not d.dsr >= DSR_CONFIDENCE else "ok"))
    finite = srs[np.isfinite(srs)]
    parts.append(img(figures.sharpe_spread(finite, d.best.sr, d.sr_max_expected, basis),
                     "trial Sharpe distribution"))
    return section("multiple-testing", title, "\n".join(parts))


def _rows(d: Deflated, basis: str) -> list[tuple[str, Any]]:
    unit = "per day" if basis == "day" else "per round trip"
    rows: list[tuple[str, Any]] = [
        ("trials evaluated (N)", d.n_trials),
        ("Sharpe basis", f"{unit} returns (not annualised)"),
        ("trials with a Sharpe (variance from)", d.n_sharpes),
        ("variance of the trials' Sharpes", d.var_sr),
        ("E[max SR] of N skill-less trials", d.sr_max_expected),
        ("best trial Sharpe", d.best.sr),
    ]
    if basis == "day":
        rows.append(("best trial Sharpe, annualised ×√365", d.best.sr * math.sqrt(365.0)))
    rows += [
        ("returns of the best (T)", d.best.n),
        ("skewness", d.best.skew),
        ("kurtosis (normal = 3)", d.best.kurt),
        ("Probabilistic Sharpe Ratio vs 0", d.psr0),
        ("Deflated Sharpe Ratio", d.dsr),
    ]
    return rows


def _verdict(d: Deflated) -> str:
    if not math.isfinite(d.dsr):
        return ("DSR undefined: too few returns, constant returns, or a skew/kurtosis that "
                "makes the Sharpe's variance non-positive; treat the best trial as unproven.")
    if d.dsr >= DSR_CONFIDENCE:
        return (f"DSR {d.dsr:.3f} ≥ {DSR_CONFIDENCE}: the best trial's Sharpe beats what the "
                f"best of {d.n_trials} luckless trials would show, at {DSR_CONFIDENCE:.0%} "
                "confidence (still check the test window).")
    return (f"DSR {d.dsr:.3f} < {DSR_CONFIDENCE}: the best trial's Sharpe is within what "
            f"picking the best of {d.n_trials} trials with no skill would produce; do not "
            "read it as skill.")
