"""Run a study: Optuna asks, the engine answers, storage remembers.

Storage (``optuna_storage``): by default an Optuna journal file ``<results>/optuna.journal``
beside the DuckDB results file ``<results>/arbkit.duckdb``; with a ``postgresql://`` URL (or
``ARBKIT_STORAGE``) both live in that PostgreSQL database (Optuna's own tables, with
heartbeats, and arbkit's results tables). Several workers (``-j``, or ``arbkit tune`` on
several machines with one PostgreSQL URL) cooperate on one study: each asks Optuna for the next
trial, and stops when the study holds ``trials`` finished trials.

Trial accounting, so that nothing is lost or run twice:

- a worker asks only while ``COMPLETE + PRUNED + RUNNING < trials`` (WAITING retries are asked
  first); if a race still hands it a trial past the budget, the trial is told FAIL with
  ``surplus = true`` before anything runs;
- a trial left RUNNING by a dead worker is failed and its parameters enqueued again (user
  attribute ``retry_of``): on PostgreSQL by Optuna's heartbeat (``RetryHeartbeatStaleTrial
  Callback``), on the journal file by checking that the recorded worker process (same host)
  is gone. So after a kill, ``arbkit tune`` again continues the study.

Each finished trial records, as user attributes: the effective config (``config``) and its
hash, the data manifest hash, the code version, the windows, every train metric
(``m.<metric>``) and test metric (``t.<metric>``), the engine time and the worker.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import socket
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.storages._heartbeat import get_heartbeat_thread  # (what Study.optimize uses)
from optuna.trial import TrialState

from arbkit.errors import ConfigError, StorageError
from arbkit.tune.evaluate import Evaluator, Outcome
from arbkit.tune.spec import StudySpec

optuna.logging.set_verbosity(optuna.logging.WARNING)
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
# ask/tell with a heartbeat storage: the heartbeat is run here (run_worker), not by optimize
warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used")

ENV_VAR = "ARBKIT_STORAGE"
HEADLINE = ("trades", "win_rate", "net_pnl", "max_drawdown", "sharpe", "trade_sharpe", "fees")
HEARTBEAT_S = 5
GRACE_S = 20
WAIT_OTHERS_S = 300  # how long a worker with nothing to do waits for the others' last trials
STOP = threading.Event()  # set by a signal handler: finish the trial in hand, then stop


@dataclass
class Storage:
    """Where a study lives: Optuna's storage and the results store, one place."""

    optuna_url: str  # journal:<path> or postgresql+psycopg://...
    results_url: str | None  # None: DuckDB file results_path
    results_path: Path
    masked: str  # for display: no password

    @property
    def journal(self) -> Path | None:
        """The journal file of the default file storage (None on PostgreSQL)."""
        if self.optuna_url.startswith("journal:"):
            return Path(self.optuna_url[len("journal:"):])
        return None

    def optuna(self, *, create: bool = True) -> optuna.storages.BaseStorage:
        """Optuna's storage. ``create=False`` (reading an existing study): a journal file that
        does not exist raises ``KeyError`` (no study) instead of being created empty."""
        path = self.journal
        if path is not None:
            from optuna.storages import JournalStorage
            from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

            if path.parent.exists() and not path.parent.is_dir():
                raise ConfigError(f"--results {path.parent}: is a file, not a folder; pass a "
                                  "folder (it is created when missing)")
            if path.exists() and not path.is_file():
                raise ConfigError(f"--results {path.parent}: {path} is a folder, not Optuna's "
                                  "journal file; pass another --results folder")
            if not create and not path.is_file():
                raise KeyError(str(path))
            path.parent.mkdir(parents=True, exist_ok=True)
            return JournalStorage(JournalFileBackend(str(path),
                                                     lock_obj=JournalFileOpenLock(str(path))))
        from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

        try:
            return RDBStorage(self.optuna_url, heartbeat_interval=HEARTBEAT_S,
                              grace_period=GRACE_S,
                              heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(3),
                              engine_kwargs={"pool_pre_ping": True,
                                             "connect_args": {"connect_timeout": 5}})
        except Exception as exc:  # noqa: BLE001 - sqlalchemy/psycopg/URL errors: one line
            raise StorageError(unreachable(self.masked, exc)) from None

    def store(self) -> Any:
        from arbkit.store import open_store

        return open_store(self.results_url, self.results_path)


def unreachable(masked: str, exc: BaseException) -> str:
    """One line for a database that cannot be used: what the driver said, and the fix."""
    reason = " ".join(str(getattr(exc, "orig", None) or exc).split())
    reason = reason.split("(Background on this error")[0].strip()[:200]
    return (f"--storage {masked}: cannot use this database ({reason}); check that PostgreSQL "
            "is running there and the host, port (1-65535), user and database are right, or "
            "leave --storage out for the files under results/")


def storage_for(url: str | None = None, results: str | Path = "results") -> Storage:
    """``url``: ``postgresql://...`` (or ``ARBKIT_STORAGE``), else the files under
    ``results``."""
    from arbkit.store import mask_url

    url = url or os.environ.get(ENV_VAR) or None
    res = Path(results)
    if url is None:
        return Storage(f"journal:{res / 'optuna.journal'}", None, res / "arbkit.duckdb",
                       f"{res / 'optuna.journal'} + {res / 'arbkit.duckdb'}")
    if url.startswith(("postgresql://", "postgres://")):
        rest = url.split("://", 1)[1]
        return Storage(f"postgresql+psycopg://{rest}", url, res / "arbkit.duckdb",
                       mask_url(url))
    raise ConfigError(f"--storage {mask_url(url)!r}: use postgresql://user@host:port/db, or "
                      "leave it out for the files under results/")


def make_sampler(spec: StudySpec, seed: int | None = None) -> optuna.samplers.BaseSampler:
    seed = spec.seed if seed is None else seed
    if spec.sampler in ("grid", "random"):  # grid: every point is enqueued (open_study)
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, multivariate=True)


def sampler_seed(spec: StudySpec, worker: int, n_existing: int) -> int:
    """The study's seed for the first worker of a new study (so one worker on a fresh study is
    reproducible); for any other worker, or a resumed study, a seed derived from it: every
    sampler started with the same seed proposes the same first points, so workers and resumes
    would re-run the same trials."""
    if worker == 0 and n_existing == 0:
        return spec.seed
    h = hashlib.sha256(f"{spec.seed}:{worker}:{n_existing}".encode()).digest()
    return int.from_bytes(h[:4], "little") & 0x7FFFFFFF


def suggest(trial: optuna.Trial, spec: StudySpec) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for p in spec.params:
        if p.choices is not None:
            out[p.name] = trial.suggest_categorical(p.name, list(p.choices))
        elif p.is_int:
            out[p.name] = trial.suggest_int(p.name, int(p.low), int(p.high),  # type: ignore[arg-type]
                                            step=int(p.step or 1), log=p.log)
        else:
            out[p.name] = trial.suggest_float(p.name, float(p.low), float(p.high),  # type: ignore[arg-type]
                                              step=None if p.step is None else float(p.step),
                                              log=p.log)
    return out


def budget(spec: StudySpec) -> int:
    """Trials to run: the study's, capped by the grid's size for a grid sampler."""
    if spec.sampler == "grid":
        return min(spec.trials, math.prod(len(p.choices or ()) for p in spec.params))
    return spec.trials


def open_study(spec: StudySpec, storage: Storage, seed: int | None = None) -> optuna.Study:
    st = storage.optuna()
    study = optuna.create_study(study_name=spec.name, storage=st,
                                sampler=make_sampler(spec, seed),
                                directions=list(spec.directions), load_if_exists=True)
    attrs = study.user_attrs
    if "spec" not in attrs:
        study.set_user_attr("spec", spec_record(spec))
        if spec.sampler == "grid":
            # Optuna's GridSampler stops the study from inside (Study.stop), which only works
            # under study.optimize; the points are enqueued instead, in declared order
            import itertools

            names = [p.name for p in spec.params]
            points = list(itertools.product(*(p.choices or () for p in spec.params)))
            for pt in points[:budget(spec)]:
                study.enqueue_trial(dict(zip(names, pt)), skip_if_exists=True)
    elif attrs["spec"].get("objectives") != list(spec.objectives):
        raise ConfigError(f"study {spec.name!r} already exists in {storage.masked} with "
                          f"objectives {attrs['spec'].get('objectives')}; use another "
                          "study.name, or `arbkit tune --fresh` to start it again")
    if attrs.get("budget") != budget(spec):  # the latest run's (--trials can raise it)
        study.set_user_attr("budget", budget(spec))
    if study.metric_names is None:  # optuna-dashboard then says "net_pnl", not "Objective 0"
        study.set_metric_names(list(spec.objectives))
    return study


def spec_record(spec: StudySpec) -> dict[str, Any]:
    """What the report and presets need to rebuild the study's data and windows."""
    return {"source": str(Path(spec.source).resolve()) if spec.source != "<study>" else "",
            "data": spec.data if spec.data.startswith("synth:") else str(spec.resolve(spec.data)),
            "config": spec.config, "objectives": list(spec.objectives),
            "directions": list(spec.directions), "sampler": spec.sampler, "seed": spec.seed,
            "trials": spec.trials, "min_trades": spec.min_trades, "batch": spec.batch,
            "split": {"kind": spec.split.kind, "train": spec.split.train,
                      "embargo_s": spec.split.embargo_s, "windows": spec.split.windows},
            "params": [p.name for p in spec.params],
            "fx": None if spec.fx is None else str(spec.resolve(spec.fx)),
            "funding": None if spec.funding is None else str(spec.resolve(spec.funding)),
            "stress_min_net": spec.stress_min_net,
            "stress_scenarios": list(spec.stress_scenarios)}


def worker_id() -> str:
    """``host:pid:start`` of this process (``start``: its start time in clock ticks since
    boot, from /proc; empty where there is none): a pid the system gave to another process
    since (pids wrap at 32768 here) is not mistaken for the worker still running."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{_started(pid)}"


def _started(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[19]  # field 22: starttime
    except (OSError, IndexError):
        return ""


def _pid_alive(pid: int, started: str = "") -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return not started or _started(pid) in ("", started)  # the same process, not a reuse


def retry_dead_trials(study: optuna.Study) -> int:
    """Fail and enqueue again the RUNNING trials whose worker process on this host is gone
    (the journal storage has no heartbeat; on PostgreSQL Optuna's heartbeat does this too)."""
    optuna.storages.fail_stale_trials(study)  # a no-op unless the storage has heartbeats
    host = socket.gethostname()
    n = 0
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        w = str(t.user_attrs.get("worker", t.system_attrs.get("arbkit_worker", "")))
        h, pid, started = _parse_worker(w)
        if h != host or not pid.isdigit() or _pid_alive(int(pid), started):
            continue
        try:
            study._storage.set_trial_user_attr(
                t._trial_id, "failed_because",
                "its worker stopped before it finished (killed or crashed); retried")
            study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        except Exception:  # noqa: BLE001 - another worker failed it first: not ours to retry
            continue
        study.enqueue_trial(t.params, user_attrs={"retry_of": t.number},
                            skip_if_exists=False)
        n += 1
    return n


def _parse_worker(w: str) -> tuple[str, str, str]:
    """(host, pid, start) of a ``worker`` attribute: ``host:pid:start`` or, written by an
    older arbkit, ``host:pid``."""
    parts = w.split(":")
    if len(parts) >= 3 and parts[-2].isdigit() and (parts[-1].isdigit() or not parts[-1]):
        return ":".join(parts[:-2]), parts[-2], parts[-1]
    h, _, pid = w.rpartition(":")
    return h, pid, ""


def run_worker(spec: StudySpec, storage: Storage, *, on_trial: Callable[[dict], None] | None
               = None, evaluator: Evaluator | None = None, max_trials: int | None = None,
               worker: int = 0) -> int:
    """Work on the study until it holds its budget of finished trials. Returns the number of
    trials this worker finished. ``worker`` numbers the processes of one ``arbkit tune``."""
    ev = evaluator or Evaluator(spec)
    n_existing = len(open_study(spec, storage).get_trials(deepcopy=False))
    study = open_study(spec, storage, seed=sampler_seed(spec, worker, n_existing))
    n_target = budget(spec)
    store = storage.store() if spec.save != "none" else None
    me = worker_id()
    done_here = 0
    idle = 0
    try:
        while max_trials is None or done_here < max_trials:
            if STOP.is_set():  # asked to stop (Ctrl-C, SIGTERM): between trials, never
                break          # inside a storage write
            retry_dead_trials(study)
            trials = study.get_trials(deepcopy=False)
            finished = sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
            running = sum(t.state == TrialState.RUNNING for t in trials)
            if finished >= n_target:
                break
            slots = n_target - finished - running
            if slots <= 0:  # the others are on the last trials; wait in case one dies
                idle += 1
                if idle * 2.0 > WAIT_OTHERS_S:  # a worker that never comes back (another
                    break  # host on the journal file): leave; the next run retries them
                time.sleep(min(2.0, 0.2 * idle))
                continue
            idle = 0
            k = max(1, min(spec.batch, slots))
            asked = []
            for _ in range(k):
                trial = study.ask()
                trial.set_user_attr("worker", me)
                if _surplus(study, trial.number, n_target):
                    trial.set_user_attr("surplus", True)  # (attributes before tell: after
                    study.tell(trial, state=TrialState.FAIL)  # it the trial is read-only)
                    continue
                asked.append((trial, suggest(trial, spec)))
            if not asked:
                continue
            told: set[int] = set()
            try:
                with contextlib.ExitStack() as beats:  # Optuna heartbeats (PostgreSQL)
                    for trial, _ in asked:
                        beats.enter_context(get_heartbeat_thread(trial._trial_id,
                                                                 study._storage))
                    t0 = time.perf_counter()
                    outcomes = ev.run([p for _, p in asked])
                engine_s = (time.perf_counter() - t0) / len(asked)
                for (trial, _params), out in zip(asked, outcomes):
                    row = record(study, trial, out, ev, engine_s, store, spec)
                    told.add(trial.number)
                    done_here += 1
                    if on_trial:
                        on_trial(row)
            except KeyboardInterrupt:  # Ctrl-C (or SIGTERM from the parent): hand back
                for trial, params in asked:
                    if trial.number not in told:
                        _give_back(study, trial, params)
                raise
    finally:
        if store is not None:
            store.close()
    return done_here


def _give_back(study: optuna.Study, trial: optuna.Trial, params: dict[str, Any]) -> None:
    """An interrupted trial: FAIL, and its parameters queued again for the next run."""
    try:
        trial.set_user_attr("failed_because", "interrupted before it finished; retried")
        study.tell(trial, state=TrialState.FAIL)
        study.enqueue_trial(params, user_attrs={"retry_of": trial.number},
                            skip_if_exists=False)
    except Exception:  # noqa: BLE001 - already finished elsewhere: nothing to give back
        pass


def _surplus(study: optuna.Study, number: int, n_target: int) -> bool:
    """True when this trial is past the budget (more live trials than asked for before it)."""
    live = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
    trials = study.get_trials(deepcopy=False, states=live)
    return sum(t.number <= number for t in trials) > n_target


def record(study: optuna.Study, trial: optuna.Trial, out: Outcome, ev: Evaluator,
           engine_s: float, store: Any, spec: StudySpec) -> dict[str, Any]:
    """User attributes, results store, tell. Returns the progress row."""
    from arbkit.store.base import code_version, to_json

    a = trial.set_user_attr
    a("data_hash", ev.data_hash)
    a("code_version", code_version())
    a("engine_s", round(engine_s, 6))
    a("windows", ev.spans())
    if out.config is not None:
        # one JSON string, not a nested dict: an attribute of every trial that Optuna keeps in
        # memory for the whole study (a dict costs ~5x the bytes; measured in bench_tune)
        a("config", to_json(out.config.to_dict()))
        a("config_hash", out.config.config_hash())
    # every metric, train and test, as two JSON strings (one journal entry each: an attribute
    # per metric made ~130 entries per trial, and Optuna keeps them all in memory), plus the
    # headline ones as their own attributes (columns in optuna-dashboard)
    a("metrics", json.dumps({k: _num(v) for k, v in out.metrics.items()}))
    a("test_metrics", json.dumps({k: _num(v) for k, v in out.test_metrics.items()}))
    for k in HEADLINE:
        if k in out.metrics:
            a(f"m.{k}", _num(out.metrics[k]))
        if k in out.test_metrics:
            a(f"t.{k}", _num(out.test_metrics[k]))
    a("test_values", [_num(v) for v in out.test_values])
    if out.stress_worst:  # study.stress_min_net
        a("m.stress_worst_net", _num(out.metrics["stress_worst_net"]))
        a("stress_worst", out.stress_worst)
    run_ids = []
    if store is not None and out.config is not None:
        parts = [("train", k, r) for k, r in enumerate(out.train)]
        parts += [("test", k, r) for k, r in enumerate(out.test)]
        for part, k, res in parts:
            res.meta["data_hash"] = ev.data_hash
            if spec.save == "runs":
                res = _runs_only(res)
            run_ids.append(store.save_run(res, study=spec.name, trial=trial.number,
                                          params=out.params,
                                          extra={"part": part, "fold": k}))
        a("run_ids", run_ids)
    if out.prune_reason:
        a("pruned_because", out.prune_reason)
        study.tell(trial, state=TrialState.PRUNED)
        state = "PRUNED"
    else:
        study.tell(trial, out.values if len(out.values) > 1 else out.values[0])
        state = "COMPLETE"
    m = out.metrics
    return {"number": trial.number, "state": state, "values": out.values,
            "trades": m.get("trades", math.nan), "win_rate": m.get("win_rate", math.nan),
            "net_pnl": m.get("net_pnl", math.nan), "max_drawdown": m.get("max_drawdown", math.nan),
            "params": out.params, "reason": out.prune_reason, "engine_s": engine_s}


def _runs_only(res: Any) -> Any:
    import dataclasses

    import polars as pl

    empty = pl.DataFrame()
    return dataclasses.replace(res, trades=res.trades.clear(), fills=empty, equity=empty,
                               guards=empty)


def _num(v: Any) -> Any:
    """JSON has no NaN or infinity (and optuna-dashboard parses strict JSON): they are stored
    as the strings "nan", "inf", "-inf"; ``float()`` reads them back."""
    if isinstance(v, float) and not math.isfinite(v):
        return repr(v)
    return v


def trial_metrics(trial: optuna.trial.FrozenTrial, part: str = "train") -> dict[str, float]:
    """Every metric a trial recorded (``part`` = train or test), as floats."""
    raw = trial.user_attrs.get("metrics" if part == "train" else "test_metrics")
    if not raw:
        return {}
    return {k: math.nan if v is None else float(v) for k, v in json.loads(raw).items()}
