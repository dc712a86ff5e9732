"""Every import format by name, for ``arbkit data import FORMAT PATH...``.

Each entry turns its inputs into ``[(kind, frame), ...]`` in canonical columns; the catalog
validates and stores them (:meth:`arbkit.data.catalog.Catalog.add`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from arbkit.data.importers import bars, binance_depth, binance_raw, fx, hftbacktest, tardis
from arbkit.data.importers.csv import CsvMapping, read_csv_mapped
from arbkit.errors import DataError


@dataclass(frozen=True)
class ImportOptions:
    """Options of ``arbkit data import`` (each format reads the ones it needs)."""

    venue: str | None = None
    symbol: str | None = None
    interval: str | None = None
    levels: int = 5
    markets: str = "spot,usdm"
    session: str | None = None
    base: str | None = None
    quote: str | None = None
    mapping: Path | None = None


Frames = list[tuple[str, pl.DataFrame]]


def _one(paths: list[Path], fmt: str) -> Path | None:
    if len(paths) > 1:
        raise DataError(f"import {fmt}: takes one file, got {len(paths)}")
    return paths[0] if paths else None


def _need(value: str | None, name: str, fmt: str) -> str:
    if not value:
        raise DataError(f"import {fmt}: pass --{name}")
    return value


def _hft_bbo(paths: list[Path], o: ImportOptions) -> Frames:
    p = _one(paths, "hftbacktest-bbo") or hftbacktest.DEFAULT_BBO
    return [("quotes", hftbacktest.import_bbo(p, markets=tuple(o.markets.split(",")),
                                              symbol=o.symbol or "BTCUSDT", session=o.session))]


def _hft_depth(paths: list[Path], o: ImportOptions) -> Frames:
    root = _one(paths, "hftbacktest-depth")
    market = o.markets.split(",")[0]
    rb = binance_depth.rebuild_depth(market, o.symbol or "BTCUSDT", n_levels=o.levels,
                                     root=root, venue=o.venue, session=o.session)
    return [("quotes", rb.frame)]


def _binance_raw(paths: list[Path], o: ImportOptions) -> Frames:
    cap = binance_raw.import_raw(paths, n_levels=o.levels, venue=o.venue)
    out: Frames = [("trades", cap.trades)] if cap.trades.height else []
    # the rebuilt book (with depth) is the quote stream when it exists; else the bookTicker
    out.append(("quotes", cap.depth.frame if cap.depth is not None else cap.quotes))
    return out


def _tardis(kind: str) -> Callable[[list[Path], ImportOptions], Frames]:
    def run(paths: list[Path], o: ImportOptions) -> Frames:
        out: Frames = []
        for p in paths:
            if kind == "quotes":
                out.append(("quotes", tardis.read_quotes_csv(p)[0]))
            elif kind == "book_snapshot":
                out.append(("quotes", tardis.read_book_snapshot_csv(p, o.levels)))
            elif kind == "incremental_l2":
                out.append(("quotes", tardis.read_incremental_l2_csv(p, o.levels)))
            else:
                out.append(("trades", tardis.read_trades_csv(p)))
        return out
    return run


def _ohlcv_csv(paths: list[Path], o: ImportOptions) -> Frames:
    return [("bars", bars.read_ohlcv_csv(p, venue=_need(o.venue, "venue", "ohlcv-csv"),
                                         symbol=_need(o.symbol, "symbol", "ohlcv-csv"),
                                         interval=_need(o.interval, "interval", "ohlcv-csv")))
            for p in paths]


def _csv(paths: list[Path], o: ImportOptions) -> Frames:
    if o.mapping is None:
        raise DataError("import csv: pass --map mapping.toml (see docs/data.md, \"Generic CSV\")")
    m = CsvMapping.load(o.mapping)
    out = []
    for p in paths:
        try:
            out.append((m.kind, read_csv_mapped(p, m)))
        except DataError as exc:
            raise DataError(f"{exc} [mapping {o.mapping}]") from None
    return out


FORMATS: dict[str, tuple[str, Callable[[list[Path], ImportOptions], Frames]]] = {
    "hftbacktest-bbo": ("hftbacktest bbo.parquet -> quotes (--markets, --symbol, --session)",
                        _hft_bbo),
    "hftbacktest-depth": ("hftbacktest depth_*.parquet folder -> quotes with --levels of depth "
                          "(first of --markets, --symbol, --session)", _hft_depth),
    "binance-raw": ("raw Binance websocket capture files of one market/symbol -> quotes "
                    "(rebuilt L2) and trades", _binance_raw),
    "tardis-quotes": ("Tardis quotes CSV -> quotes", _tardis("quotes")),
    "tardis-book-snapshot": ("Tardis book_snapshot_N CSV -> quotes with depth",
                             _tardis("book_snapshot")),
    "tardis-incremental-l2": ("Tardis incremental_book_L2 CSV -> quotes with --levels",
                              _tardis("incremental_l2")),
    "tardis-trades": ("Tardis trades CSV -> trades", _tardis("trades")),
    "ohlcv-csv": ("ccxt-style OHLCV CSV -> bars (--venue, --symbol, --interval)", _ohlcv_csv),
    "binanceus-kraken": ("shared Binance.US/Kraken ohlcv.parquet -> bars (--interval)",
                         lambda p, o: [("bars", bars.read_binanceus_kraken(
                             _one(p, "binanceus-kraken"), interval=o.interval or "1m"))]),
    "lean-quote-bars": ("Lean 1m quote bars Parquet -> quote_bars",
                        lambda p, o: [("quote_bars", bars.read_lean_quote_bars(
                            _one(p, "lean-quote-bars")))]),
    "lean-trade-bars": ("Lean 1m trade bars Parquet -> bars",
                        lambda p, o: [("bars", bars.read_lean_trade_bars(
                            _one(p, "lean-trade-bars")))]),
    "fred-fx": ("FRED daily CSV -> fx (--base, --quote; default USD/KRW)",
                lambda p, o: [("fx", fx.read_fred_csv(_one(p, "fred-fx"), base=o.base or "USD",
                                                      quote=o.quote or "KRW"))]),
    "upbit-fx": ("Upbit KRW-USDT daily closes -> fx USDT/KRW",
                 lambda p, o: [("fx", fx.read_upbit_krw_usdt(_one(p, "upbit-fx")))]),
    "ecb-fx": ("ECB USD/KRW from the krw-fx Upbit file -> fx",
               lambda p, o: [("fx", fx.read_ecb_usd_krw(_one(p, "ecb-fx")))]),
    "csv": ("any kind from a CSV with a --map mapping.toml", _csv),
}


def run_import(fmt: str, paths: list[Path], opts: ImportOptions) -> Frames:
    """Frames of one import, before validation."""
    if fmt not in FORMATS:
        raise DataError(f"import format {fmt!r} is unknown; known: {', '.join(FORMATS)}")
    try:
        return FORMATS[fmt][1](paths, opts)
    except (pl.exceptions.PolarsError, pl.exceptions.PanicException, ValueError) as exc:
        # a file the format's reader did not foresee: one line, never a query-plan dump
        reason = " ".join(str(exc).split())
        reason = reason.split(" Resolved plan:")[0].split(" This error occurred")[0][:160]
        where = " ".join(map(str, paths)) or "its default file"
        raise DataError(f"import {fmt}: cannot read {where} ({type(exc).__name__}: {reason}); "
                        f"is it a {FORMATS[fmt][0].split(' -> ')[0]} file? "
                        "(`arbkit data formats`)") from None
