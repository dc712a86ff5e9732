"""A/B the core loop of two checkouts on this machine, alternating, in fresh processes.

On a machine whose CPU share drifts (docs/benchmarks.md), two numbers taken minutes apart do
not show a regression; runs interleaved on the same data do. Each round runs bench_core's
config over the same synthetic L1 events in a fresh process per checkout (its own numba cache
is used: compile first), best of 5 per process.

    git worktree add /tmp/arbkit-old <rev>
    .venv/bin/python benchmarks/bench_ab.py /tmp/arbkit-old . [--events 3000000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

PROBE = """
import sys, time, importlib.util
root = {root!r}
sys.path.insert(0, root)
spec = importlib.util.spec_from_file_location("bc", root + "/benchmarks/bench_core.py")
bc = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bc)
from arbkit.config import load_config_text
from arbkit.data.events import build_events
from arbkit.data.synth import generate_l1_events_fast
from arbkit.engine.backtest import run_arrays
cfg = load_config_text(bc.CONFIG)
arr = build_events(generate_l1_events_fast({n}), [i.key for i in cfg.instruments])
run_arrays(cfg, arr)
best = 1e9
for _ in range(5):
    t = time.perf_counter()
    r = run_arrays(cfg, arr)
    best = min(best, time.perf_counter() - t)
print({n} / best / 1e6, int(r.state.glob[0]["n_trades"]))
"""


def run(root: Path, n: int) -> tuple[float, int]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    out = subprocess.run([sys.executable, "-c", PROBE.format(root=str(root), n=n)],
                         capture_output=True, text=True, env=env, check=True).stdout.split()
    return float(out[0]), int(out[1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("a", type=Path)
    ap.add_argument("b", type=Path)
    ap.add_argument("--events", type=int, default=3_000_000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    res: dict[Path, list[float]] = {args.a.resolve(): [], args.b.resolve(): []}
    for k in range(args.rounds):
        order = list(res) if k % 2 == 0 else list(res)[::-1]
        for root in order:
            rate, trades = run(root, args.events)
            res[root].append(rate)
            print(f"round {k + 1}: {root}: {rate:.1f} M events/s ({trades} trades)", flush=True)
    for root, rates in res.items():
        print(f"{root}: median {statistics.median(rates):.1f} M events/s over {len(rates)} "
              f"processes (min {min(rates):.1f}, max {max(rates):.1f})")


if __name__ == "__main__":
    main()
