"""Tuning throughput: trials/s on a 1M-event study with the Optuna + storage overhead beside
the engine time, the grid fast path on 1 vs 2 cores, and memory across 500 trials.

    .venv/bin/python benchmarks/bench_tune.py [--events 1000000] [--trials 20]
        [--grid-sets 8] [--memory-trials 500] [--skip trials,grid,memory]

Each part prints its figures; docs/benchmarks.md records them.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

STUDY = """
[study]
name = "{name}"
data = "{data}"
config = "{config}"
trials = {trials}
sampler = "{sampler}"
seed = 1
objectives = ["net_pnl"]
min_trades = 0
batch = {batch}
save = "{save}"

[split]
kind = "holdout"
train = 0.7

[space]
"strategy.entry_bps" = {{ low = 0.0, high = 5.0 }}
"strategy.stop_loss_bps" = {{ low = 4.0, high = 30.0 }}
"strategy.max_hold_s" = {{ low = 30.0, high = 900.0, log = true }}
"""


def rss_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def study(tmp: Path, scen: Path, name: str, trials: int, *, sampler: str = "random",
          batch: int = 1, save: str = "all"):
    from arbkit.tune import load_study

    p = tmp / f"{name}.toml"
    p.write_text(STUDY.format(name=name, data=scen / "quotes.parquet",
                              config=scen / "config.toml", trials=trials, sampler=sampler,
                              batch=batch, save=save))
    return load_study(p)


def part_trials(tmp: Path, scen: Path, n: int) -> None:
    from arbkit.tune import storage_for
    from arbkit.tune.evaluate import Evaluator
    from arbkit.tune.study import run_worker

    print(f"\n== trials/s on a {scen.name} study ({n} trials, random sampler, holdout 70/30: "
          "two engine runs per trial) ==")
    print(f"{'storage':<15} {'save':<5} {'batch':>5} {'trials/s':>9} {'per trial s':>12} "
          f"{'engine s':>9} {'overhead s':>11}")
    for save, batch in (("all", 1), ("runs", 1), ("none", 1), ("none", 4)):
        spec = study(tmp, scen, f"bt_{save}_{batch}", n, save=save, batch=batch)
        st = storage_for(None, tmp / f"res_{save}_{batch}")
        ev = Evaluator(spec)  # data loaded once per worker: not part of a trial
        engine = []
        t0 = time.perf_counter()
        run_worker(spec, st, evaluator=ev, on_trial=lambda r, e=engine: e.append(r["engine_s"]))
        wall = time.perf_counter() - t0
        per = wall / n
        eng = sum(engine) / len(engine)
        print(f"{'journal+duckdb':<15} {save:<5} {batch:>5} {n / wall:>9.2f} {per:>12.3f} "
              f"{eng:>9.3f} {per - eng:>11.3f}")


def part_grid(scen: Path, k: int) -> None:
    import numba

    from arbkit.config import load_config
    from arbkit.engine.backtest import prepare, run_prepared
    from arbkit.engine.sweep import run_batch
    from arbkit.tune import apply_params

    cfg0 = load_config(scen / "config.toml")
    prep = prepare(scen / "quotes.parquet", cfg0)
    n_ev = prep.arrays.events.shape[0]
    cfgs = [apply_params(cfg0, {"strategy.entry_bps": 0.25 * j, "strategy.max_hold_s": 300.0})
            for j in range(k)]
    run_batch(cfgs[:2], prep)  # compile / load the parallel kernel
    print(f"\n== grid fast path: {k} parameter sets x {n_ev:,} events ==")
    print(f"{'mode':<28} {'s':>7} {'sets x events/s':>16} {'vs 1 core':>10}")
    best = {}
    for threads in (1, 2):
        numba.set_num_threads(threads)
        ts = []
        for _ in range(3):
            t0 = time.perf_counter()
            run_batch(cfgs, prep)
            ts.append(time.perf_counter() - t0)
        best[threads] = min(ts)
    t0 = time.perf_counter()
    for c in cfgs:
        run_prepared(c, prep)
    seq = time.perf_counter() - t0
    for label, s in (("one by one (run_prepared)", seq), ("run_batch, 1 thread", best[1]),
                     ("run_batch, 2 threads", best[2])):
        print(f"{label:<28} {s:>7.2f} {k * n_ev / s / 1e6:>14.1f} M {best[1] / s:>9.2f}x")
    print("(times include building each run's result frames, which is serial Python)")
    import numpy as np
    from numba.typed import List

    from arbkit.core import sweep
    from arbkit.core.loop import start
    from arbkit.engine.backtest import Runner

    ev = prep.arrays.events
    kern = {}
    for threads in (1, 2):
        numba.set_num_threads(threads)
        ts = []
        for _ in range(3):
            runners = [Runner(c, prep.arrays, capacity=1 << 16) for c in cfgs]
            for r in runners:
                start(r.state, int(ev[0]["ts_recv"]))
            states = List([r.state for r in runners])
            starts = np.zeros(k, np.int64)
            status = np.zeros(k, np.int64)
            t0 = time.perf_counter()
            sweep.run_many(states, ev, prep.arrays.depth, starts, status)
            ts.append(time.perf_counter() - t0)
            assert (status == sweep.DONE).all()
        kern[threads] = min(ts)
    print(f"kernel only (run_many): 1 thread {k * n_ev / kern[1] / 1e6:.1f} M, 2 threads "
          f"{k * n_ev / kern[2] / 1e6:.1f} M sets x events/s: {kern[1] / kern[2]:.2f}x")


def part_memory(tmp: Path, scen: Path, n: int) -> None:
    from arbkit.tune import storage_for
    from arbkit.tune.evaluate import Evaluator
    from arbkit.tune.study import run_worker

    spec = study(tmp, scen, "mem", n, sampler="tpe", save="all")
    st = Evaluator(spec)
    storage = storage_for(None, tmp / "mem")
    marks: dict[int, float] = {}

    def on(row: dict) -> None:
        k = row["number"] + 1
        if k in (50, 100, 200, 300, 400, 500) or k == n:
            marks[k] = rss_mib()

    t0 = time.perf_counter()
    run_worker(spec, storage, evaluator=st, on_trial=on)
    wall = time.perf_counter() - t0
    print(f"\n== memory across {n} trials (TPE, journal + DuckDB, every frame saved; "
          f"{wall:.0f} s) ==")
    base = marks.get(50, next(iter(marks.values())))
    for k, v in sorted(marks.items()):
        print(f"after trial {k:>4}: RSS {v:7.1f} MiB  ({100 * (v / base - 1):+5.1f}% vs trial 50)")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--grid-sets", type=int, default=8)
    ap.add_argument("--memory-trials", type=int, default=500)
    ap.add_argument("--memory-events", type=int, default=40_000)
    ap.add_argument("--skip", default="")
    a = ap.parse_args()
    skip = set(a.skip.split(",")) - {""}
    from arbkit.data.synth import write_scenario

    tmp = Path(tempfile.mkdtemp(prefix="arbkit-bench-tune-"))
    cwd = os.getcwd()
    os.chdir(tmp)
    try:
        scen = write_scenario("normal", tmp / f"normal_{a.events}", n_events=a.events)
        print(f"data: synthetic 'normal', {a.events:,} quote rows; machine: {os.cpu_count()} "
              "cores")
        if "trials" not in skip:
            part_trials(tmp, scen, a.trials)
        if "grid" not in skip:
            part_grid(scen, a.grid_sets)
        if "memory" not in skip:
            small = write_scenario("normal", tmp / "small", n_events=a.memory_events)
            part_memory(tmp, small, a.memory_trials)
    finally:
        os.chdir(cwd)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
