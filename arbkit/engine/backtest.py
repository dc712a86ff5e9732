"""Backtest runner: config + data → kernel state → run_chunk until done → result frames.

The same ``Runner`` drives the array backtest, chunked (bigger-than-memory) runs and the
event-by-event feed of paper/live: it only ever calls ``run_chunk`` with a slice of events.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from arbkit.config import Config, load_config
from arbkit.core import types as T
from arbkit.core.loop import ROOM, finish, run_chunk, start
from arbkit.data.events import EventArrays, build_events
from arbkit.engine.state import KernelState, build_state, feasibility, grow
from arbkit.errors import ConfigError, EngineError

# Orders written while the clock and the event index stand still: past this, the kernel is in a
# retry loop at one instant (a bug), and the run stops with an error instead of growing its
# buffers until the machine runs out of memory.
STUCK_ORDERS = 1_000_000


class Runner:
    """Owns kernel state for one configuration and feeds it events."""

    def __init__(self, cfg: Config, arrays: EventArrays, capacity: int = 4096) -> None:
        problems = feasibility(cfg)
        if problems and not cfg.strategy.allow_infeasible:
            raise ConfigError(
                "infeasible strategy: " + "; ".join(problems)
                + " (fix the config, or set strategy.allow_infeasible = true to run anyway)"
            )
        self.cfg = cfg
        self.arrays = arrays
        self.problems = problems
        self.state: KernelState = build_state(
            cfg, arrays.inst_keys, arrays.n_levels, arrays.use_exch, capacity
        )
        self.finished = False

    def feed(self, events: np.ndarray) -> None:
        """Process a chunk (any size, including one event) of the time-sorted event array."""
        if events.shape[0] == 0:
            return
        start(self.state, int(events[0]["ts_recv"]))
        k = 0
        spot, base = (-1, -1), 0
        while True:
            status, k = run_chunk(self.state, events, self.arrays.depth, k)
            if status == T.S_DONE:
                return
            g = self.state.glob[0]
            here = (k, int(g["now"]))
            if here != spot:
                spot, base = here, int(g["n_orders"])
            elif int(g["n_orders"]) - base > STUCK_ORDERS:
                raise EngineError(
                    f"engine stuck at ts={here[1]} (event {k}): {int(g['n_orders']) - base} orders "
                    "written without the clock advancing; this is a bug, please report it with "
                    "the data and config")
            # the largest room one step asks for (has_room in loop.run_chunk)
            self.state = grow(self.state, extra=ROOM * self.state.orders.shape[0])

    def finish(self) -> None:
        """Settle in-flight orders and mark open round trips at the end of data."""
        if self.finished:
            return
        self.state = grow(self.state, extra=64 * (len(self.state.route) + len(self.state.orders)))
        finish(self.state)
        self.finished = True


@dataclass
class BacktestResult:
    """Result frames of one run (all polars)."""

    trades: pl.DataFrame
    fills: pl.DataFrame
    orders: pl.DataFrame
    equity: pl.DataFrame
    legs: pl.DataFrame
    opportunities: pl.DataFrame
    summary: pl.DataFrame
    config: Config
    meta: dict[str, Any] = field(default_factory=dict)

    def metric(self, name: str) -> float:
        row = self.summary.filter(pl.col("metric") == name)
        if row.height == 0:
            raise KeyError(name)
        return float(row.get_column("value")[0])


def run_arrays(cfg: Config, arrays: EventArrays, *, chunk: int | None = None) -> Runner:
    """Run the whole event array (optionally in chunks of ``chunk`` events)."""
    runner = Runner(cfg, arrays)
    ev = arrays.events
    step = chunk or max(1, ev.shape[0])
    for lo in range(0, ev.shape[0], step):
        runner.feed(ev[lo:lo + step])
    runner.finish()
    return runner


def backtest(data: Any, config: Any, *, chunk: int | None = None) -> BacktestResult:
    """Run a backtest.

    Parameters
    ----------
    data : path to a Parquet file or folder, or a canonical quotes ``polars.DataFrame``.
    config : path to a TOML file, or a ``Config``.
    chunk : feed the loop in chunks of this many events (results are identical).

    Examples
    --------
    >>> import arbkit
    >>> res = arbkit.backtest("data/samples/synth-normal", "data/samples/synth-normal/config.toml")  # doctest: +SKIP
    >>> res.summary  # doctest: +SKIP
    """
    from arbkit.data.load import read_quotes
    from arbkit.metrics.summary import build_result

    cfg = config if isinstance(config, Config) else load_config(config)
    t0 = time.perf_counter()
    if isinstance(data, pl.DataFrame):
        from arbkit.data.validate import validate_quotes

        report = validate_quotes(data, "<frame>")
        frame = report.frame
        source = "<frame>"
    elif is_catalog(data):
        # a catalog root: read only the configured instruments' files
        from arbkit.data.catalog import Catalog, selection_of

        frame, report = Catalog(data).read(selection_of([i.key for i in cfg.instruments]))
        source = str(data)
    else:
        frame, report = read_quotes(data)
        source = str(data)
    keys = [i.key for i in cfg.instruments]
    arrays = build_events(frame, keys, timeline=cfg.run.timeline, source=source)
    t1 = time.perf_counter()
    runner = run_arrays(cfg, arrays, chunk=chunk)
    t2 = time.perf_counter()
    meta = {
        "source": source, "events": int(arrays.events.shape[0]), "load_s": t1 - t0,
        "run_s": t2 - t1, "crossed_rows": int(getattr(report, "crossed_rows", 0)),
        "clock_offset_ns": arrays.clock_offset_ns, "use_exch": arrays.use_exch,
        "infeasible": runner.problems, "dropped_rows": arrays.dropped_rows,
    }
    return build_result(runner, meta)


def is_catalog(path: Any) -> bool:
    """True for a catalog root (a folder with ``quotes/venue=*`` inside), see data/catalog.py."""
    from pathlib import Path

    p = Path(path)
    return p.is_dir() and any((p / "quotes").glob("venue=*"))


def state_frames(state: KernelState) -> dict[str, pl.DataFrame]:
    """Copy the used part of each output buffer into a polars frame."""
    g = state.glob[0]
    n = {"fills": g["n_fills"], "olog": g["n_orders"], "trades": g["n_trades"],
         "equity": g["n_equity"], "legs": g["n_legs"]}
    return {k: pl.from_numpy(getattr(state, k)[: int(v)].copy()) for k, v in n.items()}
