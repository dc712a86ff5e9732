"""What the emulator serves: one :class:`MarketFeed` per Binance symbol, in an
:class:`EmulatorConfig` with the replay speed, start time and faults.

A feed's data comes from the arbkit catalog (a ``(venue, symbol)`` pair or a
:class:`~arbkit.data.catalog.Selection`) or from a polars frame in the catalog's canonical
schema (:mod:`arbkit.data.schema`, :mod:`arbkit.data.tables`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TypeAlias

import polars as pl

from arbkit.data.catalog import Selection
from arbkit.errors import ConfigError
from arbkit.venues.emulator.faults import FaultConfig

# A stream of the catalog as (venue, symbol), a full Selection, or the rows themselves.
Source: TypeAlias = pl.DataFrame | tuple[str, str] | Selection

_SYMBOL_RE = re.compile(r"^[A-Z0-9]{2,20}$")


def _positive_decimal(name: str, value: str, symbol: str) -> None:
    try:
        ok = Decimal(value) > 0
    except (InvalidOperation, TypeError):
        ok = False
    if not ok:
        raise ConfigError(f"MarketFeed {symbol}: {name}={value!r} is not a positive decimal "
                          "string; write it as Binance does, e.g. '0.01'")


def _check_source(name: str, source: object, symbol: str) -> None:
    if source is None or isinstance(source, pl.DataFrame | Selection):
        return
    if (isinstance(source, tuple) and len(source) == 2
            and all(isinstance(x, str) and x for x in source)):
        return
    raise ConfigError(f"MarketFeed {symbol}: {name}={source!r} is not a data source; give a "
                      "polars frame, a (venue, symbol) catalog pair or a catalog Selection")


@dataclass(frozen=True, kw_only=True, eq=False)
class MarketFeed:
    """One Binance spot symbol and the recorded streams that back it.

    Parameters
    ----------
    symbol, base, quote
        Binance market id and assets (``"BTCUSDT"``, ``"BTC"``, ``"USDT"``).
    quotes
        Book rows: drive ``/api/v3/depth``, ``bookTicker`` (REST and websocket) and the
        ``@depth`` diff stream. Depth columns (``bid_px_1`` ...) give more levels.
    bars
        OHLCV bars for ``/api/v3/klines`` (coarser intervals are aggregated from them).
    trades
        Trade prints for ``/api/v3/trades``, ``/api/v3/aggTrades`` and ``@trade``.
    funding
        Realised funding; if given, the symbol is also listed as a USDⓈ-M perpetual on
        ``/fapi/v1/exchangeInfo`` and served on ``/fapi/v1/fundingRate``.
    tick_size, step_size, min_notional
        Exchange filters as decimal strings (PRICE_FILTER, LOT_SIZE, NOTIONAL).

    Examples
    --------
    >>> feed = MarketFeed(symbol="BTCUSDT", base="BTC", quote="USDT",
    ...                   quotes=("binance_spot", "BTCUSDT"))
    >>> feed.symbol
    'BTCUSDT'
    """

    symbol: str
    base: str
    quote: str
    quotes: Source | None = None
    bars: Source | None = None
    trades: Source | None = None
    funding: Source | None = None
    tick_size: str = "0.01"
    step_size: str = "0.00001"
    min_notional: str = "5"

    def __post_init__(self) -> None:
        for name in ("symbol", "base", "quote"):
            value = getattr(self, name)
            if not isinstance(value, str) or not _SYMBOL_RE.match(value):
                raise ConfigError(f"MarketFeed: {name}={value!r} must be upper-case letters "
                                  "and digits as Binance writes it, e.g. 'BTCUSDT'")
        if self.symbol != self.base + self.quote:
            raise ConfigError(f"MarketFeed: symbol {self.symbol!r} is not base+quote "
                              f"({self.base!r}+{self.quote!r}); Binance ids are the two joined")
        for name in ("tick_size", "step_size", "min_notional"):
            _positive_decimal(name, getattr(self, name), self.symbol)
        for name in ("quotes", "bars", "trades", "funding"):
            _check_source(name, getattr(self, name), self.symbol)
        if all(getattr(self, n) is None for n in ("quotes", "bars", "trades", "funding")):
            raise ConfigError(f"MarketFeed {self.symbol}: no data; give at least one of "
                              "quotes, bars, trades or funding")


@dataclass(frozen=True, kw_only=True, eq=False)
class EmulatorConfig:
    """The whole emulator: markets, replay clock, catalog and faults.

    Parameters
    ----------
    markets
        The symbols served (each Binance id once).
    speed
        Data seconds replayed per wall-clock second (1.0 real time, 50.0 fifty times faster).
    start_ns
        Data time at which the replay starts; default the earliest row of any feed.
    start_paused
        Start with the clock stopped (tests move it with ``clock.seek``/``clock.resume``).
    catalog_root
        Root of the Parquet catalog for ``(venue, symbol)`` sources (default: arbkit's).
    port
        TCP port on 127.0.0.1; 0 picks a free one.
    faults
        Fault injection at start (changeable at run time through the server's ``faults``).

    Examples
    --------
    >>> import polars as pl
    >>> cfg = EmulatorConfig(markets=[MarketFeed(symbol="ETHUSDT", base="ETH", quote="USDT",
    ...                                          trades=("binance_spot", "ETHUSDT"))],
    ...                      speed=20.0)
    >>> cfg.speed
    20.0
    """

    markets: Sequence[MarketFeed]
    speed: float = 1.0
    start_ns: int | None = None
    start_paused: bool = False
    catalog_root: str | Path | None = None
    port: int = 0
    faults: FaultConfig = field(default_factory=FaultConfig)

    def __post_init__(self) -> None:
        markets = tuple(self.markets)
        object.__setattr__(self, "markets", markets)
        if not markets or not all(isinstance(m, MarketFeed) for m in markets):
            raise ConfigError(f"EmulatorConfig: markets={self.markets!r} must be a non-empty "
                              "list of MarketFeed")
        seen: set[str] = set()
        for m in markets:
            if m.symbol in seen:
                raise ConfigError(f"EmulatorConfig: symbol {m.symbol} is configured twice; "
                                  "give each Binance symbol one MarketFeed")
            seen.add(m.symbol)
        if not (isinstance(self.speed, int | float) and math.isfinite(self.speed)
                and self.speed > 0):
            raise ConfigError(f"EmulatorConfig: speed={self.speed!r} must be a finite number "
                              "> 0 (1.0 = real time)")
        if not isinstance(self.port, int) or not 0 <= self.port <= 65535:
            raise ConfigError(f"EmulatorConfig: port={self.port!r} must be 0..65535 "
                              "(0 = any free port)")
        if not isinstance(self.faults, FaultConfig):
            raise ConfigError(f"EmulatorConfig: faults={self.faults!r} must be a FaultConfig")
