"""A small real study for the report's tests, docs screenshot and a first look.

Every number comes from real backtests: a seeded Optuna random search over four strategy
parameters on a synthetic four-symbol universe, each trial run on a train window (the first
70 % of the data) and a test window (the rest). Infeasible parameter sets fail the way they
would in a real study (``ConfigError`` → FAIL trial).

>>> from arbkit.report.demo import demo_study
>>> rep = demo_study(n_trials=6, n_events=20_000)  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Any

import optuna
import polars as pl

import arbkit
from arbkit.config import Config
from arbkit.data.universe import generate_universe
from arbkit.errors import ArbkitError, ConfigError
from arbkit.report.stats import trade_sharpe
from arbkit.report.study import StudyReport

UNIVERSE = {"BTC": "normal", "ETH": "always-win", "SOL": "flash-crash", "XRP": "always-lose"}
METRICS = ("trades", "win_rate", "net_pnl", "max_drawdown", "sharpe", "expectancy", "fees")
TRAIN_SHARE = 0.7


def split(df: pl.DataFrame, share: float = TRAIN_SHARE) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Train = rows before the ``share`` quantile of receive time, test = the rest."""
    cut = int(df.get_column("ts_recv_ns").quantile(share, "nearest"))
    return df.filter(pl.col("ts_recv_ns") < cut), df.filter(pl.col("ts_recv_ns") >= cut)


def trial_config(cfg: Config, params: dict[str, Any]) -> Config:
    """The base config with ``params`` applied to the strategy of every route."""
    routes = tuple(dataclasses.replace(r, strategy={}) for r in cfg.routes)
    return dataclasses.replace(cfg, routes=routes,
                               strategy=dataclasses.replace(cfg.strategy, **params))


def metrics(res: arbkit.BacktestResult) -> dict[str, float]:
    out = {m: res.metric(m) for m in METRICS}
    out["trade_sharpe"] = trade_sharpe(res.trades)
    return out


def _suggest(trial: optuna.Trial) -> dict[str, Any]:
    return {
        "entry_bps": trial.suggest_float("entry_bps", 0.5, 5.0),
        "exit_bps": trial.suggest_float("exit_bps", -3.0, 0.0),
        "stop_loss_bps": trial.suggest_float("stop_loss_bps", 3.0, 30.0),
        "max_hold_s": trial.suggest_int("max_hold_s", 20, 600, log=True),
        "legging": trial.suggest_categorical("legging", ["unwind", "chase"]),
    }


def demo_study(n_trials: int = 12, n_events: int = 30_000, seed: int = 3,
               objectives: tuple[str, ...] = ("net_pnl",),
               directions: tuple[str, ...] = ("maximize",), with_test: bool = True,
               name: str = "demo-universe") -> StudyReport:
    """Run the demo study and return its ``StudyReport`` (see module doc)."""
    df, cfg = generate_universe(UNIVERSE, n_events=n_events)
    train, test = split(df) if with_test else (df, None)

    def objective(trial: optuna.Trial) -> float | tuple[float, ...]:
        c = trial_config(cfg, _suggest(trial))
        res = arbkit.backtest(train, c)  # an infeasible set raises ConfigError: a FAIL trial
        for k, v in metrics(res).items():
            trial.set_user_attr(f"m_{k}", v)
        if test is not None:
            for k, v in metrics(arbkit.backtest(test, c)).items():
                trial.set_user_attr(f"t_{k}", v)
        vals = tuple(res.metric(o) for o in objectives)
        return vals if len(vals) > 1 else vals[0]

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name=name, directions=list(directions),
                                sampler=optuna.samplers.RandomSampler(seed=seed))
    study.optimize(objective, n_trials=n_trials, catch=(ConfigError,))
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not done:
        raise ArbkitError(f"demo study: all {n_trials} trials failed; try another seed")
    sign = 1.0 if directions[0] == "maximize" else -1.0
    best_t = max(done, key=lambda t: (sign * t.values[0], -t.number))
    best_cfg = trial_config(cfg, best_t.params)
    importance = None
    if len(done) >= 2:
        # one objective: the evaluator follows the study's direction; several: it ranks the
        # first one and favours low targets, hence the sign (and its warning is expected)
        target = None if len(objectives) == 1 else (lambda t: -sign * t.values[0])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            importance = optuna.importance.get_param_importances(
                study, evaluator=optuna.importance.PedAnovaImportanceEvaluator(), target=target)
    return StudyReport(
        study=name, objectives=list(objectives), directions=list(directions),
        trials=trials_frame(study, list(objectives)), best_number=best_t.number,
        best=arbkit.backtest(train, best_cfg),
        best_test=arbkit.backtest(test, best_cfg) if test is not None else None,
        importance=importance,
        meta={"sampler": "RandomSampler", "seed": seed, "budget": n_trials,
              "data": f"synthetic universe {UNIVERSE}, {df.height} rows",
              "split": f"train {TRAIN_SHARE:.0%} / test {1 - TRAIN_SHARE:.0%}" if with_test
              else "none", "code_version": arbkit.__version__,
              "importance_evaluator": "PedAnovaImportanceEvaluator",
              "storage": "in-memory"},
    )


def trials_frame(study: optuna.Study, objectives: list[str]) -> pl.DataFrame:
    """One row per Optuna trial in the ``StudyReport.trials`` layout."""
    params = sorted({p for t in study.trials for p in t.params})
    attrs = sorted({a for t in study.trials for a in t.user_attrs if a[:2] in ("m_", "t_")})
    rows = []
    for t in study.trials:
        row: dict[str, Any] = {"number": t.number, "state": t.state.name}
        for k, o in enumerate(objectives):
            row[f"value_{o}"] = t.values[k] if t.values else math.nan
        row.update({f"p_{p}": t.params.get(p) for p in params})
        row.update({a: float(t.user_attrs.get(a, math.nan)) for a in attrs})
        rows.append(row)
    return pl.DataFrame(rows, infer_schema_length=None)
