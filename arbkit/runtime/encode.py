"""Feed quotes, heartbeats and operator controls as the kernel's event rows, and their
journal bytes (one ``EVENT_DTYPE`` record each: the exact input of the kernel)."""

from __future__ import annotations

import numpy as np

from arbkit.core import types as T

ROW_BYTES = T.EVENT_DTYPE.itemsize


def quote_rows(quotes: list, inst_index: dict[str, int], stamps: list[int]) -> np.ndarray:
    """One ``EV_QUOTE`` row per feed quote (L1: ``depth_row`` -1), stamped ``stamps``."""
    ev = np.zeros(len(quotes), T.EVENT_DTYPE)
    for j, (q, ts) in enumerate(zip(quotes, stamps, strict=True)):
        rec = ev[j]
        rec["ts_recv"] = ts
        rec["ts_exch"] = ts if q.ts_exch_ns is None else q.ts_exch_ns
        rec["inst"] = inst_index[q.key]
        rec["kind"] = T.EV_QUOTE
        rec["bid_px"], rec["bid_qty"] = q.bid_px, q.bid_qty
        rec["ask_px"], rec["ask_qty"] = q.ask_px, q.ask_qty
        rec["depth_row"] = -1
    return ev


def heartbeat(ts: int) -> np.ndarray:
    """An ``EV_HEARTBEAT``: time passes (timers fire on a quiet feed)."""
    ev = np.zeros(1, T.EVENT_DTYPE)
    ev["ts_recv"] = ev["ts_exch"] = ts
    ev["kind"] = T.EV_HEARTBEAT
    ev["depth_row"] = -1
    return ev


def to_bytes(rows: np.ndarray) -> list[bytes]:
    """Journal payloads, one per row."""
    raw = np.ascontiguousarray(rows).tobytes()
    return [raw[k * ROW_BYTES:(k + 1) * ROW_BYTES] for k in range(rows.shape[0])]


def from_bytes(payloads: list[bytes]) -> np.ndarray:
    """Rows from journal payloads."""
    return np.frombuffer(b"".join(payloads), T.EVENT_DTYPE).copy()
