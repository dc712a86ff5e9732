"""Stress runs: a config re-run under adverse scenarios, one robustness row per scenario.

>>> from arbkit.engine.stress import stress_preset
>>> rep = stress_preset("synth_best", seed=1)          # doctest: +SKIP
>>> rep.worst().scenario, rep.worst().metrics["net_pnl"]  # doctest: +SKIP

The scenarios (``engine/scenarios.py``) transform the config or the prepared event arrays of
each window; the kernel, its guards and its data-gap handling are the ones every run uses.
Every figure is the mean over the windows (a preset's train windows: one, except
walk-forward), guard triggers are summed; the same seed gives the same table.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from arbkit.config import Config
from arbkit.engine.backtest import BacktestResult, Prepared, run_prepared
from arbkit.engine.scenarios import (
    SCENARIOS,
    NotApplicable,
    StressParams,
    apply,
    check_names,
)
from arbkit.errors import ConfigError

# the metrics kept per scenario (docs/metrics.md defines each)
METRICS = ("net_pnl", "account_pnl", "max_drawdown", "max_drawdown_pct", "win_rate", "trades",
           "fees", "slippage", "funding", "legging_cost", "exits_stop_loss", "exits_data_gap",
           "exits_risk", "open_at_end", "guard_events", "identity_gap", "identity_gap_rel")
# guard-log rows that are bookkeeping, not a guard stepping in
NOT_TRIGGERS = ("day_reset", "transfer_sent", "transfer_arrived", "control")


@dataclass
class ScenarioRow:
    """One scenario's outcome (``applies`` False: ``detail`` says why not)."""

    scenario: str
    applies: bool
    detail: str
    metrics: dict[str, float] = field(default_factory=dict)
    guards: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass
class StressReport:
    """The robustness table of one config (a preset) on its data."""

    name: str
    params: StressParams
    rows: list[ScenarioRow]
    windows: list[list[int | None]]
    meta: dict[str, Any] = field(default_factory=dict)

    def row(self, scenario: str) -> ScenarioRow:
        for r in self.rows:
            if r.scenario == scenario:
                return r
        raise KeyError(scenario)

    def worst(self, metric: str = "net_pnl") -> ScenarioRow:
        """The applicable scenario with the lowest ``metric``."""
        ok = [r for r in self.rows if r.applies and math.isfinite(r.metrics.get(metric, math.nan))]
        return min(ok, key=lambda r: r.metrics[metric])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (NaN/inf become null)."""
        worst = self.worst()
        return {"kind": "arbkit stress", "name": self.name, "seed": self.params.seed,
                "params": asdict(self.params), "windows": self.windows, "meta": self.meta,
                "worst": {"scenario": worst.scenario, "net_pnl": _num(worst.metrics["net_pnl"])},
                "scenarios": [{"scenario": r.scenario, "applies": r.applies,
                               "detail": r.detail,
                               "metrics": {k: _num(v) for k, v in r.metrics.items()},
                               "guards": r.guards, "notes": r.notes} for r in self.rows]}


def _num(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None


def stress(cfg: Config, windows: list[Prepared], params: StressParams | None = None,
           scenarios: list[str] | None = None, name: str = "<config>",
           spans: list[list[int | None]] | None = None) -> StressReport:
    """Run ``cfg`` on each prepared window under each scenario (``baseline`` always)."""
    params = params or StressParams()
    names = check_names(list(scenarios or SCENARIOS))
    venues = sorted({cfg.instrument(k).venue for rc in cfg.routes for k in (rc.a, rc.b)})
    if params.venue is not None and params.venue not in venues:
        raise ConfigError(f"--venue {params.venue!r}: not a venue of the preset's routes; use "
                          f"one of {', '.join(venues)}")
    per: dict[str, list[tuple[BacktestResult, str]]] = {n: [] for n in names}
    na: dict[str, str] = {}
    for w, prep in enumerate(windows):
        base = run_prepared(cfg, prep)
        for k, n in enumerate(names):
            if n in na:
                continue
            if n == "baseline":
                per[n].append((base, "the preset as it is"))
                continue
            rng = np.random.default_rng([params.seed, w, k])
            try:
                a = apply(n, cfg, prep, base, params, rng)
            except NotApplicable as exc:
                na[n] = f"n/a: {exc}"
                continue
            per[n].append((run_prepared(a.cfg, a.prep), a.detail))
    rows = [ScenarioRow(n, False, na[n]) if n in na else _row(n, per[n]) for n in names]
    return StressReport(name, params, rows, spans or [[None, None]] * len(windows))


def _row(name: str, runs: list[tuple[BacktestResult, str]]) -> ScenarioRow:
    ms = [{m: r.metric(m) for m in METRICS} for r, _ in runs]
    mean = {m: float(np.mean([x[m] for x in ms])) for m in METRICS}
    worst_gap = max((x["identity_gap"] for x in ms), key=abs)
    mean["identity_gap"] = worst_gap  # the largest, not an average that could cancel
    mean["identity_gap_rel"] = max(x["identity_gap_rel"] for x in ms)
    guards: dict[str, int] = {}
    notes: list[str] = []
    for r, _ in runs:
        g = r.guards
        if g.height:
            for reason in g.get_column("guard").to_list():
                if reason not in NOT_TRIGGERS:
                    guards[reason] = guards.get(reason, 0) + 1
        notes += [n for n in r.meta.get("notes", []) if n not in notes
                  and not n.startswith("sharpe/sortino")]
    detail = "; ".join(dict.fromkeys(d for _, d in runs))
    return ScenarioRow(name, True, detail, mean, dict(sorted(guards.items())), notes)


def stress_preset(name: str | Path, *, data: str | Path | None = None,
                  params: StressParams | None = None,
                  scenarios: list[str] | None = None) -> StressReport:
    """``stress`` on a preset's recorded data and train windows (``data`` overrides)."""
    from arbkit.tune.preset import load_preset, prepare_preset

    p = load_preset(name)
    prep = prepare_preset(p, data)
    spans = p.meta.get("windows") or [[None, None]]
    rep = stress(p.config, [prep.window(a, b) for a, b in spans], params, scenarios,
                 p.name, spans)
    rep.meta = {"preset": p.name, "path": str(p.path), "study": p.meta.get("study"),
                "trial": p.meta.get("trial"), "data": prep.source,
                "data_hash": p.meta.get("data_hash"), "config_hash": p.config.config_hash(),
                "ccy": p.config.run.reference_ccy}
    return rep


def stress_min_net(cfg: Config, windows: list[Prepared], scenarios: list[str] | None = None,
                   seed: int = 0) -> tuple[str, float]:
    """(worst scenario, its net PnL) of ``cfg``: the tuning constraint
    ``study.stress_min_net`` compares this with its floor."""
    rep = stress(cfg, windows, StressParams(seed=seed), scenarios)
    w = rep.worst()
    return w.scenario, w.metrics["net_pnl"]
