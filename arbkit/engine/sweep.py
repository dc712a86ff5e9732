"""Run many configs over the same prepared events in one parallel numba call.

>>> from arbkit.engine.backtest import prepare
>>> prep = prepare("data/samples/binance_btcusdt_spot_usdm.parquet", cfgs[0])  # doctest: +SKIP
>>> results = run_batch(cfgs, prep)                                            # doctest: +SKIP

Every config must load the same instruments in the same order (only strategy, risk and other
per-route settings may differ); the results are identical, bit for bit, to
``run_prepared(cfg, prep)`` for each config alone.
"""

from __future__ import annotations

import time

import numpy as np
from numba.typed import List

from arbkit.config import Config
from arbkit.core import sweep
from arbkit.core.loop import ROOM, start
from arbkit.engine.backtest import BacktestResult, Prepared, Runner, result_of
from arbkit.engine.state import grow
from arbkit.errors import ConfigError


def run_batch(cfgs: list[Config], prep: Prepared) -> list[BacktestResult]:
    """One result per config, computed in parallel over the shared events."""
    keys = prep.arrays.inst_keys
    for c in cfgs:
        if [i.key for i in c.instruments] != keys:
            raise ConfigError("run_batch: every config must have the instruments "
                              f"{keys} in this order; got {[i.key for i in c.instruments]}")
    t0 = time.perf_counter()
    runners = [Runner(c, prep.arrays, kinds=prep.kinds) for c in cfgs]
    ev, depth = prep.arrays.events, prep.arrays.depth
    if ev.shape[0]:
        for r in runners:
            r.n_fed = int(ev.shape[0])
            start(r.state, int(ev[0]["ts_recv"]))
        starts = np.zeros(len(runners), np.int64)
        status = np.zeros(len(runners), np.int64)
        while True:
            states = List([r.state for r in runners])
            sweep.run_many(states, ev, depth, starts, status)
            full = np.nonzero(status == sweep.FULL)[0]
            if full.shape[0] == 0:
                break
            for j in full:  # grow and go on from where it stopped (as Runner.feed does)
                r = runners[j]
                r.state = grow(r.state, extra=ROOM * r.state.orders.shape[0])
                status[j] = 0
    for r in runners:
        r.finish()
    run_s = (time.perf_counter() - t0) / max(1, len(runners))
    return [result_of(r, prep, run_s) for r in runners]
