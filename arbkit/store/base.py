"""The store contract, and what every backend shares: the runs row, frame checks, JSON.

Contract (tests/integration/test_store.py runs it on every backend):

- ``save_run`` writes the ``runs`` row and every row of trades, fills, equity and guards in
  one transaction: after an error (or a killed process) nothing of the run remains.
- ``frame(kind, run_id)`` gives back the saved frame: the same columns, dtypes, row order and
  values, floats bit for bit (NaN, -0.0 and infinities included).
- Several processes may save at once (each with its own store object); none loses a run.
- The PostgreSQL password is never written anywhere; URLs in messages are masked.
"""

from __future__ import annotations

import functools
import json
import math
import subprocess
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from arbkit.errors import StorageError
from arbkit.store import schema as S


class Store(ABC):
    """A results store (DuckDB file or PostgreSQL database); get one with ``open_store``.

    Examples
    --------
    >>> from arbkit.store import open_store
    >>> with open_store(path="results/arbkit.duckdb") as store:  # doctest: +SKIP
    ...     run_id = store.save_run(res, study="demo", params={"entry_bps": 12.0})
    ...     trades = store.frame("trades", run_id)
    """

    url: str  # masked: safe to print

    def save_run(self, res: Any, *, study: str | None = None, trial: int | None = None,
                 params: dict | None = None, extra: dict | None = None,
                 kind: str | None = None) -> str:
        """Save one backtest result (all of it or nothing) and return its new ``run_id``.

        ``res`` is a ``BacktestResult`` (or anything with its ``trades``, ``fills``,
        ``equity``, ``guards``, ``summary``, ``config`` and ``meta``). ``kind`` defaults to
        ``"trial"`` when ``trial`` is given, else ``"backtest"``.
        """
        frames = {k: check_frame(k, getattr(res, k)) for k in S.KINDS}
        row = run_row(res, study=study, trial=trial, params=params, extra=extra, kind=kind)
        self._save(row, frames)
        return row["run_id"]

    # ---- a session's run, written as it goes (paper / live) ----------------------------
    def open_session_run(self, cfg: Any, *, kind: str, study: str,
                         extra: dict | None = None) -> str:
        """A new ``runs`` row for a paper/live session (no rows yet); its ``run_id``."""
        row = {
            "run_id": str(uuid.uuid4()), "created_at": datetime.now(UTC), "kind": kind,
            "study": study, "trial": None, "config_json": to_json(cfg.to_dict()),
            "config_hash": cfg.config_hash(), "data_hash": None, "code_version": code_version(),
            "params_json": None, "metrics_json": to_json({}),
            "extra_json": None if extra is None else to_json(extra), "events": 0, "n_trades": 0}
        self._save(row, {})
        return row["run_id"]

    def append_rows(self, run_id: str, frames: dict[str, tuple[int, pl.DataFrame]], *,
                    metrics: dict | None = None, events: int = 0, n_trades: int = 0) -> None:
        """Rows of a session's run, each frame from its row number ``seq0`` on, and the run's
        figures so far, in one transaction. Idempotent: rows from ``seq0`` on are replaced,
        so a session that resumes and writes the same rows again leaves one copy."""
        checked = {k: (seq0, check_frame(k, f)) for k, (seq0, f) in frames.items()}
        self._append(run_id, checked, to_json(metrics or {}), int(events), int(n_trades))

    def rows_written(self, run_id: str) -> dict[str, int]:
        """Per frame kind, the number of rows the run has (its next ``seq0``)."""
        return self._rows_written(run_id)

    def runs(self, study: str | None = None) -> pl.DataFrame:
        """One row per run (all runs, or those of ``study``), oldest first."""
        out = self._runs(study)
        return out.sort("created_at", "run_id", maintain_order=True)

    def frame(self, kind: str, run_id: str) -> pl.DataFrame:
        """The ``kind`` frame (trades, fills, equity, guards) of a saved run, as it was saved."""
        if kind not in S.FRAMES:
            raise StorageError(f"unknown frame kind {kind!r}; use one of {', '.join(S.KINDS)}")
        return self._frame(kind, run_id)

    def delete_study(self, study: str) -> int:
        """Delete every run of ``study`` with all its rows; returns how many runs went."""
        return self._delete_study(study)

    def close(self) -> None:  # noqa: B027 - a no-op for backends that hold nothing open
        """Release the connection (if the backend holds one)."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    @abstractmethod
    def _save(self, row: dict[str, Any], frames: dict[str, pl.DataFrame]) -> None: ...

    @abstractmethod
    def _runs(self, study: str | None) -> pl.DataFrame: ...

    @abstractmethod
    def _frame(self, kind: str, run_id: str) -> pl.DataFrame: ...

    @abstractmethod
    def _delete_study(self, study: str) -> int: ...

    @abstractmethod
    def _append(self, run_id: str, frames: dict[str, tuple[int, pl.DataFrame]],
                metrics_json: str, events: int, n_trades: int) -> None: ...

    @abstractmethod
    def _rows_written(self, run_id: str) -> dict[str, int]: ...


# --------------------------------------------------------------------------- runs row


def run_row(res: Any, *, study: str | None, trial: int | None, params: dict | None,
            extra: dict | None, kind: str | None) -> dict[str, Any]:
    """The ``runs`` row of a result, in ``schema.RUNS`` column order."""
    meta = dict(getattr(res, "meta", None) or {})
    summary = res.summary
    metrics = dict(zip(summary.get_column("metric").to_list(),
                       summary.get_column("value").to_list())) if summary.height else {}
    cfg = res.config
    data_hash = meta.get("data_hash")
    row = {
        "run_id": str(uuid.uuid4()),
        "created_at": datetime.now(UTC),
        "kind": kind or ("trial" if trial is not None else "backtest"),
        "study": study,
        "trial": None if trial is None else int(trial),
        "config_json": to_json(cfg.to_dict()),
        "config_hash": cfg.config_hash(),
        "data_hash": None if data_hash is None else str(data_hash),
        "code_version": code_version(),
        "params_json": None if params is None else to_json(params),
        "metrics_json": to_json(metrics),
        "extra_json": None if extra is None else to_json(extra),
        "events": int(meta.get("events", 0)),
        "n_trades": int(res.trades.height),
    }
    assert list(row) == [c.name for c in S.RUNS.columns]
    return row


def to_json(obj: Any) -> str:
    """Strict JSON (castable to PostgreSQL jsonb): NaN and infinities become null."""
    return json.dumps(_plain(obj), allow_nan=False, default=str)


def _plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


@functools.cache
def code_version() -> str:
    """``arbkit.__version__``, plus ``+g<short sha>`` when the package sits in a git checkout."""
    from arbkit import __version__

    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).resolve().parent,
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = ""
    return f"{__version__}+g{sha}" if sha else __version__


# --------------------------------------------------------------------------- frames


def check_frame(kind: str, frame: pl.DataFrame) -> pl.DataFrame:
    """The result frame's columns in schema order, after checking they are the schema's.

    An empty frame may have no columns at all (a run that never wrote that table).
    """
    table = S.FRAMES[kind]
    want = [c.name for c in table.payload]
    if frame.height == 0:
        return empty(table).drop("run_id", "seq")
    extra = [c for c in frame.columns if c not in want]
    missing = [c for c in want if c not in frame.columns]
    if extra or missing:
        raise StorageError(
            f"res.{kind} does not match the results schema: "
            + (f"unknown column(s) {extra} " if extra else "")
            + (f"missing column(s) {missing} " if missing else "")
            + "(a new label column must be added to arbkit/store/schema.py _SOURCES)")
    for c in table.payload:
        got = frame.schema[c.name]
        if c.sql == "TEXT" and got not in (pl.String, pl.Null):
            raise StorageError(f"res.{kind}.{c.name} is {got}, the schema stores text")
        if c.sql == "DOUBLE PRECISION" and not got.is_float():
            raise StorageError(f"res.{kind}.{c.name} is {got}, the schema stores floats")
        if c.sql == "BIGINT" and not got.is_integer():
            raise StorageError(f"res.{kind}.{c.name} is {got}, the schema stores integers")
        if c.sql != "TEXT" and frame.get_column(c.name).null_count():
            raise StorageError(f"res.{kind}.{c.name} has nulls; numeric columns may not")
    return frame.select(want)


def empty(table: S.Table) -> pl.DataFrame:
    return pl.DataFrame(schema={c.name: c.dtype for c in table.columns})


def typed(frame: pl.DataFrame, cols: tuple[S.Column, ...]) -> pl.DataFrame:
    """A read-back frame cast to the schema's dtypes (BIGINT → Int32 where the kernel's is)."""
    out = frame.select([pl.col(c.name).cast(c.dtype, strict=True) for c in cols])
    return out if out.height else pl.DataFrame(schema={c.name: c.dtype for c in cols})


def ensure_schema(query: Callable[..., list[tuple]]) -> None:
    """Create missing tables and columns and record the schema version.

    ``query(sql, args)`` runs one statement (``%s`` placeholders) and returns its rows; the
    caller holds the lock (file lock or advisory lock) and the transaction.
    """
    for table in S.TABLES:
        query(table.create_sql())
    newest = query(f'SELECT max("version") FROM {S.SCHEMA_TABLE.ident}')[0][0]
    if newest is not None and newest > S.SCHEMA_VERSION:
        raise StorageError(f"results schema version {newest} was written by a newer arbkit "
                           f"(this one writes {S.SCHEMA_VERSION}); upgrade arbkit")
    present: dict[str, set[str]] = {}
    for tname, cname in query(S.COLUMNS_SQL):
        present.setdefault(tname, set()).add(cname.lower())
    for stmt in S.missing_columns(present):
        query(stmt)
    query(f"INSERT INTO {S.SCHEMA_TABLE.ident} VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
          (S.fingerprint(), S.SCHEMA_VERSION, datetime.now(UTC), code_version()))
