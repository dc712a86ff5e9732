"""PostgreSQL backend (psycopg 3): one connection per store, one transaction per operation.

Concurrent writers need nothing more than transactions; creating the tables takes a
transaction-scoped advisory lock, so two workers starting at once do not race on
CREATE TABLE IF NOT EXISTS. Rows go in by binary COPY (``pgcopy.py``), and are read back in
binary, so floats keep every bit.

The tables live in the connection's current schema (the first one of ``search_path``); put
``?options=-csearch_path%3Dmy_schema`` in the URL to use another one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import polars as pl
import psycopg

from arbkit.errors import StorageError
from arbkit.store import mask_url, pgcopy
from arbkit.store import schema as S
from arbkit.store.base import Store, ensure_schema, typed

CONNECT_TIMEOUT_S = 10
# pg_advisory_xact_lock key of schema creation (any fixed int64; this is "arbkit" in ASCII)
SCHEMA_LOCK = 0x61726B6B6974


class PgStore(Store):
    """Results in a PostgreSQL database. The password is used to connect, never kept in text."""

    def __init__(self, url: str) -> None:
        self.url = mask_url(url)
        self._conninfo = url
        self._conn: psycopg.Connection | None = None
        with self._tx() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
            ensure_schema(lambda sql, args=None: _rows(cur, sql, args))
            for stmt in S.PG_INDEXES:
                cur.execute(stmt)

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed or self._conn.broken:
            try:
                self._conn = psycopg.connect(self._conninfo, connect_timeout=CONNECT_TIMEOUT_S)
            except psycopg.Error as exc:
                raise StorageError(f"cannot connect to PostgreSQL {self.url}: {exc}") from exc
        return self._conn

    @contextlib.contextmanager
    def _tx(self) -> Iterator[psycopg.Cursor]:
        """A binary cursor inside one transaction (rolled back on any error)."""
        conn = self._connection()
        try:
            with conn.transaction(), conn.cursor(binary=True) as cur:
                yield cur
        except psycopg.Error as exc:
            raise StorageError(f"PostgreSQL {self.url}: {exc}") from exc

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _save(self, row: dict[str, Any], frames: dict[str, pl.DataFrame]) -> None:
        cols = ", ".join(c.ident for c in S.RUNS.columns)
        marks = ", ".join("%s" for _ in S.RUNS.columns)
        with self._tx() as cur:
            cur.execute(f"INSERT INTO {S.RUNS.ident} ({cols}) VALUES ({marks})",
                        list(row.values()))
            for kind, frame in frames.items():
                self._insert(cur, kind, row["run_id"], frame)

    def _insert(self, cur: psycopg.Cursor, kind: str, run_id: str, frame: pl.DataFrame,
                seq0: int = 0) -> None:
        if frame.height == 0:
            return
        table = S.FRAMES[kind]
        cols = ", ".join(c.ident for c in pgcopy.columns(table))
        with cur.copy(f"COPY {table.ident} ({cols}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.write(pgcopy.payload(table, run_id, frame, seq0))

    def _append(self, run_id: str, frames: dict[str, tuple[int, pl.DataFrame]],
                metrics_json: str, events: int, n_trades: int) -> None:
        with self._tx() as cur:
            for kind, (seq0, frame) in frames.items():
                cur.execute(f'DELETE FROM {S.FRAMES[kind].ident} WHERE "run_id" = %s '
                            'AND "seq" >= %s', (run_id, seq0))
                self._insert(cur, kind, run_id, frame, seq0)
            cur.execute(f'UPDATE {S.RUNS.ident} SET "metrics_json" = %s, "events" = %s, '
                        '"n_trades" = %s WHERE "run_id" = %s', (metrics_json, events, n_trades,
                                                               run_id))

    def _rows_written(self, run_id: str) -> dict[str, int]:
        with self._tx() as cur:
            return {kind: int(_rows(cur, f'SELECT coalesce(max("seq") + 1, 0) FROM {t.ident} '
                                         'WHERE "run_id" = %s', (run_id,))[0][0])
                    for kind, t in S.FRAMES.items()}

    def _runs(self, study: str | None) -> pl.DataFrame:
        cols = ", ".join(c.ident for c in S.RUNS.columns)
        sql = f"SELECT {cols} FROM {S.RUNS.ident}"
        with self._tx() as cur:
            rows = (_rows(cur, sql) if study is None
                    else _rows(cur, sql + ' WHERE "study" = %s', (study,)))
        return _frame_of(rows, S.RUNS.columns)

    def _frame(self, kind: str, run_id: str) -> pl.DataFrame:
        table = S.FRAMES[kind]
        cols = ", ".join(c.ident for c in table.payload)
        with self._tx() as cur:
            if not _rows(cur, f'SELECT 1 FROM {S.RUNS.ident} WHERE "run_id" = %s', (run_id,)):
                raise StorageError(f"no run {run_id!r} in {self.url}")
            rows = _rows(cur, f'SELECT {cols} FROM {table.ident} WHERE "run_id" = %s '
                              'ORDER BY "seq"', (run_id,))
        return _frame_of(rows, table.payload)

    def _delete_study(self, study: str) -> int:
        ids = f'SELECT "run_id" FROM {S.RUNS.ident} WHERE "study" = %s'
        with self._tx() as cur:
            for table in S.FRAMES.values():
                cur.execute(f'DELETE FROM {table.ident} WHERE "run_id" IN ({ids})', (study,))
            cur.execute(f'DELETE FROM {S.RUNS.ident} WHERE "study" = %s', (study,))
            return cur.rowcount


def _rows(cur: psycopg.Cursor, sql: str, args: Any = None) -> list[tuple]:
    cur.execute(sql, args or None)
    return cur.fetchall() if cur.description else []


def _frame_of(rows: list[tuple], cols: tuple[S.Column, ...]) -> pl.DataFrame:
    """Rows → frame; ints come back as BIGINT and are cast to the schema's width."""
    wide = {c.name: (pl.Int64 if c.dtype.is_integer() else c.dtype) for c in cols}
    return typed(pl.DataFrame(rows, schema=wide, orient="row"), cols)
