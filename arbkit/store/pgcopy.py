"""PostgreSQL binary COPY payloads built with numpy (floats travel as their 8 raw bytes).

Binary COPY, not text: text would round floats through a decimal string and fold every NaN
into one. The layout (PostgreSQL docs, "COPY ... Binary Format"): a header, then per row a
big-endian int16 field count and, per field, an int32 byte length (-1 for NULL) and the value
(int8 and float8: 8 big-endian bytes; text: its UTF-8 bytes), then an int16 -1 trailer.

The fixed-width fields (run_id, seq and every number) of all rows are one numpy record array;
only the text labels are assembled per row. ``columns`` gives the COPY column order that
matches the payload.
"""

from __future__ import annotations

import struct

import numpy as np
import polars as pl

from arbkit.store import schema as S

HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
TRAILER = struct.pack(">h", -1)
_NULL = struct.pack(">i", -1)


def columns(table: S.Table) -> list[S.Column]:
    """COPY column order: run_id, seq, the numbers, then the text labels."""
    head = [table.column("run_id"), table.column("seq")]
    nums = [c for c in table.payload if c.sql != "TEXT"]
    return head + nums + [c for c in table.payload if c.sql == "TEXT"]


def payload(table: S.Table, run_id: str, frame: pl.DataFrame, seq0: int = 0) -> bytes:
    """The whole binary COPY stream of one run's ``frame`` (checked by ``check_frame``), its
    rows numbered from ``seq0``."""
    cols = columns(table)
    nums = [c for c in cols[2:] if c.sql != "TEXT"]
    texts = [c for c in cols[2:] if c.sql == "TEXT"]
    rid = run_id.encode()
    layout = [("n", ">i2"), ("rl", ">i4"), ("rv", f"S{len(rid)}"), ("sl", ">i4"), ("sv", ">i8")]
    for j, c in enumerate(nums):
        layout += [(f"l{j}", ">i4"), (f"v{j}", ">f8" if c.sql == "DOUBLE PRECISION" else ">i8")]
    rec = np.empty(frame.height, dtype=np.dtype(layout))
    rec["n"] = len(cols)
    rec["rl"], rec["rv"] = len(rid), rid
    rec["sl"], rec["sv"] = 8, np.arange(seq0, seq0 + frame.height, dtype=np.int64)
    for j, c in enumerate(nums):
        rec[f"l{j}"] = 8
        # float64 → >f8 only swaps bytes: NaN payloads, -0.0 and subnormals survive
        rec[f"v{j}"] = frame.get_column(c.name).to_numpy()
    fixed = rec.tobytes()
    if not texts:
        return HEADER + fixed + TRAILER
    labels = [_encode(frame.get_column(c.name)) for c in texts]
    w = rec.dtype.itemsize
    parts = [HEADER]
    for i, tail in enumerate(map(b"".join, zip(*labels))):
        parts += (fixed[i * w:(i + 1) * w], tail)
    parts.append(TRAILER)
    return b"".join(parts)


def _encode(col: pl.Series) -> list[bytes]:
    """Length-prefixed UTF-8 of each value (labels repeat: each distinct one encoded once)."""
    cache: dict[str | None, bytes] = {None: _NULL}
    out = []
    for v in col.to_list():
        b = cache.get(v)
        if b is None:
            raw = v.encode()
            b = cache[v] = struct.pack(">i", len(raw)) + raw
        out.append(b)
    return out
