"""The input of a study report: what the tuning code hands to ``write_report``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import polars as pl

from arbkit.errors import DataError

if TYPE_CHECKING:
    from arbkit.engine.backtest import BacktestResult

STATES = ("COMPLETE", "PRUNED", "FAIL", "RUNNING")
DIRECTIONS = ("maximize", "minimize")


@dataclass
class StudyReport:
    """One tuning study, ready to render.

    ``trials`` has one row per trial: ``number`` (int), ``state`` (COMPLETE/PRUNED/FAIL/
    RUNNING), ``value_<objective>`` (the train objective), ``p_<param>`` (parameter values:
    float, int, str or bool; null where a trial did not sample it), ``m_<metric>`` (train
    metrics: at least ``m_trades``, ``m_win_rate``, ``m_net_pnl``, ``m_max_drawdown``,
    ``m_sharpe``; ``m_trade_sharpe`` from ``arbkit.report.stats.trade_sharpe`` lets the report
    deflate a per-trade Sharpe when there is no daily one) and optionally ``t_<metric>``, the
    same metrics on the test window (null/NaN when there is no split).

    ``best`` is a full re-run of trial ``best_number`` on the train span, ``best_test`` the
    same parameters on the test span. ``stress``, when given, is the content of a
    ``stress.json`` (``arbkit stress --out``) and adds a Stress section. ``meta`` carries
    provenance (sampler, seed, the trial budget of the latest run, data hash, code version,
    config hash, storage without password, created).
    """

    study: str
    objectives: list[str]
    directions: list[str]
    trials: pl.DataFrame
    best_number: int
    best: BacktestResult
    best_test: BacktestResult | None = None
    importance: dict[str, float] | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    stress: dict[str, Any] | None = None  # a stress.json (``arbkit stress --out``): a Stress section

    @property
    def params(self) -> list[str]:
        """Parameter names (without the ``p_`` prefix), in column order."""
        return [c[2:] for c in self.trials.columns if c.startswith("p_")]

    def complete(self) -> pl.DataFrame:
        """The COMPLETE trials, by trial number."""
        return self.trials.filter(pl.col("state") == "COMPLETE").sort("number")

    def best_row(self) -> dict[str, Any] | None:
        rows = self.trials.filter(pl.col("number") == self.best_number)
        return rows.row(0, named=True) if rows.height else None


def validate(rep: StudyReport) -> None:
    """Raise ``DataError`` naming the problem when ``rep`` cannot be rendered."""
    if not rep.objectives:
        raise DataError("StudyReport.objectives is empty; name at least one, e.g. ['net_pnl']")
    if len(rep.directions) != len(rep.objectives):
        raise DataError(f"StudyReport has {len(rep.objectives)} objective(s) but "
                        f"{len(rep.directions)} direction(s); give one direction per objective")
    bad = [d for d in rep.directions if d not in DIRECTIONS]
    if bad:
        raise DataError(f"StudyReport.directions {bad}: use 'maximize' or 'minimize'")
    need = ["number", "state", *(f"value_{o}" for o in rep.objectives)]
    missing = [c for c in need if c not in rep.trials.columns]
    if missing:
        raise DataError(f"StudyReport.trials lacks column(s) {missing} (has "
                        f"{rep.trials.columns}); one row per trial with number, state and "
                        "value_<objective>")
    states = set(rep.trials.get_column("state").unique().to_list()) - set(STATES)
    if states:
        raise DataError(f"StudyReport.trials has unknown state(s) {sorted(states)}; "
                        f"use {', '.join(STATES)}")
