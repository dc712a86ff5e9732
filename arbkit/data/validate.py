"""The one validator for canonical ``quotes`` tables.

Every check is a vectorised polars expression; all row-local checks run in one ``select``
and only a failing check looks at a single row to build its message. Every failure raises
:class:`~arbkit.errors.DataError` with one line naming the source file, the field, the value
seen (with row and instrument) and the fix.

Rules (see ``docs``/BRIEF §3): identical duplicate rows and time going backwards within one
(venue, symbol) stream are errors; ties in ``ts_recv_ns`` are normal. A crossed or locked
book (``bid_px >= ask_px``) is flagged in a ``crossed`` column, not dropped: the engine
treats that moment as untradable.
"""

from __future__ import annotations

import bisect
import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import polars as pl

from arbkit.data import schema
from arbkit.errors import DataError

_TS_COLUMNS = ("ts_recv_ns", "ts_exch_ns")
_STR_COLUMNS = ("venue", "symbol")
_MAX_EXACT_INT = 2**53  # largest integer a float64 holds exactly
# no market quotes a price or a size this large: a placeholder (1e308, 9.99e99) or a unit error
MAX_VALUE = 1e15
HUGE = (f"beyond {MAX_VALUE:.0e}: not a market value (a placeholder such as 1e308, or a "
        "unit error)")
FUTURE_S = 86_400  # stamps more than a day past this machine's clock are in the future


@dataclass(frozen=True)
class ValidationReport:
    """What :func:`validate_quotes` found, plus the validated frame.

    Attributes
    ----------
    source : str
        File or folder the table came from (used in every message).
    rows : int
        Number of rows.
    n_instruments : int
        Distinct (venue, symbol) pairs.
    span : tuple[int, int]
        First and last ``ts_recv_ns``.
    crossed_rows : int
        Rows with ``bid_px >= ask_px`` (flagged in ``frame["crossed"]``, kept).
    depth_levels : int
        Book levels carried (1 = L1 only).
    warnings : list[str]
        Non-fatal findings, one line each.
    frame : polars.DataFrame
        The table in canonical dtypes and column order, with a boolean ``crossed`` column.
    """

    source: str
    rows: int
    n_instruments: int
    span: tuple[int, int]
    crossed_rows: int
    depth_levels: int
    warnings: list[str]
    frame: pl.DataFrame = field(repr=False, compare=False)

    @property
    def span_ns(self) -> int:
        """Duration covered, last minus first ``ts_recv_ns``."""
        return self.span[1] - self.span[0]



# --------------------------------------------------------------------------- messages


def _fmt(value: Any) -> str:
    return "null" if value is None else repr(value)


def _fail(
    source: str, field_: str, value: Any, problem: str, fix: str, where: str = ""
) -> DataError:
    """Build the one-line error: ``<source>: <field>=<value> at <where>: <problem>; <fix>``."""
    at = f" at {where}" if where else ""
    msg = f"{source}: {field_}={_fmt(value)}{at}: {problem}; {fix}"
    return DataError(" ".join(msg.splitlines()))


class _Locator:
    """Turns a row index into text (row, file of a folder read, instrument)."""

    def __init__(self, df: pl.DataFrame, parts: Sequence[tuple[str, int]]) -> None:
        self._df = df
        self._names = [name for name, _ in parts]
        self._starts: list[int] = []
        start = 0
        for _, n in parts:
            self._starts.append(start)
            start += n

    def __call__(self, i: int) -> str:
        venue, symbol = (self._df[i, c] if c in self._df.columns else None for c in _STR_COLUMNS)
        where = f"row {i}"
        if self._starts:
            k = bisect.bisect_right(self._starts, i) - 1
            where += f" (file {self._names[k]} row {i - self._starts[k]})"
        return f"{where} ({'null' if venue is None else venue}/{'null' if symbol is None else symbol})"


# --------------------------------------------------------------------------- columns, dtypes


def _suggest(missing: list[str], present: list[str]) -> list[tuple[str, str]]:
    """(present, canonical) rename hints: known aliases first, then close spellings."""
    spare = [c for c in present if c not in schema.QUOTE_REQUIRED and c not in _TS_COLUMNS
             and not schema.is_depth_column(c)]
    hints: dict[str, str] = {}
    for m in missing:
        aliases = schema.QUOTE_ALIASES.get(m, ())
        hit = next((c for c in spare if c.lower() == m or c.lower() in aliases), None)
        if hit and hit not in hints:
            hints[hit] = m
    for m in missing:
        if m in hints.values():
            continue
        close = difflib.get_close_matches(m, [c for c in spare if c not in hints], 1, 0.6)
        if close:
            hints[close[0]] = m
    return list(hints.items())


def _check_columns(df: pl.DataFrame, source: str) -> None:
    if df.height == 0:
        problem = f"the table is empty (columns: {df.columns})"
        raise _fail(source, "rows", 0, problem, "re-export it with data or remove the file")
    missing = [c for c in schema.QUOTE_REQUIRED if c not in df.columns]
    n_levels = schema.depth_levels([c for c in df.columns if schema.is_depth_column(c)])
    missing += [c for c in schema.depth_columns(n_levels) if c not in df.columns]
    if not missing:
        return
    hints = [f"rename {have!r} to {want!r}" for have, want in _suggest(missing, df.columns)]
    fix = "; ".join(hints) if hints else "add them (schema: arbkit.data.schema.QUOTE_REQUIRED)"
    raise _fail(source, "columns", df.columns, f"missing column(s) {missing}", fix)


def _dtype_error(source: str, s: pl.Series, target: str, fix: str) -> DataError:
    """The value shown is the first one that does not convert (text such as 'N/A' among
    numbers), not merely the first value of the column."""
    if s.dtype == pl.String:
        dest = pl.Float64 if target == "Float64" else pl.Int64
        bad = s.cast(dest, strict=False).is_null() & s.is_not_null()
        if bad.any():
            i = int(bad.arg_true()[0])
            return _fail(source, s.name, s[i], f"text that is not a number (first of "
                         f"{int(bad.sum())} such rows); the column is {s.dtype}, "
                         f"{target} is needed", fix, f"row {i}")
    nn = s.drop_nulls()
    first = nn[0] if len(nn) else None
    return _fail(source, s.name, first, f"dtype {s.dtype} cannot be cast safely to {target}", fix)


def _cast_ts(s: pl.Series, source: str, warnings: list[str]) -> pl.Series:
    dt = s.dtype
    if dt == pl.Int64:
        return s
    if dt == pl.Null or (dt.is_integer() and dt != pl.UInt64):
        return s.cast(pl.Int64)
    if dt == pl.UInt64 and (s.max() or 0) < 2**63:
        return s.cast(pl.Int64)
    if isinstance(dt, pl.Datetime):
        if dt.time_zone is None:  # type: ignore[attr-defined]
            warnings.append(f"{source}: {s.name} is a naive datetime; assumed UTC")
        return s.dt.epoch("ns").rename(s.name)
    fix = (
        "float64 cannot hold nanosecond stamps exactly; write int64 nanoseconds at the source"
        if dt.is_float()
        else "write int64 nanoseconds since the epoch (UTC)"
    )
    raise _dtype_error(source, s, "Int64 nanoseconds", fix)


def _cast_float(s: pl.Series, source: str, warnings: list[str]) -> pl.Series:
    dt = s.dtype
    if dt == pl.Float64:
        return s
    if dt == pl.Float32:
        if "_px" in s.name:
            warnings.append(
                f"{source}: {s.name} was float32 (~7 significant digits); "
                "prices may already be rounded at the source"
            )
        return s.cast(pl.Float64)
    if dt == pl.Null or isinstance(dt, pl.Decimal):
        return s.cast(pl.Float64)
    if dt.is_integer():
        big = max(abs(s.min() or 0), abs(s.max() or 0))  # type: ignore[arg-type]
        if big <= _MAX_EXACT_INT:
            return s.cast(pl.Float64)
    fix = (
        f"parse the text to float64 at the source, e.g. pl.col({s.name!r}).cast(pl.Float64)"
        if dt == pl.String
        else "store prices and sizes as float64"
    )
    raise _dtype_error(source, s, "Float64", fix)


def _cast_str(s: pl.Series, source: str) -> pl.Series:
    dt = s.dtype
    if dt == pl.String:
        return s
    if dt == pl.Null or isinstance(dt, (pl.Categorical, pl.Enum)):
        return s.cast(pl.String)
    raise _dtype_error(source, s, "String", "store it as text, e.g. 'binance_spot'/'BTCUSDT'")


def conform_quotes(df: pl.DataFrame, source: str) -> tuple[pl.DataFrame, list[str]]:
    """Check columns and cast them to the canonical dtypes and order.

    Adds a null ``ts_exch_ns`` when absent and turns null depth levels into NaN ("no
    level"). Extra columns are kept after the canonical ones; a stale ``crossed`` column
    is dropped (the validator recomputes it).

    Parameters
    ----------
    df : polars.DataFrame
        A quotes table.
    source : str
        Its file name, used in error messages.

    Returns
    -------
    tuple[polars.DataFrame, list[str]]
        The conformed frame and warnings.

    Examples
    --------
    >>> import polars as pl
    >>> df = pl.DataFrame({"ts_recv_ns": [1_700_000_000_000_000_000], "venue": ["x"],
    ...                    "symbol": ["BTCUSDT"], "bid_px": [1.0], "bid_qty": [1],
    ...                    "ask_px": [2.0], "ask_qty": [1]}, schema_overrides={"bid_qty": pl.Int32})
    >>> out, _ = conform_quotes(df, "mem")
    >>> out.schema["ts_exch_ns"], out.schema["bid_qty"]
    (Int64, Float64)
    """
    _check_columns(df, source)
    warnings: list[str] = []
    if "ts_exch_ns" not in df.columns:
        df = df.with_columns(pl.lit(None, dtype=pl.Int64).alias("ts_exch_ns"))
    n_levels = schema.depth_levels([c for c in df.columns if schema.is_depth_column(c)])
    order = schema.quote_column_order(n_levels)
    cols: list[pl.Series] = []
    for name in order:
        s = df.get_column(name)
        if name in _TS_COLUMNS:
            cols.append(_cast_ts(s, source, warnings))
        elif name in _STR_COLUMNS:
            cols.append(_cast_str(s, source))
        else:
            s = _cast_float(s, source, warnings)
            cols.append(s.fill_null(float("nan")) if schema.is_depth_column(name) else s)
    extras = [df.get_column(c) for c in df.columns if c not in order and c != "crossed"]
    return pl.DataFrame(cols + extras), warnings


# --------------------------------------------------------------------------- row checks

_UNIT = "<timestamp unit>"  # problem text chosen from the value, see _ts_unit
_FIX_ROW = "repair or drop the row at the source"


class _Check(NamedTuple):
    field: str
    bad: pl.Expr  # True where the row fails
    problem: str  # may name other fields of the row as {name}
    fix: str
    prev: str | None = None  # depth order: the level this one is compared with

    def explain(self, row: dict[str, Any]) -> tuple[str, str]:
        if self.problem == _UNIT:
            return _ts_unit(row[self.field])
        if self.prev is not None:
            a, b = row[self.prev], row[self.field]
            if a and b and a == a and b == b and max(a / b, b / a) >= 5:
                # levels out of order by a factor: units, not sorting (a x100 touch)
                return (f"{self.prev}={a} is {max(a / b, b / a):,.0f}x this level: the touch "
                        "and the depth levels are in different units (x100? cents?)",
                        "scale every price column of the row alike at the source")
        return self.problem.format_map(row), self.fix


def _ts_unit(value: int) -> tuple[str, str]:
    if value <= 0:
        return "not a positive epoch timestamp", "write nanoseconds since 1970-01-01 UTC"
    units = (("seconds", 1e11, "1_000_000_000"), ("milliseconds", 1e14, "1_000_000"))
    for unit, limit, factor in (*units, ("microseconds", 1e17, "1_000")):
        if value < limit:
            return f"looks like {unit}", f"multiply by {factor} to get nanoseconds"
    if value < schema.NS_MIN:
        return "is before 2001-09-09 in nanoseconds", "check the unit and the epoch"
    return "is after 2100 in nanoseconds", "check the unit (picoseconds?) or the export"


def huge(c: str) -> pl.Expr:
    """Finite but beyond :data:`MAX_VALUE` (polars orders NaN above every number: excluded)."""
    return (pl.col(c).is_finite() & (pl.col(c).abs() >= MAX_VALUE)).fill_null(False)


def _finite_pos(c: str) -> pl.Expr:
    return (pl.col(c).is_finite() & (pl.col(c) > 0)).fill_null(False)


def _qty_ok(c: str) -> pl.Expr:
    return (pl.col(c).is_finite() & (pl.col(c) >= 0)).fill_null(False)


def _row_checks(n_levels: int) -> list[_Check]:
    empty = "null or empty instrument name"
    checks = [
        _Check(c, pl.col(c).is_null() | (pl.col(c).str.len_bytes() == 0), empty, "fill it")
        for c in _STR_COLUMNS
    ]
    checks.append(_Check("ts_recv_ns", pl.col("ts_recv_ns").is_null(), "no receive time", _FIX_ROW))
    ts_range = (schema.NS_MIN, schema.NS_MAX)
    checks += [_Check(c, ~pl.col(c).is_between(*ts_range), _UNIT, "") for c in _TS_COLUMNS]
    for side in ("bid", "ask"):
        px, qty = schema.level_columns(side, 0)
        checks.append(_Check(px, ~_finite_pos(px), "best price must be finite and > 0", _FIX_ROW))
        checks.append(_Check(qty, ~_qty_ok(qty), "size must be finite and >= 0", _FIX_ROW))
    for lvl in range(1, n_levels):
        checks += _depth_checks(lvl)
    checks += [_Check(c, huge(c), HUGE, _FIX_ROW)
               for lvl in range(n_levels) for side in ("bid", "ask")
               for c in schema.level_columns(side, lvl)]
    return checks


def _depth_checks(lvl: int) -> list[_Check]:
    out: list[_Check] = []
    for side, sign in (("bid", "below"), ("ask", "above")):
        px, qty = schema.level_columns(side, lvl)
        prev = schema.level_columns(side, lvl - 1)[0]
        present = ~pl.col(px).is_nan()
        # polars orders NaN above every number, so an empty previous level must be explicit
        beyond = pl.col(px) < pl.col(prev) if side == "bid" else pl.col(px) > pl.col(prev)
        right = ~pl.col(prev).is_nan() & beyond
        out += [
            _Check(
                px,
                present & ~_finite_pos(px),
                "depth price must be finite and > 0 (NaN = no level)",
                "repair the level or write NaN",
            ),
            _Check(
                px,
                present & ~right,
                f"level must be strictly {sign} {prev}={{{prev}}}",
                "sort levels from the touch outwards, NaN only at the end; rebuild it",
                prev,
            ),
            _Check(
                qty,
                present & ~_qty_ok(qty),
                "size of a present level must be finite and >= 0",
                "repair the level or set its price to NaN",
            ),
        ]
    return out


# --------------------------------------------------------------------------- validator


def _instrument_id() -> pl.Expr:
    """Int64 id per (venue, symbol): categorical codes are much cheaper than string hashing."""
    v = pl.col("venue").cast(pl.Categorical).to_physical().cast(pl.Int64)
    s = pl.col("symbol").cast(pl.Categorical).to_physical().cast(pl.Int64)
    return (v * 2**32 + s).alias("__iid")


def _check_order(df: pl.DataFrame, iid: pl.Series, source: str, where: _Locator,
                 ts_col: str = "ts_recv_ns") -> pl.Series:
    """Raise if time goes backwards within an instrument; return a tie mask (dup candidates)."""
    ts = df.get_column(ts_col)
    if ts.is_sorted():  # fast path: globally sorted means sorted within every instrument
        near = ((ts == ts.shift(1)) | (ts == ts.shift(-1))).fill_null(False)
        if not near.any():
            return near
        # a tie is two rows of one stream at one time (rows of different venues or symbols at
        # the same time are normal)
        return pl.DataFrame([ts, iid]).select(
            pl.struct(ts_col, "__iid").is_duplicated()).to_series() & near
    d = pl.DataFrame([ts, iid]).select(
        prev=pl.col(ts_col).diff().over("__iid"),
        nxt=pl.col(ts_col).diff(-1).over("__iid"),
    )
    back = (d["prev"] < 0).fill_null(False)
    if back.any():
        i = int(back.arg_true()[0])
        t, step = int(ts[i]), int(d["prev"][i])
        problem = (
            f"time goes backwards within this (venue, symbol) stream: its previous row had "
            f"{t - step} (a step of {step} ns)"
        )
        fix = f"sort each stream by {ts_col} (stable) or fix the recorder"
        raise _fail(source, ts_col, t, problem, fix, where(i))
    return ((d["prev"] == 0) | (d["nxt"] == 0)).fill_null(False)


def _check_duplicates(df: pl.DataFrame, tie: pl.Series, source: str, where: _Locator,
                      ts_col: str = "ts_recv_ns") -> None:
    if not tie.any():
        return
    sub = df.with_row_index("__row").filter(tie)
    repeat = ~sub.select(pl.struct(pl.all().exclude("__row")).is_first_distinct()).to_series()
    if repeat.any():
        i = int(sub["__row"].filter(repeat)[0])
        fix = "drop them (df.unique(maintain_order=True)) or fix the export that wrote them"
        problem = "identical duplicate of an earlier row"
        raise _fail(source, ts_col, int(df[i, ts_col]), problem, fix, where(i))


def _run_row_checks(df: pl.DataFrame, n_levels: int, source: str, where: _Locator) -> None:
    checks = _row_checks(n_levels)
    firsts = df.select(
        c.bad.fill_null(False).arg_true().first().alias(str(k)) for k, c in enumerate(checks)
    ).row(0)
    for check, i in zip(checks, firsts):
        if i is not None:
            row = df.row(int(i), named=True)
            problem, fix = check.explain(row)
            raise _fail(source, check.field, row[check.field], problem, fix, where(int(i)))


def validate_quotes(
    df: pl.DataFrame, source: str, *, parts: Sequence[tuple[str, int]] = ()
) -> ValidationReport:
    """Validate a quotes table and return it conformed, with a ``crossed`` flag.

    Parameters
    ----------
    df : polars.DataFrame
        Quotes in (or castable to) the canonical schema, see :mod:`arbkit.data.schema`.
    source : str
        Where the data came from (file or folder); every error message starts with it.
    parts : sequence of (file name, rows), optional
        When ``df`` concatenates several files, their names and row counts in order, so a
        message can name the file and row a fault is in.

    Returns
    -------
    ValidationReport
        Counts, span and warnings; ``report.frame`` is the validated frame.

    Raises
    ------
    DataError
        One line naming the source, field, value, row/instrument and the fix.

    Examples
    --------
    >>> import polars as pl
    >>> df = pl.DataFrame({"ts_recv_ns": [1_700_000_000_000_000_000] * 2,
    ...                    "venue": ["binance_spot", "binance_usdm"], "symbol": ["BTCUSDT"] * 2,
    ...                    "bid_px": [100.0, 101.0], "bid_qty": [1.0, 1.0],
    ...                    "ask_px": [100.5, 101.0], "ask_qty": [2.0, 2.0]})
    >>> rep = validate_quotes(df, "example")
    >>> (rep.rows, rep.n_instruments, rep.crossed_rows)
    (2, 2, 1)
    """
    df, warnings = conform_quotes(df, source)
    where = _Locator(df, parts)
    n_levels = schema.depth_levels(df.columns)
    _run_row_checks(df, n_levels, source, where)
    iid = df.select(_instrument_id()).to_series()
    tie = _check_order(df, iid, source, where)
    _check_duplicates(df, tie, source, where)
    crossed = (df.get_column("bid_px") >= df.get_column("ask_px")).alias("crossed")
    df = df.with_columns(crossed)
    n_crossed = int(crossed.sum())
    if n_crossed:
        warnings.append(
            f"{source}: {n_crossed} crossed/locked rows (bid_px >= ask_px) "
            "flagged in column 'crossed'; the engine treats them as untradable"
        )
    warnings += data_warnings(df, source, "ts_recv_ns")
    ts = df.get_column("ts_recv_ns")
    return ValidationReport(
        source=source,
        rows=df.height,
        n_instruments=iid.n_unique(),
        span=(int(ts.min()), int(ts.max())),  # type: ignore[arg-type]
        crossed_rows=n_crossed,
        depth_levels=n_levels,
        warnings=warnings,
        frame=df,
    )


def data_warnings(df: pl.DataFrame, source: str, ts_col: str) -> list[str]:
    """Findings that are not errors but that a result built on them must say: stamps in the
    future (a wrong time unit or clock), and streams whose every size is 0 (no size is known
    at the touch, so nothing can be filled)."""
    import time

    out = []
    future = df.filter(pl.col(ts_col) > (time.time() + FUTURE_S) * 1e9)
    if future.height:
        from datetime import UTC, datetime

        first = datetime.fromtimestamp(int(future[0, ts_col]) / 1e9, UTC)
        out.append(f"{source}: {future.height} rows stamped in the future (first "
                   f"{ts_col}={int(future[0, ts_col])}, {first:%Y-%m-%d %H:%M} UTC): check the "
                   "time unit of the source and the recording clock")
    sizes = [c for c in ("bid_qty", "ask_qty") if c in df.columns]
    if sizes and {"venue", "symbol"} <= set(df.columns):
        zero = (df.group_by("venue", "symbol", maintain_order=True)
                .agg(pl.all_horizontal(pl.col(c) == 0 for c in sizes).all().alias("z"))
                .filter(pl.col("z")))
        for venue, symbol, _ in zero.iter_rows():
            out.append(f"{source}: every {' and '.join(sizes)} of {venue}/{symbol} is 0: no size "
                       "is known at its touch, so no order can fill there; check the size "
                       "columns of the source")
    return out
