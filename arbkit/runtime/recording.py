"""A session's recording: every event the kernel was fed, in order, with its journal number.

``<dir>/session.json`` says what the events mean (instrument keys, timelines, the config's
hash); ``<dir>/events/part-<first seq>-<last seq>.parquet`` hold the events (each part written
to a temporary name, then renamed: a crash leaves whole parts only). A backtest of the folder
(``arbkit backtest --data <dir> --preset ...``, or :func:`load_recording`) feeds exactly those
events to the same kernel, so it reproduces the session's fills, bit for bit.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from arbkit.core import types as T
from arbkit.data.events import EventArrays
from arbkit.errors import ConfigError, DataError

META = "session.json"


class SessionRecording:
    """Appends fed events; ``flush()`` writes what is pending as one part."""

    def __init__(self, root: Path, meta: dict[str, Any]) -> None:
        self.root = Path(root)
        path = self.root / META
        if path.exists():
            have = json.loads(path.read_text())
            if have.get("session") != meta.get("session"):
                raise ConfigError(f"{self.root} holds the recording of session "
                                  f"{have.get('session')!r}; record this one elsewhere "
                                  "(--record-dir) or move that folder away")
        elif self.root.exists() and any(self.root.iterdir()):
            raise ConfigError(f"{self.root} is not empty and is no session recording; give "
                              "--record-dir a new or empty folder")
        (self.root / "events").mkdir(parents=True, exist_ok=True)
        if not path.exists():
            _atomic_write(path, json.dumps(meta, indent=1, sort_keys=True).encode())
        self.pending: list[tuple[np.ndarray, np.ndarray]] = []
        self.last = _last_seq(self.root)  # events up to here are recorded already

    def add(self, seqs: np.ndarray, rows: np.ndarray) -> None:
        keep = seqs > self.last
        if keep.any():
            self.pending.append((seqs[keep].copy(), rows[keep].copy()))

    def flush(self) -> int:
        """Write the pending events as one part; returns how many."""
        if not self.pending:
            return 0
        seqs = np.concatenate([s for s, _ in self.pending])
        rows = np.concatenate([r for _, r in self.pending])
        self.pending = []
        frame = pl.from_numpy(rows).with_columns(pl.Series("seq", seqs, pl.Int64))
        name = f"part-{int(seqs[0]):012d}-{int(seqs[-1]):012d}.parquet"
        tmp = self.root / "events" / f".{name}.tmp"
        frame.write_parquet(tmp, compression="zstd")
        os.replace(tmp, self.root / "events" / name)
        self.last = int(seqs[-1])
        return int(seqs.shape[0])


def _last_seq(root: Path) -> int:
    parts = sorted((root / "events").glob("part-*.parquet"))
    return int(parts[-1].stem.split("-")[-1]) if parts else -1


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def is_recording(path: Any) -> bool:
    """True for a session recording folder."""
    try:
        return (Path(path) / META).is_file()
    except TypeError:
        return False


def load_recording(path: Any) -> tuple[dict[str, Any], EventArrays]:
    """(meta, the events exactly as fed) of a recording folder."""
    root = Path(path)
    meta = json.loads((root / META).read_text())
    parts = sorted((root / "events").glob("part-*.parquet"))
    if not parts:
        raise DataError(f"{root}: a session recording with no events yet (the session wrote "
                        "none before it stopped); run the session longer")
    frame = pl.concat([pl.read_parquet(p) for p in parts]).unique("seq", keep="first",
                                                                  maintain_order=True)
    frame = frame.sort("seq")
    ev = np.zeros(frame.height, T.EVENT_DTYPE)
    for name in T.EVENT_DTYPE.names:
        ev[name] = frame.get_column(name).to_numpy()
    arrays = EventArrays(ev, np.zeros((0, 4, 0)), list(meta["inst_keys"]), 1,
                         {k: bool(v) for k, v in meta["use_exch"].items()}, {}, 0)
    return meta, arrays
