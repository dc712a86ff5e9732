"""What a backtest's ``data`` argument stands for, resolved to one validated quotes frame.

``data`` may be a polars frame, a Parquet file or folder, or a catalog root. Each may hold
quotes, quote bars or trade bars (told apart by their columns; in a catalog, per instrument:
quotes first, then quote bars, then trade bars). Bars go through :mod:`arbkit.data.barmode`
and the result is validated as quotes like any other input.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.parquet as pq

from arbkit.config import OFF, Config
from arbkit.data.barmode import detect_kind, quote_bars_to_quotes, trade_bars_to_quotes
from arbkit.data.load import parquet_files, read_file, read_quotes
from arbkit.data.tables import validate_table
from arbkit.data.validate import validate_quotes


@dataclass
class LoadedQuotes:
    """A validated quotes frame plus where it came from."""

    frame: pl.DataFrame
    source: str
    crossed_rows: int
    kinds: dict[str, str] = field(default_factory=dict)  # instrument key -> source table kind
    notes: list[str] = field(default_factory=list)


def is_catalog(path: Any) -> bool:
    """True for a catalog root: a folder holding ``<kind>/venue=*`` folders."""
    p = Path(path)
    return p.is_dir() and any(p.glob("*/venue=*"))


def _bars_config(cfg: Config) -> dict[str, Any]:
    b = cfg.bars
    return {"half_spread_bps": None if b.half_spread_bps == OFF else float(b.half_spread_bps),
            "participation": b.participation,
            "quote_size": None if b.quote_size == OFF else float(b.quote_size)}


def _from_bars(kind: str, frame: pl.DataFrame, cfg: Config, source: str,
               notes: list[str]) -> pl.DataFrame:
    """Validated bars of ``kind`` -> unvalidated quotes, with a note on what was assumed."""
    opts = _bars_config(cfg)
    rep = validate_table(kind, frame, source)
    if kind == "quote_bars":
        notes.append(f"bar mode: {source} holds quote bars; each bar is one quote at its "
                     "close (coarser than book data)")
        return quote_bars_to_quotes(rep.frame, quote_size=opts["quote_size"])
    bq = trade_bars_to_quotes(rep.frame, half_spread_bps=opts["half_spread_bps"],
                              participation=opts["participation"])
    notes.append(f"bar mode: {source} holds OHLCV trade bars; each traded bar is one quote at "
                 f"its close with an ASSUMED half spread of {opts['half_spread_bps']} bps and "
                 f"{opts['participation']:.0%} of its volume at the touch; "
                 f"{bq.dropped_zero_volume} zero-volume bars dropped (no price discovery)")
    return bq.frame


def _from_catalog(root: Path, cfg: Config, notes: list[str]) -> tuple[pl.DataFrame, dict]:
    from arbkit.data.catalog import Catalog, Selection

    cat = Catalog(root)
    frames, kinds = [], {}
    for inst in cfg.instruments:
        for kind in ("quotes", "quote_bars", "bars"):
            sel = Selection(kind, inst.venue, inst.symbol)
            if cat.partitions(sel):
                break
        else:
            cat.files(Selection("quotes", inst.venue, inst.symbol))  # raises: names what exists
        kinds[inst.key] = kind
        if kind == "quotes":
            frames.append(cat.read(sel)[0].drop("crossed"))
        else:
            raw = cat.scan(sel).collect()
            frames.append(_from_bars(kind, raw, cfg, f"{root} {sel}", notes))
    return pl.concat(frames, how="diagonal_relaxed"), kinds


def load_quotes(data: Any, cfg: Config) -> LoadedQuotes:
    """Resolve ``data`` (frame, file, folder or catalog root) to validated quotes."""
    notes: list[str] = []
    if isinstance(data, pl.DataFrame):
        source, kind = "<frame>", detect_kind(data.columns)
        frame = data if kind == "quotes" else _from_bars(kind, data, cfg, source, notes)
        kinds = {i.key: kind for i in cfg.instruments}
    elif is_catalog(data):
        source = str(data)
        frame, kinds = _from_catalog(Path(data), cfg, notes)
    else:
        source = str(data)
        files = parquet_files(data)
        kind = detect_kind(_columns(files[0]))
        kinds = {i.key: kind for i in cfg.instruments}
        if kind == "quotes":
            frame, rep = read_quotes(data)
            return LoadedQuotes(rep.frame, source, rep.crossed_rows, kinds, rep.warnings)
        raw = pl.concat([read_file(f) for f in files], how="diagonal_relaxed")
        frame = _from_bars(kind, raw, cfg, source, notes)
    rep = validate_quotes(frame, source)
    return LoadedQuotes(rep.frame, source, rep.crossed_rows, kinds, notes + rep.warnings)


def _columns(file: Path) -> list[str]:
    """Column names from the Parquet footer (a damaged file fails later, with its message)."""
    try:
        return pq.read_schema(file).names
    except (OSError, ValueError):
        return read_file(file).columns
