"""Importer for the hftbacktest Binance captures (``nkaz001/hftbacktest`` example data).

The shared copy lives in ``../shared/data/real/hftbacktest-binance`` beside the repository
(see its README): one ``bbo.parquet`` with bookTicker updates of Binance spot, USD-M and
COIN-M for BTC and ETH over three short capture sessions.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from arbkit.data import schema
from arbkit.errors import DataError

# <repo>/../shared/... so the default works from any working directory.
DEFAULT_BBO = (
    Path(__file__).resolve().parents[3].parent
    / "shared"
    / "data"
    / "real"
    / "hftbacktest-binance"
    / "parquet"
    / "bbo.parquet"
)

_MARKETS = ("spot", "usdm", "coinm")


def _utc_ns(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp()) * 1_000_000_000


# Capture sessions of the shared data (its README, "Coverage"), as generous [start, end)
# windows in receive time; each session is a few minutes around midnight UTC.
SESSIONS: dict[str, tuple[int, int]] = {
    "A": (_utc_ns(2023, 4, 4, 12), _utc_ns(2023, 4, 5, 12)),  # 2023-04-05, spot + usdm
    "B": (_utc_ns(2024, 7, 18, 12), _utc_ns(2024, 7, 19, 12)),  # 2024-07-19, usdm only
    "C": (_utc_ns(2024, 8, 8, 12), _utc_ns(2024, 8, 9, 12)),  # 2024-08-08, spot+usdm+coinm
}


def _overlap(lf: pl.LazyFrame, markets: Sequence[str], name: str) -> tuple[int, int] | None:
    """[start, end] receive-time window in which every market of one session quotes."""
    lo, hi = SESSIONS[name]
    spans = (
        lf.filter(pl.col("local_ts_ns").is_between(lo, hi, closed="left"))
        .group_by("market")
        .agg(pl.col("local_ts_ns").min().alias("first"), pl.col("local_ts_ns").max().alias("last"))
        .collect()
    )
    if set(spans["market"]) != set(markets):
        return None
    start, end = int(spans["first"].max()), int(spans["last"].min())  # type: ignore[arg-type]
    return (start, end) if start <= end else None


def _to_quotes(lf: pl.LazyFrame, symbol: str) -> pl.LazyFrame:
    exch_ms = pl.coalesce("txn_ts_ms", "event_ts_ms")
    return lf.select(
        pl.col("local_ts_ns").alias("ts_recv_ns"),
        # spot bookTicker carries no exchange time: null there, one timeline.
        pl.when(pl.col("market") == "spot")
        .then(None)
        .otherwise(exch_ms * 1_000_000)
        .cast(pl.Int64)
        .alias("ts_exch_ns"),
        ("binance_" + pl.col("market")).alias("venue"),
        pl.lit(symbol).alias("symbol"),
        *(pl.col(c).cast(t) for c, t in schema.QUOTE_PRICE_COLUMNS.items()),
    )


def _check_args(markets: Sequence[str], session: str | None) -> None:
    bad = [m for m in markets if m not in _MARKETS]
    if bad or not markets or len(set(markets)) != len(markets):
        raise DataError(
            f"hftbacktest import: --markets {','.join(markets)!r} (markets={tuple(markets)!r}): "
            f"each must be one of {', '.join(_MARKETS)}, listed once; pass e.g. --markets "
            "spot,usdm"
        )
    if session is not None and session not in SESSIONS:
        raise DataError(
            f"hftbacktest import: session={session!r} is unknown; "
            f"use one of {sorted(SESSIONS)} or None for all"
        )


def import_bbo(
    path: str | Path = DEFAULT_BBO,
    *,
    markets: Sequence[str] = ("spot", "usdm"),
    symbol: str = "BTCUSDT",
    session: str | None = None,
) -> pl.DataFrame:
    """Best bid/ask of several Binance markets, restricted to where all of them quote.

    Each market becomes its own venue, ``binance_<market>`` (spot and the USD-M perpetual
    are separate books and wallets). ``ts_recv_ns`` is the collector's local receive time;
    ``ts_exch_ns`` is the futures transaction time ``T`` (else event time ``E``) × 1e6, and
    null for spot, whose bookTicker has no exchange time.

    Clock quirk, kept raw on purpose: in the 2024 captures (sessions B and C) the
    collector's clock runs about 1.27-1.52 s *behind* the exchange, so ``ts_recv_ns`` is
    earlier than ``ts_exch_ns`` there. Nothing is corrected here; the clock-offset
    estimation step must run before the two timelines are compared.

    Parameters
    ----------
    path : str or Path
        The shared ``bbo.parquet`` (default: ``../shared/data/real/hftbacktest-binance/
        parquet/bbo.parquet`` beside the repository).
    markets : sequence of {"spot", "usdm", "coinm"}
        Markets to keep; only the window where every one of them is quoting is returned.
    symbol : str
        Exchange symbol, e.g. ``"BTCUSDT"`` (COIN-M uses ``"BTCUSD_PERP"``, so mixing
        coinm with the others needs one call per symbol).
    session : {"A", "B", "C"} or None
        One capture session (A 2023-04-05, B 2024-07-19, C 2024-08-08) or None for every
        session where all markets overlap.

    Returns
    -------
    polars.DataFrame
        Canonical quotes (``ts_recv_ns, ts_exch_ns, venue, symbol, bid_px, bid_qty,
        ask_px, ask_qty``) sorted by (``ts_recv_ns``, ``venue``).

    Raises
    ------
    DataError
        Unknown market or session, missing file, or no overlapping window.

    Examples
    --------
    >>> df = import_bbo(session="A")  # doctest: +SKIP
    >>> df["venue"].unique().sort().to_list()  # doctest: +SKIP
    ['binance_spot', 'binance_usdm']
    """
    _check_args(markets, session)
    if not Path(path).is_file():
        raise DataError(
            f"hftbacktest import: path={str(path)!r} does not exist; point it at "
            "hftbacktest-binance/parquet/bbo.parquet"
        )
    from arbkit.data.importers.common import check_parquet, need_columns

    scan = pl.scan_parquet(check_parquet(Path(path)))
    need_columns(scan, ["market", "symbol", "local_ts_ns", "txn_ts_ms", "event_ts_ms",
                        *schema.QUOTE_PRICE_COLUMNS], Path(path),
                 "hftbacktest-binance/parquet/bbo.parquet file")
    lf = scan.filter(
        pl.col("market").is_in(list(markets)) & (pl.col("symbol") == symbol)
    )
    names = [session] if session else sorted(SESSIONS)
    windows = [w for w in (_overlap(lf, markets, s) for s in names) if w]
    if not windows:
        raise DataError(
            f"{path}: markets={tuple(markets)!r} symbol={symbol!r} session={session!r}: no "
            "window where all markets quote; see the data README for which markets each "
            "session holds"
        )
    inside = pl.any_horizontal(pl.col("local_ts_ns").is_between(a, b) for a, b in windows)
    return (
        _to_quotes(lf.filter(inside), symbol)
        .sort(["ts_recv_ns", "venue"], maintain_order=True)
        .collect()
    )
