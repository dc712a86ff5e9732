"""A study file (``studies/<name>.toml``): what to sweep, on what data, judged how.

```toml
[study]
name = "synth_normal"            # the Optuna study name (storage key)
data = "synth:normal"            # a Parquet file/folder/catalog, or synth:<scenario>
config = "studies/base.toml"     # the backtest config the trials start from
                                 #   (optional with synth:<scenario>: its own config)
trials = 40                      # trials in all (every worker together)
sampler = "tpe"                  # tpe | random | grid
seed = 7
objectives = ["net_pnl"]         # metric names or expressions of them
directions = ["maximize"]        # one per objective
min_trades = 5                   # fewer trades on the train span: trial PRUNED
batch = 1                        # > 1: ask this many trials at once, run them in one
                                 #   parallel numba call (the grid fast path)
save = "all"                     # all: every trial's frames to the results store; runs: only
                                 #   the runs row (metrics, config); none
stress_min_net = -500.0          # optional: each trial is also run under the stress scenarios
                                 #   (`arbkit stress`, seed = study.seed) on its train windows;
                                 #   worst net PnL below this floor: trial PRUNED. The worst is
                                 #   metric stress_worst_net (usable in objectives)
stress_scenarios = ["flash_crash", "venue_outage"]  # optional: which ones (default all)

[split]
kind = "holdout"                 # none | holdout | walk_forward
train = 0.7                      # holdout: first 70% of the span trains, the rest tests
embargo_s = 600                  # gap between a train window and its test window
windows = 3                      # walk_forward: rolling train/test folds

[space]
"strategy.entry_bps" = { low = 1.0, high = 8.0 }          # float
"strategy.max_hold_s" = { low = 5, high = 600, log = true }
"strategy.stop_loss_bps" = { low = 5, high = 50, step = 5 }
"strategy.legging" = { choices = ["unwind", "chase"] }
"risk.loss_streak" = { low = 0, high = 5, int = true }
# sampler = "grid": every parameter lists its values
"strategy.exit_bps" = { values = [-1.0, 0.0, 1.0] }
```

Parameters are ``<section>.<key>`` of the backtest config (``strategy``, ``risk``, ``run``,
``bars``); each trial's config goes through the same validation as a loaded file.
"""

from __future__ import annotations

import ast
import math
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from arbkit.errors import ConfigError

SAMPLERS = ("tpe", "random", "grid")
SPLITS = ("none", "holdout", "walk_forward")
SAVES = ("all", "runs", "none")
SECTIONS = ("strategy", "risk", "run", "bars")
PARAM_KEYS = {"low", "high", "step", "log", "int", "choices", "values"}


@dataclass(frozen=True)
class Param:
    name: str  # "strategy.entry_bps"
    low: float | None = None
    high: float | None = None
    step: float | None = None
    log: bool = False
    is_int: bool = False
    choices: tuple[Any, ...] | None = None  # categorical (or the grid's values)

    @property
    def section(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def key(self) -> str:
        return self.name.split(".", 1)[1]


@dataclass(frozen=True)
class Split:
    kind: str = "none"
    train: float = 0.7
    embargo_s: float = 0.0
    windows: int = 3


@dataclass(frozen=True)
class StudySpec:
    name: str
    data: str
    config: str | None
    trials: int
    sampler: str
    seed: int
    objectives: tuple[str, ...]
    directions: tuple[str, ...]
    min_trades: int
    batch: int
    save: str
    split: Split
    params: tuple[Param, ...]
    source: str = "<study>"
    fx: str | None = None
    funding: str | None = None
    base_dir: Path = field(default_factory=Path)
    stress_min_net: float | None = None  # None: no stress constraint
    stress_scenarios: tuple[str, ...] = ()  # () = every scenario

    def resolve(self, p: str) -> Path:
        """A path of the study file, relative to the working directory if it exists there,
        else to the study file's folder."""
        q = Path(p)
        if q.is_absolute() or q.exists():
            return q
        return self.base_dir / q

    def grid(self) -> dict[str, list[Any]]:
        return {p.name: list(p.choices or ()) for p in self.params}


def load_study(path: str | Path) -> StudySpec:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: study file not found; pass an existing studies/<name>.toml")
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8-sig"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML ({exc}); fix the syntax") from None
    return study_from_dict(raw, str(p), p.resolve().parent)


def study_from_dict(raw: dict[str, Any], source: str = "<study>",
                    base_dir: Path | None = None) -> StudySpec:
    unknown = sorted(set(raw) - {"study", "split", "space"})
    if unknown:
        raise ConfigError(f"{source}: unknown table [{unknown[0]}]; allowed: [study], [split], "
                          "[space]")
    st = dict(raw.get("study") or {})
    allowed = {"name", "data", "config", "trials", "sampler", "seed", "objectives",
               "directions", "min_trades", "batch", "save", "fx", "funding", "stress_min_net",
               "stress_scenarios"}
    bad = sorted(set(st) - allowed)
    if bad:
        raise ConfigError(f"{source}: unknown key study.{bad[0]} = {st[bad[0]]!r}; allowed keys: "
                          f"{', '.join(sorted(allowed))}")
    for req in ("name", "data"):
        if req not in st:
            raise ConfigError(f"{source}: missing required key study.{req}; add it to [study]")
    name = str(st["name"])
    if not name or any(c in name for c in "/\\ \t"):
        raise ConfigError(f"{source}: study.name = {name!r}; use letters, digits, - or _")
    data = str(st["data"])
    config = st.get("config")
    if config is None and not data.startswith("synth:"):
        raise ConfigError(f"{source}: missing study.config (the backtest config the trials "
                          "start from); only synth:<scenario> data brings its own")
    trials = _int(st.get("trials", 20), "study.trials", source, lo=1)
    sampler = str(st.get("sampler", "tpe"))
    if sampler not in SAMPLERS:
        raise ConfigError(f"{source}: study.sampler = {sampler!r}; use one of {SAMPLERS}")
    objectives = st.get("objectives", ["net_pnl"])
    if isinstance(objectives, str):
        objectives = [objectives]
    directions = st.get("directions", ["maximize"] * len(objectives))
    if isinstance(directions, str):
        directions = [directions]
    if len(directions) != len(objectives) or not objectives:
        raise ConfigError(f"{source}: study.directions has {len(directions)} entries for "
                          f"{len(objectives)} objectives; give one direction per objective")
    for d in directions:
        if d not in ("maximize", "minimize"):
            raise ConfigError(f"{source}: study.directions entry {d!r}; use maximize or "
                              "minimize")
    for o in objectives:
        check_expression(str(o), source)
    save = str(st.get("save", "all"))
    if save not in SAVES:
        raise ConfigError(f"{source}: study.save = {save!r}; use one of {SAVES}")
    split = _split(raw.get("split") or {}, source)
    floor, scen = _stress(st, source)
    params = _space(raw.get("space") or {}, source, sampler)
    return StudySpec(
        name=name, data=data, config=None if config is None else str(config), trials=trials,
        sampler=sampler, seed=_int(st.get("seed", 0), "study.seed", source, lo=0),
        objectives=tuple(str(o) for o in objectives), directions=tuple(directions),
        min_trades=_int(st.get("min_trades", 1), "study.min_trades", source, lo=0),
        batch=_int(st.get("batch", 1), "study.batch", source, lo=1), save=save, split=split,
        params=params, source=source, fx=st.get("fx"), funding=st.get("funding"),
        base_dir=base_dir or Path.cwd(), stress_min_net=floor, stress_scenarios=scen)


def _stress(st: dict[str, Any], source: str) -> tuple[float | None, tuple[str, ...]]:
    """``study.stress_min_net`` (a finite number, reference currency) and
    ``study.stress_scenarios`` (names of ``arbkit stress`` scenarios)."""
    from arbkit.engine.scenarios import SCENARIOS

    floor = st.get("stress_min_net")
    if floor is not None and (isinstance(floor, bool) or not isinstance(floor, (int, float))
                              or not math.isfinite(floor)):
        raise ConfigError(f"{source}: study.stress_min_net = {floor!r}; use a number (the worst "
                          "scenario's net PnL floor, e.g. -500.0)")
    scen = st.get("stress_scenarios", [])
    if not isinstance(scen, list) or any(s not in SCENARIOS for s in scen):
        bad = scen if not isinstance(scen, list) else [s for s in scen if s not in SCENARIOS][0]
        raise ConfigError(f"{source}: study.stress_scenarios: {bad!r} is not a scenario; use a "
                          f"list of {', '.join(SCENARIOS)}")
    if scen and floor is None:
        raise ConfigError(f"{source}: study.stress_scenarios needs study.stress_min_net (the "
                          "floor they are held to); add it or drop stress_scenarios")
    return (None if floor is None else float(floor)), tuple(scen)


def _int(v: Any, where: str, source: str, lo: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < lo:
        raise ConfigError(f"{source}: {where} = {v!r}; use an integer >= {lo}")
    return v


def _split(raw: dict[str, Any], source: str) -> Split:
    bad = sorted(set(raw) - {f.name for f in fields(Split)})
    if bad:
        raise ConfigError(f"{source}: unknown key split.{bad[0]}; allowed keys: kind, train, "
                          "embargo_s, windows")
    kind = str(raw.get("kind", "none"))
    if kind not in SPLITS:
        raise ConfigError(f"{source}: split.kind = {kind!r}; use one of {SPLITS}")
    train = float(raw.get("train", 0.7))
    if not 0.0 < train < 1.0:
        raise ConfigError(f"{source}: split.train = {train!r}; use a fraction in (0, 1)")
    embargo = float(raw.get("embargo_s", 0.0))
    if embargo < 0 or not math.isfinite(embargo):
        raise ConfigError(f"{source}: split.embargo_s = {embargo!r}; use seconds >= 0")
    windows = _int(raw.get("windows", 3), "split.windows", source, lo=1)
    return Split(kind, train, embargo, windows)


def _space(raw: dict[str, Any], source: str, sampler: str) -> tuple[Param, ...]:
    if not raw:
        raise ConfigError(f"{source}: [space] is empty; add at least one parameter, e.g. "
                          '"strategy.entry_bps" = { low = 1.0, high = 8.0 }')
    from arbkit.config.model import BarsConfig, RiskConfig, RunConfig, StrategyConfig

    known = {"strategy": StrategyConfig, "risk": RiskConfig, "run": RunConfig,
             "bars": BarsConfig}
    out = []
    for name, spec in raw.items():
        section, _, key = name.partition(".")
        if section not in known or key not in {f.name for f in fields(known[section])}:
            raise ConfigError(f"{source}: space.{name!r}: not a config key; "
                              + _valid_keys(name, known))
        if not isinstance(spec, dict) or not spec:
            raise ConfigError(f"{source}: space.{name!r} = {spec!r}; use a table such as "
                              "{ low = 1.0, high = 8.0 } or { choices = [...] }")
        bad = sorted(set(spec) - PARAM_KEYS)
        if bad:
            raise ConfigError(f"{source}: space.{name!r}: unknown key {bad[0]!r}; allowed: "
                              f"{', '.join(sorted(PARAM_KEYS))}")
        values = spec.get("values", spec.get("choices"))
        if sampler == "grid" and values is None:
            raise ConfigError(f"{source}: space.{name!r}: sampler grid needs the values "
                              "listed: { values = [...] }")
        if values is not None:
            if not isinstance(values, list) or not values:
                raise ConfigError(f"{source}: space.{name!r}: values/choices must be a "
                                  "non-empty list")
            out.append(Param(name, choices=tuple(values)))
            continue
        if "low" not in spec or "high" not in spec:
            raise ConfigError(f"{source}: space.{name!r}: give low and high (or choices)")
        lo, hi = spec["low"], spec["high"]
        if not lo < hi:
            raise ConfigError(f"{source}: space.{name!r}: low = {lo!r} must be below "
                              f"high = {hi!r}")
        is_int = bool(spec.get("int", False)) or (isinstance(lo, int) and isinstance(hi, int)
                                                  and isinstance(spec.get("step", 1), int))
        if bool(spec.get("log", False)) and lo <= 0:
            raise ConfigError(f"{source}: space.{name!r}: log = true needs low > 0")
        out.append(Param(name, low=lo, high=hi, step=spec.get("step"),
                         log=bool(spec.get("log", False)), is_int=is_int))
    return tuple(out)


def _valid_keys(name: str, known: dict[str, Any]) -> str:
    """The fix for a mistyped [space] key: the closest keys, and every key it could be."""
    import difflib

    section, _, key = name.partition(".")
    every = [f"{sec}.{f.name}" for sec, cls in known.items() for f in fields(cls)]
    close = difflib.get_close_matches(name, every, n=2, cutoff=0.8)
    hint = f"did you mean {' or '.join(close)}? " if close else ""
    if section in known:
        keys = ", ".join(f.name for f in fields(known[section]))
        return f"{hint}{section} keys: {keys}"
    return (f"{hint}use <section>.<key> with section in {', '.join(known)} (e.g. "
            f"strategy.entry_bps; docs/config.md lists every key)")


_NAMES_OK = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Name, ast.Load, ast.Constant,
             ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow, ast.USub, ast.UAdd, ast.Call,
             ast.IfExp, ast.Compare, ast.Gt, ast.Lt, ast.GtE, ast.LtE)
FUNCS = {"abs": abs, "min": min, "max": max, "sqrt": math.sqrt, "log": math.log}


def check_expression(expr: str, source: str) -> ast.Expression:
    """An objective: a metric name or an arithmetic expression of metric names."""
    try:
        tree = ast.parse(expr, mode="eval")
    except SyntaxError:
        raise ConfigError(f"{source}: objective {expr!r} is not an expression; use a metric "
                          "name (net_pnl) or e.g. \"net_pnl - 0.5 * max_drawdown\"") from None
    for node in ast.walk(tree):
        if not isinstance(node, _NAMES_OK):
            raise ConfigError(f"{source}: objective {expr!r}: {type(node).__name__} is not "
                              "allowed (metric names, numbers, + - * / **, abs/min/max/sqrt/log)")
        if isinstance(node, ast.Call) and not (isinstance(node.func, ast.Name)
                                               and node.func.id in FUNCS):
            raise ConfigError(f"{source}: objective {expr!r}: only abs, min, max, sqrt, log "
                              "may be called")
    return tree


def evaluate(expr: str, metrics: dict[str, float]) -> float:
    """The value of an objective on one run's metrics (NaN if a metric is undefined)."""
    tree = check_expression(expr, "<objective>")
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} - set(FUNCS)
    missing = sorted(names - set(metrics))
    if missing:
        raise ConfigError(f"objective {expr!r}: unknown metric {missing[0]!r}; metrics: "
                          f"{', '.join(sorted(metrics))}")
    try:
        return float(eval(compile(tree, "<objective>", "eval"),  # noqa: S307 - checked AST
                          {"__builtins__": {}}, {**FUNCS, **metrics}))
    except (ZeroDivisionError, ValueError, OverflowError):
        return math.nan
