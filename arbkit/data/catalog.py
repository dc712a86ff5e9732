"""The Parquet catalog: market data laid out by kind / venue / symbol / UTC date.

::

    <root>/<kind>/venue=<venue>/symbol=<symbol>/date=<YYYY-MM-DD>/<venue>_<symbol>_<date>.parquet

Kinds: quotes, trades, bars, quote_bars (one file per UTC day), fx and funding (sparse series:
one file per UTC month, ``date=<YYYY-MM>``). A row's day is the UTC date of its kind's time
column (``ts_recv_ns``; ``ts_close_ns`` for bars; ``ts_ns`` for fx and funding).

The root is ``data/`` unless given (or ``ARBKIT_DATA_ROOT`` is set). Every file holds one
instrument-day in the canonical schema (:mod:`arbkit.data.schema`), sorted by receive time,
validated before it was written. Readers only open the files of the days and instruments asked
for; ``rows`` and ``bytes`` in a listing come from Parquet footers, not from reading data.

Writes are all-or-nothing: every partition an import touches is merged with what is there,
deduplicated and validated in memory first; only then is each written to a temporary file
(``*.parquet.tmp``), and once every one of them is written they are all renamed over the old
ones together, a Ctrl-C held back during the renames. A failed or interrupted write removes
its temporary files; one left by a killed process is an orphan, which ``validate`` and ``ls``
name.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from urllib.parse import quote, unquote

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from arbkit import atomic
from arbkit.data import schema
from arbkit.data.load import not_parquet, parquet_files, read_file, read_quotes
from arbkit.data.tables import KINDS, TableReport, time_column, validate_any
from arbkit.data.validate import validate_quotes
from arbkit.errors import DataError

DEFAULT_GAP_S = 60.0
MONTHLY = ("fx", "funding")
ROW_GROUP = 1 << 24  # rows per Parquet row group: one group per instrument-day file  # sparse series: one file per month, not per day
NS = 1_000_000_000


def default_root() -> Path:
    """``$ARBKIT_DATA_ROOT`` if set, else ``data`` in the working directory."""
    return Path(os.environ.get("ARBKIT_DATA_ROOT", "data"))


def _enc(value: str) -> str:
    """A venue or symbol as a path part (``BTC/USDT`` -> ``BTC%2FUSDT``)."""
    return quote(value, safe="-_.")


@dataclass(frozen=True)
class Partition:
    """One instrument-day file of the catalog."""

    kind: str
    venue: str
    symbol: str
    day: date  # first day of the file's period
    path: Path

    @property
    def key(self) -> str:
        return f"{self.venue}:{self.symbol}"

    @property
    def last_day(self) -> date:
        """Last day the file can hold (the day itself, or the month's last day)."""
        if self.kind not in MONTHLY:
            return self.day
        nxt = date(self.day.year + self.day.month // 12, self.day.month % 12 + 1, 1)
        return date.fromordinal(nxt.toordinal() - 1)


@dataclass(frozen=True)
class Selection:
    """Which partitions to read: ``kind[/venue[/symbol]]`` with shell wildcards, and days.

    ``start``/``end`` are inclusive UTC dates (``YYYY-MM-DD``) or None for open ends.
    """

    kind: str = "quotes"
    venue: str = "*"
    symbol: str = "*"
    start: date | None = None
    end: date | None = None

    @classmethod
    def parse(cls, text: str | None, start: str | None = None, end: str | None = None) -> Selection:
        """``"quotes/binance-spot/BTC*"`` -> Selection; an empty text selects all quotes;
        ``*`` as the kind selects every kind (listings only)."""
        parts = [p for p in (text or "quotes").strip("/").split("/") if p]
        if len(parts) > 3:
            raise DataError(f"selection {text!r}: expected kind[/venue[/symbol]], e.g. "
                            "quotes/binance-spot/BTCUSDT (wildcards * and ? allowed)")
        kind = parts[0]
        if kind not in KINDS and kind != "*":
            raise DataError(f"selection {text!r}: unknown kind {kind!r}; known kinds: "
                            f"{', '.join(KINDS)}")
        venue = parts[1] if len(parts) > 1 else "*"
        symbol = parts[2] if len(parts) > 2 else "*"
        first, last = _day(start, "start"), _day(end, "end")
        if first is not None and last is not None and first > last:
            raise DataError(f"--start {first} is after --end {last}; swap them")
        return cls(kind, venue, symbol, first, last)

    def matches(self, p: Partition) -> bool:
        return (fnmatch.fnmatchcase(p.kind, self.kind) and fnmatch.fnmatchcase(p.venue, self.venue)
                and fnmatch.fnmatchcase(p.symbol, self.symbol)
                and (self.start is None or p.last_day >= self.start)
                and (self.end is None or p.day <= self.end))

    def __str__(self) -> str:
        days = "" if self.start is None and self.end is None else (
            f" [{self.start or '…'} .. {self.end or '…'}]")
        return f"{self.kind}/{self.venue}/{self.symbol}{days}"


def _day(text: str | None, name: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise DataError(f"--{name} {text!r}: not a date; use YYYY-MM-DD (UTC)") from None


@dataclass
class InstrumentInfo:
    """What :meth:`Catalog.info` found for one instrument of a selection."""

    venue: str
    symbol: str
    days: int
    rows: int
    first_ns: int
    last_ns: int
    crossed_rows: int
    depth_levels: int
    gaps: int  # silences longer than the gap threshold
    longest_gap_s: float
    stale_gaps: int  # of those, silences while another instrument of the selection kept quoting
    quiet_gaps: int  # silences every instrument of the selection shared (session gaps)
    median_interval_ms: float
    recv_minus_exch_ms_p50: float = float("nan")  # feed latency + clock offset (quotes)
    clock_offsets_ms: list[float] = field(default_factory=list)  # per recording session


class Catalog:
    """A Parquet catalog rooted at ``root`` (default :func:`default_root`)."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_root()
        if self.root.exists() and not self.root.is_dir():
            raise DataError(f"catalog root {self.root} is a file; pass a folder (--root)")

    def require(self) -> Catalog:
        """This catalog, or a clear error when its root does not exist (reading commands)."""
        if not self.root.is_dir():
            raise DataError(f"catalog root {self.root} does not exist (cwd {Path.cwd()}); pass "
                            "--root or set ARBKIT_DATA_ROOT, or import data first")
        return self

    # ---- listing -----------------------------------------------------------------------
    def partitions(self, selection: Selection | None = None) -> list[Partition]:
        """Partitions on disk (optionally only the selected ones), in key/day order."""
        out = []
        kinds = KINDS if selection is None or selection.kind == "*" else (selection.kind,)
        for kind in kinds:
            base = self.root / kind
            if not base.is_dir():
                continue
            for f in base.glob("venue=*/symbol=*/date=*/*.parquet"):
                v, s, d = (f.parts[-4], f.parts[-3], f.parts[-2])
                try:
                    text = d.removeprefix("date=")
                    day = date.fromisoformat(text + "-01" if kind in MONTHLY else text)
                except ValueError:
                    raise DataError(f"{f}: folder {d!r} is not date=YYYY-MM-DD; move or "
                                    "remove the file") from None
                p = Partition(kind, unquote(v.removeprefix("venue=")),
                              unquote(s.removeprefix("symbol=")), day, f)
                if selection is None or selection.matches(p):
                    out.append(p)
        return sorted(out, key=lambda p: (p.kind, p.venue, p.symbol, p.day))

    def ls(self, selection: Selection | None = None) -> pl.DataFrame:
        """One row per instrument: days, first/last day, rows and bytes (from footers)."""
        rows = []
        for p in self.partitions(selection):
            try:
                n = num_rows(p.path)
            except DataError:
                n = None  # damaged: `arbkit data validate` names it
            rows.append({"kind": p.kind, "venue": p.venue, "symbol": p.symbol, "day": p.day,
                         "rows": n, "bytes": p.path.stat().st_size})
        if not rows:
            return pl.DataFrame(schema={"kind": pl.String, "venue": pl.String,
                                        "symbol": pl.String, "days": pl.UInt32,
                                        "first_day": pl.Date, "last_day": pl.Date,
                                        "rows": pl.Int64, "bytes": pl.Int64})
        return (pl.DataFrame(rows, schema_overrides={"rows": pl.Int64})
                .group_by("kind", "venue", "symbol", maintain_order=True)
                .agg(pl.len().alias("days"), pl.col("day").min().alias("first_day"),
                     pl.col("day").max().alias("last_day"), pl.col("rows").sum(),
                     pl.col("bytes").sum(), pl.col("rows").null_count().alias("damaged")))

    # ---- reading -----------------------------------------------------------------------
    def files(self, selection: Selection | Sequence[Selection]) -> list[Path]:
        """Files of one selection, or of the union of several (each must match something)."""
        sels = [selection] if isinstance(selection, Selection) else list(selection)
        files: list[Path] = []
        for sel in sels:
            found = [p.path for p in self.partitions(sel)]
            if not found:
                raise DataError(f"catalog {self.root}: no data for {sel}; {self._near(sel)} "
                                "(see `arbkit data ls`)")
            files += [f for f in found if f not in files]
        return files

    def _near(self, sel: Selection) -> str:
        """What the catalog holds closest to a selection that matched nothing."""
        same = Selection(sel.kind, sel.venue, sel.symbol)
        days = [p.day for p in self.partitions(same)] if sel.kind != "*" else []
        if days:
            return f"that stream has days {min(days)} .. {max(days)} only"
        kind = [f"{p.venue}/{p.symbol}" for p in self.partitions(Selection(sel.kind))] \
            if sel.kind != "*" else []
        if kind:
            return f"its {sel.kind} are {', '.join(sorted(set(kind))[:8])}"
        kinds = sorted({p.kind for p in self.partitions()})
        return (f"the catalog holds no {sel.kind}; it holds {', '.join(kinds)}" if kinds
                else "the catalog is empty")

    def scan(self, selection: Selection | Sequence[Selection]) -> pl.LazyFrame:
        """Lazy frame over only the selected instrument-days (no data read until collect)."""
        return pl.concat([pl.scan_parquet(f) for f in self.files(selection)],
                         how="diagonal_relaxed")

    def read_table(self, selection: Selection | Sequence[Selection]) -> TableReport:
        """Any kind's selected rows, validated as one table (streams in time order)."""
        sels = [selection] if isinstance(selection, Selection) else list(selection)
        kinds = {s.kind for s in sels}
        if len(kinds) != 1:
            raise DataError(f"catalog {self.root}: one kind per read, got {sorted(kinds)}")
        kind = kinds.pop()
        files = self.files(sels)
        frame = pl.concat([read_file(f) for f in files], how="diagonal_relaxed")
        label = ", ".join(map(str, sels))
        return validate_any(kind, frame, f"{self.root} {label}",
                            parts=[(f.name, num_rows(f)) for f in files])

    def read(self, selection: Selection | Sequence[Selection]):
        """The selected quotes, validated, with the report (see ``load.read_quotes``)."""
        files = self.files(selection)
        frame = pl.concat([read_file(f) for f in files], how="diagonal_relaxed")
        label = selection if isinstance(selection, Selection) else ", ".join(map(str, selection))
        report = validate_quotes(frame, f"{self.root} {label}",
                                 parts=[(f.name, num_rows(f)) for f in files])
        return report.frame, report

    # ---- writing -----------------------------------------------------------------------
    def add_quotes(self, source: str | Path | pl.DataFrame, *, name: str | None = None) -> list[Partition]:
        """Validate quotes and merge them into the catalog by instrument and UTC day."""
        if isinstance(source, pl.DataFrame):
            frame = validate_quotes(source, name or "<frame>").frame
        else:
            frame, _ = read_quotes(source)
        return self.add("quotes", frame, name=name)

    def add(self, kind: str, source: str | Path | pl.DataFrame, *,
            name: str | None = None) -> list[Partition]:
        """Validate a table of ``kind`` and merge it into the catalog by stream and UTC day.

        Rows already in a partition are kept; identical rows are stored once. A new row that
        shares a time with a different stored row is refused (its order would be ambiguous),
        and so is a stream whose stored columns differ (one stream holds one source). Every
        touched partition is merged and validated before the first file is written, then each
        is written to a temporary file and renamed: all or nothing.
        """
        return self.write(self.plan(kind, source, name=name))

    def plan(self, kind: str, source: str | Path | pl.DataFrame, *,
             name: str | None = None) -> list[tuple[Partition, pl.DataFrame]]:
        """The partitions :meth:`add` would write, merged and validated; nothing written."""
        if kind not in KINDS:
            raise DataError(f"catalog add: kind {kind!r} is unknown; known kinds: "
                            f"{', '.join(KINDS)}")
        if isinstance(source, pl.DataFrame):
            frame = validate_any(kind, source, name or "<frame>").frame
        else:
            files = parquet_files(source)
            frame = validate_any(kind, pl.concat([read_file(f) for f in files],
                                                 how="diagonal_relaxed"), str(source)).frame
        ts_col = time_column(kind)
        frame = frame.drop("crossed", strict=False)
        day = pl.from_epoch(ts_col, time_unit="ns").dt.date()
        keyed = frame.with_columns((day.dt.truncate("1mo") if kind in MONTHLY else day).alias("_day"))
        plans: list[tuple[Partition, pl.DataFrame]] = []
        for (venue, symbol, d), part in keyed.group_by("venue", "symbol", "_day",
                                                       maintain_order=True):
            target = self._path(kind, venue, symbol, d)
            merged = self._merge(target, part.drop("_day"), ts_col)
            checked = validate_any(kind, merged, str(target)).frame.drop("crossed", strict=False)
            if kind == "quotes":
                checked = checked.select(
                    [c for c in schema.quote_column_order(schema.depth_levels(checked.columns))
                     if c in checked.columns])
            plans.append((Partition(kind, venue, symbol, d, target), checked))
        return plans

    @staticmethod
    def write(plans: list[tuple[Partition, pl.DataFrame]]) -> list[Partition]:
        """Write planned partitions all or nothing: every file is staged under a temporary
        name first, then all are renamed into place together (a Ctrl-C is held back during
        the renames). A failure or an interrupt while staging removes every staged file and
        every folder it created: the catalog is left as it was."""
        staged: list[tuple[Path, Path]] = []
        created: list[Path] = []
        try:
            for p, df in plans:
                tmp = atomic.staged(p.path)
                with atomic.deferred_interrupt():  # what is made is known, to be undone
                    created += atomic.make_parents(p.path.parent)
                    staged.append((tmp, p.path))
                # LZ4: ~1.7x the size of zstd, ~3x faster to read (benchmarks/bench_data.py);
                # the catalog is read far more often than it is written. One row group per
                # file (an instrument-day): columns come back as one chunk, so reading them
                # into numpy is zero-copy
                df.write_parquet(tmp, compression="lz4", statistics=True,
                                 row_group_size=ROW_GROUP)
            atomic.publish(staged)
        except BaseException:
            atomic.discard([t for t, _ in staged])
            atomic.remove_created(created)
            raise
        return [p for p, _ in plans]

    def orphans(self) -> list[Path]:
        """Temporary files an interrupted or killed write left in the catalog (never read;
        safe to delete once no write is running)."""
        out: list[Path] = []
        for kind in KINDS:
            base = self.root / kind
            if base.is_dir():
                out += sorted(base.glob(f"venue=*/symbol=*/date=*/*{atomic.TMP_SUFFIX}"))
        return out

    @staticmethod
    def _merge(target: Path, new: pl.DataFrame, ts_col: str) -> pl.DataFrame:
        """New rows merged with a partition already on disk (identical rows kept once)."""
        if target.exists():
            old = pl.read_parquet(target)
            if set(old.columns) != set(new.columns):
                extra = sorted(set(old.columns) ^ set(new.columns))[:4]
                raise DataError(
                    f"{target}: the stored rows and the new ones have different columns "
                    f"({extra} in one only): one stream holds one source. Import under another "
                    "--venue, or remove that file to replace the day")
            fresh = new.join(old, on=old.columns, how="anti", nulls_equal=True)
            clash = fresh.join(old.select(ts_col), on=ts_col, how="semi")
            if clash.height:
                ts = clash.get_column(ts_col)[0]
                raise DataError(
                    f"{target}: {clash.height} new row(s) share a time with different stored "
                    f"rows (first {ts_col}={ts}); their order would be ambiguous. Remove that "
                    "file to replace the day, or import only new times")
            new = pl.concat([old, new], how="diagonal_relaxed")
        return new.unique(maintain_order=True).sort(ts_col, maintain_order=True)

    def _path(self, kind: str, venue: str, symbol: str, day: date) -> Path:
        v, s = _enc(venue), _enc(symbol)
        d = day.isoformat()[:7] if kind in MONTHLY else day.isoformat()
        return self.root / kind / f"venue={v}" / f"symbol={s}" / f"date={d}" / f"{v}_{s}_{d}.parquet"

    # ---- checking ----------------------------------------------------------------------
    def info(self, selection: Selection, gap_s: float = DEFAULT_GAP_S) -> list[InstrumentInfo]:
        """Rows, span, gaps (stale vs quiet), crossed rows, clock offsets per selected stream."""
        from arbkit.data.events import session_offsets_ns

        if selection.kind == "*":
            raise DataError(f"info: pick one kind, e.g. quotes/...; known kinds: {', '.join(KINDS)}")
        frame = self.read_table(selection).frame
        ts_col = time_column(selection.kind)
        gap_ns = round(gap_s * NS)
        out = []
        key = pl.col("venue") + "\x00" + pl.col("symbol")
        for (venue, symbol), g in frame.group_by("venue", "symbol", maintain_order=True):
            ts = g.get_column(ts_col)
            d = ts.diff().drop_nulls()
            others = frame.filter(key != f"{venue}\x00{symbol}").get_column(ts_col).sort()
            levels = _levels_of(selection.kind, g)
            big = g.select(pl.col(ts_col).shift(1).alias("a"), pl.col(ts_col).alias("b")
                           ).filter((pl.col("b") - pl.col("a")) > gap_ns)
            stale = sum(_others_kept_going(others, a, b, gap_ns) for a, b in big.iter_rows())
            n_gaps = big.height
            days = g.select(pl.from_epoch(ts_col, time_unit="ns").dt.date().n_unique()).item()
            offsets: list[float] = []
            lag = float("nan")
            if "ts_exch_ns" in g.columns and g["ts_exch_ns"].null_count() == 0:
                recv, exch = g["ts_recv_ns"].to_numpy(), g["ts_exch_ns"].to_numpy()
                offsets = sorted({int(x) / 1e6 for x in session_offsets_ns(recv, exch)})
                lag = float(np.median(recv - exch)) / 1e6
            out.append(InstrumentInfo(
                venue=venue, symbol=symbol, days=days, rows=g.height,
                first_ns=int(ts.min()), last_ns=int(ts.max()),
                crossed_rows=_flagged(selection.kind, g), depth_levels=levels,
                gaps=n_gaps, longest_gap_s=(float(d.max()) / NS) if d.len() else 0.0,
                stale_gaps=stale, quiet_gaps=n_gaps - stale,
                median_interval_ms=(float(d.median()) / 1e6) if d.len() else float("nan"),
                recv_minus_exch_ms_p50=lag, clock_offsets_ms=offsets))
        return out

    def validate(self, selection: Selection) -> list[tuple[Partition, str | None]]:
        """Validate every selected partition on its own: (partition, None or the error line)."""
        out = []
        for p in self.partitions(selection):
            try:
                validate_any(p.kind, read_file(p.path), str(p.path))
                out.append((p, None))
            except DataError as exc:
                out.append((p, str(exc)))
        return out


def num_rows(path: Path) -> int:
    """Row count from the Parquet footer; a clear error for a damaged file."""
    try:
        return pq.read_metadata(path).num_rows
    except (OSError, ValueError) as exc:
        raise not_parquet(path, exc, "run `arbkit data validate` and re-import that "
                          "day") from None


def _others_kept_going(others: pl.Series, a: int, b: int, gap_ns: int) -> bool:
    """Stale, not quiet: the other streams never fell silent for longer than the gap
    threshold anywhere inside this stream's silence ``(a, b)``."""
    lo = others.search_sorted(a, side="right")
    hi = others.search_sorted(b, side="left")
    inside = others.slice(lo, max(0, hi - lo)).to_numpy()
    if inside.size == 0:
        return False
    points = np.concatenate([[a], inside, [b]])
    return bool(np.diff(points).max() <= gap_ns)


def _levels_of(kind: str, g: pl.DataFrame) -> int:
    """Book levels a stream really has (a depth column that is all NaN is not a level)."""
    if kind != "quotes":
        return 0
    n = 1
    for lvl in range(1, schema.depth_levels(g.columns)):
        px = schema.level_columns("bid", lvl)[0]
        if px in g.columns and g.select(pl.col(px).is_not_nan().any()).item():
            n = lvl + 1
    return n


def _flagged(kind: str, g: pl.DataFrame) -> int:
    if "crossed" in g.columns:
        return int(g.get_column("crossed").sum())
    if kind == "quote_bars":
        return int((g["bid_close"] >= g["ask_close"]).sum())
    return 0


def fmt_ts(ns: int) -> str:
    return datetime.fromtimestamp(ns / NS, tz=UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def selection_of(keys: Sequence[str], kind: str = "quotes") -> list[Selection]:
    """Selections for ``venue:symbol`` instrument keys (as configs name them)."""
    out = []
    for k in keys:
        venue, _, symbol = k.partition(":")
        out.append(Selection(kind, venue, symbol))
    return out
