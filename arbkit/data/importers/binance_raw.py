"""Raw Binance websocket captures (hftbacktest's collector format) -> canonical tables.

Each line is ``<local receive time> <json>``; the time is nanoseconds (19 digits) or, in older
captures, microseconds (16 digits): the unit is read off each line's digit count. The JSON is
a combined-stream message (``{"stream": "btcusdt@bookTicker", "data": {...}}``) or a REST
``GET depth`` snapshot (``{"lastUpdateId": ..., "bids": ..., "asks": ...}``).

:func:`import_raw` turns the files of one market and symbol (in time order: a session's
snapshot is in its first file) into best bid/ask quotes, trades, and an L2 book rebuilt with
Binance's update-id rules (:mod:`arbkit.data.importers.binance_depth`).
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from arbkit.data.importers.binance_depth import DepthRebuild, rebuild_from_frames
from arbkit.errors import DataError

_NAME = re.compile(r"^(spot|usdm|coinm)_([a-z0-9_]+?)_(\d{8})\.txt(\.gz)?$")


@dataclass
class RawCapture:
    """What one market/symbol's raw files held, in canonical frames."""

    market: str
    symbol: str
    quotes: pl.DataFrame
    trades: pl.DataFrame
    depth: DepthRebuild | None
    skipped: dict[str, int]  # message kinds not imported (e.g. markPrice) -> count


def parse_name(path: Path) -> tuple[str, str]:
    """(market, exchange symbol) from ``<market>_<symbol>_<yyyymmdd>.txt.gz``."""
    m = _NAME.match(path.name)
    if not m:
        raise DataError(f"{path}: name is not <spot|usdm|coinm>_<symbol>_<yyyymmdd>.txt.gz; "
                        "rename it so (the name says which market and symbol it holds)")
    return m.group(1), m.group(2).upper()


def _ns(stamp: str) -> int:
    n = len(stamp)
    if n == 19:
        return int(stamp)
    if n == 16:
        return int(stamp) * 1_000
    raise DataError(f"receive time {stamp!r}: {n} digits; expected 19 (ns) or 16 (µs)")


def _lines(files: Iterable[Path]):
    for f in files:
        opener = gzip.open if f.suffix == ".gz" else open
        with opener(f, "rt") as fh:  # type: ignore[operator]
            for no, line in enumerate(fh, 1):
                stamp, _, body = line.partition(" ")
                try:
                    yield _ns(stamp), json.loads(body)
                except (ValueError, DataError) as exc:
                    raise DataError(f"{f}:{no}: cannot parse the line ({exc}); the format is "
                                    "'<receive time> <json>'") from None


class _Sink:
    def __init__(self, market: str, symbol: str) -> None:
        self.market, self.symbol = market, symbol
        self.bbo: list[tuple] = []
        self.trades: list[tuple] = []
        self.diffs: list[tuple] = []
        self.snaps: list[tuple] = []
        self.skipped: dict[str, int] = {}

    def take(self, ts: int, msg: dict) -> None:
        if "lastUpdateId" in msg:
            uid = int(msg["lastUpdateId"])
            for side, key in (("bid", "bids"), ("ask", "asks")):
                self.snaps += [(ts, uid, side, float(p), float(q)) for p, q in msg[key]]
            return
        stream, d = msg.get("stream", ""), msg.get("data", {})
        if d.get("s", self.symbol).upper() != self.symbol:
            return
        if stream.endswith("@bookTicker"):
            exch = d.get("T", d.get("E"))
            self.bbo.append((ts, None if exch is None else int(exch) * 1_000_000,
                             float(d["b"]), float(d["B"]), float(d["a"]), float(d["A"])))
        elif "@depth" in stream:
            first, last, prev = int(d["U"]), int(d["u"]), d.get("pu")
            e_ms = d.get("E")
            for side, key in (("bid", "b"), ("ask", "a")):
                self.diffs += [(ts, e_ms, first, last, prev, side, float(p), float(q))
                               for p, q in d[key]]
        elif stream.endswith("@trade"):
            side = -1 if d["m"] else 1  # m: the buyer is the maker, so the aggressor sold
            self.trades.append((ts, int(d["T"]) * 1_000_000, float(d["p"]), float(d["q"]),
                                side, str(d["t"])))
        else:
            kind = stream.split("@", 1)[-1] or "unknown"
            self.skipped[kind] = self.skipped.get(kind, 0) + 1


def import_raw(files: list[str | Path], *, market: str | None = None,
               symbol: str | None = None, n_levels: int = 5,
               venue: str | None = None) -> RawCapture:
    """Import raw capture files of one market and symbol (see module doc).

    Examples
    --------
    >>> cap = import_raw(sorted(Path("../shared/data/real/hftbacktest-binance/raw")
    ...                  .glob("usdm_btcusdt_2024080*.txt.gz")))  # doctest: +SKIP
    >>> cap.quotes.height, cap.depth.stats.gaps  # doctest: +SKIP
    """
    paths = [Path(f) for f in files]
    if not paths:
        raise DataError("binance raw import: no files given")
    for p in paths:
        if not p.is_file():
            raise DataError(f"binance raw import: path={str(p)!r} does not exist")
    m0, s0 = (market, symbol) if market and symbol else parse_name(paths[0])
    if not (market and symbol):
        for p in paths[1:]:
            if parse_name(p) != (m0, s0):
                raise DataError(
                    f"{p}: is {'/'.join(parse_name(p))} but {paths[0].name} is {m0}/{s0}: one "
                    "import takes the files of one market and symbol (a REST snapshot names "
                    "no symbol, so mixing them would corrupt the book); import each separately")
    sink = _Sink(m0, s0.upper())
    for ts, msg in _lines(paths):
        sink.take(ts, msg)
    v = venue or f"binance_{m0}"
    quotes = pl.DataFrame(sink.bbo, schema={"ts_recv_ns": pl.Int64, "ts_exch_ns": pl.Int64,
                                            "bid_px": pl.Float64, "bid_qty": pl.Float64,
                                            "ask_px": pl.Float64, "ask_qty": pl.Float64},
                          orient="row").with_columns(pl.lit(v).alias("venue"),
                                                     pl.lit(sink.symbol).alias("symbol"))
    trades = pl.DataFrame(sink.trades, schema={"ts_recv_ns": pl.Int64, "ts_exch_ns": pl.Int64,
                                               "price": pl.Float64, "qty": pl.Float64,
                                               "side": pl.Int8, "trade_id": pl.String},
                          orient="row").with_columns(pl.lit(v).alias("venue"),
                                                     pl.lit(sink.symbol).alias("symbol"))
    depth = None
    if sink.diffs and sink.snaps:
        diffs = pl.DataFrame(sink.diffs, schema={
            "local_ts_ns": pl.Int64, "event_ts_ms": pl.Int64, "first_update_id": pl.Int64,
            "last_update_id": pl.Int64, "prev_update_id": pl.Int64, "side": pl.String,
            "price": pl.Float64, "qty": pl.Float64}, orient="row")
        snaps = pl.DataFrame(sink.snaps, schema={
            "local_ts_ns": pl.Int64, "last_update_id": pl.Int64, "side": pl.String,
            "price": pl.Float64, "qty": pl.Float64}, orient="row")
        depth = rebuild_from_frames(snaps, diffs, market=m0, symbol=sink.symbol,
                                    n_levels=n_levels, venue=v)
    return RawCapture(m0, sink.symbol, quotes, trades, depth, sink.skipped)
