"""From a stored study to a ``StudyReport``: trials, importance, and the best trial re-run."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import optuna

from arbkit.errors import ConfigError
from arbkit.report import StudyReport


def build_report(study_name: str, storage: Any) -> StudyReport:
    from arbkit.tune import best_trial, trials_frame
    from arbkit.tune.evaluate import Evaluator
    from arbkit.tune.spec import load_study

    try:
        study = optuna.load_study(study_name=study_name,
                                  storage=storage.optuna(create=False))
    except KeyError:
        raise ConfigError(f"no study {study_name!r} in {storage.masked}; run `arbkit tune` "
                          "first, or pass the same --storage") from None
    rec = study.user_attrs.get("spec", {})
    best = best_trial(study)
    if not rec.get("source"):
        raise ConfigError(f"study {study_name!r} records no study file; cannot re-run its "
                          "best trial")
    spec = load_study(rec["source"])
    ev = Evaluator(spec)
    if ev.data_hash != best.user_attrs.get("data_hash"):
        raise ConfigError(f"study {study_name!r}: the data now hash to {ev.data_hash}, the "
                          f"trials ran on {best.user_attrs.get('data_hash')}: the data changed "
                          "since the study ran")
    out = ev.run([dict(best.params)])[0]
    if out.config is None or out.config.config_hash() != best.user_attrs.get("config_hash"):
        raise ConfigError(f"study {study_name!r}: trial {best.number}'s parameters on today's "
                          f"study file ({rec['source']}) give another config than the trial "
                          "recorded: the study file changed since the study ran")
    importance = None
    try:
        target = None if len(study.directions) == 1 else (lambda t: t.values[0])
        importance = {k: float(v) for k, v in optuna.importance.get_param_importances(
            study, target=target).items()}
    except (RuntimeError, ValueError, ZeroDivisionError):
        importance = None
    frame = trials_frame(study)
    ua = best.user_attrs
    return StudyReport(
        study=study_name, objectives=list(rec.get("objectives", ["value"])),
        directions=list(rec.get("directions", ["maximize"])), trials=frame,
        best_number=best.number, best=out.train[-1],
        best_test=out.test[-1] if out.test else None, importance=importance,
        meta={"sampler": rec.get("sampler"), "seed": rec.get("seed"),
              "budget": study.user_attrs.get("budget", rec.get("trials")), "data_hash": ua.get("data_hash"),
              "code_version": ua.get("code_version"), "config_hash": ua.get("config_hash"),
              "storage": storage.masked, "split": rec.get("split"),
              "created": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
              "best_values": [v for v in best.values if not math.isnan(v)],
              "log_params": {p.name: p.log for p in spec.params if p.choices is None}})
