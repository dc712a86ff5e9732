"""Generic CSV importer: any kind, with a column mapping, a time unit and constants.

A file is never silently remapped: the mapping says which source column becomes which
canonical column (``{"ts_recv_ns": "time", "bid_px": "bid"}``); columns the source lacks can be
given as constants (``venue="kraken"``). Time columns are converted from ``ts_unit`` (``ns``,
``us``, ``ms``, ``s`` or ``iso`` text, which is taken as UTC when it carries no offset).

Without ``[columns]``, the file's columns that carry canonical names are read as they are
(a mapping of one line, ``kind = "quotes"``, imports a CSV written from arbkit's own quotes).

Example mapping file (TOML), for ``arbkit data import csv --map mapping.toml``::

    kind = "quotes"
    ts_unit = "ms"
    [columns]
    ts_recv_ns = "time"
    bid_px = "bid"
    bid_qty = "bid_size"
    ask_px = "ask"
    ask_qty = "ask_size"
    [constants]
    venue = "kraken"
    symbol = "XBT/USD"
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from arbkit.data import schema
from arbkit.data.importers.common import check_unit, interval_ns, need_file, read_csv, to_ns
from arbkit.data.tables import KINDS, spec
from arbkit.errors import DataError

_MAPPING_KEYS = {"kind", "ts_unit", "interval", "separator", "columns", "constants"}


@dataclass(frozen=True)
class CsvMapping:
    """How to read one CSV layout into a canonical table."""

    kind: str
    columns: dict[str, str] = field(default_factory=dict)  # canonical -> source column
    constants: dict[str, Any] = field(default_factory=dict)
    ts_unit: str = "ns"
    interval: str | None = None  # bars: derive ts_close_ns = ts_open_ns + interval
    separator: str = ","

    @classmethod
    def load(cls, path: str | Path) -> CsvMapping:
        p = need_file(path, "csv mapping")
        try:
            raw = tomllib.loads(p.read_text(encoding="utf-8-sig"))
        except tomllib.TOMLDecodeError as exc:
            raise DataError(f"{p}: not valid TOML ({exc}); fix the syntax") from None
        unknown = sorted(set(raw) - _MAPPING_KEYS)
        if unknown:
            raise DataError(f"{p}: unknown key {unknown[0]!r}; allowed: "
                            f"{', '.join(sorted(_MAPPING_KEYS))}")
        if "kind" not in raw:
            raise DataError(f"{p}: missing key 'kind' (one of {', '.join(KINDS)})")
        return cls(**raw)


def _canonical(kind: str) -> tuple[list[str], set[str]]:
    """(every canonical column, the time columns) of a kind."""
    if kind == "quotes":
        cols = ["ts_recv_ns", "ts_exch_ns", "venue", "symbol", *schema.QUOTE_PRICE_COLUMNS]
        return cols, {"ts_recv_ns", "ts_exch_ns"}
    sp = spec(kind)
    return [c.name for c in sp.columns], {c.name for c in sp.columns if c.rule == "ts"}


def read_csv_mapped(path: str | Path, mapping: CsvMapping) -> pl.DataFrame:
    """Read a CSV into ``mapping.kind``'s canonical columns (validation happens on add)."""
    p = need_file(path, "csv import")
    if mapping.kind not in KINDS:
        raise DataError(f"csv import: kind={mapping.kind!r}; use one of {', '.join(KINDS)}")
    known, ts_cols = _canonical(mapping.kind)
    depth = [c for c in mapping.columns if schema.is_depth_column(c)]
    bad = sorted(set(mapping.columns) - set(known) - set(depth)
                 | set(mapping.constants) - set(known))
    if bad:
        raise DataError(f"csv import: mapping names {bad[0]!r}, not a column of "
                        f"{mapping.kind}; its columns: {', '.join(known)}")
    raw = read_csv(p, separator=mapping.separator)
    if not mapping.columns:  # no [columns]: the file's columns already have arbkit's names
        same = {c: c for c in raw.columns if c in known or schema.is_depth_column(c)}
        if not same:
            raise DataError(f"{p}: columns={raw.columns}: none has a canonical {mapping.kind} "
                            f"name ({', '.join(known)}); add a [columns] table to the mapping")
        mapping = CsvMapping(kind=mapping.kind, columns=same, constants=mapping.constants,
                             ts_unit=mapping.ts_unit, interval=mapping.interval,
                             separator=mapping.separator)
    absent = sorted(src for src in mapping.columns.values() if src not in raw.columns)
    if absent:
        raise DataError(f"{p}: columns={raw.columns}: the mapping reads {absent[0]!r}, which "
                        "the file does not have; fix the mapping")
    exprs = []
    for canon, src in mapping.columns.items():
        if canon in ts_cols:
            unit = "iso" if raw.schema[src] == pl.String else mapping.ts_unit
            check_unit(raw.get_column(src), unit, where=f"{p}: column {src!r} ({canon})")
            exprs.append(to_ns(pl.col(src), unit, name=canon))
        else:
            exprs.append(pl.col(src).alias(canon))
    exprs += [pl.lit(v).alias(k) for k, v in mapping.constants.items()]
    out = raw.select(exprs)
    if mapping.interval and "ts_open_ns" in out.columns and "ts_close_ns" not in out.columns:
        out = out.with_columns((pl.col("ts_open_ns") + interval_ns(mapping.interval))
                               .alias("ts_close_ns"))
    return out
