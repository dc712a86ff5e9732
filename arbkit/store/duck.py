"""DuckDB backend: one file, shared by many processes through a lock file.

DuckDB lets one process at a time open a file read-write. So every operation takes an
exclusive ``fcntl.flock`` on ``<file>.lock``, opens the file, works, commits and closes it,
then lets go: worker processes take turns instead of failing with "could not set lock".
Reads take the same lock (a read-only open beside a writer's would fail too).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from arbkit.errors import StorageError
from arbkit.store import schema as S
from arbkit.store.base import Store, ensure_schema, typed


class DuckStore(Store):
    """Results in a DuckDB file (created with its parent folder when missing)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.url = f"duckdb:///{self.path}"
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create the folder of {self.path}: {exc}") from exc
        with self._connect() as con:
            _ensure(con)

    @contextlib.contextmanager
    def _connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """The file, opened under the lock; committed on success, rolled back on error."""
        try:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StorageError(f"cannot open the lock file {self.lock_path}: {exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                con = duckdb.connect(str(self.path))
            except duckdb.Error as exc:
                raise StorageError(f"cannot open DuckDB file {self.path}: {exc} (another "
                                   "program without the lock file may hold it)") from exc
            try:
                con.begin()
                yield con
                con.commit()
            except BaseException as exc:
                with contextlib.suppress(duckdb.Error):  # keep the first error, not this one
                    con.rollback()
                if isinstance(exc, duckdb.Error):
                    raise StorageError(f"DuckDB {self.path}: {exc}") from exc
                raise
            finally:
                con.close()
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    def _save(self, row: dict[str, Any], frames: dict[str, pl.DataFrame]) -> None:
        cols = ", ".join(c.ident for c in S.RUNS.columns)
        marks = ", ".join("?" for _ in S.RUNS.columns)
        with self._connect() as con:
            con.execute(f"INSERT INTO {S.RUNS.ident} ({cols}) VALUES ({marks})", list(row.values()))
            for kind, frame in frames.items():
                self._insert(con, kind, row["run_id"], frame)

    def _append(self, run_id: str, frames: dict[str, tuple[int, pl.DataFrame]],
                metrics_json: str, events: int, n_trades: int) -> None:
        with self._connect() as con:
            for kind, (seq0, frame) in frames.items():
                con.execute(f'DELETE FROM {S.FRAMES[kind].ident} WHERE "run_id" = ? '
                            'AND "seq" >= ?', [run_id, seq0])
                self._insert(con, kind, run_id, frame, seq0)
            con.execute(f'UPDATE {S.RUNS.ident} SET "metrics_json" = ?, "events" = ?, '
                        '"n_trades" = ? WHERE "run_id" = ?', [metrics_json, events, n_trades,
                                                             run_id])

    def _rows_written(self, run_id: str) -> dict[str, int]:
        with self._connect() as con:
            return {kind: int(con.execute(f'SELECT coalesce(max("seq") + 1, 0) FROM {t.ident} '
                                          'WHERE "run_id" = ?', [run_id]).fetchone()[0])
                    for kind, t in S.FRAMES.items()}

    def _insert(self, con: duckdb.DuckDBPyConnection, kind: str, run_id: str,
                frame: pl.DataFrame, seq0: int = 0) -> None:
        if frame.height == 0:
            return
        table = S.FRAMES[kind]
        # run_id goes in as a parameter: a 36-character literal repeated per row costs more
        # than the numbers
        src = frame.with_columns((pl.int_range(frame.height, dtype=pl.Int64) + seq0).alias("seq"))
        rest = ", ".join(c.ident for c in table.columns if c.name != "run_id")
        con.register("arbkit_frame", src.to_arrow())
        try:
            con.execute(f'INSERT INTO {table.ident} ("run_id", {rest}) '
                        f"SELECT ?, {rest} FROM arbkit_frame", [run_id])
        finally:
            con.unregister("arbkit_frame")

    def _runs(self, study: str | None) -> pl.DataFrame:
        cols = ", ".join(c.ident for c in S.RUNS.columns)
        sql = f"SELECT {cols} FROM {S.RUNS.ident}"
        with self._connect() as con:
            if study is None:
                out = con.sql(sql).pl()
            else:
                out = con.sql(sql + ' WHERE "study" = ?', params=[study]).pl()
        return typed(out, S.RUNS.columns)

    def _frame(self, kind: str, run_id: str) -> pl.DataFrame:
        table = S.FRAMES[kind]
        cols = ", ".join(c.ident for c in table.payload)
        with self._connect() as con:
            if not con.execute(f'SELECT 1 FROM {S.RUNS.ident} WHERE "run_id" = ?',
                               [run_id]).fetchall():
                raise StorageError(f"no run {run_id!r} in {self.url}")
            out = con.sql(f'SELECT {cols} FROM {table.ident} WHERE "run_id" = ? ORDER BY "seq"',
                          params=[run_id]).pl()
        return typed(out, table.payload)

    def _delete_study(self, study: str) -> int:
        ids = f'SELECT "run_id" FROM {S.RUNS.ident} WHERE "study" = ?'
        with self._connect() as con:
            n = con.execute(f"SELECT count(*) FROM ({ids})", [study]).fetchone()[0]
            for table in S.FRAMES.values():
                con.execute(f'DELETE FROM {table.ident} WHERE "run_id" IN ({ids})', [study])
            con.execute(f'DELETE FROM {S.RUNS.ident} WHERE "study" = ?', [study])
        return int(n)


def _ensure(con: duckdb.DuckDBPyConnection) -> None:
    """Create missing tables and columns, record the schema version (under the file lock)."""
    ensure_schema(lambda sql, args=(): con.execute(sql.replace("%s", "?"), list(args)).fetchall())
