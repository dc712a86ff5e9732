"""The results schema: one definition, rendered as the same SQL for DuckDB and PostgreSQL.

The per-row tables (trades, fills, equity, guards) take their columns from the kernel's record
dtypes in ``arbkit.core.types``, plus the text labels ``arbkit.metrics.summary`` adds, so a
field added to the kernel becomes a column here without a second list to keep in step (and
``ensure`` adds it to an existing database). Integers of any width are stored as BIGINT, floats
as DOUBLE PRECISION (IEEE binary64 on both engines: stored and read back bit for bit), labels as
TEXT; the polars dtype of each column is kept here so reads give back the frame's own dtypes.

Every per-row table also carries ``run_id`` (the ``runs`` row it belongs to) and ``seq`` (the
row's position in the result frame, which fixes the order of a read).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import polars as pl

from arbkit.core import types as T

SCHEMA_VERSION = 1  # bump on a change ``ensure`` cannot apply by adding columns

KINDS = ("trades", "fills", "equity", "guards")

# (record dtype, text labels added after the numeric columns) of each per-row table, in the
# column order of ``res.<kind>``
_SOURCES: dict[str, tuple[np.dtype, tuple[str, ...]]] = {
    "trades": (T.TRADE_DTYPE, ("route_name", "exit_reason_text")),
    "fills": (T.FILL_DTYPE, ("route_name", "instrument", "purpose_text")),
    "equity": (T.EQUITY_DTYPE, ()),
    "guards": (T.GUARD_DTYPE, ("route_name", "guard")),
}


@dataclass(frozen=True)
class Column:
    name: str
    sql: str  # BIGINT | DOUBLE PRECISION | TEXT | TIMESTAMPTZ
    dtype: pl.DataType  # what a read gives back

    @property
    def ident(self) -> str:
        return quote(self.name)


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = ()

    @property
    def ident(self) -> str:
        return quote(self.name)

    @property
    def payload(self) -> tuple[Column, ...]:
        """The columns that come from the result frame (not run_id, not seq)."""
        return tuple(c for c in self.columns if c.name not in ("run_id", "seq"))

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    def create_sql(self) -> str:
        body = [f"{c.ident} {c.sql}" for c in self.columns]
        if self.primary_key:
            body.append(f"PRIMARY KEY ({', '.join(quote(k) for k in self.primary_key)})")
        return f"CREATE TABLE IF NOT EXISTS {self.ident} (\n  " + ",\n  ".join(body) + "\n)"


def quote(name: str) -> str:
    """A quoted SQL identifier (``limit`` is a column name, and a reserved word on both)."""
    return '"' + name.replace('"', '""') + '"'


def _numeric(name: str, dt: np.dtype) -> Column:
    pdt = pl.from_numpy(np.zeros(0, dtype=[(name, dt)])).schema[name]
    if dt.kind in "iub":
        if dt.kind == "u" and dt.itemsize == 8:
            raise TypeError(f"store: field {name!r} is uint64, which BIGINT cannot hold")
        return Column(name, "BIGINT", pdt)
    if dt.kind == "f":
        return Column(name, "DOUBLE PRECISION", pdt)
    raise TypeError(f"store: field {name!r} has dtype {dt}, which the results schema cannot hold")


def _frame_table(kind: str) -> Table:
    dtype, labels = _SOURCES[kind]
    cols = [Column("run_id", "TEXT", pl.String()), Column("seq", "BIGINT", pl.Int64())]
    cols += [_numeric(name, dtype.fields[name][0]) for name in dtype.names]
    cols += [Column(name, "TEXT", pl.String()) for name in labels]
    return Table(kind, tuple(cols))


RUNS = Table(
    "runs",
    (
        Column("run_id", "TEXT", pl.String()),
        Column("created_at", "TIMESTAMPTZ", pl.Datetime("us", "UTC")),
        Column("kind", "TEXT", pl.String()),
        Column("study", "TEXT", pl.String()),
        Column("trial", "BIGINT", pl.Int64()),
        Column("config_json", "TEXT", pl.String()),
        Column("config_hash", "TEXT", pl.String()),
        Column("data_hash", "TEXT", pl.String()),
        Column("code_version", "TEXT", pl.String()),
        Column("params_json", "TEXT", pl.String()),
        Column("metrics_json", "TEXT", pl.String()),
        Column("extra_json", "TEXT", pl.String()),
        Column("events", "BIGINT", pl.Int64()),
        Column("n_trades", "BIGINT", pl.Int64()),
    ),
    primary_key=("run_id",),
)

SCHEMA_TABLE = Table(
    "schema_version",
    (
        Column("fingerprint", "TEXT", pl.String()),
        Column("version", "BIGINT", pl.Int64()),
        Column("applied_at", "TIMESTAMPTZ", pl.Datetime("us", "UTC")),
        Column("code_version", "TEXT", pl.String()),
    ),
    primary_key=("fingerprint",),
)

FRAMES: dict[str, Table] = {kind: _frame_table(kind) for kind in KINDS}
TABLES: tuple[Table, ...] = (SCHEMA_TABLE, RUNS, *FRAMES.values())

# PostgreSQL only: DuckDB finds one run's rows through its per-block min/max (the rows of a run
# are written together), and its ART indexes would cost memory and write time for nothing.
# run_id alone, not (run_id, seq): equal keys deduplicate, so the index stays a fraction of
# the table, and sorting one run's rows by seq is cheap.
PG_INDEXES = (
    f"CREATE INDEX IF NOT EXISTS runs_study_idx ON {RUNS.ident} ({quote('study')})",
    *(f"CREATE INDEX IF NOT EXISTS {kind}_run_idx ON {quote(kind)} ({quote('run_id')})"
      for kind in KINDS),
)


def fingerprint() -> str:
    """Hash of every table's column names and SQL types (changes when the kernel's do)."""
    text = ";".join(f"{t.name}:" + ",".join(f"{c.name} {c.sql}" for c in t.columns)
                    for t in TABLES)
    return hashlib.sha256(f"{SCHEMA_VERSION}|{text}".encode()).hexdigest()[:16]


def missing_columns(present: dict[str, set[str]]) -> list[str]:
    """``ALTER TABLE`` statements adding the columns this schema has and the database lacks.

    ``present`` maps a table name to the column names the database has (lower case).
    """
    out = []
    for t in TABLES:
        have = present.get(t.name)
        if have is None:
            continue  # created by CREATE TABLE IF NOT EXISTS
        out += [f"ALTER TABLE {t.ident} ADD COLUMN {c.ident} {c.sql}"
                for c in t.columns if c.name.lower() not in have]
    return out


COLUMNS_SQL = ("SELECT table_name, column_name FROM information_schema.columns "
               "WHERE table_schema = current_schema()")
