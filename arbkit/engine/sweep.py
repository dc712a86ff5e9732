"""Run many configs over the same prepared events, in parallel.

>>> from arbkit.engine.backtest import prepare
>>> prep = prepare("data/samples/binance_btcusdt_spot_usdm.parquet", cfgs[0])  # doctest: +SKIP
>>> results = run_batch(cfgs, prep)                                            # doctest: +SKIP

Every config must load the same instruments in the same order (only strategy, risk and other
per-route settings may differ); the results are identical, bit for bit, to
``run_prepared(cfg, prep)`` for each config alone.

Two ways to spread the work over the cores:

- ``lanes`` (the default): one worker thread per core takes the next config, runs it through
  the loop (compiled ``nogil``: the threads run it at the same time) and builds its result
  frames (Python and polars, under the GIL) while the other threads are still in the loop.
  Building a result is ~1/5 of a 1M-event run, so it hides behind the other lanes' loops.
- ``prange``: one numba call (``core/sweep.py::run_many``) advances every state at once;
  the result frames are then built one after the other, which is why it scales worse end to
  end than the loop alone (``docs/benchmarks.md``, "Grid sweep"). Kept for comparison.

Threads: ``numba.get_num_threads()`` (``NUMBA_NUM_THREADS``, ``numba.set_num_threads``).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
from numba.typed import List

from arbkit.config import Config
from arbkit.core import sweep
from arbkit.core import types as T
from arbkit.core.loop import ROOM, start
from arbkit.engine.backtest import BacktestResult, Prepared, Runner, result_of
from arbkit.engine.state import grow
from arbkit.errors import ConfigError

MODES = ("lanes", "prange")


def run_batch(cfgs: list[Config], prep: Prepared, *, mode: str = "lanes",
              threads: int | None = None) -> list[BacktestResult]:
    """One result per config (in order), computed in parallel over the shared events.

    ``threads``: worker threads (default ``numba.get_num_threads()``); ``mode``: ``lanes`` or
    ``prange`` (module doc). Results do not depend on either.
    """
    keys = prep.arrays.inst_keys
    for c in cfgs:
        if [i.key for i in c.instruments] != keys:
            raise ConfigError("run_batch: every config must have the instruments "
                              f"{keys} in this order; got {[i.key for i in c.instruments]}")
    if mode not in MODES:
        raise ConfigError(f"run_batch: mode {mode!r}; use one of {MODES}")
    n = threads or numba.get_num_threads()
    if mode == "prange":
        return _prange(cfgs, prep)
    return _lanes(cfgs, prep, max(1, min(n, len(cfgs))))


def _one(cfg: Config, prep: Prepared) -> BacktestResult:
    """A config run alone, as ``run_prepared`` runs it (state sized for the span first)."""
    t0 = time.perf_counter()
    runner = _runner(cfg, prep)
    ev = prep.arrays.events
    runner.feed(ev)
    runner.finish()
    return result_of(runner, prep, time.perf_counter() - t0)


def _lanes(cfgs: list[Config], prep: Prepared, n: int) -> list[BacktestResult]:
    if n == 1:
        return [_one(c, prep) for c in cfgs]
    with ThreadPoolExecutor(n, thread_name_prefix="arbkit-lane") as pool:
        return list(pool.map(lambda c: _one(c, prep), cfgs))


def _runner(cfg: Config, prep: Prepared) -> Runner:
    """A runner whose equity buffer already holds one sample per ``equity_interval_s`` of
    the events' span, so a long run is not stopped to grow it (a guess: growing stays
    possible, and changes nothing but the time)."""
    r = Runner(cfg, prep.arrays, kinds=prep.kinds)
    ev = prep.arrays.events
    if ev.shape[0]:
        span_s = (int(ev[-1]["ts_recv"]) - int(ev[0]["ts_recv"])) / 1e9
        want = int(span_s / max(cfg.run.equity_interval_s, 1e-3)) + 64
        if want > r.state.equity.shape[0]:
            r.state = r.state._replace(equity=np.zeros(want, T.EQUITY_DTYPE))
    return r


def _prange(cfgs: list[Config], prep: Prepared) -> list[BacktestResult]:
    """Every state advanced by one parallel numba call (grown ones again until done), then
    each result built in turn."""
    t0 = time.perf_counter()
    runners = [_runner(c, prep) for c in cfgs]
    ev, depth = prep.arrays.events, prep.arrays.depth
    if ev.shape[0]:
        for r in runners:
            r.n_fed = int(ev.shape[0])
            start(r.state, int(ev[0]["ts_recv"]))
        starts = np.zeros(len(runners), np.int64)
        status = np.zeros(len(runners), np.int64)
        states = List([r.state for r in runners])
        while True:
            sweep.run_many(states, ev, depth, starts, status)
            full = np.nonzero(status == sweep.FULL)[0]
            if full.shape[0] == 0:
                break
            for j in full:  # grow and go on from where it stopped (as Runner.feed does)
                r = runners[j]
                r.state = grow(r.state, extra=ROOM * r.state.orders.shape[0])
                states[int(j)] = r.state
                status[j] = 0
    for r in runners:
        r.finish()
    run_s = (time.perf_counter() - t0) / max(1, len(runners))
    return [result_of(r, prep, run_s) for r in runners]
