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
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import optuna
import polars as pl
from optuna.trial import TrialState

from arbkit.tune.evaluate import Evaluator, apply_params
from arbkit.tune.spec import StudySpec, load_study
from arbkit.tune.study import (
    STOP,
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
              poll: Callable[[optuna.Study], None] | None = None,
              evaluator: Evaluator | None = None) -> optuna.Study:
    """Run (or resume) the study with ``jobs`` worker processes until it holds its budget of
    finished trials. ``on_trial`` gets each trial's row (one worker, in-process); ``poll``
    gets the study about twice a second while worker processes run.

    The data, the windows and the objectives are checked here, before anything is written
    to storage (``Evaluator`` + ``check_objectives``): a bad study file leaves no study."""
    ev = evaluator or Evaluator(spec)
    ev.check_objectives()
    STOP.clear()
    if jobs <= 1:
        # first Ctrl-C: finish the trial in hand and stop; a second one stops at once (the
        # trial in hand is then handed back for the next run)
        def on_sigint(*_: Any) -> None:
            if STOP.is_set():
                raise KeyboardInterrupt
            STOP.set()

        main = threading.current_thread() is threading.main_thread()
        old = signal.signal(signal.SIGINT, on_sigint) if main else None
        try:
            run_worker(spec, storage, on_trial=on_trial, evaluator=ev)
        finally:
            if main:
                signal.signal(signal.SIGINT, old)
        _persist_cache(ev, spec, storage)
        if STOP.is_set():
            raise KeyboardInterrupt
        return open_study(spec, storage)
    open_study(spec, storage)  # create it once, before the workers race to
    written = ev.persist_cache()  # the workers read the arrays built here
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_worker_main, args=(spec, storage, k), daemon=False)
             for k in range(jobs)]
    # the workers start with SIGINT ignored (a terminal's Ctrl-C goes to the whole process
    # group): this process stops them with SIGTERM, which they turn into a clean hand-back
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        for p in procs:
            p.start()
    finally:
        signal.signal(signal.SIGINT, old)
    study = open_study(spec, storage)
    try:
        while any(p.is_alive() for p in procs):
            if poll:
                poll(study)
            time.sleep(0.5)
    except KeyboardInterrupt:
        for p in procs:
            p.terminate()  # SIGTERM: each finishes the trial in hand, then exits
        for p in procs:
            p.join(timeout=60)
            if p.is_alive():  # a very long trial: its RUNNING trial is retried next run
                p.kill()
        _drop_cache_if_empty(ev, written, spec, storage)
        raise
    for p in procs:
        p.join()
    if poll:
        poll(study)
    bad = [p.exitcode for p in procs if p.exitcode not in (0, None)]
    if bad:
        _drop_cache_if_empty(ev, written, spec, storage)
        from arbkit.errors import EngineError

        raise EngineError(f"{len(bad)} tuning worker(s) failed (exit codes {bad}); run with "
                          "-j 1 to see the error")
    return study


def _finished(spec: StudySpec, storage: Storage) -> int:
    study = open_study(spec, storage)
    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,
                                                        TrialState.PRUNED)))


def _persist_cache(ev: Evaluator, spec: StudySpec, storage: Storage) -> None:
    """Keep the study's event arrays on disk once it has a finished trial (a tune that
    stores nothing leaves no file, in the data folder either)."""
    if ev.prep.cache_entry is not None and _finished(spec, storage) > 0:
        ev.persist_cache()


def _drop_cache_if_empty(ev: Evaluator, written: bool, spec: StudySpec,
                         storage: Storage) -> None:
    """Workers that stored nothing: remove the cache entry written for them."""
    if written and _finished(spec, storage) == 0:
        ev.drop_written_cache()


def _worker_main(spec: StudySpec, storage: Storage, worker: int) -> None:
    signal.signal(signal.SIGTERM, lambda *_: STOP.set())
    try:
        run_worker(spec, storage, worker=worker)
    except KeyboardInterrupt:
        sys.exit(0)  # the trial in hand was given back (run_worker); nothing to print


def delete_study(name: str, storage: Storage) -> None:
    """Remove a study from Optuna's storage and its runs from the results store."""
    try:
        optuna.delete_study(study_name=name, storage=storage.optuna(create=False))
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
        retry = t.user_attrs.get("retry_of")
        if retry is None and "failed_trial" in t.system_attrs:  # Optuna's heartbeat retry
            retry = optuna.storages.RetryHeartbeatStaleTrialCallback.retried_trial_number(t)
        row["retry_of"] = retry
        row["engine_s"] = t.user_attrs.get("engine_s")
        rows.append(row)
    if not rows:
        return pl.DataFrame()
    return pl.DataFrame(rows, infer_schema_length=None)


def no_complete_trial(study: optuna.Study) -> str:
    """Why a study has no COMPLETE trial, and what to do about it (one line)."""
    trials = study.get_trials(deepcopy=False)
    name = study.study_name
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    if not trials:
        return (f"study {name!r} has no trial yet; run `arbkit tune <its study file>` (and pass "
                "the same --results/--storage)")
    if len(pruned) == len(trials):
        reasons: dict[str, int] = {}
        for t in pruned:
            why = str(t.user_attrs.get("pruned_because") or "no reason recorded")
            reasons[why.split(":")[0]] = reasons.get(why.split(":")[0], 0) + 1
        top = "; ".join(f"{n} x {r}" for r, n in sorted(reasons.items(), key=lambda x: -x[1])[:2])
        return (f"study {name!r}: all {len(trials)} trials were PRUNED ({top}), none "
                "completed; running more of the same will not help: lower study.min_trades, "
                "widen or move the [params] ranges, or fix what the reasons name, then run "
                "`arbkit tune --fresh <its study file>`")
    states = {}
    for t in trials:
        states[t.state.name] = states.get(t.state.name, 0) + 1
    seen = ", ".join(f"{n} {s}" for s, n in states.items())
    return (f"study {name!r} has no COMPLETE trial yet ({seen}); run `arbkit tune <its study "
            "file>` again to finish it")


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
        raise ConfigError(no_complete_trial(study))
    if len(study.directions) == 1:
        return study.best_trial
    sign = 1 if study.directions[0] == optuna.study.StudyDirection.MAXIMIZE else -1
    return max(study.best_trials, key=lambda t: sign * t.values[0])


__all__ += ["best_trial", "budget"]
