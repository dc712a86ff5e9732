"""Backtest runner: config + data → kernel state → run_chunk until done → result frames.

The same ``Runner`` drives the array backtest, chunked (bigger-than-memory) runs and the
event-by-event feed of paper/live: it only ever calls ``run_chunk`` with a slice of events.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from arbkit.config import Config, load_config
from arbkit.data.events import EventArrays, build_events
from arbkit.engine.session import AUTO_GAP_S, STUCK_ORDERS, Session, gap_limit_s  # noqa: F401
from arbkit.engine.state import KernelState
from arbkit.errors import ArbkitError, ConfigError

# The backtest drives a Session (engine/session.py) like every other mode.
Runner = Session


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
    routes: pl.DataFrame = field(default_factory=pl.DataFrame)  # one row per route
    symbols: pl.DataFrame = field(default_factory=pl.DataFrame)  # routes summed by base asset
    venues: pl.DataFrame = field(default_factory=pl.DataFrame)  # per venue:symbol balances
    wallets: pl.DataFrame = field(default_factory=pl.DataFrame)  # spot wallets (core/wallet.py)
    guards: pl.DataFrame = field(default_factory=pl.DataFrame)  # the risk-guard log

    def metric(self, name: str) -> float:
        row = self.summary.filter(pl.col("metric") == name)
        if row.height == 0:
            raise KeyError(name)
        return float(row.get_column("value")[0])


def run_arrays(cfg: Config, arrays: EventArrays, *, chunk: int | None = None,
               signal: Any = None, kinds: dict[str, str] | None = None) -> Runner:
    """Run the whole event array (optionally in chunks of ``chunk`` events)."""
    runner = Runner(cfg, arrays, signal=signal, kinds=kinds)
    ev = arrays.events
    step = chunk or max(1, ev.shape[0])
    for lo in range(0, ev.shape[0], step):
        runner.feed(ev[lo:lo + step])
    runner.finish()
    return runner


def backtest(data: Any, config: Any, *, chunk: int | None = None, stream: bool = False,
             start_day: str | None = None, end_day: str | None = None,
             stream_rows: int | None = 1 << 19, fx: Any = None,
             funding: Any = None, controls: list[tuple[int, str]] | None = None,
             signal: Any = None) -> BacktestResult:
    """Run a backtest.

    Parameters
    ----------
    data : a Parquet file or folder, a catalog root, or a ``polars.DataFrame``, holding quotes,
        quote bars or OHLCV trade bars (bars drive the loop at their close: bar mode, see
        ``arbkit.data.barmode`` and the config's ``[bars]`` section).
    config : path to a TOML file, or a ``Config``.
    chunk : feed the loop in chunks of this many events (results are identical).
    stream : catalog only: read and run one UTC day at a time, a day cut into time windows
        of about ``stream_rows`` events, so memory is bounded by the largest day's columns
        plus one window (results are identical to the in-memory run).
    start_day, end_day : catalog only: first and last UTC day to read (``YYYY-MM-DD``,
        inclusive).
    fx, funding : FX rates (the ``fx`` table) for the config's ``[[fx]]`` series and realised
        funding (the ``funding`` table) of its linear perpetuals, as frames or Parquet paths,
        for data that is not a catalog (a catalog supplies its own ``fx`` and ``funding``).
    controls : operator controls as ``(ts_ns, "kill")`` pairs: the kill switch at that time
        (halt and flatten everything), as paper/live operators send it.
    signal : a numba ``@njit`` entry signal in place of the built-in rule (see
        ``arbkit/core/plugin.py``: its signature, and its compile cost).

    Examples
    --------
    >>> import arbkit
    >>> res = arbkit.backtest("data/samples/binance_btcusdt_spot_usdm.parquet",
    ...                       "studies/binance_spot_usdm.toml")  # doctest: +SKIP
    >>> res.summary  # doctest: +SKIP
    """
    from arbkit.data.source import is_catalog

    cfg = config if isinstance(config, Config) else load_config(config)
    catalog = not isinstance(data, pl.DataFrame) and is_catalog(data)
    if (stream or start_day or end_day) and not catalog:
        raise ConfigError("--stream / --start / --end (stream, start_day, end_day in Python) "
                          "need a catalog root as --data (see `arbkit data import`); a file or "
                          "frame is read whole: drop them")
    if catalog and stream:
        return _backtest_catalog(data, cfg, chunk=chunk, start_day=start_day,
                                 end_day=end_day, stream_rows=stream_rows, controls=controls,
                                 signal=signal)
    prep = prepare(data, cfg, fx=fx, funding=funding, controls=controls, start_day=start_day,
                   end_day=end_day)
    return run_prepared(cfg, prep, chunk=chunk, signal=signal)


@dataclass
class Prepared:
    """Event arrays loaded and checked once, to run many configs over (tuning, sweeps).

    Every config run over them must name the same instruments in the same order."""

    arrays: EventArrays
    source: str
    load_s: float
    crossed_rows: int
    kinds: dict[str, str]
    notes: list[str]
    extra_meta: dict[str, Any] = field(default_factory=dict)
    # the event-cache entry these arrays were not found in, until ``store_cached`` writes it
    cache_entry: Any = field(default=None, repr=False, compare=False)

    def window(self, t0: int | None, t1: int | None) -> Prepared:
        """The events with ``t0 <= ts_recv < t1``, plus the last rate of each FX series
        before ``t0`` (a daily rate stays in force into the window)."""
        from arbkit.data.carry import asof_start

        ev = self.arrays.events
        ts = ev["ts_recv"]
        lo = 0 if t0 is None else int(np.searchsorted(ts, t0, "left"))
        hi = ev.shape[0] if t1 is None else int(np.searchsorted(ts, t1, "left"))
        part = ev[lo:hi]
        if lo > 0 and part.shape[0]:  # the rates in force at the window's first event
            head, _ = asof_start(ev[:lo], int(part[0]["ts_recv"]))
            part = np.concatenate([head, part])
        arrays = dataclasses.replace(self.arrays, events=part)
        return dataclasses.replace(self, arrays=arrays)


def prepare(data: Any, config: Any, *, fx: Any = None, funding: Any = None,
            controls: list[tuple[int, str]] | None = None, start_day: str | None = None,
            end_day: str | None = None, cache: bool | str | None = None) -> Prepared:
    """Load, validate and merge the data of ``config``'s instruments into event arrays.

    ``cache``: the built arrays kept on disk beside the data (``arbkit.data.cache``), read
    from there the next time the same files are prepared for the same instruments, bit for
    bit the same. ``True``: read it, and write it on a miss; ``"read"``: read it, and leave
    the writing to :func:`store_cached` (once the caller knows its run is worth keeping);
    default off (``ARBKIT_EVENT_CACHE=on|off`` overrides). Never with ``controls``.
    ``extra_meta["event_cache"]`` says ``hit``, ``miss`` or ``written``.
    """
    from arbkit.data import cache as event_cache

    cfg = config if isinstance(config, Config) else load_config(config)
    t0 = time.perf_counter()
    entry = _cache_entry(data, cfg, fx, funding, start_day, end_day) \
        if event_cache.enabled(bool(cache)) and not controls else None
    hit = entry.load() if entry is not None else None
    if hit is not None:
        return Prepared(hit.arrays, str(data), time.perf_counter() - t0, hit.crossed_rows,
                        hit.kinds, hit.notes, {**hit.extra_meta, "event_cache": "hit"})
    prep = _prepare(data, cfg, fx=fx, funding=funding, controls=controls,
                    start_day=start_day, end_day=end_day, t0=t0)
    if entry is not None:
        prep.cache_entry = entry
        prep.extra_meta["event_cache"] = "miss"
        if cache != "read":
            store_cached(prep)
    return prep


def store_cached(prep: Prepared) -> bool:
    """Write the cache entry of arrays ``prepare(cache="read")`` built (a miss); False when
    there is none to write or the folder cannot be written."""
    from arbkit.data.cache import Cached

    entry, prep.cache_entry = prep.cache_entry, None
    if entry is None:
        return False
    meta = {k: v for k, v in prep.extra_meta.items() if k != "event_cache"}
    if not entry.store(Cached(prep.arrays, prep.crossed_rows, prep.kinds, prep.notes, meta)):
        return False
    prep.extra_meta["event_cache"] = "written"
    return True


def _cache_entry(data: Any, cfg: Config, fx: Any, funding: Any, start_day: str | None,
                 end_day: str | None) -> Any:
    """The cache entry for these inputs, or None when they cannot be cached (a frame, a
    recording, FX/funding given as frames)."""
    from arbkit.data.cache import EventCache
    from arbkit.data.source import is_catalog
    from arbkit.runtime.recording import is_recording

    if isinstance(data, pl.DataFrame) or is_recording(data):
        return None
    if is_catalog(data):
        from arbkit.data.stream import day_range

        return EventCache.for_catalog(data, cfg, *day_range(start_day, end_day))
    if isinstance(fx, pl.DataFrame) or isinstance(funding, pl.DataFrame):
        return None
    try:
        return EventCache.for_files(data, cfg, fx, funding)
    except (OSError, ArbkitError):
        return None  # a missing path: the uncached read names it


def _prepare(data: Any, cfg: Config, *, fx: Any, funding: Any,
             controls: list[tuple[int, str]] | None, start_day: str | None,
             end_day: str | None, t0: float) -> Prepared:
    from arbkit.data import carry
    from arbkit.data.source import is_catalog, load_quotes
    from arbkit.runtime.recording import is_recording, load_recording

    if not isinstance(data, pl.DataFrame) and is_recording(data):
        # a paper session's recording: exactly the events it fed its kernel
        meta, arrays = load_recording(data)
        if meta["inst_keys"] != [i.key for i in cfg.instruments]:
            raise ConfigError(f"{data}: the session traded {meta['inst_keys']}, the config "
                              f"has {[i.key for i in cfg.instruments]}; replay it with the "
                              "session's own preset or config")
        note = (f"replay of paper session {meta.get('session')}: the events it fed its "
                "kernel, in order" + ("" if meta.get("config_hash") == cfg.config_hash()
                                      else " (with ANOTHER config than the session's)"))
        return Prepared(arrays, str(data), time.perf_counter() - t0, 0,
                        dict(meta["kinds"]), [note])
    if not isinstance(data, pl.DataFrame) and is_catalog(data):
        from arbkit.data.stream import CatalogEvents, day_range

        ce = CatalogEvents(data, cfg, **dict(zip(("start", "end"),
                                                 day_range(start_day, end_day))),
                           carry=True, controls=controls)
        arrays = ce.whole()
        offsets = {k: sorted(set(v)) for k, v in arrays.clock_offset_ns.items()}
        return Prepared(arrays, str(data), time.perf_counter() - t0, _crossed(arrays.events),
                        ce.kinds, ce.notes, {"clock_offset_ns": offsets, "streamed_days": 0})
    loaded = load_quotes(data, cfg)
    keys = [i.key for i in cfg.instruments]
    arrays = build_events(loaded.frame, keys, timeline=cfg.run.timeline, source=loaded.source,
                          bars=frozenset(k for k, v in loaded.kinds.items() if v != "quotes"))
    extra, carry_notes = carry.from_sources(cfg, keys, fx, funding)
    extra = carry.with_controls(extra, controls, cfg)
    if extra.shape[0] and arrays.events.shape[0]:
        ts = arrays.events["ts_recv"]
        extra, after = carry.clip_to(extra, int(ts[0]), int(ts[-1]))
        carry_notes = carry_notes + carry.span_note(after)
        arrays = dataclasses.replace(arrays, events=carry.insert(arrays.events, extra))
        carry.check_not_implied(cfg, keys, arrays.events)
    return Prepared(arrays, loaded.source, time.perf_counter() - t0, loaded.crossed_rows,
                    loaded.kinds, loaded.notes + carry_notes)


def run_prepared(cfg: Config, prep: Prepared, *, chunk: int | None = None,
                 signal: Any = None) -> BacktestResult:
    """Run ``cfg`` over prepared arrays (they are not modified)."""
    t1 = time.perf_counter()
    runner = run_arrays(cfg, prep.arrays, chunk=chunk, signal=signal, kinds=prep.kinds)
    return result_of(runner, prep, time.perf_counter() - t1)


def result_of(runner: Runner, prep: Prepared, run_s: float) -> BacktestResult:
    meta = _meta(prep.source, runner, prep.arrays, prep.load_s, run_s, prep.crossed_rows,
                 prep.kinds, prep.notes)
    meta.update(prep.extra_meta)
    return _result(runner, meta)


def _backtest_catalog(root: Any, cfg: Config, *, chunk: int | None, start_day: str | None,
                      end_day: str | None, stream_rows: int | None,
                      controls: list[tuple[int, str]] | None = None,
                      signal: Any = None) -> BacktestResult:
    """A catalog read and run one UTC day (in windows of ``stream_rows`` events) at a time;
    the in-memory catalog run goes through ``prepare`` like any other data."""
    from arbkit.data.stream import CatalogEvents, day_range

    t0 = time.perf_counter()
    ce = CatalogEvents(root, cfg, **dict(zip(("start", "end"), day_range(start_day, end_day))),
                       carry=True, controls=controls)
    crossed = 0
    offsets: dict[str, set[int]] = {k: set() for k in ce.keys}
    runner: Runner | None = None
    for arrays in ce.chunks(max_rows=stream_rows):
        runner = runner or Runner(cfg, arrays, signal=signal, kinds=ce.kinds)
        crossed += _crossed(arrays.events)
        for k, v in arrays.clock_offset_ns.items():
            offsets[k].update(v)
        for lo in range(0, arrays.events.shape[0], chunk or max(1, arrays.events.shape[0])):
            runner.feed(arrays.events[lo:lo + (chunk or arrays.events.shape[0])],
                        arrays.depth)
    assert runner is not None
    runner.finish()
    ce.implied.verdict()  # collected chunk by chunk; an implied FX voids the run
    run_s = time.perf_counter() - t0
    meta = _meta(str(root), runner, runner.arrays, 0.0, run_s, crossed, ce.kinds, ce.notes)
    meta["clock_offset_ns"] = {k: sorted(v) for k, v in offsets.items()}
    meta["streamed_days"] = len(ce.days)
    return _result(runner, meta)


def _crossed(ev: np.ndarray) -> int:
    return int((ev["bid_px"] >= ev["ask_px"]).sum())


def _meta(source: str, runner: Runner, arrays: EventArrays, load_s: float, run_s: float,
          crossed: int, kinds: dict[str, str], notes: list[str]) -> dict[str, Any]:
    return {
        "source": source, "events": runner.n_fed, "load_s": load_s, "run_s": run_s,
        "crossed_rows": crossed, "clock_offset_ns": arrays.clock_offset_ns,
        "use_exch": arrays.use_exch, "infeasible": runner.problems,
        "dropped_rows": arrays.dropped_rows, "data_kinds": kinds, "data_notes": notes,
    }


def _result(runner: Runner, meta: dict[str, Any]) -> BacktestResult:
    from arbkit.metrics.summary import build_result

    return build_result(runner, meta)


def state_frames(state: KernelState) -> dict[str, pl.DataFrame]:
    """Copy the used part of each output buffer into a polars frame."""
    g = state.glob[0]
    n = {"fills": g["n_fills"], "olog": g["n_orders"], "trades": g["n_trades"],
         "equity": g["n_equity"], "legs": g["n_legs"], "guards": g["n_guard"]}
    # (polars copies the records into its own columns: no numpy copy first)
    return {k: pl.from_numpy(getattr(state, k)[: int(v)]) for k, v in n.items()}
