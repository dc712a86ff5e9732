"""Validated quote frames → the kernel's event array (and depth array).

Tie rule: events are ordered by receive time, then by instrument index (the order of
``[[instruments]]`` in the config), then by their row order in the source. Only the receive
time orders events; exchange time is carried for matching on the exchange timeline.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from arbkit.core import types as T
from arbkit.data.schema import depth_levels, level_columns
from arbkit.errors import DataError


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


SESSION_GAP_NS = 600_000_000_000  # a 10-minute hole in one source starts a new recording session


def exch_offset_ns(ts_recv: np.ndarray, ts_exch: np.ndarray) -> int:
    """Clock correction for one recording session's exchange stamps.

    Feed latency ``recv - exch`` cannot be negative; when its 1st percentile is, the recorder's
    clock is behind the exchange (the 2024 Binance captures: ~1.3 s). Shift exchange time so that
    percentile becomes 0. A plausible (non-negative) latency is left as it is: a clock offset
    cannot be told apart from feed latency without an outside reference.
    """
    lat = ts_recv - ts_exch
    p1 = int(np.percentile(lat, 1)) if lat.size else 0
    return p1 if p1 < 0 else 0


def session_offsets_ns(ts_recv: np.ndarray, ts_exch: np.ndarray) -> np.ndarray:
    """Per-row offsets: ``exch_offset_ns`` estimated separately for each recording session
    (sessions split where the source is silent for more than ``SESSION_GAP_NS``)."""
    out = np.zeros(ts_recv.shape[0], np.int64)
    cuts = np.flatnonzero(np.diff(ts_recv) > SESSION_GAP_NS) + 1
    for lo, hi in zip(np.r_[0, cuts], np.r_[cuts, ts_recv.shape[0]]):
        out[lo:hi] = exch_offset_ns(ts_recv[lo:hi], ts_exch[lo:hi])
    return out


def build_events(frame: pl.DataFrame, inst_keys: list[str], *, timeline: str = "recv",
                 source: str = "<data>") -> EventArrays:
    """Turn a validated canonical quotes frame into the kernel's arrays."""
    keyed = frame.with_columns((pl.col("venue") + ":" + pl.col("symbol")).alias("_key"))
    present = set(keyed.get_column("_key").unique().to_list())
    missing = [k for k in inst_keys if k not in present]
    if missing:
        raise DataError(
            f"{source}: instrument {missing[0]} is configured but has no rows in the data "
            f"(data holds {sorted(present)}); fix the venue/symbol in the config or the data"
        )
    mapping = pl.DataFrame({"_key": inst_keys, "_inst": np.arange(len(inst_keys), dtype=np.int32)})
    used = keyed.join(mapping, on="_key", how="inner", maintain_order="left")
    dropped = keyed.height - used.height
    used = used.with_row_index("_row").sort(["ts_recv_ns", "_inst", "_row"])
    n = used.height
    n_levels = depth_levels(frame.columns)
    ev = np.empty(n, T.EVENT_DTYPE)
    recv = used.get_column("ts_recv_ns").to_numpy()
    ev["ts_recv"] = recv
    ev["inst"] = used.get_column("_inst").to_numpy()
    ev["kind"] = T.EV_QUOTE
    for name in ("bid_px", "bid_qty", "ask_px", "ask_qty"):
        ev[name] = used.get_column(name).to_numpy()
    use_exch, offsets = _exch_times(ev, used, inst_keys, timeline)
    depth = np.zeros((0, 4, 0))
    ev["depth_row"] = -1
    if n_levels > 1:
        depth = _depth_array(used, n_levels)
        ev["depth_row"] = np.arange(n, dtype=np.int64)
    return EventArrays(ev, depth, list(inst_keys), n_levels, use_exch, offsets, dropped)


def _exch_times(ev: np.ndarray, used: pl.DataFrame, inst_keys: list[str], timeline: str):
    ev["ts_exch"] = ev["ts_recv"]
    use_exch: dict[str, bool] = {k: False for k in inst_keys}
    offsets: dict[str, list[int]] = {k: [] for k in inst_keys}
    if timeline != "exch" or "ts_exch_ns" not in used.columns:
        return use_exch, offsets
    exch = used.get_column("ts_exch_ns")
    for i, key in enumerate(inst_keys):
        mask = ev["inst"] == i
        col = exch.filter(pl.Series(mask))
        if col.null_count() > 0:
            continue  # this source has no exchange clock: it stays on the receive timeline
        raw = col.to_numpy()
        off = session_offsets_ns(ev["ts_recv"][mask], raw)
        ev["ts_exch"][mask] = raw + off
        use_exch[key] = True
        offsets[key] = sorted({int(x) for x in off})
    return use_exch, offsets


def _depth_array(used: pl.DataFrame, n_levels: int) -> np.ndarray:
    depth = np.full((used.height, 4, n_levels - 1), np.nan)
    for lvl in range(1, n_levels):
        for side_idx, side in enumerate(("bid", "ask")):
            px_col, qty_col = level_columns(side, lvl)
            if px_col in used.columns:
                depth[:, 2 * side_idx, lvl - 1] = used.get_column(px_col).fill_null(np.nan).to_numpy()
                depth[:, 2 * side_idx + 1, lvl - 1] = used.get_column(qty_col).fill_null(0.0).to_numpy()
    return depth
