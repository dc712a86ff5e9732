"""Plant money bugs one at a time and count how many the kernel test subset catches.

Each mutant is one textual change to arbkit/core or arbkit/metrics (a bug a real change could
make: a sign, a comparison, a unit, a forgotten term). For each, a scratch copy of the
package and the tests gets the change, a fresh numba cache (so no compiled code of the
original survives), and the test subset runs against it; the mutant is *caught* when a test
fails. A mutant that is not caught names a gap in the suite.

    .venv/bin/python scripts/mutants.py            # all mutants, 2 at a time
    .venv/bin/python scripts/mutants.py -k sqrt -j 1

Prints one line per mutant and the score; exit status 1 when any mutant survives.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = ["tests/acceptance/test_golden.py", "tests/acceptance/test_trading_truth.py",
         "tests/acceptance/test_fx_funding.py", "tests/acceptance/test_portfolio.py",
         "tests/unit/test_metrics.py", "tests/property/test_reference.py",
         "tests/property/test_accounting.py"]


@dataclass(frozen=True)
class Mutant:
    name: str
    path: str
    old: str
    new: str


MUTANTS = [
    Mutant("entry threshold >= becomes >", "arbkit/core/strategy.py",
           "        elif best_d * 4e4 >= thr * sum4:", "        elif best_d * 4e4 > thr * sum4:"),
    Mutant("entry threshold >= becomes > (new-miss branch)", "arbkit/core/strategy.py",
           "            if best_d * 4e4 >= thr * sum4:", "            if best_d * 4e4 > thr * sum4:"),
    Mutant("Sharpe annualised with sqrt(252)", "arbkit/metrics/summary.py",
           "sharpe = mean / sd * math.sqrt(365)", "sharpe = mean / sd * math.sqrt(252)"),
    Mutant("win rate counts zero-PnL trades as wins", "arbkit/metrics/summary.py",
           '"win_rate": float((net > 0).mean()),', '"win_rate": float((net >= 0).mean()),'),
    Mutant("profit factor over all gross", "arbkit/metrics/summary.py",
           "float(wins / losses) if losses > 0", "float(wins / (losses + wins)) if losses > 0"),
    Mutant("expectancy is the median", "arbkit/metrics/summary.py",
           '"expectancy": float(net.mean()),', '"expectancy": float(np.median(net)),'),
    Mutant("drawdown % of the trough, not the peak", "arbkit/metrics/summary.py",
           "float(dd[k] / peak[k])", "float(dd[k] / eq[k])"),
    Mutant("time in market over the span with its gaps", "arbkit/metrics/summary.py",
           '- int(g["gaps_ns"])', '- 0'),
    Mutant("taker fee halved", "arbkit/core/orders.py",
           'fee = filled * px * inst["fee_rate"]  # its value', 'fee = filled * px * inst["fee_rate"] * 0.5  # its value'),
    Mutant("slippage sign flipped", "arbkit/core/ledger.py",
           'slip = side * qty * (px - o["dec_px"]) * fx0', 'slip = side * qty * (o["dec_px"] - px) * fx0'),
    Mutant("IOC limit twice the slippage bound", "arbkit/core/orders.py",
           "px = math.floor(touch * (1.0 + bound) / tick + 1e-9) * tick",
           "px = math.floor(touch * (1.0 + 2.0 * bound) / tick + 1e-9) * tick"),
    Mutant("funding sign flipped for the round trip", "arbkit/core/carry.py",
           "q = -share * mark * rate", "q = share * mark * rate"),
    Mutant("funding counted twice (no remainder taken out)", "arbkit/core/carry.py",
           "            rest -= q\n", "            rest -= 0.0\n"),
    Mutant("open trade's net marked at mid, not executable", "arbkit/core/ledger.py",
           'rec["net_pnl"] = (ex_a + ex_b) if is_open else net_mid',
           'rec["net_pnl"] = net_mid'),
    Mutant("closed trade's foreign cash never realised", "arbkit/core/ledger.py",
           '        rec["conv_q"] += q\n', '        rec["conv_q"] += 0.0\n'),
    Mutant("entry premium sign flipped", "arbkit/core/strategy.py",
           'rt["entry_prem_bps"] = (mid_b - mid_a) * inv', 'rt["entry_prem_bps"] = (mid_a - mid_b) * inv'),
    Mutant("treasury: inventory revalued at the end FX only", "arbkit/metrics/breakdown.py",
           "v += pos0 * (mid_end * fx_end - m0 * fx0)", "v += pos0 * (mid_end - m0) * fx_end"),
    Mutant("events of one timestamp applied one at a time", "arbkit/core/loop.py",
           '(k + 1 < n and ev[k + 1]["ts_recv"] == t)', "(k + 1 < n and False)"),
    Mutant("a fill may exceed the order (no remaining cap)", "arbkit/core/book.py",
           "got = floor_lot(avail if avail < remaining else remaining, lot)",
           "got = floor_lot(avail, lot)"),
    Mutant("balance cap ignored in sizing", "arbkit/core/strategy.py",
           'qty = floor_lot(min(qty, depth_q, bal_q), rt["lot"])',
           'qty = floor_lot(min(qty, depth_q), rt["lot"])'),
]


def run_one(m: Mutant, timeout: int) -> tuple[str, str, float]:
    """('caught' | 'SURVIVED' | 'error: ...', the failing test or reason, seconds)."""
    t0 = time.monotonic()
    scratch = Path(tempfile.mkdtemp(prefix="arbkit-mutant-"))
    try:
        for part in ("arbkit", "tests", "data", "studies"):
            src = ROOT / part
            if src.exists():
                shutil.copytree(src, scratch / part,
                                ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        shutil.copy(ROOT / "pyproject.toml", scratch / "pyproject.toml")
        target = scratch / m.path
        text = target.read_text()
        if text.count(m.old) < 1:
            return "error", f"pattern not found in {m.path}", 0.0
        target.write_text(text.replace(m.old, m.new, 1))
        env = dict(os.environ, PYTHONPATH=str(scratch), NUMBA_CACHE_DIR=str(scratch / ".nb"),
                   ARBKIT_EXAMPLES_SCALE="0.3")  # the property tests, smaller
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
             "--no-header", *TESTS],
            cwd=scratch, env=env, capture_output=True, text=True, timeout=timeout)
        out = proc.stdout.splitlines()
        failed = [ln for ln in out if ln.startswith(("FAILED", "ERROR"))]
        if proc.returncode == 0:
            return "SURVIVED", "", time.monotonic() - t0
        if proc.returncode == 1 and failed:
            return "caught", failed[0].split(" - ")[0].removeprefix("FAILED "), \
                time.monotonic() - t0
        return "error", (out[-1] if out else proc.stderr[-200:]), time.monotonic() - t0
    except subprocess.TimeoutExpired:
        return "error", f"timed out after {timeout}s", time.monotonic() - t0
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-k", default="", help="only mutants whose name contains this")
    ap.add_argument("-j", type=int, default=2, help="mutants run at once (default 2)")
    ap.add_argument("--timeout", type=int, default=1500, help="seconds per mutant")
    args = ap.parse_args()
    todo = [m for m in MUTANTS if args.k.lower() in m.name.lower()]
    print(f"{len(todo)} mutants, test subset: {' '.join(TESTS)}", flush=True)
    results = []
    with ThreadPoolExecutor(max_workers=args.j) as pool:
        for m, verdict, detail, secs in pool.map(lambda m: (m, *run_one(m, args.timeout)), todo):
            print(f"{verdict:9s} {secs:6.0f}s  {m.name}  [{m.path}]  {detail}", flush=True)
            results.append((m, verdict, detail, secs))
    caught = sum(v == "caught" for _, v, _, _ in results)
    errors = sum(v == "error" for _, v, _, _ in results)
    print(f"score: {caught} of {len(todo)} mutants caught"
          + (f" ({errors} could not run)" if errors else ""))
    return 0 if caught == len(todo) else 1


if __name__ == "__main__":
    raise SystemExit(main())
