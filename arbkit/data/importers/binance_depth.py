"""Binance L2 order-book rebuild from the hftbacktest captures (REST snapshot + depth diffs).

Reads ``depth_snapshots.parquet`` and ``depth_updates.parquet`` of the shared
``hftbacktest-binance`` data (see its README) and replays Binance's documented "manage a
local order book" procedure:

* diffs received before a snapshot are buffered, then replayed once it arrives;
* futures (``usdm``/``coinm``): drop diffs with ``u < lastUpdateId``; the first applied diff
  must have ``U <= lastUpdateId <= u``; every later diff must have ``pu == previous u``;
* spot: drop ``u <= lastUpdateId``; the first applied diff must have
  ``U <= lastUpdateId + 1 <= u``; every later diff must have ``U == previous u + 1``;
* a level with ``qty == 0`` is deleted;
* a sequence break makes the book INVALID until the next snapshot: no rows are emitted
  meanwhile and the break is counted in :class:`DepthStats` (never silently bridged).

The output is one canonical quotes row per applied diff message, top ``n_levels`` levels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from arbkit.data import schema
from arbkit.data.book_build import BookSide as _Side
from arbkit.data.importers.hftbacktest import _MARKETS, SESSIONS
from arbkit.errors import DataError

# <repo>/../shared/... so the default works from any working directory.
DEFAULT_ROOT = (
    Path(__file__).resolve().parents[3].parent
    / "shared"
    / "data"
    / "real"
    / "hftbacktest-binance"
    / "parquet"
)
# A stream silent for longer than this starts a new capture session: its diffs are never
# chained to the previous session's book (the sessions are months apart).
SEGMENT_GAP_NS = 600_000_000_000


@dataclass
class DepthStats:
    """Counters of one rebuild. ``messages == applied + dropped_before_sync + unsynced``.

    Attributes
    ----------
    messages : int
        Diff messages read.
    applied : int
        Messages applied to a valid book (one output row each, unless a side was empty).
    dropped_before_sync : int
        Messages older than the snapshot they were checked against (Binance drop rule).
    unsynced : int
        Messages never applied because no usable snapshot followed them in their session
        (e.g. spot session A, which has no snapshot, or the tail after a gap).
    gaps : int
        Sequence breaks (including a first diff that does not bridge the snapshot); each
        made the book invalid until the next snapshot.
    crossed_rows : int
        Emitted rows whose best bid >= best ask.
    empty_side_rows : int
        Applied messages after which one side was empty (no row emitted).
    snapshots : int
        Snapshots read.
    """

    messages: int = 0
    applied: int = 0
    dropped_before_sync: int = 0
    unsynced: int = 0
    gaps: int = 0
    crossed_rows: int = 0
    empty_side_rows: int = 0
    snapshots: int = 0
    gap_ts_ns: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class DepthRebuild:
    """A rebuilt book as canonical quotes (``frame``) plus its :class:`DepthStats`."""

    frame: pl.DataFrame
    stats: DepthStats


# --------------------------------------------------------------------------- replay


@dataclass
class _Messages:
    """Diff messages as numpy arrays; level rows of message k are ``lo[k]:hi[k]``."""

    ts: np.ndarray
    exch_ms: np.ndarray  # float64, NaN where absent
    first: np.ndarray  # U
    last: np.ndarray  # u
    prev: np.ndarray  # pu (futures), -1 where absent
    lo: np.ndarray
    hi: np.ndarray
    is_bid: np.ndarray
    price: np.ndarray
    qty: np.ndarray

    @classmethod
    def of(cls, updates: pl.DataFrame) -> _Messages:
        df = updates.sort("local_ts_ns", maintain_order=True)
        u = df.get_column("last_update_id")
        start = (u != u.shift(1)).fill_null(True) | (df["local_ts_ns"] != df["local_ts_ns"].shift(1)).fill_null(True)
        lo = np.flatnonzero(start.to_numpy())
        hi = np.r_[lo[1:], df.height].astype(np.int64)
        heads = df[lo]
        return cls(
            ts=heads["local_ts_ns"].to_numpy(),
            exch_ms=heads["event_ts_ms"].cast(pl.Float64).fill_null(np.nan).to_numpy(),
            first=heads["first_update_id"].to_numpy(),
            last=heads["last_update_id"].to_numpy(),
            prev=heads["prev_update_id"].fill_null(-1).to_numpy(),
            lo=lo, hi=hi,
            is_bid=(df["side"] == "bid").to_numpy(),
            price=df["price"].to_numpy(), qty=df["qty"].to_numpy(),
        )


class _Rebuilder:
    """Binance local-book state machine: NONE/INVALID (buffering) -> SYNCING -> SYNCED."""

    def __init__(self, msgs: _Messages, spot: bool, n_levels: int) -> None:
        self.m, self.spot, self.n = msgs, spot, n_levels
        self.bids, self.asks = _Side(True), _Side(False)
        self.stats = DepthStats(messages=len(msgs.ts))
        self.state = "none"  # none | syncing | synced | invalid
        self.snap_id = 0
        self.snap_ts = 0
        self.prev_u = 0
        self.buffer: list[int] = []
        self.rows: list[list[float]] = []
        self.row_ts: list[int] = []

    def snapshot(self, ts: int, last_id: int, side: np.ndarray, px: np.ndarray,
                 qty: np.ndarray) -> None:
        self.stats.snapshots += 1
        self.bids.reset(px[side], qty[side])
        self.asks.reset(px[~side], qty[~side])
        self.state, self.snap_id, self.snap_ts = "syncing", last_id, ts
        pending, self.buffer = self.buffer, []
        for k in pending:
            self.message(k)

    def end_segment(self) -> None:
        self.stats.unsynced += len(self.buffer)
        self.buffer = []
        self.state = "none"

    def message(self, k: int) -> None:
        if self.state in ("none", "invalid"):
            self.buffer.append(k)
            return
        m, first, last = self.m, int(self.m.first[k]), int(self.m.last[k])
        if self.state == "syncing":
            if last < self.snap_id or (self.spot and last == self.snap_id):
                self.stats.dropped_before_sync += 1
                return
            target = self.snap_id + 1 if self.spot else self.snap_id
            ok = first <= target <= last
        else:
            ok = first == self.prev_u + 1 if self.spot else int(m.prev[k]) == self.prev_u
        if not ok:
            self.stats.gaps += 1
            self.stats.gap_ts_ns.append(int(m.ts[k]))
            self.state = "invalid"
            self.buffer.append(k)
            return
        self.state, self.prev_u = "synced", last
        self._apply(k)

    def _apply(self, k: int) -> None:
        m = self.m
        bids, asks = self.bids, self.asks
        for i in range(m.lo[k], m.hi[k]):
            (bids if m.is_bid[i] else asks).set(float(m.price[i]), float(m.qty[i]))
        self.stats.applied += 1
        row = [float(m.exch_ms[k])]
        if not (bids.top(self.n, row) & asks.top(self.n, row)):
            self.stats.empty_side_rows += 1
            return
        # a replayed buffered diff is only known once its snapshot has arrived
        self.row_ts.append(max(int(m.ts[k]), self.snap_ts))
        self.rows.append(row)

    def run(self, snaps: list[tuple[int, int, np.ndarray, np.ndarray, np.ndarray]]) -> None:
        """Feed snapshots and messages in receive-time order (a snapshot before a tie)."""
        ts = self.m.ts
        last_ts, j = None, 0
        for k in range(len(ts)):
            while j < len(snaps) and snaps[j][0] <= ts[k]:
                last_ts = self._new_segment_if_silent(last_ts, snaps[j][0])
                self.snapshot(*snaps[j])
                j += 1
            last_ts = self._new_segment_if_silent(last_ts, int(ts[k]))
            self.message(k)
        for snap in snaps[j:]:
            last_ts = self._new_segment_if_silent(last_ts, snap[0])
            self.snapshot(*snap)
        self.end_segment()

    def _new_segment_if_silent(self, last_ts: int | None, ts: int) -> int:
        if last_ts is not None and ts - last_ts > SEGMENT_GAP_NS:
            self.end_segment()
        return ts


# --------------------------------------------------------------------------- frames


def _snapshot_list(snapshots: pl.DataFrame) -> list[tuple[int, int, np.ndarray, np.ndarray, np.ndarray]]:
    out = []
    keys = ["local_ts_ns", "last_update_id"]
    for (ts, last_id), g in snapshots.group_by(keys, maintain_order=True):
        out.append((int(ts), int(last_id), (g["side"] == "bid").to_numpy(),  # type: ignore[arg-type]
                    g["price"].to_numpy(), g["qty"].to_numpy()))
    return sorted(out, key=lambda s: s[0])


def _to_frame(rb: _Rebuilder, venue: str, symbol: str) -> pl.DataFrame:
    n = rb.n
    arr = np.array(rb.rows, dtype=np.float64).reshape(len(rb.rows), 1 + 4 * n)
    exch = arr[:, 0]
    bid, ask = arr[:, 1 : 1 + 2 * n], arr[:, 1 + 2 * n :]
    cols: dict[str, object] = {
        "ts_recv_ns": pl.Series(rb.row_ts, dtype=pl.Int64),
        "ts_exch_ns": pl.Series(exch).fill_nan(None).cast(pl.Int64) * 1_000_000,
        "venue": pl.repeat(venue, len(rb.rows), eager=True, dtype=pl.String),
        "symbol": pl.repeat(symbol, len(rb.rows), eager=True, dtype=pl.String),
    }
    for lvl in range(n):
        for side, block in (("bid", bid), ("ask", ask)):
            px, qty = schema.level_columns(side, lvl)
            cols[px], cols[qty] = block[:, 2 * lvl], block[:, 2 * lvl + 1]
    return pl.DataFrame(cols).select(schema.quote_column_order(n))


def rebuild_from_frames(
    snapshots: pl.DataFrame,
    updates: pl.DataFrame,
    *,
    market: str,
    symbol: str,
    n_levels: int = 5,
    venue: str | None = None,
) -> DepthRebuild:
    """Rebuild one instrument's book from in-memory snapshot and diff frames.

    Both frames use the columns of the shared ``depth_snapshots``/``depth_updates`` Parquet
    files (long format, one row per level), already restricted to one market and symbol.
    See :func:`rebuild_depth` for the rules and the output.
    """
    _check_market(market, n_levels)
    msgs = _Messages.of(updates)
    rb = _Rebuilder(msgs, spot=market == "spot", n_levels=n_levels)
    rb.run(_snapshot_list(snapshots))
    frame = _to_frame(rb, venue or f"binance_{market}", symbol)
    if frame.height:
        rb.stats.crossed_rows = int((frame["bid_px"] >= frame["ask_px"]).sum())
    return DepthRebuild(frame, rb.stats)


# --------------------------------------------------------------------------- files


def _check_market(market: str, n_levels: int) -> None:
    if market not in _MARKETS:
        raise DataError(
            f"binance depth rebuild: market={market!r} is unknown; use one of {_MARKETS}"
        )
    if n_levels < 1:
        raise DataError(f"binance depth rebuild: n_levels={n_levels!r}; pass 1 or more")


def _read(root: Path, name: str, market: str, symbol: str, session: str | None) -> pl.DataFrame:
    path = root / f"{name}.parquet"
    if not path.is_file():
        raise DataError(
            f"binance depth rebuild: path={str(path)!r} does not exist; pass root= the "
            "hftbacktest-binance/parquet folder"
        )
    from arbkit.data.importers.common import check_parquet

    lf = pl.scan_parquet(check_parquet(path)).filter((pl.col("market") == market)
                                                     & (pl.col("symbol") == symbol))
    if session is not None:
        if session not in SESSIONS:
            raise DataError(
                f"binance depth rebuild: session={session!r} is unknown; "
                f"use one of {sorted(SESSIONS)} or None for all"
            )
        lo, hi = SESSIONS[session]
        lf = lf.filter(pl.col("local_ts_ns").is_between(lo, hi, closed="left"))
    return lf.collect()


def rebuild_depth(
    market: str,
    symbol: str,
    *,
    n_levels: int = 5,
    root: Path | None = None,
    venue: str | None = None,
    session: str | None = None,
) -> DepthRebuild:
    """Rebuild a Binance L2 book from the shared snapshot + diff captures.

    One row per applied diff message, after all its level rows are applied, holding the
    top ``n_levels`` of each side (NaN where the book has fewer levels). Diffs received
    before their session's snapshot are buffered and replayed when it arrives; their
    ``ts_recv_ns`` is then the snapshot's receive time (the book was not knowable earlier).
    Otherwise ``ts_recv_ns`` is the diff's local receive time and ``ts_exch_ns`` its event
    time ``E`` x 1e6. The 2024 captures' clock runs ~1.3 s behind the exchange; nothing is
    corrected here (see :func:`arbkit.data.importers.hftbacktest.import_bbo`).

    Parameters
    ----------
    market : {"spot", "usdm", "coinm"}
    symbol : str
        Exchange symbol, e.g. ``"BTCUSDT"`` or ``"BTCUSD_PERP"``.
    n_levels : int
        Book levels per side in the output (1 = best bid/ask only).
    root : Path, optional
        Folder holding ``depth_snapshots.parquet`` and ``depth_updates.parquet`` (default:
        ``../shared/data/real/hftbacktest-binance/parquet`` beside the repository).
    venue : str, optional
        Venue name, default ``binance_<market>`` as in :func:`import_bbo`.
    session : {"A", "B", "C"}, optional
        One capture session (see ``SESSIONS``); None rebuilds every session.

    Returns
    -------
    DepthRebuild
        ``frame`` (canonical quotes with depth columns) and ``stats`` (:class:`DepthStats`).

    Raises
    ------
    DataError
        Unknown market/session, missing file, no diffs, or no snapshot to start from
        (spot session A has none: it cannot be rebuilt).

    Examples
    --------
    >>> rb = rebuild_depth("usdm", "BTCUSDT", session="C")  # doctest: +SKIP
    >>> rb.stats.gaps, rb.frame.columns[:6]  # doctest: +SKIP
    (0, ['ts_recv_ns', 'ts_exch_ns', 'venue', 'symbol', 'bid_px', 'bid_qty'])
    """
    _check_market(market, n_levels)
    root = Path(root) if root is not None else DEFAULT_ROOT
    snaps = _read(root, "depth_snapshots", market, symbol, session)
    updates = _read(root, "depth_updates", market, symbol, session)
    where = f"market={market!r} symbol={symbol!r} session={session!r}"
    if updates.height == 0:
        raise DataError(
            f"binance depth rebuild: {where}: no depth diffs; see the data README for which "
            "markets and symbols each session holds"
        )
    if snaps.height == 0:
        raise DataError(
            f"binance depth rebuild: {where}: no REST depth snapshot, so the book cannot be "
            "rebuilt from diffs alone (spot session A has none); use the hftbacktest-bbo import for best bid/ask only"
        )
    out = rebuild_from_frames(snaps, updates, market=market, symbol=symbol,
                              n_levels=n_levels, venue=venue)
    if out.frame.height == 0:
        raise DataError(
            f"binance depth rebuild: {where}: no diff could be applied ({out.stats}); "
            "the snapshot does not bridge the diff stream"
        )
    return out


def read_bbo(market: str, symbol: str, *, root: Path | None = None,
             session: str | None = None) -> pl.DataFrame:
    """Raw bookTicker rows (``bbo.parquet``) of one market and symbol, for :func:`match_rate`."""
    _check_market(market, 1)
    return _read(Path(root) if root is not None else DEFAULT_ROOT, "bbo", market, symbol, session)


def match_rate(rebuilt: DepthRebuild | pl.DataFrame, bbo: pl.DataFrame) -> float:
    """Fraction of rebuilt rows whose best bid and ask equal the latest bookTicker.

    Each rebuilt row is compared with the last ``bbo`` row received at or before its
    ``ts_recv_ns``; rows with no earlier bookTicker are left out of the fraction.

    Parameters
    ----------
    rebuilt : DepthRebuild or polars.DataFrame
        Output of :func:`rebuild_depth` (canonical quotes).
    bbo : polars.DataFrame
        bookTicker rows of the same market/symbol, raw (``local_ts_ns``, see
        :func:`read_bbo`) or canonical quotes (``ts_recv_ns``).

    Returns
    -------
    float
        Matching fraction in [0, 1] (NaN if nothing was comparable).
    """
    frame = rebuilt.frame if isinstance(rebuilt, DepthRebuild) else rebuilt
    ts = "local_ts_ns" if "local_ts_ns" in bbo.columns else "ts_recv_ns"
    ref = bbo.select(
        pl.col(ts).alias("ts_recv_ns"), pl.col("bid_px").alias("_bbo_bid"),
        pl.col("ask_px").alias("_bbo_ask"),
    ).sort("ts_recv_ns", maintain_order=True)
    left = frame.select("ts_recv_ns", "bid_px", "ask_px").sort("ts_recv_ns", maintain_order=True)
    joined = left.join_asof(ref, on="ts_recv_ns", strategy="backward").drop_nulls("_bbo_bid")
    if joined.height == 0:
        return float("nan")
    same = (joined["bid_px"] == joined["_bbo_bid"]) & (joined["ask_px"] == joined["_bbo_ask"])
    return float(same.mean())  # type: ignore[arg-type]
