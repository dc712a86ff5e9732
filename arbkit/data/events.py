"""Quote streams → the kernel's event array (and depth array).

Tie rule: events are ordered by receive time, then by instrument index (the order of
``[[instruments]]`` in the config), then by their row order in the source. Only the receive
time orders events; exchange time is carried for matching on the exchange timeline.

Each instrument's stream is already in time order (the validator checks it; catalog files are
one instrument-day each), so the streams are k-way merged (``core.merge``) instead of sorting
the whole table. The same functions serve an in-memory frame (:func:`build_events`) and the
catalog's day-by-day reader (:mod:`arbkit.data.stream`), so both give identical arrays.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import polars as pl

from arbkit.core import types as T
from arbkit.core.merge import (
    CHK_BACKWARDS,
    CHK_OK,
    CHK_PRICE,
    check_stream,
    merge_fill,
)
from arbkit.data.schema import depth_levels, level_columns
from arbkit.errors import DataError

NS_PER_DAY = 86_400_000_000_000
SESSION_GAP_NS = 600_000_000_000  # a 10-minute hole in one source starts a new recording session
_PRICES = ("bid_px", "bid_qty", "ask_px", "ask_qty")
_PREFAULT_MIN = 64 << 20  # bytes: smaller arrays are cheap to fault in as they are written
_BLOCK = 1 << 18  # rows per block of the vectorised scans (temporaries stay in the cache)


@dataclass(frozen=True)
class EventArrays:
    """What the loop consumes: events sorted by receive time and the optional depth levels."""

    events: np.ndarray  # EVENT_DTYPE
    depth: np.ndarray  # float64 (n_depth_rows, 4, levels-1): bid_px, bid_qty, ask_px, ask_qty
    inst_keys: list[str]
    n_levels: int
    use_exch: dict[str, bool]
    clock_offset_ns: dict[str, list[int]]  # per recording session, ns added to exchange time
    dropped_rows: int


@dataclass
class Stream:
    """One instrument's rows in time order, as numpy columns (``ts_exch`` None if absent)."""

    inst: int
    ts_recv: np.ndarray
    ts_exch: np.ndarray | None
    prices: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # bid_px, bid_qty, ask_px, ask_qty
    depth: np.ndarray | None  # (n, 4, levels-1) or None for L1
    source: str = "<data>"
    exch_ready: bool = False  # ts_exch already clock-corrected (see ``corrected``)
    offsets: tuple[int, ...] = ()  # the session offsets applied, when exch_ready

    @classmethod
    def of_frame(cls, inst: int, frame: pl.DataFrame, source: str) -> Stream:
        """A stream from a frame holding one instrument's rows in time order."""
        exch = None
        if "ts_exch_ns" in frame.columns and frame["ts_exch_ns"].null_count() == 0:
            exch = frame["ts_exch_ns"].to_numpy()
        n_levels = depth_levels(frame.columns)
        return cls(inst, frame["ts_recv_ns"].to_numpy(), exch,
                   tuple(frame[c].to_numpy() for c in _PRICES),  # type: ignore[arg-type]
                   _depth_array(frame, n_levels) if n_levels > 1 else None, source)

    def corrected(self, use_exch: bool) -> Stream:
        """This stream with its exchange times final: clock-corrected per session when it runs
        on the exchange timeline, else the receive times. Done once per day before the day is
        cut into windows, so every window sees the offsets the whole day would."""
        if use_exch and self.ts_exch is not None:
            exch, offsets = corrected_exch(self.ts_recv, self.ts_exch)
            return replace(self, ts_exch=exch, exch_ready=True, offsets=offsets)
        return replace(self, ts_exch=self.ts_recv, exch_ready=True, offsets=())

    def window(self, t_lo: int | None, t_hi: int | None) -> Stream:
        """The rows with ``t_lo <= ts_recv < t_hi`` (views, no copy)."""
        lo = 0 if t_lo is None else int(np.searchsorted(self.ts_recv, t_lo, side="left"))
        hi = (self.ts_recv.shape[0] if t_hi is None
              else int(np.searchsorted(self.ts_recv, t_hi, side="left")))
        return replace(
            self, ts_recv=self.ts_recv[lo:hi],
            ts_exch=None if self.ts_exch is None else self.ts_exch[lo:hi],
            prices=tuple(p[lo:hi] for p in self.prices),  # type: ignore[arg-type]
            depth=None if self.depth is None else self.depth[lo:hi])

    def check(self) -> None:
        """Cheap re-check of a stream read from the catalog (validated when written)."""
        code, k = check_stream(self.ts_recv, *self.prices)
        if code == CHK_OK:
            return
        what = {CHK_BACKWARDS: ("ts_recv_ns", int(self.ts_recv[k]), "time goes backwards"),
                CHK_PRICE: ("bid_px/ask_px", (float(self.prices[0][k]), float(self.prices[2][k])),
                            "best price must be finite and > 0")}.get(
            code, ("bid_qty/ask_qty", (float(self.prices[1][k]), float(self.prices[3][k])),
                   "size must be finite and >= 0"))
        raise DataError(f"{self.source}: {what[0]}={what[1]!r} at row {k}: {what[2]}; the file "
                        "changed since it was validated: run `arbkit data validate` and "
                        "re-import that day")


def exch_offset_ns(ts_recv: np.ndarray, ts_exch: np.ndarray) -> int:
    """Clock correction for one recording session's exchange stamps.

    Feed latency ``recv - exch`` cannot be negative; when its 1st percentile is, the recorder's
    clock is behind the exchange (the 2024 Binance captures: ~1.3 s). Shift exchange time so that
    percentile becomes 0. A plausible (non-negative) latency is left as it is: a clock offset
    cannot be told apart from feed latency without an outside reference.
    """
    n = ts_recv.shape[0]
    if n == 0:
        return 0
    # The percentile is below 0 only if more than ~1% of the latencies are: count them first
    # (a compare, no partition), the common case on a sane clock.
    neg = sum(int(np.count_nonzero(ts_recv[lo:lo + _BLOCK] < ts_exch[lo:lo + _BLOCK]))
              for lo in range(0, n, _BLOCK))
    if neg == 0 or neg < int((n - 1) * 0.01) - 1:
        return 0
    lat = ts_recv - ts_exch  # a temporary: partitioned in place (no copy of it)
    p1 = int(np.percentile(lat, 1, overwrite_input=True))
    return p1 if p1 < 0 else 0


def session_bounds(ts_recv: np.ndarray) -> np.ndarray:
    """Row indices where recording sessions start, plus the end: ``[0, c1, ..., n]``.

    A session ends where the source is silent for more than ``SESSION_GAP_NS`` and at every
    UTC midnight (so a day-by-day read estimates exactly what a whole read does). Found
    block by block (a few MB of temporaries, not four arrays the size of the stream), and
    midnights by a binary search in the sorted times.
    """
    n = ts_recv.shape[0]
    if n == 0:
        return np.zeros(1, np.int64)
    cuts = [np.zeros(1, np.int64)]
    for lo in range(0, n - 1, _BLOCK):
        hi = min(n - 1, lo + _BLOCK)
        gap = np.flatnonzero((ts_recv[lo + 1:hi + 1] - ts_recv[lo:hi]) > SESSION_GAP_NS)
        if gap.shape[0]:
            cuts.append(gap + (lo + 1))
    d0, d1 = int(ts_recv[0]) // NS_PER_DAY, int(ts_recv[-1]) // NS_PER_DAY
    if d1 > d0:  # the first row of each new day (``ts_recv`` is in time order)
        midnights = np.arange(d0 + 1, d1 + 1, dtype=np.int64) * NS_PER_DAY
        cuts.append(np.searchsorted(ts_recv, midnights, side="left").astype(np.int64))
    cuts.append(np.array([n], np.int64))
    return np.unique(np.concatenate(cuts))


def session_offsets(ts_recv: np.ndarray, ts_exch: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray]:
    """(session bounds as :func:`session_bounds`, ``exch_offset_ns`` of each session)."""
    bounds = session_bounds(ts_recv)
    offs = np.array([exch_offset_ns(ts_recv[lo:hi], ts_exch[lo:hi])
                     for lo, hi in zip(bounds[:-1], bounds[1:])], np.int64)
    return bounds, offs


def session_offsets_ns(ts_recv: np.ndarray, ts_exch: np.ndarray) -> np.ndarray:
    """Per-row offsets: ``exch_offset_ns`` estimated separately for each recording session
    (see :func:`session_bounds`)."""
    bounds, offs = session_offsets(ts_recv, ts_exch)
    return np.repeat(offs, np.diff(bounds))


def corrected_exch(ts_recv: np.ndarray, ts_exch: np.ndarray,
                   out: np.ndarray | None = None) -> tuple[np.ndarray, tuple[int, ...]]:
    """Exchange times plus their session's clock offset (into ``out`` when given), and the
    distinct offsets applied, sorted."""
    bounds, offs = session_offsets(ts_recv, ts_exch)
    if out is None:
        if not offs.any():  # nothing to add: the stamps as they are (read, never written)
            return ts_exch, (0,) if offs.shape[0] else ()
        out = np.empty_like(ts_exch)
    for lo, hi, off in zip(bounds[:-1], bounds[1:], offs):
        np.add(ts_exch[lo:hi], off, out=out[lo:hi])
    return out, tuple(sorted({int(x) for x in offs}))


def streams_of_frame(frame: pl.DataFrame, inst_keys: list[str],
                     source: str = "<data>") -> tuple[list[Stream], int]:
    """Split a validated quotes frame into one :class:`Stream` per configured instrument.

    Returns the streams (config order) and the number of rows of other instruments.
    """
    pairs = [k.split(":", 1) for k in inst_keys]
    venues = sorted({v for v, _ in pairs})
    symbols = sorted({s for _, s in pairs})
    # Enum casts of the configured names (others become null): exact and cheap
    code = frame.select(
        (pl.col("venue").cast(pl.Enum(venues), strict=False).to_physical().cast(pl.Int64)
         * len(symbols)
         + pl.col("symbol").cast(pl.Enum(symbols), strict=False).to_physical().cast(pl.Int64)
         ).fill_null(-1).alias("c")).to_series().to_numpy()
    numeric = frame.drop("venue", "symbol")
    streams, used = [], 0
    for i, (v, s) in enumerate(pairs):
        rows = np.flatnonzero(code == venues.index(v) * len(symbols) + symbols.index(s))
        if rows.shape[0] == 0:
            have = frame.select(pl.concat_str("venue", pl.lit(":"), "symbol").unique().sort())
            raise DataError(
                f"{source}: instrument {inst_keys[i]} is configured but has no rows in the data "
                f"(data holds {have.to_series().to_list()[:10]}); fix the venue/symbol in the "
                "config or the data")
        part = numeric[rows] if rows.shape[0] != frame.height else numeric
        streams.append(Stream.of_frame(i, part, source))
        used += rows.shape[0]
    return streams, frame.height - used


class EventBuilder:
    """Merges instrument streams into event arrays, with buffers that can be reused.

    With ``reuse=True`` (the day-by-day reader) the column, order and event buffers are kept
    between calls and the returned arrays are views into them, valid until the next call:
    a fresh 640 MB array costs ~0.5 s of page faults on this machine, more than the merge.
    """

    def __init__(self, reuse: bool = False) -> None:
        self.reuse = reuse
        self._cap = -1
        self._bufs: dict[str, np.ndarray] = {}

    def _buffers(self, n: int) -> dict[str, np.ndarray]:
        if n > self._cap or not self.reuse:
            cap = max(n, int(self._cap * 1.25)) if self.reuse else n
            self._bufs = _column_buffers(cap, fresh=not self.reuse)
            self._cap = cap
        return self._bufs

    def build(self, streams: list[Stream], inst_keys: list[str], *, n_levels: int,
              use_exch: dict[str, bool], dropped: int = 0, ev_out: np.ndarray | None = None,
              depth_out: np.ndarray | None = None, row_base: int = 0) -> EventArrays:
        """Merge instrument streams into one event array in the loop's order.

        ``use_exch[key]`` says whether an instrument runs on the exchange timeline (it must
        then have exchange stamps); its stamps get the per-session clock offset. With
        ``ev_out`` (and ``depth_out``, rows from ``row_base``) the events are written there
        instead of a buffer: how :meth:`CatalogEvents.whole` fills one array day by day.
        """
        streams = [s for s in streams if s.ts_recv.shape[0]]
        lens = np.array([s.ts_recv.shape[0] for s in streams], np.int64)
        n = int(lens.sum())
        ends = np.cumsum(lens)
        starts = ends - lens
        b = self._buffers(n)
        offsets: dict[str, list[int]] = {k: [] for k in inst_keys}
        for s, lo, hi in zip(streams, starts, ends):
            key = inst_keys[s.inst]
            b["ts_recv"][lo:hi] = s.ts_recv
            b["inst"][lo:hi] = s.inst
            for name, col in zip(_PRICES, s.prices):
                b[name][lo:hi] = col
            if s.exch_ready:
                b["ts_exch"][lo:hi] = s.ts_exch
                offsets[key] = list(s.offsets)
            elif use_exch.get(key) and s.ts_exch is not None:
                offsets[key] = list(corrected_exch(s.ts_recv, s.ts_exch,
                                                   out=b["ts_exch"][lo:hi])[1])
            else:
                b["ts_exch"][lo:hi] = s.ts_recv
        ev = b["ev"][:n] if ev_out is None else ev_out[:n]
        insts = np.array([s.inst for s in streams], np.int64)
        order = _merge_laid(ev, b, starts, ends, insts)
        depth = np.zeros((0, 4, 0))
        if n_levels > 1:
            depth = _merged_depth(streams, starts, ends, order, n, n_levels)
            if depth_out is not None:
                depth_out[row_base:row_base + n] = depth
                depth = depth_out
            ev["depth_row"] = np.arange(row_base, row_base + n, dtype=np.int64)
        return EventArrays(ev, depth, list(inst_keys), n_levels,
                           {k: bool(use_exch.get(k)) for k in inst_keys}, offsets, dropped)


def _column_buffers(cap: int, fresh: bool) -> dict[str, np.ndarray]:
    """The merge's input columns, order and output buffers for ``cap`` rows (``fresh``:
    one-off, prefaulted when big)."""
    new = prefaulted if fresh else (lambda n, dt: np.empty(n, dt))
    return {"ts_recv": new(cap, np.int64), "ts_exch": new(cap, np.int64),
            "inst": new(cap, np.uint32), "order": new(cap, np.int64),
            "ev": new(cap, T.EVENT_DTYPE), **{name: new(cap, np.float64) for name in _PRICES}}


def _merge_laid(ev: np.ndarray, b: dict[str, np.ndarray], starts: np.ndarray,
                ends: np.ndarray, insts: np.ndarray) -> np.ndarray:
    """k-way merge of the streams laid end to end in the buffers ``b`` (stream j at
    ``[starts[j], ends[j])``, instrument ``insts[j]``) into ``ev``; returns the source row
    of each event (the depth gather)."""
    n = ev.shape[0]
    order = b["order"][:n]
    merge_fill(ev, b["ts_recv"], b["ts_exch"], b["inst"], *(b[c] for c in _PRICES),
               starts.astype(np.int64), ends.astype(np.int64), insts,
               np.empty(insts.shape[0], np.int64), order, T.EV_QUOTE)
    return order


def prefaulted(shape: int | tuple[int, ...], dtype: np.dtype | type) -> np.ndarray:
    """An uninitialised array whose pages are already mapped (Linux: one ``MAP_POPULATE``
    mmap; elsewhere, or for small arrays, ``np.empty``).

    Touching fresh memory page by page costs more than building the events into it on this
    kind of VM: 0.67-0.82 s for 640 MiB against 0.34-0.40 s populated in one call
    (``benchmarks/bench_io.py``). The array owns its mapping (freed with it).
    """
    import mmap

    dt = np.dtype(dtype)
    shp = (shape,) if isinstance(shape, int) else tuple(shape)
    size = int(np.prod(shp, dtype=np.int64)) * dt.itemsize
    flags = getattr(mmap, "MAP_POPULATE", 0)
    if size < _PREFAULT_MIN or not flags:
        return np.empty(shp, dt)
    try:
        mm = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | flags)
    except (OSError, ValueError):
        return np.empty(shp, dt)
    return np.frombuffer(mm, dt).reshape(shp)


def _merged_depth(streams: list[Stream], starts: np.ndarray, ends: np.ndarray,
                  order: np.ndarray, n: int, n_levels: int) -> np.ndarray:
    depth = np.full((n, 4, n_levels - 1), np.nan)
    depth[:, 1::2, :] = 0.0  # sizes of absent levels
    for s, lo, hi in zip(streams, starts, ends):
        if s.depth is not None:
            depth[lo:hi, :, : s.depth.shape[2]] = s.depth
    return depth[order]


def merge_streams(streams: list[Stream], inst_keys: list[str], *, n_levels: int,
                  use_exch: dict[str, bool], dropped: int = 0) -> EventArrays:
    """:meth:`EventBuilder.build` with fresh buffers."""
    return EventBuilder().build(streams, inst_keys, n_levels=n_levels, use_exch=use_exch,
                                dropped=dropped)


def build_events(frame: pl.DataFrame, inst_keys: list[str], *, timeline: str = "recv",
                 source: str = "<data>", bars: frozenset[str] = frozenset()) -> EventArrays:
    """Turn a validated canonical quotes frame into the kernel's arrays. Instruments in
    ``bars`` (quotes made from bars: one timeline, the close) never run on the exchange
    timeline.

    The same arrays as :func:`streams_of_frame` + :func:`merge_streams`, built with one
    gather per column straight into the merge's buffers: the rows of the configured
    instruments, grouped by instrument in config order (a stable radix sort of small
    codes), each instrument's rows in frame order.
    """
    perm, counts = _rows_by_instrument(frame, inst_keys, source)
    n = int(perm.shape[0])
    b = _column_buffers(n, fresh=True)
    for c, name in (("ts_recv_ns", "ts_recv"), *((p, p) for p in _PRICES)):
        np.take(frame[c].to_numpy(), perm, out=b[name])
    ends = np.cumsum(counts)
    starts = ends - counts
    has_exch = _gather_exch(frame, perm, starts, ends, b["ts_exch"]) \
        if timeline == "exch" else [False] * len(inst_keys)
    views = []
    for i, (lo, hi) in enumerate(zip(starts, ends)):
        b["inst"][lo:hi] = i
        views.append(Stream(i, b["ts_recv"][lo:hi], None,
                            tuple(b[p][lo:hi] for p in _PRICES),  # type: ignore[arg-type]
                            None, source))
    for s in views:
        s.check()  # the merge needs each stream in time order (validated frames are)
    use_exch = {k: has_exch[i] and k not in bars for i, k in enumerate(inst_keys)}
    offsets: dict[str, list[int]] = {}
    for k, lo, hi in zip(inst_keys, starts, ends):
        if use_exch[k]:  # corrected in place
            offsets[k] = list(corrected_exch(b["ts_recv"][lo:hi], b["ts_exch"][lo:hi],
                                             out=b["ts_exch"][lo:hi])[1])
        else:
            b["ts_exch"][lo:hi] = b["ts_recv"][lo:hi]
            offsets[k] = []
    ev = b["ev"][:n]
    order = _merge_laid(ev, b, starts, ends, np.arange(len(inst_keys), dtype=np.int64))
    n_levels = depth_levels(frame.columns)
    depth = np.zeros((0, 4, 0))
    if n_levels > 1:
        depth = _depth_array(frame, n_levels)[perm[order]]
        ev["depth_row"] = np.arange(n, dtype=np.int64)
    return EventArrays(ev, depth, list(inst_keys), n_levels, use_exch, offsets,
                       frame.height - n)


def _rows_by_instrument(frame: pl.DataFrame, inst_keys: list[str],
                        source: str) -> tuple[np.ndarray, np.ndarray]:
    """(the rows of the configured instruments grouped by instrument in config order, each
    group in frame order; the number of rows of each instrument). An instrument without
    rows is a DataError, as in :func:`streams_of_frame`."""
    pairs = [k.split(":", 1) for k in inst_keys]
    venues = sorted({v for v, _ in pairs})
    symbols = sorted({s for _, s in pairs})
    code = frame.select(
        (pl.col("venue").cast(pl.Enum(venues), strict=False).to_physical().cast(pl.Int32)
         * len(symbols)
         + pl.col("symbol").cast(pl.Enum(symbols), strict=False).to_physical().cast(pl.Int32)
         ).fill_null(-1).alias("c")).to_series().to_numpy()
    lut = np.full(len(venues) * len(symbols) + 1, -1, np.int16)  # code + 1 -> config index
    for i, (v, s) in enumerate(pairs):
        lut[venues.index(v) * len(symbols) + symbols.index(s) + 1] = i
    inst = lut[code + 1]
    counts = np.bincount(inst + 1, minlength=len(inst_keys) + 1).astype(np.int64)
    for i, key in enumerate(inst_keys):
        if counts[i + 1] == 0:
            have = frame.select(pl.concat_str("venue", pl.lit(":"), "symbol").unique().sort())
            raise DataError(
                f"{source}: instrument {key} is configured but has no rows in the data "
                f"(data holds {have.to_series().to_list()[:10]}); fix the venue/symbol in the "
                "config or the data")
    # numpy sorts 16-bit integers with a stable radix sort: O(n), rows kept in frame order
    perm = np.argsort(inst, kind="stable")[int(counts[0]):]
    return perm, counts[1:]


def _gather_exch(frame: pl.DataFrame, perm: np.ndarray, starts: np.ndarray, ends: np.ndarray,
                 out: np.ndarray) -> list[bool]:
    """Gather ``ts_exch_ns`` into ``out``; per instrument, whether it has an exchange stamp
    on every row (the exchange timeline needs one)."""
    if "ts_exch_ns" not in frame.columns:
        return [False] * starts.shape[0]
    col = frame["ts_exch_ns"]
    if col.null_count() == 0:
        np.take(col.to_numpy(), perm, out=out)
        return [True] * starts.shape[0]
    np.take(col.fill_null(0).to_numpy(), perm, out=out)
    null = col.is_null().to_numpy()[perm]
    return [not null[lo:hi].any() for lo, hi in zip(starts, ends)]


def _depth_array(frame: pl.DataFrame, n_levels: int) -> np.ndarray:
    depth = np.full((frame.height, 4, n_levels - 1), np.nan)
    for lvl in range(1, n_levels):
        for side_idx, side in enumerate(("bid", "ask")):
            px_col, qty_col = level_columns(side, lvl)
            if px_col in frame.columns:
                depth[:, 2 * side_idx, lvl - 1] = frame[px_col].fill_null(np.nan).to_numpy()
                depth[:, 2 * side_idx + 1, lvl - 1] = frame[qty_col].fill_null(0.0).to_numpy()
            else:
                depth[:, 2 * side_idx + 1, lvl - 1] = 0.0
    return depth
