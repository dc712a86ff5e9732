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


def bars_to_quotes(kind: str, frame: pl.DataFrame, cfg: Config, source: str) -> tuple[pl.DataFrame, int]:
    """Validated bars of ``kind`` -> unvalidated quotes, and the zero-volume bars dropped."""
    opts = _bars_config(cfg)
    rep = validate_table(kind, frame, source)
    if kind == "quote_bars":
        return quote_bars_to_quotes(rep.frame, quote_size=opts["quote_size"]), 0
    bq = trade_bars_to_quotes(rep.frame, half_spread_bps=opts["half_spread_bps"],
                              participation=opts["participation"])
    return bq.frame, bq.dropped_zero_volume


def bar_note(cfg: Config, what: str, kind: str, dropped: int) -> str:
    """The note a result carries for data that came from bars (one per instrument)."""
    if kind == "quote_bars":
        return (f"bar mode: {what} from quote bars; each bar is one quote at its close "
                "(coarser than book data)")
    opts = _bars_config(cfg)
    return (f"bar mode: {what} from OHLCV trade bars; each traded bar is one quote at its close "
            f"with an ASSUMED half spread of {opts['half_spread_bps']} bps and "
            f"{opts['participation']:.0%} of its volume at the touch; {dropped:,} zero-volume "
            "bars dropped (no price discovery)")


def load_quotes(data: Any, cfg: Config) -> LoadedQuotes:
    """Resolve ``data`` (a frame, or a file or folder) to validated quotes (a catalog root is
    read by :class:`arbkit.data.stream.CatalogEvents`, which skips the polars round trip)."""
    notes: list[str] = []
    if isinstance(data, pl.DataFrame):
        source, kind = "<frame>", detect_kind(data.columns)
        frame = data
        if kind != "quotes":
            frame, dropped = bars_to_quotes(kind, data, cfg, source)
            notes.append(bar_note(cfg, source, kind, dropped))
        kinds = {i.key: kind for i in cfg.instruments}
    else:
        source = str(data)
        files = parquet_files(data)
        kind = detect_kind(_columns(files[0]))
        kinds = {i.key: kind for i in cfg.instruments}
        if kind == "quotes":
            frame, rep = read_quotes(data)
            return LoadedQuotes(rep.frame, source, rep.crossed_rows, kinds, rep.warnings)
        raw = pl.concat([read_file(f) for f in files], how="diagonal_relaxed")
        frame, dropped = bars_to_quotes(kind, raw, cfg, source)
        notes.append(bar_note(cfg, source, kind, dropped))
    rep = validate_quotes(frame, source)
    return LoadedQuotes(rep.frame, source, rep.crossed_rows, kinds, notes + rep.warnings)


def _columns(file: Path) -> list[str]:
    """Column names from the Parquet footer (a damaged file fails later, with its message)."""
    try:
        return pq.read_schema(file).names
    except (OSError, ValueError):
        return read_file(file).columns
