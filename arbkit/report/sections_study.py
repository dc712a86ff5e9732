"""Report sections about the search itself: summary, best trials, importance, parallel
coordinates and slices."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl

from arbkit.report import figures
from arbkit.report.markup import bullets, esc, fmt, img, kv, para, redact, section, table
from arbkit.report.stats import pareto_mask
from arbkit.report.study import STATES, StudyReport

TOP_N = 10
MAX_SLICE_PARAMS = 24
TRAIN_METRICS = ("trades", "win_rate", "net_pnl", "max_drawdown", "sharpe")
META_FIRST = ("sampler", "seed", "data_hash", "code_version", "config_hash",
              "storage", "created")


def value_col(objective: str) -> str:
    return f"value_{objective}"


def ranked(rep: StudyReport) -> pl.DataFrame:
    """COMPLETE trials, best first by the first objective (missing values last)."""
    col = value_col(rep.objectives[0])
    c = rep.complete().with_columns(pl.col(col).cast(pl.Float64).fill_nan(None))
    return c.sort([col, "number"], descending=[rep.directions[0] == "maximize", False],
                  nulls_last=True)


def floats(frame: pl.DataFrame, col: str) -> np.ndarray:
    """A column as float64 with null → NaN (an all-NaN array when the column is absent)."""
    if col not in frame.columns:
        return np.full(frame.height, np.nan)
    return frame.get_column(col).cast(pl.Float64).fill_null(math.nan).to_numpy().copy()


def best_index(frame: pl.DataFrame, number: int) -> int | None:
    hits = np.flatnonzero(frame.get_column("number").to_numpy() == number)
    return int(hits[0]) if hits.size else None


# ----------------------------------------------------------------------------- summary


def _budget(budget: Any) -> str:
    """The budget the study ran to last (a resumed study with --trials 40 says 40, not the
    study file's first 10), beside the count of every trial it holds."""
    if budget is None:
        return ""
    return f" (budget of its latest run: {budget} finished = COMPLETE + PRUNED)"


def summary(rep: StudyReport) -> str:
    t = rep.trials
    counts = " · ".join(f"{s} {t.filter(pl.col('state') == s).height}" for s in STATES)
    row = rep.best_row()
    best_vals = ", ".join(f"{o} = {fmt(None if row is None else row.get(value_col(o)))}"
                          for o in rep.objectives)
    pairs: list[tuple[str, Any]] = [
        ("study", rep.study),
        ("objectives", ", ".join(f"{o} ({d})" for o, d in zip(rep.objectives,
                                                                rep.directions))),
        ("trials", f"{t.height} in all: {counts}" + _budget(rep.meta.get("budget"))),
        ("best trial", f"#{rep.best_number}: {best_vals}"),
    ]
    meta = {k: redact(v) if isinstance(v, str) else v for k, v in rep.meta.items()
            if k != "budget"}
    keys = [k for k in META_FIRST if k in meta] + sorted(k for k in meta if k not in META_FIRST)
    pairs += [(k, meta[k]) for k in keys]
    body = [kv(pairs)]
    warnings = (verdict(rep) + reproduce_check(rep)
                + [str(n) for n in rep.best.meta.get("notes", [])])
    if warnings:
        body.append("<h3>Notes on the best trial</h3>")
        body.append(bullets(warnings, "warn"))
    return section("summary", f"Study {rep.study}", "\n".join(body))


def verdict(rep: StudyReport) -> list[str]:
    """Say it first when no trial did well on the first objective (e.g. none made money)."""
    c = rep.complete()
    o, d = rep.objectives[0], rep.directions[0]
    if c.height == 0 or d != "maximize":
        return []
    v = floats(c, value_col(o))
    v = v[np.isfinite(v)]
    if v.size and float(v.max()) <= 0.0:
        return [f"NO EDGE FOUND: no COMPLETE trial has a positive {o} on its train window "
                f"(best {float(v.max()):.6g} over {v.size} trials); the best trial below is "
                "the least bad, not a strategy"]
    return []


def reproduce_check(rep: StudyReport) -> list[str]:
    """The re-run of the best trial must give the objective the study recorded."""
    row = rep.best_row()
    if row is None:
        return [f"trial #{rep.best_number} (the best) is not in the trials table"]
    out = []
    names = set(rep.best.summary.get_column("metric").to_list()) if rep.best.summary.height else set()
    for o in rep.objectives:
        rec = row.get(value_col(o))
        if o not in names or rec is None:
            continue
        got = rep.best.metric(o)
        rec = float(rec)
        if not (math.isclose(got, rec, rel_tol=1e-9, abs_tol=1e-9)
                or (math.isnan(got) and math.isnan(rec))):
            out.append(f"NOT REPRODUCED: the re-run of trial #{rep.best_number} gives {o} = "
                       f"{got:.10g} but the study recorded {rec:.10g}; the config may not "
                       "reach the engine or the data changed, so the best-trial sections "
                       "below describe a different run")
    return out


# ----------------------------------------------------------------------------- best trials


def best_trials(rep: StudyReport) -> str:
    r = ranked(rep)
    if r.height == 0:
        return section("best-trials", "Best trials",
                       para("No COMPLETE trial: nothing to rank (see the trial counts above)."))
    top = r.head(TOP_N)
    header = ["rank", "trial"] + list(rep.objectives)
    tests = [o for o in rep.objectives if np.isfinite(floats(r, f"t_{o}")).any()]
    header += [f"{o} (test)" for o in tests]
    multi = len(rep.objectives) > 1
    if multi:
        front = pareto_mask(np.column_stack([floats(r, value_col(o)) for o in rep.objectives]),
                            rep.directions)
        header.append("Pareto front")
    header += rep.params
    metrics = [m for m in TRAIN_METRICS if f"m_{m}" in r.columns and m not in rep.objectives]
    header += metrics
    rows = []
    for k, rec in enumerate(top.iter_rows(named=True)):
        cells: list[Any] = [k + 1, rec["number"]]
        cells += [rec[value_col(o)] for o in rep.objectives]
        cells += [rec.get(f"t_{o}") for o in tests]
        if multi:
            cells.append("yes" if front[k] else "")
        cells += [rec[f"p_{p}"] for p in rep.params]
        cells += [rec[f"m_{m}"] for m in metrics]
        rows.append(cells)
    best = {k for k, n in enumerate(top.get_column("number").to_list()) if n == rep.best_number}
    first, direction = rep.objectives[0], rep.directions[0]
    text = (f"Top {top.height} of {r.height} COMPLETE trials by {first} ({direction}), on the "
            "train window. The best trial is highlighted.")
    if multi:
        text += " Pareto front: no other trial is at least as good on every objective."
    return section("best-trials", "Best trials",
                   para(text) + table(header, rows, highlight=best, cls="wide"))


# ----------------------------------------------------------------------------- importance


def importance(rep: StudyReport) -> str:
    title = "Parameter importance"
    if rep.importance is None:
        return section("importance", title, para(
            "Not computed: the study did not supply parameter importances (Optuna computes "
            "them from COMPLETE trials; it needs at least two with different parameters)."))
    imp = {str(k): float(v) for k, v in rep.importance.items() if math.isfinite(float(v))}
    if not imp:
        return section("importance", title,
                       para("Not computed: the importance table is empty (no parameter varied)."))
    rows = sorted(imp.items(), key=lambda kv_: (-kv_[1], kv_[0]))
    body = (para(f"Importance of each parameter for {rep.objectives[0]}, as computed by the "
                 "tuner (its evaluator is named in the summary when given): larger means the "
                 "objective depends more on that parameter. Importance is not direction: see "
                 "the slices.")
            + img(figures.importance(imp), "parameter importance bar chart")
            + table(["parameter", "importance"], rows))
    return section("importance", title, body)


# ----------------------------------------------------------------------------- parallel / slices


def parameter_axes(frame: pl.DataFrame, params: list[str],
                   log: dict[str, bool] | None = None) -> list[figures.Axis]:
    """``log``: the search space's log flag per parameter (``meta["log_params"]``); without
    it, a positive parameter spanning two decades is drawn on a log axis."""
    log = log or {}
    return [figures.encode(p, frame.get_column(f"p_{p}"), log=log.get(p))
            for p in params]


def parallel(rep: StudyReport) -> str:
    title = "Parallel coordinates"
    c = rep.complete()
    if c.height < 2 or not rep.params:
        why = ("the study has no parameters" if not rep.params
               else f"{c.height} COMPLETE trial(s); at least 2 are needed to draw lines")
        return section("parallel", title, para(f"Not drawn: {why}."))
    axes = parameter_axes(c, rep.params, rep.meta.get("log_params"))
    axes += [figures.encode(o, pl.Series(floats(c, value_col(o)))) for o in rep.objectives]
    colour = floats(c, value_col(rep.objectives[0]))
    png = figures.parallel(axes, colour, rep.objectives[0], best_index(c, rep.best_number),
                           rep.directions[0])
    text = (f"{c.height} COMPLETE trials. Each vertical axis is one parameter (then the "
            "objectives) scaled to its own min–max (log10 where marked; categories evenly "
            f"spaced); lines are coloured by {rep.objectives[0]}, the best trial in red.")
    return section("parallel", title, para(text) + img(png, "parallel coordinates"))


def slices(rep: StudyReport) -> str:
    title = "Slices: objective against each parameter"
    c = rep.complete()
    if c.height == 0 or not rep.params:
        why = "the study has no parameters" if not rep.params else "no COMPLETE trial"
        return section("slices", title, para(f"Not drawn: {why}."))
    params = rep.params[:MAX_SLICE_PARAMS]
    axes = parameter_axes(c, params, rep.meta.get("log_params"))
    numbers = c.get_column("number").to_numpy()
    best = best_index(c, rep.best_number)
    parts = [para("One panel per parameter; darker points are later trials, the star is the "
                  "best trial.")]
    if len(rep.params) > len(params):
        parts.append(para(f"Showing the first {len(params)} of {len(rep.params)} parameters."))
    for o in rep.objectives:
        png = figures.slices(axes, floats(c, value_col(o)), numbers, o, best)
        parts.append(f"<h3>{esc(o)}</h3>" + img(png, f"{o} against each parameter"))
    return section("slices", title, "\n".join(parts))
