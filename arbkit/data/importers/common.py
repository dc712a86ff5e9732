"""Helpers shared by the importers: time units, bar intervals, the shared data folder."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import polars as pl

from arbkit.errors import DataError

# <repo>/../shared/data/real, so defaults work from any working directory (CI has it too).
SHARED_REAL = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "real"

NS_PER = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000}
TS_UNITS = (*NS_PER, "iso")
_INTERVAL = re.compile(r"^(\d+)(s|m|h|d)$")
_INTERVAL_NS = {"s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000,
                "d": 86_400_000_000_000}


def interval_ns(text: str) -> int:
    """``"1m"`` -> 60e9. Units: s, m, h, d."""
    m = _INTERVAL.match(str(text).strip())
    if not m or int(m.group(1)) <= 0:
        raise DataError(f"bar interval {text!r}: use a count and a unit, e.g. 1m, 5m, 1h, 1d")
    return int(m.group(1)) * _INTERVAL_NS[m.group(2)]


def to_ns(expr: pl.Expr, unit: str, *, name: str) -> pl.Expr:
    """An expression turning a timestamp column of ``unit`` into Int64 ns since the epoch.

    ``iso``: text such as ``2025-05-25 23:30:00`` or ``2023-03-01T00:00:00+00:00``; text
    without an offset is taken as UTC (sources that write local time must be fixed first).
    Datetime columns are converted whatever ``unit`` says.
    """
    if unit not in TS_UNITS:
        raise DataError(f"{name}: ts_unit {unit!r} is unknown; use one of {TS_UNITS}")
    if unit == "iso":
        return (expr.str.to_datetime(time_unit="ns", time_zone="UTC", strict=True)
                .dt.epoch("ns").alias(name))
    return (expr.cast(pl.Int64) * NS_PER[unit]).alias(name)


def check_unit(values: pl.Series, unit: str, *, where: str, key: str = "ts_unit") -> None:
    """Refuse epoch numbers that ``unit`` would carry past int64 nanoseconds (year 2262):
    int64 arithmetic wraps around silently, storing rows under a date far in the future. The
    error names the unit and the one the numbers look like."""
    if unit not in NS_PER or unit == "ns" or not values.dtype.is_numeric():
        return
    big = values.drop_nulls().abs().max()
    if big is None or float(big) * NS_PER[unit] < 2**63:  # type: ignore[arg-type]
        return
    looks = guess_unit(values)
    raise DataError(f"{where}: {key} = {unit!r} makes {int(big)} {unit} overflow int64 "  # type: ignore[arg-type]
                    f"nanoseconds (past the year 2262); these numbers look like {looks}: set "
                    f"{key} = {looks!r}")


def datetime_to_ns(frame: pl.DataFrame, column: str, name: str) -> pl.Series:
    """A Datetime (or int ns) column as Int64 ns, naive datetimes taken as UTC."""
    s = frame.get_column(column)
    if isinstance(s.dtype, pl.Datetime):
        return s.dt.epoch("ns").rename(name)
    if s.dtype == pl.String:
        return frame.select(to_ns(pl.col(column), "iso", name=name)).to_series()
    return s.cast(pl.Int64).rename(name)


def guess_unit(values: pl.Series) -> str:
    """Epoch unit from the magnitude of a positive integer timestamp (this century)."""
    v = int(values.drop_nulls().abs().max() or 0)  # type: ignore[arg-type]
    for unit, limit in (("s", 10**11), ("ms", 10**14), ("us", 10**17)):
        if v < limit:
            return unit
    return "ns"


def need_file(path: str | Path, what: str) -> Path:
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{what}: path={str(p)!r} does not exist; check the path")
    return p


def read_csv(path: Path, **kw: object) -> pl.DataFrame:
    """A CSV (optionally gzipped) as a frame; an empty or unreadable file is one clear line."""
    kw.setdefault("infer_schema_length", 10_000)
    try:
        return pl.read_csv(path, **kw)  # type: ignore[arg-type]
    except pl.exceptions.NoDataError:
        raise DataError(f"{path}: the file is empty; re-export it") from None
    except (pl.exceptions.PolarsError, OSError, ValueError) as exc:
        with Path(path).open("rb") as fh:
            if fh.read(4) == b"PAR1":
                raise DataError(f"cannot read {path} as CSV: it is a Parquet file; this format "
                                "reads CSV (a canonical Parquet table is added with `arbkit "
                                "data add`, other Parquet sources have their own format: "
                                "`arbkit data formats`)") from None
        reason = " ".join(str(exc).split())[:160]
        raise DataError(f"cannot read {path} as CSV ({type(exc).__name__}: {reason}); check "
                        "the separator and that it is not truncated") from None


def need_columns(frame: pl.DataFrame | pl.LazyFrame, columns: Sequence[str], path: Path,
                 what: str) -> None:
    """Refuse a file that lacks columns its format has: one line naming the file, what it
    holds, what is missing and what such a file is (before any query fails inside polars)."""
    have = (frame.collect_schema().names() if isinstance(frame, pl.LazyFrame)
            else frame.columns)
    missing = [c for c in columns if c not in have]
    if missing:
        shown = have[:8] + (["..."] if len(have) > 8 else [])
        kind = _known_kind(have)
        hint = f"; it is {kind}, the wrong file" if kind else ""
        raise DataError(f"{path}: columns={shown}: missing {missing}{hint}; is this a {what}? "
                        "(`arbkit data formats` lists what each format reads)")


def _known_kind(columns: Sequence[str]) -> str | None:
    """The canonical table a file already is, by its columns (a quotes file given to an
    importer is the wrong file, not a file to rename columns of)."""
    cols = set(columns)
    if {"ts_recv_ns", "bid_px", "ask_px"} <= cols:
        return "a canonical quotes table (added with `arbkit data add`)"
    if {"ts_open_ns", "ts_close_ns", "close"} <= cols:
        return "a canonical bars table"
    if {"ts_ns", "rate", "base", "quote"} <= cols:
        return "a canonical fx table"
    return None


def read_parquet(path: Path, **kw: object) -> pl.DataFrame:
    """A Parquet file as a frame; an empty or damaged file is one clear line."""
    from arbkit.data.load import not_parquet, read_file

    if kw:
        try:
            return pl.read_parquet(path, **kw)  # type: ignore[arg-type]
        except (pl.exceptions.PolarsError, pl.exceptions.PanicException, OSError,
                ValueError) as exc:
            raise not_parquet(path, exc) from None
    return read_file(path)


def collect(lf: pl.LazyFrame, path: Path) -> pl.DataFrame:
    """Collect a lazy scan of ``path``; a damaged file is one clear line."""
    from arbkit.data.load import not_parquet

    try:
        return lf.collect()
    except (pl.exceptions.PolarsError, pl.exceptions.PanicException, OSError, ValueError) as exc:
        if isinstance(exc, pl.exceptions.ColumnNotFoundError):
            reason = " ".join(str(exc).split()).split(" Resolved plan")[0][:200]
            raise DataError(f"{path}: {reason}; is this the right file for this format? "
                            "(`arbkit data formats`)") from None
        raise not_parquet(path, exc) from None


def check_parquet(path: Path) -> Path:
    """``path`` if its Parquet footer reads (a truncated file fails here, in one line)."""
    import pyarrow.parquet as pq

    from arbkit.data.load import not_parquet

    try:
        pq.read_metadata(path)
    except (OSError, ValueError) as exc:
        raise not_parquet(path, exc) from None
    return path
