"""One study's data, loaded once per worker, and the evaluation of parameter sets on it.

The span of the data is cut into train and test windows (``[split]``):

- ``none``: one window, the whole span, train only;
- ``holdout``: train = the first ``train`` fraction of the span, test = the rest after an
  embargo of ``embargo_s``;
- ``walk_forward``: the span is cut into ``windows + 1`` equal segments; fold ``k`` trains on
  segment ``k`` and tests on segment ``k + 1`` after the embargo (rolling, never on data
  before its train window).

A trial's train metrics are the mean of each metric over its train windows (one window
except walk-forward), its test metrics the same over the test windows; its objective is the
objective expression evaluated on those means. ``min_trades`` applies to every train window.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from arbkit.config import Config, load_config
from arbkit.config.load import from_dict
from arbkit.engine.backtest import BacktestResult, Prepared, prepare, run_prepared
from arbkit.errors import ArbkitError, ConfigError
from arbkit.tune.spec import StudySpec, evaluate

S = 1_000_000_000


@dataclass
class Outcome:
    """What one parameter set did."""

    params: dict[str, Any]
    config: Config | None
    train: list[BacktestResult]
    test: list[BacktestResult]
    metrics: dict[str, float]  # train, mean over windows
    test_metrics: dict[str, float]
    values: list[float]  # one per objective (train)
    test_values: list[float]
    prune_reason: str = ""  # non-empty: the trial is PRUNED (too few trades, infeasible)
    stress_worst: str = ""  # study.stress_min_net: the worst scenario (its net: metrics)


def metrics_of(res: BacktestResult) -> dict[str, float]:
    """The run's summary metrics, plus ``trade_sharpe`` (per-trade Sharpe: defined on spans
    too short for the daily one)."""
    from arbkit.report.stats import trade_sharpe

    out = {str(m): float(v) for m, v in zip(res.summary["metric"], res.summary["value"])}
    out["trade_sharpe"] = float(trade_sharpe(res.trades))
    return out


def mean_metrics(results: list[BacktestResult]) -> dict[str, float]:
    if not results:
        return {}
    ms = [metrics_of(r) for r in results]
    if len(ms) == 1:
        return ms[0]
    return {k: float(np.mean([m.get(k, math.nan) for m in ms])) for k in ms[0]}


def apply_params(base: Config, params: dict[str, Any]) -> Config:
    """``base`` with ``section.key`` values set, validated like a loaded file."""
    d = base.to_dict()
    for name, v in params.items():
        section, key = name.split(".", 1)
        d[section] = {**d[section], key: v}
    return from_dict(d, source="<trial>")


class Evaluator:
    """Loads the study's data once; evaluates parameter sets on its windows."""

    def __init__(self, spec: StudySpec) -> None:
        self.spec = spec
        data, cfg_path = self._inputs()
        self.data_path = data
        self.base = load_config(cfg_path)
        fx = None if spec.fx is None else spec.resolve(spec.fx)
        funding = None if spec.funding is None else spec.resolve(spec.funding)
        # the built arrays come from the event cache when this data was prepared before;
        # a miss is written by ``persist_cache`` once the study is running (a study that
        # fails to start leaves the data folder as it was)
        self.prep = prepare(data, self.base, fx=fx, funding=funding, cache="read")
        self.data_hash = data_hash(data, self.prep)
        ev = self.prep.arrays.events
        if ev.shape[0] == 0:
            raise ConfigError(f"{spec.source}: study.data {spec.data!r} holds no events for "
                              "the config's instruments")
        self.t_first, self.t_end = int(ev[0]["ts_recv"]), int(ev[-1]["ts_recv"]) + 1
        self.windows = split_windows(spec, self.t_first, self.t_end)
        self._train = [self.prep.window(a, b) for (a, b), _ in self.windows]
        self._test = [self.prep.window(*t) for _, t in self.windows if t is not None]
        self.objectives_checked = False

    def persist_cache(self) -> bool:
        """Write the event-cache entry of this study's data if it was built here (so other
        workers, resumes, reports and ``arbkit stress`` read it instead of building it)."""
        from arbkit.engine.backtest import store_cached

        entry = self.prep.cache_entry
        ok = store_cached(self.prep)
        self._cache_written = entry if ok else None
        return ok

    def drop_written_cache(self) -> None:
        """Remove the entry :meth:`persist_cache` wrote (a study that stored nothing)."""
        entry, self._cache_written = getattr(self, "_cache_written", None), None
        if entry is not None:
            entry.remove(tidy=True)

    def _inputs(self) -> tuple[Path, Path]:
        spec = self.spec
        if spec.data.startswith("synth:"):
            from arbkit.data.synth import write_scenario

            scenario = spec.data.split(":", 1)[1]
            out = Path("out") / "synth" / scenario
            if not (out / "quotes.parquet").is_file():
                try:
                    write_scenario(scenario, out)
                except ArbkitError as exc:
                    raise ConfigError(f"{spec.source}: study.data = {spec.data!r}: {exc}") \
                        from None
            cfg = spec.resolve(spec.config) if spec.config else out / "config.toml"
            return out / "quotes.parquet", cfg
        assert spec.config is not None
        data = spec.resolve(spec.data)
        if not data.exists():
            raise ConfigError(f"{spec.source}: study.data = {spec.data!r}: no such file or "
                              "folder")
        return data, spec.resolve(spec.config)

    def check_objectives(self) -> None:
        """Every objective names metrics that exist: checked on a run of the base config over
        the first instant of the data, before any trial."""
        import ast
        import difflib

        from arbkit.tune.spec import FUNCS, check_expression

        if self.objectives_checked:
            return
        base = self.base.replace_strategy(allow_infeasible=True)
        names = set(metrics_of(run_prepared(base, self.prep.window(self.t_first,
                                                                   self.t_first + 1))))
        if self.spec.stress_min_net is not None:
            names.add("stress_worst_net")
        for o in self.spec.objectives:
            tree = check_expression(o, self.spec.source)
            used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} - set(FUNCS)
            for u in sorted(used - names):
                close = difflib.get_close_matches(u, sorted(names), n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                raise ConfigError(f"{self.spec.source}: study.objectives: {o!r} uses unknown "
                                  f"metric {u!r}; {hint}(metrics: docs/metrics.md)")
        self.objectives_checked = True

    def config_for(self, params: dict[str, Any]) -> Config:
        return apply_params(self.base, params)

    def spans(self) -> dict[str, list[list[int]]]:
        return {"train": [list(a) for a, _ in self.windows],
                "test": [list(t) for _, t in self.windows if t is not None]}

    def run(self, batch: list[dict[str, Any]]) -> list[Outcome]:
        """Evaluate parameter sets; with more than one, in one parallel numba call per
        window (``engine.sweep.run_batch``)."""
        cfgs: list[Config | None] = []
        reasons: list[str] = []
        for params in batch:
            try:
                cfg = self.config_for(params)
                from arbkit.engine.state import route_problems

                refused = [p for r, p in route_problems(cfg)
                           if not cfg.route_strategy(r).allow_infeasible]
                if refused:
                    raise ConfigError("infeasible: " + "; ".join(refused))
                cfgs.append(cfg)
                reasons.append("")
            except ArbkitError as exc:
                cfgs.append(None)
                reasons.append(str(exc))
        ok = [c for c in cfgs if c is not None]
        train = [self._run_many(ok, p) for p in self._train]
        test = [self._run_many(ok, p) for p in self._test]
        out = []
        j = 0
        for params, cfg, reason in zip(batch, cfgs, reasons):
            if cfg is None:
                nan = [math.nan] * len(self.spec.objectives)
                out.append(Outcome(params, None, [], [], {}, {}, nan, nan, reason))
                continue
            tr = [w[j] for w in train]
            te = [w[j] for w in test]
            j += 1
            out.append(self._outcome(params, cfg, tr, te))
        return out

    def _run_many(self, cfgs: list[Config], prep: Prepared) -> list[BacktestResult]:
        if len(cfgs) == 1:
            return [run_prepared(cfgs[0], prep)]
        if not cfgs:
            return []
        from arbkit.engine.sweep import run_batch

        return run_batch(cfgs, prep)

    def _outcome(self, params: dict[str, Any], cfg: Config, tr: list[BacktestResult],
                 te: list[BacktestResult]) -> Outcome:
        m, tm = mean_metrics(tr), mean_metrics(te)
        few = [int(metrics_of(r)["trades"]) for r in tr]
        worst = ""
        if self.spec.stress_min_net is not None:
            # the worst stressed train run (not measured on the test windows: NaN there)
            worst, m["stress_worst_net"] = self.stress(cfg) \
                if min(few) >= self.spec.min_trades else ("", math.nan)
            if tm:
                tm["stress_worst_net"] = math.nan
        values = [evaluate(o, m) for o in self.spec.objectives]
        tvalues = [evaluate(o, tm) if tm else math.nan for o in self.spec.objectives]
        reason = ""
        if min(few) < self.spec.min_trades:
            reason = (f"min_trades: {min(few)} trades in a train window < "
                      f"study.min_trades = {self.spec.min_trades}")
        elif worst and not m["stress_worst_net"] >= self.spec.stress_min_net:
            reason = (f"stress: {worst} net PnL {m['stress_worst_net']:.2f} < "
                      f"study.stress_min_net = {self.spec.stress_min_net:g}")
        elif any(not math.isfinite(v) for v in values):
            bad = [o for o, v in zip(self.spec.objectives, values) if not math.isfinite(v)]
            reason = (f"objective {bad[0]!r} undefined on this run (e.g. sharpe/calmar need "
                      f">= 30 days of data; see the trial's notes)")
        return Outcome(params, cfg, tr, te, m, tm, values, tvalues, reason, worst)

    def stress(self, cfg: Config) -> tuple[str, float]:
        """(worst scenario, its net PnL) of ``cfg`` on the train windows (``arbkit
        stress`` with the study's seed; the scenarios of study.stress_scenarios)."""
        from arbkit.engine.stress import stress_min_net

        return stress_min_net(cfg, self._train, list(self.spec.stress_scenarios) or None,
                              seed=self.spec.seed)


def split_windows(spec: StudySpec, t0: int, t1: int
                  ) -> list[tuple[tuple[int, int], tuple[int, int] | None]]:
    """[(train window, test window or None)] as [start, end) in ns."""
    sp = spec.split
    emb = round(sp.embargo_s * S)
    if sp.kind == "none":
        return [((t0, t1), None)]
    if sp.kind == "holdout":
        cut = t0 + int((t1 - t0) * sp.train)
        if cut + emb >= t1:
            raise ConfigError(f"{spec.source}: split.embargo_s = {sp.embargo_s} leaves no test "
                              f"data (the test span is {(t1 - cut) / S:.0f} s); lower it")
        return [((t0, cut), (cut + emb, t1))]
    n = sp.windows + 1
    edges = [t0 + (t1 - t0) * k // n for k in range(n + 1)]
    out: list[tuple[tuple[int, int], tuple[int, int] | None]] = []
    for k in range(sp.windows):
        if edges[k + 1] + emb >= edges[k + 2]:
            raise ConfigError(f"{spec.source}: split.embargo_s = {sp.embargo_s} is longer than "
                              f"a walk-forward segment ({(edges[1] - edges[0]) / S:.0f} s)")
        out.append(((edges[k], edges[k + 1]), (edges[k + 1] + emb, edges[k + 2])))
    return out


def data_hash(path: Path, prep: Prepared) -> str:
    """The data manifest hash (files' names, sizes and bytes), or of the events if the
    data are not files."""
    from arbkit.data.load import manifest_hash

    try:
        return manifest_hash(path)[:16]
    except (OSError, ArbkitError, ValueError):
        h = hashlib.sha256(prep.arrays.events.tobytes())
        return h.hexdigest()[:16]
