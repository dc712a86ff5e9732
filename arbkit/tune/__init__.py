"""Tuning: Optuna studies over the engine, stored in DuckDB or PostgreSQL.

>>> from arbkit.tune import load_study, run_study, storage_for
>>> spec = load_study("studies/tune_synth_normal.toml")           # doctest: +SKIP
>>> study = run_study(spec, storage_for(), jobs=2)                 # doctest: +SKIP
>>> trials_frame(study)                                            # doctest: +SKIP

See ``spec.py`` for the study file, ``evaluate.py`` for windows and metrics, ``study.py``
for storage and trial accounting, ``docs/tuning.md`` for the whole loop.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import time
from collections.abc import Callable
from typing import Any

import optuna
import polars as pl
from optuna.trial import TrialState

from arbkit.tune.evaluate import Evaluator, apply_params
from arbkit.tune.spec import StudySpec, load_study
from arbkit.tune.study import (
    Storage,
    budget,
    open_study,
    run_worker,
    storage_for,
    trial_metrics,
)

__all__ = ["Evaluator", "StudySpec", "Storage", "apply_params", "delete_study", "load_study",
           "run_study", "storage_for", "trials_frame"]


def run_study(spec: StudySpec, storage: Storage, *, jobs: int = 1,
              on_trial: Callable[[dict[str, Any]], None] | None = None,
              poll: Callable[[optuna.Study], None] | None = None) -> optuna.Study:
    """Run (or resume) the study with ``jobs`` worker processes until it holds its budget of
    finished trials. ``on_trial`` gets each trial's row (one worker, in-process); ``poll``
    gets the study about twice a second while worker processes run."""
    if jobs <= 1:
        run_worker(spec, storage, on_trial=on_trial)
        return open_study(spec, storage)
    open_study(spec, storage)  # create it once, before the workers race to
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_worker_main, args=(spec, storage), daemon=False)
             for _ in range(jobs)]
    for p in procs:
        p.start()
    study = open_study(spec, storage)
    try:
        while any(p.is_alive() for p in procs):
            if poll:
                poll(study)
            time.sleep(0.5)
    except KeyboardInterrupt:
        for p in procs:
            p.terminate()
        raise
    for p in procs:
        p.join()
    if poll:
        poll(study)
    bad = [p.exitcode for p in procs if p.exitcode not in (0, None)]
    if bad:
        from arbkit.errors import EngineError

        raise EngineError(f"{len(bad)} tuning worker(s) failed (exit codes {bad}); run with "
                          "-j 1 to see the error")
    return study


def _worker_main(spec: StudySpec, storage: Storage) -> None:
    run_worker(spec, storage)


def delete_study(name: str, storage: Storage) -> None:
    """Remove a study from Optuna's storage and its runs from the results store."""
    try:
        optuna.delete_study(study_name=name, storage=storage.optuna())
    except KeyError:
        pass
    with storage.store() as store:
        store.delete_study(name)


def trials_frame(study: optuna.Study) -> pl.DataFrame:
    """One row per trial: number, state, value_<objective>, p_<param>, m_<metric> (train),
    t_<metric> (test), and the provenance attributes."""
    spec = study.user_attrs.get("spec", {})
    objectives = spec.get("objectives", ["value"])
    rows = []
    for t in study.get_trials(deepcopy=False):
        row: dict[str, Any] = {"number": t.number, "state": t.state.name}
        vals = t.values or [math.nan] * len(objectives)
        tv = [None if w is None else float(w)
              for w in (t.user_attrs.get("test_values") or [None] * len(objectives))]
        for o, v, w in zip(objectives, vals, tv):
            row[f"value_{o}"] = float(v)
            row[f"test_{o}"] = math.nan if w is None else float(w)
        for k, v in t.params.items():
            row[f"p_{k}"] = v
        for k, v in trial_metrics(t, "train").items():
            row[f"m_{k}"] = v
        for k, v in trial_metrics(t, "test").items():
            row[f"t_{k}"] = v
        row["config_hash"] = t.user_attrs.get("config_hash")
        row["pruned_because"] = t.user_attrs.get("pruned_because")
        row["retry_of"] = t.user_attrs.get("retry_of")
        row["engine_s"] = t.user_attrs.get("engine_s")
        rows.append(row)
    if not rows:
        return pl.DataFrame()
    return pl.DataFrame(rows, infer_schema_length=None)


def finished(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))


def best_trial(study: optuna.Study, number: int | None = None) -> optuna.trial.FrozenTrial:
    """Trial ``number``, or the best COMPLETE trial (first objective for multi-objective:
    the Pareto front's best on it)."""
    from arbkit.errors import ConfigError

    if number is not None:
        for t in study.get_trials(deepcopy=False):
            if t.number == number:
                if t.state != TrialState.COMPLETE:
                    raise ConfigError(f"trial {number} of study {study.study_name!r} is "
                                      f"{t.state.name}, not COMPLETE")
                return t
        raise ConfigError(f"study {study.study_name!r} has no trial {number}")
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not done:
        raise ConfigError(f"study {study.study_name!r} has no COMPLETE trial yet (pruned "
                          "trials had too few trades?); run `arbkit tune` first")
    if len(study.directions) == 1:
        return study.best_trial
    sign = 1 if study.directions[0] == optuna.study.StudyDirection.MAXIMIZE else -1
    return max(study.best_trials, key=lambda t: sign * t.values[0])


__all__ += ["best_trial", "budget", "finished"]
