"""The Parquet catalog: market data laid out by kind / venue / symbol / UTC date.

::

    <root>/quotes/venue=<venue>/symbol=<symbol>/date=<YYYY-MM-DD>/<venue>_<symbol>_<date>.parquet

The root is ``data/`` unless given (or ``ARBKIT_DATA_ROOT`` is set). Every file holds one
instrument-day in the canonical schema (:mod:`arbkit.data.schema`), sorted by receive time,
validated before it was written. Readers only open the files of the days and instruments asked
for; ``rows`` and ``bytes`` in a listing come from Parquet footers, not from reading data.

Writes are all-or-nothing: every partition an import touches is merged with what is there,
deduplicated and validated in memory first; only then is each written to a temporary file and
renamed over the old one.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from urllib.parse import quote, unquote

import polars as pl
import pyarrow.parquet as pq

from arbkit.data import schema
from arbkit.data.load import read_quotes
from arbkit.data.validate import validate_quotes
from arbkit.errors import DataError

KINDS = ("quotes",)  # ohlcv, trades, fx and funding follow with their importers
DEFAULT_GAP_S = 60.0
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
    day: date
    path: Path

    @property
    def key(self) -> str:
        return f"{self.venue}:{self.symbol}"


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
        """``"quotes/binance-spot/BTC*"`` -> Selection; an empty text selects all quotes."""
        parts = [p for p in (text or "quotes").strip("/").split("/") if p]
        if len(parts) > 3:
            raise DataError(f"selection {text!r}: expected kind[/venue[/symbol]], e.g. "
                            "quotes/binance-spot/BTCUSDT (wildcards * and ? allowed)")
        kind = parts[0]
        if kind not in KINDS:
            raise DataError(f"selection {text!r}: unknown kind {kind!r}; known kinds: "
                            f"{', '.join(KINDS)}")
        venue = parts[1] if len(parts) > 1 else "*"
        symbol = parts[2] if len(parts) > 2 else "*"
        return cls(kind, venue, symbol, _day(start, "start"), _day(end, "end"))

    def matches(self, p: Partition) -> bool:
        return (p.kind == self.kind and fnmatch.fnmatchcase(p.venue, self.venue)
                and fnmatch.fnmatchcase(p.symbol, self.symbol)
                and (self.start is None or p.day >= self.start)
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


class Catalog:
    """A Parquet catalog rooted at ``root`` (default :func:`default_root`)."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_root()

    # ---- listing -----------------------------------------------------------------------
    def partitions(self, selection: Selection | None = None) -> list[Partition]:
        """Partitions on disk (optionally only the selected ones), in key/day order."""
        out = []
        for kind in KINDS:
            base = self.root / kind
            if not base.is_dir():
                continue
            for f in base.glob("venue=*/symbol=*/date=*/*.parquet"):
                v, s, d = (f.parts[-4], f.parts[-3], f.parts[-2])
                try:
                    day = date.fromisoformat(d.removeprefix("date="))
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
            meta = pq.read_metadata(p.path)
            rows.append({"kind": p.kind, "venue": p.venue, "symbol": p.symbol, "day": p.day,
                         "rows": meta.num_rows, "bytes": p.path.stat().st_size})
        if not rows:
            return pl.DataFrame(schema={"kind": pl.String, "venue": pl.String,
                                        "symbol": pl.String, "days": pl.UInt32,
                                        "first_day": pl.Date, "last_day": pl.Date,
                                        "rows": pl.Int64, "bytes": pl.Int64})
        return (pl.DataFrame(rows).group_by("kind", "venue", "symbol", maintain_order=True)
                .agg(pl.len().alias("days"), pl.col("day").min().alias("first_day"),
                     pl.col("day").max().alias("last_day"), pl.col("rows").sum(),
                     pl.col("bytes").sum()))

    # ---- reading -----------------------------------------------------------------------
    def files(self, selection: Selection | Sequence[Selection]) -> list[Path]:
        """Files of one selection, or of the union of several (each must match something)."""
        sels = [selection] if isinstance(selection, Selection) else list(selection)
        files: list[Path] = []
        for sel in sels:
            found = [p.path for p in self.partitions(sel)]
            if not found:
                have = self.ls()
                listing = ", ".join(f"{r['kind']}/{r['venue']}/{r['symbol']}"
                                    for r in have.head(8).to_dicts()) or "nothing"
                raise DataError(f"catalog {self.root}: no data for {sel}; the catalog holds "
                                f"{listing} (see `arbkit data ls`)")
            files += [f for f in found if f not in files]
        return files

    def scan(self, selection: Selection | Sequence[Selection]) -> pl.LazyFrame:
        """Lazy frame over only the selected instrument-days (no data read until collect)."""
        return pl.concat([pl.scan_parquet(f) for f in self.files(selection)],
                         how="diagonal_relaxed")

    def read(self, selection: Selection | Sequence[Selection]):
        """The selected quotes, validated, with the report (see ``load.read_quotes``)."""
        files = self.files(selection)
        frame = self.scan(selection).collect()
        label = selection if isinstance(selection, Selection) else ", ".join(map(str, selection))
        report = validate_quotes(frame, f"{self.root} {label}",
                                 parts=[(f.name, pq.read_metadata(f).num_rows) for f in files])
        return report.frame, report

    # ---- writing -----------------------------------------------------------------------
    def add_quotes(self, source: str | Path | pl.DataFrame, *, name: str | None = None) -> list[Partition]:
        """Validate quotes and merge them into the catalog by instrument and UTC day.

        Rows already in a partition are kept; identical rows are stored once. Every touched
        partition is merged and validated before the first file is written.
        """
        if isinstance(source, pl.DataFrame):
            frame = validate_quotes(source, name or "<frame>").frame
        else:
            frame, _ = read_quotes(source)
        frame = frame.drop("crossed", strict=False)
        keyed = frame.with_columns(
            pl.from_epoch("ts_recv_ns", time_unit="ns").dt.date().alias("_day"))
        plans: list[tuple[Partition, pl.DataFrame]] = []
        for (venue, symbol, day), part in keyed.group_by("venue", "symbol", "_day",
                                                         maintain_order=True):
            target = self._path("quotes", venue, symbol, day)
            new = part.drop("_day")
            if target.exists():
                old = pl.read_parquet(target)
                fresh = new.join(old, on=old.columns, how="anti", nulls_equal=True) \
                    if set(old.columns) == set(new.columns) else new
                clash = fresh.join(old.select("ts_recv_ns"), on="ts_recv_ns", how="semi")
                if clash.height:
                    ts = clash.get_column("ts_recv_ns")[0]
                    raise DataError(
                        f"{target}: {clash.height} new row(s) share a receive time with "
                        f"different stored rows (first ts_recv_ns={ts}); their order would be "
                        "ambiguous. Remove that file to replace the day, or import only new times")
                new = pl.concat([old, new], how="diagonal_relaxed")
            new = new.unique(maintain_order=True).sort("ts_recv_ns", maintain_order=True)
            checked = validate_quotes(new, str(target)).frame.drop("crossed")
            checked = checked.select(
                [c for c in schema.quote_column_order(schema.depth_levels(checked.columns))
                 if c in checked.columns])
            plans.append((Partition("quotes", venue, symbol, day, target), checked))
        for p, df in plans:
            p.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = p.path.with_suffix(".parquet.tmp")
            df.write_parquet(tmp, compression="zstd", statistics=True)
            os.replace(tmp, p.path)
        return [p for p, _ in plans]

    def _path(self, kind: str, venue: str, symbol: str, day: date) -> Path:
        v, s = _enc(venue), _enc(symbol)
        return (self.root / kind / f"venue={v}" / f"symbol={s}" / f"date={day.isoformat()}"
                / f"{v}_{s}_{day.isoformat()}.parquet")

    # ---- checking ----------------------------------------------------------------------
    def info(self, selection: Selection, gap_s: float = DEFAULT_GAP_S) -> list[InstrumentInfo]:
        """Rows, span, gaps (stale vs quiet), crossed rows per selected instrument."""
        frame, _ = self.read(selection)
        gap_ns = round(gap_s * NS)
        ts_all = frame.get_column("ts_recv_ns").sort()
        levels = schema.depth_levels(frame.columns)
        out = []
        for (venue, symbol), g in frame.group_by("venue", "symbol", maintain_order=True):
            ts = g.get_column("ts_recv_ns")
            d = ts.diff().drop_nulls()
            big = g.select(pl.col("ts_recv_ns").shift(1).alias("a"), pl.col("ts_recv_ns").alias("b")
                           ).filter((pl.col("b") - pl.col("a")) > gap_ns)
            stale = 0
            for a, b in big.iter_rows():
                # stale: the other instruments kept quoting through at least half of this
                # silence (a feed problem); quiet: they were silent too (a session gap)
                lo = ts_all.search_sorted(a, side="right")
                hi = ts_all.search_sorted(b, side="left")
                if hi - lo >= 2 and ts_all[hi - 1] - ts_all[lo] >= (b - a) // 2:
                    stale += 1
            n_gaps = big.height
            days = g.select(pl.from_epoch("ts_recv_ns", time_unit="ns").dt.date().n_unique()).item()
            out.append(InstrumentInfo(
                venue=venue, symbol=symbol, days=days, rows=g.height,
                first_ns=int(ts.min()), last_ns=int(ts.max()),
                crossed_rows=int(g.get_column("crossed").sum()), depth_levels=levels,
                gaps=n_gaps, longest_gap_s=(float(d.max()) / NS) if d.len() else 0.0,
                stale_gaps=stale, quiet_gaps=n_gaps - stale,
                median_interval_ms=(float(d.median()) / 1e6) if d.len() else float("nan")))
        return out

    def validate(self, selection: Selection) -> list[tuple[Partition, str | None]]:
        """Validate every selected partition on its own: (partition, None or the error line)."""
        out = []
        for p in self.partitions(selection):
            try:
                read_quotes(p.path)
                out.append((p, None))
            except DataError as exc:
                out.append((p, str(exc)))
        return out


def fmt_ts(ns: int) -> str:
    return datetime.fromtimestamp(ns / NS, tz=UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def selection_of(keys: Sequence[str], kind: str = "quotes") -> list[Selection]:
    """Selections for ``venue:symbol`` instrument keys (as configs name them)."""
    out = []
    for k in keys:
        venue, _, symbol = k.partition(":")
        out.append(Selection(kind, venue, symbol))
    return out
