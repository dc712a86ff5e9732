"""Catalog → event arrays, whole or one UTC day at a time (data bigger than memory).

Only the configured instruments' files of the selected days are opened, and only the columns
the loop needs are read. Each file is one instrument-day, already validated and time-sorted
when it was written, so building a day is: read the files (LZ4 Parquet), a cheap numba
re-check of each stream, one k-way merge (``core.merge``). Day by day, the buffers are reused
and the engine carries its state across days, so the trades are bit-identical to the
all-in-memory run (``tests/unit/test_stream.py``) with memory bounded by the largest day.

Threads: a day's files are read, checked and clock-corrected one per thread (polars and the
numba check release the GIL), and :meth:`CatalogEvents.whole` builds several days at once,
each into its own slice of the one event array (a day's place is known from the Parquet
footers). Results do not depend on the thread count (``ARBKIT_DATA_THREADS``, default: the
cores, at most 4).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from arbkit.config import Config
from arbkit.core import types as T
from arbkit.data import schema
from arbkit.data.catalog import Catalog, Partition, Selection
from arbkit.data.events import (
    EventArrays,
    EventBuilder,
    Stream,
    _depth_array,
    prefaulted,
)
from arbkit.data.importers.common import read_parquet
from arbkit.data.load import not_parquet
from arbkit.errors import DataError

DEFAULT_CHUNK_ROWS = 1 << 19  # events per window when streaming a big day
_BASE_COLUMNS = ["ts_recv_ns", "ts_exch_ns", "bid_px", "bid_qty", "ask_px", "ask_qty"]
_R = TypeVar("_R")
_POOL: tuple[int, ThreadPoolExecutor] | None = None


def data_threads() -> int:
    """Threads reading the catalog: ``ARBKIT_DATA_THREADS``, else the cores (at most 4)."""
    text = os.environ.get("ARBKIT_DATA_THREADS", "")
    if text.strip().isdigit() and int(text) >= 1:
        return int(text)
    return max(1, min(4, os.cpu_count() or 1))


def _pool() -> ThreadPoolExecutor:
    """The process's reader threads (made again in a forked child: threads do not survive
    a fork)."""
    global _POOL
    if _POOL is None or _POOL[0] != os.getpid():
        _POOL = (os.getpid(), ThreadPoolExecutor(data_threads(),
                                                 thread_name_prefix="arbkit-data"))
    return _POOL[1]


def _map(fn: Callable[..., _R], *args: list[Any]) -> list[_R]:
    """``[fn(*a) for a in zip(*args)]`` on the reader threads, results in order; the first
    failure (in order) is raised, as a loop would."""
    jobs = list(zip(*args))
    if len(jobs) <= 1 or data_threads() == 1:
        return [fn(*a) for a in jobs]
    futures: list[Future[_R]] = [_pool().submit(fn, *a) for a in jobs]
    return [f.result() for f in futures]


class CatalogEvents:
    """The events of a config's instruments in a catalog, for an optional day range.

    Per instrument the source kind is the first the catalog holds of quotes, quote bars and
    trade bars (bars become quotes at their close, :mod:`arbkit.data.barmode`).

    Examples
    --------
    >>> ce = CatalogEvents("data", cfg)  # doctest: +SKIP
    >>> for arrays in ce.chunks():       # one UTC day at a time  # doctest: +SKIP
    ...     runner.feed(arrays.events, arrays.depth)
    """

    def __init__(self, root: str | Path, cfg: Config, *, start: date | None = None,
                 end: date | None = None, carry: bool = False,
                 controls: list[tuple[int, str]] | None = None) -> None:
        self.cat = Catalog(root)
        self.cfg = cfg
        self.keys = [i.key for i in cfg.instruments]
        self.kinds: dict[str, str] = {}
        self.parts: dict[str, list[Partition]] = {}
        for inst in cfg.instruments:
            for kind in ("quotes", "quote_bars", "bars"):
                found = self.cat.partitions(Selection(kind, inst.venue, inst.symbol, start, end))
                if found:
                    break
            else:
                self.cat.files(Selection("quotes", inst.venue, inst.symbol, start, end))  # raises
            self.kinds[inst.key], self.parts[inst.key] = kind, found
        self.days = sorted({p.day for ps in self.parts.values() for p in ps})
        self.n_levels = max([_levels(p.path) for k in self.keys for p in self.parts[k]
                             if self.kinds[k] == "quotes"] or [1])
        self.use_exch = {k: cfg.run.timeline == "exch" and self.kinds[k] == "quotes"
                         and all(_exch_complete(p.path) for p in self.parts[k])
                         for k in self.keys}
        self._dropped = {k: 0 for k in self.keys}  # zero-volume bars, counted as days are read
        # FX and funding events (small: kept in memory), inserted into each chunk by time
        from arbkit.data import carry as carry_mod

        self.extra = carry_mod.from_catalog(cfg, self.keys, self.cat.root) if carry else None
        if self.extra is not None:
            self.extra = (carry_mod.with_controls(self.extra[0], controls, cfg), self.extra[1])
        self.carry_notes = self.extra[1] if self.extra is not None else []
        self.implied = carry_mod.ImpliedCheck(cfg, self.keys)
        self.rows = sum(_rows(p.path) for ps in self.parts.values() for p in ps)

    @property
    def notes(self) -> list[str]:
        """One note per instrument that came from bars (valid after the days were read), and
        the FX/funding notes."""
        from arbkit.data.source import bar_note

        return [bar_note(self.cfg, key, kind, self._dropped[key])
                for key, kind in self.kinds.items() if kind != "quotes"] + self.carry_notes

    def _with_carry(self, arrays: EventArrays, state: list[int], last: bool) -> EventArrays:
        """Insert the FX/funding events due up to this chunk's last event (``state[0]`` is
        the next one not yet inserted); the whole tail too when ``last``."""
        if self.extra is None or arrays.events.shape[0] == 0:
            return arrays
        from dataclasses import replace

        from arbkit.data.carry import asof_start, insert

        ev_x = self.extra[0]
        head = ev_x[:0]
        if len(state) == 1:  # the first chunk: the run starts at the market data's start
            head, state[0] = asof_start(ev_x, int(arrays.events["ts_recv"][0]))
            state.append(1)
        lo = state[0]
        t_end = int(arrays.events["ts_recv"][-1])
        hi = int(np.searchsorted(ev_x["ts_recv"], t_end, "right"))
        state[0] = hi
        if last and hi < ev_x.shape[0]:  # after the last market event: not used
            from arbkit.data.carry import span_note

            self.carry_notes = self.carry_notes + span_note(ev_x.shape[0] - hi)
        add = np.concatenate([head, ev_x[lo:hi]]) if head.shape[0] else ev_x[lo:hi]
        if add.shape[0]:
            arrays = replace(arrays, events=insert(arrays.events, add))
        self.implied.add(arrays.events)
        return arrays

    def day_streams(self, day: date, *, parallel: bool = True) -> list[Stream]:
        """One stream per instrument with rows on ``day`` (checked, in time order, exchange
        times final: see :meth:`Stream.corrected`)."""
        jobs = [(i, key, p) for i, key in enumerate(self.keys) for p in self.parts[key]
                if p.day == day]
        if not parallel:
            return [self._ready(*j) for j in jobs]
        return _map(self._ready, *zip(*jobs)) if jobs else []

    def _ready(self, i: int, key: str, p: Partition) -> Stream:
        return self._stream(i, key, p).corrected(self.use_exch[key])

    def _stream(self, i: int, key: str, p: Partition) -> Stream:
        kind = self.kinds[key]
        if kind == "quotes":
            # exchange time only when this instrument runs on the exchange timeline
            base = _BASE_COLUMNS if self.use_exch[key] else [c for c in _BASE_COLUMNS
                                                              if c != "ts_exch_ns"]
            cols = base + schema.depth_columns(_levels(p.path))
            names = set(_meta(p.path).schema.names)
            s = _stream_of_file(i, p.path, [c for c in cols if c in names])
        else:
            from arbkit.data.source import bars_to_quotes

            frame, dropped = bars_to_quotes(kind, read_parquet(p.path), self.cfg, str(p.path))
            self._dropped[key] += dropped
            s = Stream.of_frame(i, frame, str(p.path))
        s.check()
        return s

    def chunks(self, max_rows: int | None = DEFAULT_CHUNK_ROWS) -> Iterator[EventArrays]:
        """Event arrays one UTC day at a time, a day cut into time windows of about
        ``max_rows`` events when it is bigger; each is a view valid until the next.

        Memory: the day's columns as read, plus buffers for one window. A window ends at a
        receive time shared by no event of the next one, and clock offsets are estimated on
        the whole day first, so the windows add up to exactly the day.
        """
        builder = EventBuilder(reuse=True)
        state = [0]
        for d, day in enumerate(self.days):
            last_day = d == len(self.days) - 1
            streams = self.day_streams(day)
            n = sum(s.ts_recv.shape[0] for s in streams)
            if max_rows is None or n <= max_rows:
                arrays = builder.build(streams, self.keys, n_levels=self.n_levels,
                                       use_exch=self.use_exch)
                yield self._with_carry(arrays, state, last_day)
                continue
            cuts = _cut_times(streams, -(-n // max_rows))
            bounds = list(zip([None, *cuts], [*cuts, None]))
            for w, (lo, hi) in enumerate(bounds):
                part = [s.window(lo, hi) for s in streams]
                arrays = builder.build(part, self.keys, n_levels=self.n_levels,
                                       use_exch=self.use_exch)
                yield self._with_carry(arrays, state, last_day and w == len(bounds) - 1)

    def whole(self) -> EventArrays:
        """All selected days in one event array, filled day by day (no concatenation).

        Quotes only: a day's rows are known from the footers, so days are built at once on
        the reader threads, each into its own slice. Bars (rows dropped as they are
        converted) are built one day after the other."""
        cap = self.rows  # an upper bound: bar conversion only drops rows
        ev = prefaulted(cap, T.EVENT_DTYPE)
        depth = prefaulted((cap, 4, self.n_levels - 1), np.float64) if self.n_levels > 1 \
            else None
        offsets: dict[str, set[int]] = {k: set() for k in self.keys}
        if all(k == "quotes" for k in self.kinds.values()) and len(self.days) > 1:
            rows = [sum(_rows(p.path) for ps in self.parts.values() for p in ps if p.day == d)
                    for d in self.days]
            local = threading.local()

            def one_day(day: date, base: int) -> EventArrays:
                builder = getattr(local, "builder", None) or EventBuilder(reuse=True)
                local.builder = builder
                return builder.build(self.day_streams(day, parallel=False), self.keys,
                                     n_levels=self.n_levels, use_exch=self.use_exch,
                                     ev_out=ev[base:], depth_out=depth, row_base=base)

            bases = np.concatenate([[0], np.cumsum(rows)[:-1]]).tolist()
            built = _map(one_day, self.days, bases)
            for arr, want in zip(built, rows):
                assert arr.events.shape[0] == want, "footer rows differ from rows read"
            n = int(sum(rows))
        else:
            builder = EventBuilder(reuse=True)
            n = 0
            built = []
            for day in self.days:
                arr = builder.build(self.day_streams(day), self.keys, n_levels=self.n_levels,
                                    use_exch=self.use_exch, ev_out=ev[n:], depth_out=depth,
                                    row_base=n)
                n += arr.events.shape[0]
                built.append(arr)
        for arr in built:
            for k, v in arr.clock_offset_ns.items():
                offsets[k].update(v)
        arrays = EventArrays(ev[:n], depth[:n] if depth is not None else np.zeros((0, 4, 0)),
                             list(self.keys), self.n_levels, dict(self.use_exch),
                             {k: sorted(v) for k, v in offsets.items()}, 0)
        arrays = self._with_carry(arrays, [0], True)
        self.implied.verdict()
        return arrays


def _stream_of_file(i: int, path: Path, columns: list[str]) -> Stream:
    """Instrument ``i``'s stream from the columns of one catalog file (what
    :meth:`Stream.of_frame` makes of the same file read by polars, bit for bit).

    pyarrow decodes straight from the memory-mapped file, and a file's one row group comes
    back as one chunk per column, which numpy views without a copy: in a fresh process
    ~2x faster than polars reading the file into a buffer first (``benchmarks/bench_io.py``).
    """
    import pyarrow as pa

    try:
        table = pq.ParquetFile(path, memory_map=True).read(columns=columns)
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise not_parquet(path, exc, "run `arbkit data validate` and re-import that "
                          "day") from None
    names = table.column_names
    exch = None
    if "ts_exch_ns" in names and table.column("ts_exch_ns").null_count == 0:
        exch = table.column("ts_exch_ns").to_numpy()
    n_levels = schema.depth_levels(names)
    depth = None
    if n_levels > 1:  # rare and small: the frame path's own conversion (nulls -> NaN / 0)
        depth = _depth_array(pl.from_arrow(table.select(  # type: ignore[arg-type]
            [c for c in names if c not in _BASE_COLUMNS])), n_levels)
    return Stream(i, table.column("ts_recv_ns").to_numpy(), exch,
                  tuple(table.column(c).to_numpy() for c in _BASE_COLUMNS[2:]),  # type: ignore[arg-type]
                  depth, str(path))


def _cut_times(streams: list[Stream], k: int) -> list[int]:
    """``k - 1`` increasing receive times splitting a day into windows of similar size."""
    ts = np.sort(np.concatenate([s.ts_recv[:: max(1, s.ts_recv.shape[0] // 4096)]
                                 for s in streams]))
    picks = [int(ts[len(ts) * j // k]) for j in range(1, k)]
    return sorted(set(picks))


def _meta(path: Path) -> pq.FileMetaData:
    """The file's Parquet footer; a damaged file is one clear line."""
    try:
        return pq.read_metadata(path)
    except (OSError, ValueError) as exc:
        raise not_parquet(path, exc, "run `arbkit data validate` and re-import that "
                          "day") from None


def _levels(path: Path) -> int:
    return schema.depth_levels(_meta(path).schema.names)


def _rows(path: Path) -> int:
    return _meta(path).num_rows


def _exch_complete(path: Path) -> bool:
    """True when the file has exchange stamps on every row (from the footer statistics)."""
    meta = _meta(path)
    names = meta.schema.names
    if "ts_exch_ns" not in names:
        return False
    j = names.index("ts_exch_ns")
    for g in range(meta.num_row_groups):
        st = meta.row_group(g).column(j).statistics
        if st is None or not st.has_null_count:
            return pl.read_parquet(path, columns=["ts_exch_ns"])["ts_exch_ns"].null_count() == 0
        if st.null_count > 0:
            return False
    return True


def day_range(start: str | None, end: str | None) -> tuple[date | None, date | None]:
    """Parse ``--start``/``--end`` (``YYYY-MM-DD``, inclusive, UTC)."""
    out = []
    for name, text in (("start", start), ("end", end)):
        if text is None:
            out.append(None)
            continue
        try:
            out.append(date.fromisoformat(text))
        except ValueError:
            raise DataError(f"--{name} {text!r}: not a date; use YYYY-MM-DD (UTC)") from None
    if out[0] is not None and out[1] is not None and out[0] > out[1]:
        raise DataError(f"--start {out[0]} is after --end {out[1]}; swap them")
    return out[0], out[1]
