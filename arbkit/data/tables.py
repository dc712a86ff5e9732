"""The catalog's other tables (trades, bars, quote bars, FX, funding) and their validator.

``quotes`` keep their own tuned validator (:mod:`arbkit.data.validate`); every other kind is
described here by a :class:`TableSpec` (columns, dtypes, units, value rules, relations) and
checked by :func:`validate_table`, which shares the quote validator's casts, unit detection,
ordering and duplicate checks, and its one-line error format:
``<source>: <field>=<value> at row <i> (<venue>/<symbol>): <problem>; <fix>``.

All timestamps are int64 nanoseconds since the epoch, UTC. Bars carry both ``ts_open_ns``
(the stamp most sources give) and ``ts_close_ns`` (when the bar became known): a bar is
ordered, partitioned and fed to the engine at its close, never before.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

import polars as pl

from arbkit.data import schema
from arbkit.data import validate as V
from arbkit.errors import DataError

INT8 = pl.Int8()
I64 = pl.Int64()
F64 = pl.Float64()
STR = pl.String()


@dataclass(frozen=True)
class Col:
    """One column: name, dtype, value rule, whether required, and its documentation."""

    name: str
    dtype: pl.DataType
    rule: str  # ts | key | text | pos | nonneg | finite | side | count
    unit: str
    meaning: str
    required: bool = True
    nullable: bool = False


@dataclass(frozen=True)
class Relation:
    """A check between columns of one row: ``bad`` is True where the row fails."""

    field: str
    bad: pl.Expr
    problem: str  # may name fields of the row as {name}
    fix: str
    rule: str = ""  # the rule in words, for docs/data.md


@dataclass(frozen=True)
class TableSpec:
    """A catalog table kind."""

    kind: str
    time: str  # orders rows within a (venue, symbol) stream; partitions by UTC day
    columns: tuple[Col, ...]
    relations: tuple[Relation, ...] = ()
    ties_allowed: bool = True  # False: one row per time per stream (bars, FX, funding)
    doc: str = ""

    @property
    def required(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    def col(self, name: str) -> Col:
        return next(c for c in self.columns if c.name == name)


_KEYS = (
    Col("venue", STR, "key", "—", "Venue id (for FX and funding: the source, e.g. `fred`)."),
    Col("symbol", STR, "key", "—", "The venue's symbol; for FX the pair `BASE/QUOTE`."),
)
_OHLC = ("open", "high", "low", "close")


def _ohlc_relations(prefix: str) -> tuple[Relation, ...]:
    o, h, lo, c = (f"{prefix}{x}" for x in _OHLC)
    fix = "the bar is corrupt: repair or drop it at the source"
    return (
        Relation(h, pl.col(h) < pl.col(lo), f"{h} below {lo}={{{lo}}}", fix, f"`{h} >= {lo}`"),
        Relation(h, (pl.col(h) < pl.col(o)) | (pl.col(h) < pl.col(c)),
                 f"{h} below {o}={{{o}}} or {c}={{{c}}}", fix,
                 f"`{h} >= max({o}, {c})`"),
        Relation(lo, (pl.col(lo) > pl.col(o)) | (pl.col(lo) > pl.col(c)),
                 f"{lo} above {o}={{{o}}} or {c}={{{c}}}", fix,
                 f"`{lo} <= min({o}, {c})`"),
    )


_BAR_TIMES = (
    Col("ts_open_ns", I64, "ts", "ns, UTC", "Bar open (the stamp most sources give)."),
    Col("ts_close_ns", I64, "ts", "ns, UTC",
        "Bar close = open + interval: when the bar is known. Orders, partitions and feeds it."),
)
_BAR_TIME_REL = Relation("ts_close_ns", pl.col("ts_close_ns") <= pl.col("ts_open_ns"),
                         "bar closes at or before its open ts_open_ns={ts_open_ns}",
                         "set ts_close_ns = ts_open_ns + the bar interval",
                         "`ts_close_ns > ts_open_ns`; and a bar opens no earlier than the "
                         "previous bar of its stream closed")

TRADES = TableSpec(
    "trades", "ts_recv_ns",
    (
        Col("ts_recv_ns", I64, "ts", "ns, UTC", "When the recorder received the trade."),
        Col("ts_exch_ns", I64, "ts", "ns, UTC", "Exchange trade time; null if unknown.",
            required=False, nullable=True),
        *_KEYS,
        Col("price", F64, "pos", "quote ccy", "Trade price."),
        Col("qty", F64, "pos", "base units (contracts for inverse perps)", "Trade size."),
        Col("side", INT8, "side", "±1, 0", "Aggressor: +1 buyer, -1 seller, 0 unknown."),
        Col("trade_id", STR, "text", "—", "Venue trade id.", required=False, nullable=True),
    ),
    doc="One row per trade print.",
)

BARS = TableSpec(
    "bars", "ts_close_ns",
    (
        *_BAR_TIMES, *_KEYS,
        *(Col(x, F64, "pos", "quote ccy", f"Trade price {x}.") for x in _OHLC),
        Col("volume", F64, "nonneg", "base units", "Traded volume; 0 = no trade in the bar."),
        Col("trade_count", I64, "count", "trades", "Number of trades.", required=False,
            nullable=True),
    ),
    relations=(_BAR_TIME_REL, *_ohlc_relations("")),
    ties_allowed=False,
    doc="OHLCV trade bars. Coarser than book data: there is no bid/ask or size at the touch.",
)

QUOTE_BARS = TableSpec(
    "quote_bars", "ts_close_ns",
    (
        *_BAR_TIMES, *_KEYS,
        *(Col(f"bid_{x}", F64, "pos", "quote ccy", f"Best bid {x}.") for x in _OHLC),
        *(Col(f"ask_{x}", F64, "pos", "quote ccy", f"Best ask {x}.") for x in _OHLC),
        Col("bid_qty", F64, "nonneg", "base units", "Best bid size at the close.",
            required=False, nullable=True),
        Col("ask_qty", F64, "nonneg", "base units", "Best ask size at the close.",
            required=False, nullable=True),
    ),
    relations=(_BAR_TIME_REL, *_ohlc_relations("bid_"), *_ohlc_relations("ask_")),
    ties_allowed=False,
    doc="Bid/ask quote bars (OHLC of the best bid and of the best ask).",
)

FX = TableSpec(
    "fx", "ts_ns",
    (
        Col("ts_ns", I64, "ts", "ns, UTC",
            "When the rate was observable (not the day it is filed under)."),
        *_KEYS,
        Col("base", STR, "text", "currency", "Base currency, e.g. `USD`, `USDT`."),
        Col("quote", STR, "text", "currency", "Quote currency, e.g. `KRW`."),
        Col("rate", F64, "pos", "quote per 1 base", "Units of `quote` for one `base`."),
    ),
    relations=(
        Relation("symbol", pl.col("symbol") != (pl.col("base") + "/" + pl.col("quote")),
                 "symbol must be base/quote = {base}/{quote}", "write symbol as BASE/QUOTE",
                 "`symbol == base + \"/\" + quote`"),
        Relation("quote", pl.col("base") == pl.col("quote"), "base and quote are the same",
                 "a rate converts between two different currencies", "`base != quote`"),
    ),
    ties_allowed=False,
    doc="Recorded FX rates (never implied from the traded asset).",
)

FUNDING = TableSpec(
    "funding", "ts_ns",
    (
        Col("ts_ns", I64, "ts", "ns, UTC", "Funding time: when the payment is made."),
        *_KEYS,
        Col("rate", F64, "finite", "fraction per interval",
            "Realised funding rate (0.0001 = 1 bp); positive: longs pay shorts."),
        Col("mark_px", F64, "pos", "quote ccy", "Mark price at the funding time.",
            required=False, nullable=True),
    ),
    ties_allowed=False,
    doc="Realised perpetual funding (a predicted rate would be look-ahead).",
)

SPECS: dict[str, TableSpec] = {t.kind: t for t in (TRADES, BARS, QUOTE_BARS, FX, FUNDING)}
KINDS = ("quotes", *SPECS)


def spec(kind: str) -> TableSpec:
    if kind not in SPECS:
        raise DataError(f"table kind {kind!r} is unknown; known kinds: {', '.join(KINDS)}")
    return SPECS[kind]


def time_column(kind: str) -> str:
    """The column that orders a kind's streams and partitions it by UTC day."""
    return "ts_recv_ns" if kind == "quotes" else spec(kind).time


# --------------------------------------------------------------------------- validator


@dataclass(frozen=True)
class TableReport:
    """What :func:`validate_table` found, plus the validated frame."""

    kind: str
    source: str
    rows: int
    n_streams: int
    span: tuple[int, int]
    flagged_rows: int  # e.g. crossed quote bars
    warnings: list[str]
    frame: pl.DataFrame


def _check_columns(df: pl.DataFrame, sp: TableSpec, source: str) -> None:
    if df.height == 0:
        raise V._fail(source, "rows", 0, f"the {sp.kind} table is empty (columns: {df.columns})",
                      "re-export it with data or remove the file")
    missing = [c for c in sp.required if c not in df.columns]
    if not missing:
        return
    other = _other_kind(df.columns, sp.kind)
    if other is not None:
        raise V._fail(source, "columns", df.columns[:8],
                      f"this is a {other} table, not {sp.kind} (missing {missing})",
                      f"pass the {sp.kind} table itself (columns "
                      f"{', '.join(sp.required)}; see docs/data.md)")
    spare = [c for c in df.columns if c not in {x.name for x in sp.columns}]
    hints = []
    for m in missing:
        close = difflib.get_close_matches(m, spare, 1, 0.6)
        if close:
            hints.append(f"rename {close[0]!r} to {m!r}")
            spare.remove(close[0])
    fix = "; ".join(hints) or f"add them (schema: arbkit.data.tables.{sp.kind.upper()})"
    raise V._fail(source, "columns", df.columns, f"missing column(s) {missing}", fix)


def _other_kind(columns: list[str], kind: str) -> str | None:
    """The canonical table ``columns`` already are, when it is not ``kind`` (a quotes file
    given as --fx is the wrong table, not a table to rename columns of)."""
    from arbkit.data import schema

    if kind != "quotes" and all(c in columns for c in schema.QUOTE_REQUIRED):
        return "quotes"
    for other, sp in SPECS.items():
        if other != kind and all(c in columns for c in sp.required):
            return other
    return None


def _cast(df: pl.DataFrame, sp: TableSpec, source: str, warnings: list[str]) -> pl.DataFrame:
    cols: list[pl.Series] = []
    for c in sp.columns:
        if c.name not in df.columns:
            cols.append(pl.Series(c.name, [None] * df.height, dtype=c.dtype))
            continue
        s = df.get_column(c.name)
        if c.rule == "ts":
            s = V._cast_ts(s, source, warnings)
        elif c.dtype == STR:
            s = V._cast_str(s, source)
        elif c.dtype == F64:
            s = V._cast_float(s, source, warnings)
        elif not (s.dtype.is_integer() or s.dtype == pl.Null):
            raise V._dtype_error(source, s, str(c.dtype), "store it as an integer")
        cols.append(s.cast(c.dtype))
    extras = [df.get_column(c) for c in df.columns if c not in {x.name for x in sp.columns}]
    return pl.DataFrame(cols + extras)


def _rule_bad(c: Col) -> tuple[pl.Expr, str, str] | None:
    x = pl.col(c.name)
    null_bad = pl.lit(False) if c.nullable else x.is_null()
    fix = "repair or drop the row at the source"
    if c.rule == "ts":
        return null_bad | ~x.is_between(schema.NS_MIN, schema.NS_MAX).fill_null(True), V._UNIT, ""
    if c.rule in ("key", "text"):
        return null_bad | (x.str.len_bytes() == 0).fill_null(False), "null or empty text", "fill it"
    if c.rule == "pos":
        return null_bad | ~(x.is_finite() & (x > 0)).fill_null(c.nullable), \
            "must be finite and > 0", fix
    if c.rule == "nonneg":
        return null_bad | ~(x.is_finite() & (x >= 0)).fill_null(c.nullable), \
            "must be finite and >= 0", fix
    if c.rule == "finite":
        return null_bad | ~x.is_finite().fill_null(c.nullable), "must be finite", fix
    if c.rule == "side":
        return null_bad | ~x.is_in([-1, 0, 1]).fill_null(False), \
            "aggressor side must be +1 (buy), -1 (sell) or 0 (unknown)", "map it at import"
    if c.rule == "count":
        return null_bad | (x < 0).fill_null(False), "must be >= 0", fix
    return None


def _explain(field: str, problem: str, fix: str, row: dict[str, Any]) -> tuple[str, str]:
    if problem == V._UNIT:
        value = row[field]
        if value is None:
            return "no timestamp", "repair or drop the row at the source"
        return V._ts_unit(value)
    return problem.format_map(row), fix


def _row_checks(df: pl.DataFrame, sp: TableSpec, source: str, where: V._Locator) -> None:
    checks = []
    for c in sp.columns:
        rb = _rule_bad(c)
        if rb is not None:
            checks.append((c.name, *rb))
    checks += [(r.field, r.bad, r.problem, r.fix) for r in sp.relations]
    checks += [(c.name, V.huge(c.name), V.HUGE,
                "repair or drop the row at the source")
               for c in sp.columns if c.rule in ("pos", "nonneg", "finite")]
    firsts = df.select(
        bad.fill_null(False).arg_true().first().alias(str(k))
        for k, (_, bad, _, _) in enumerate(checks)
    ).row(0)
    for (field, _, problem, fix), i in zip(checks, firsts):
        if i is not None:
            row = df.row(int(i), named=True)
            problem, fix = _explain(field, problem, fix, row)
            raise V._fail(source, field, row[field], problem, fix, where(int(i)))


def _check_single_per_time(df: pl.DataFrame, sp: TableSpec, tie: pl.Series, source: str,
                           where: V._Locator) -> None:
    """Bars, FX and funding: one row per time per stream (identical copies were caught)."""
    if sp.ties_allowed or not tie.any():
        return
    i = int(tie.arg_true()[0])
    raise V._fail(source, sp.time, int(df[i, sp.time]),
                  f"two different {sp.kind} rows at the same time in one stream",
                  "keep one (which is right is for the source to say) and drop the other",
                  where(i))


def _check_no_overlap(df: pl.DataFrame, iid: pl.Series, source: str, where: V._Locator) -> None:
    """A bar may not open before the previous bar of its stream closed."""
    prev = df.select(pl.col("ts_close_ns").shift(1).over(iid).alias("p")).to_series()
    bad = (df.get_column("ts_open_ns") < prev).fill_null(False)
    if bad.any():
        i = int(bad.arg_true()[0])
        raise V._fail(source, "ts_open_ns", int(df[i, "ts_open_ns"]),
                      f"the bar opens before the previous bar closed (ts_close_ns={int(prev[i])})",
                      "bars of two intervals in one stream, or a wrong --interval; import each "
                      "interval under its own venue or symbol", where(i))


def validate_table(kind: str, df: pl.DataFrame, source: str, *,
                   parts: list[tuple[str, int]] | tuple = ()) -> TableReport:
    """Validate a table of ``kind`` (not quotes) and return it in canonical dtypes.

    Examples
    --------
    >>> import polars as pl
    >>> df = pl.DataFrame({"ts_ns": [1_700_000_000_000_000_000], "venue": ["fred"],
    ...                    "symbol": ["USD/KRW"], "base": ["USD"], "quote": ["KRW"],
    ...                    "rate": [1300.5]})
    >>> validate_table("fx", df, "mem").rows
    1
    """
    sp = spec(kind)
    _check_columns(df, sp, source)
    warnings: list[str] = []
    df = _cast(df, sp, source, warnings)
    where = V._Locator(df, list(parts))
    _row_checks(df, sp, source, where)
    iid = df.select(V._instrument_id()).to_series()
    tie = V._check_order(df, iid, source, where, ts_col=sp.time)
    V._check_duplicates(df, tie, source, where, ts_col=sp.time)
    _check_single_per_time(df, sp, tie, source, where)
    if kind in ("bars", "quote_bars"):
        _check_no_overlap(df, iid, source, where)
    flagged = 0
    if kind == "quote_bars":
        flagged = int((df["bid_close"] >= df["ask_close"]).sum())
        if flagged:
            warnings.append(f"{source}: {flagged} quote bars close crossed or locked "
                            "(bid_close >= ask_close); untradable at that close")
    if kind == "funding":
        wild = int((df["rate"].abs() > 0.03).sum())
        if wild:
            warnings.append(f"{source}: {wild} funding rates beyond ±3% per interval; check "
                            "the unit (fraction, not percent or bps)")
    warnings += V.data_warnings(df, source, sp.time)
    ts = df.get_column(sp.time)
    return TableReport(kind, source, df.height, iid.n_unique(),
                       (int(ts.min()), int(ts.max())), flagged, warnings, df)  # type: ignore[arg-type]


def validate_any(kind: str, df: pl.DataFrame, source: str, *, parts=()) -> TableReport:
    """One entry point for every kind (quotes go to :func:`validate.validate_quotes`)."""
    if kind != "quotes":
        return validate_table(kind, df, source, parts=parts)
    rep = V.validate_quotes(df, source, parts=parts)
    return TableReport("quotes", source, rep.rows, rep.n_instruments, rep.span,
                       rep.crossed_rows, rep.warnings, rep.frame)
