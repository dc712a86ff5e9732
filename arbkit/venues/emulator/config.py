"""What the emulator serves: one :class:`MarketFeed` per Binance symbol, in an
:class:`EmulatorConfig` with the replay speed, start time and faults.

A feed's data comes from the arbkit catalog (a ``(venue, symbol)`` pair or a
:class:`~arbkit.data.catalog.Selection`) or from a polars frame in the catalog's canonical
schema (:mod:`arbkit.data.schema`, :mod:`arbkit.data.tables`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
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
FEE_ASSETS = ("quote", "received")
# what a test's ccxt client signs with unless it configures its own pair (made up, loopback only)
DEFAULT_API_KEY = "arbkit-emulator-key"
DEFAULT_API_SECRET = "arbkit-emulator-secret"


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


def _amount(asset: str, value: object) -> Decimal:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, TypeError, ValueError):
        amount = Decimal("NaN")
    if not amount.is_finite() or amount < 0:
        raise ConfigError(f"AccountConfig: balances[{asset!r}]={value!r} must be a number >= 0 "
                          "(a decimal string such as '1000.5' keeps it exact)")
    return amount


@dataclass(frozen=True, kw_only=True, eq=False)
class AccountConfig:
    """The one trading account of an emulated venue (the private API, ``docs/emulator.md``).

    Parameters
    ----------
    balances
        Starting free balance per asset, e.g. ``{"USDT": "10000", "BTC": "0.5"}``; assets of
        the served markets not named start at 0.
    api_key, api_secret
        The key a signed request must carry (``X-MBX-APIKEY``) and the HMAC-SHA256 secret
        its ``signature`` is checked with. Made-up strings: the emulator is loopback only.
    taker_fee_rate
        Commission of a fill taking liquidity, as a decimal string (``"0.001"`` = 10 bps).
    fee_asset
        ``"quote"`` (default: every fill pays its fee in the quote asset) or ``"received"``
        (Binance without BNB: a buy pays in the base asset it receives, a sell in quote).
    order_latency_ms
        Data time from an order's arrival to its matching: an order is matched against the
        replayed book at the replay clock's now + this latency (while the clock runs, the
        answer waits until the replay gets there).
    listen_key_ttl_s
        Wall seconds a listenKey lives without a keepalive (``PUT /api/v3/userDataStream``).

    Examples
    --------
    >>> AccountConfig(balances={"USDT": "1000"}).balances["USDT"]
    Decimal('1000')
    """

    balances: Mapping[str, str | int | float | Decimal] = field(default_factory=dict)
    api_key: str = DEFAULT_API_KEY
    api_secret: str = DEFAULT_API_SECRET
    taker_fee_rate: str = "0.001"
    fee_asset: str = "quote"
    order_latency_ms: float = 0.0
    listen_key_ttl_s: float = 3600.0

    def __post_init__(self) -> None:
        if not isinstance(self.balances, Mapping):
            raise ConfigError(f"AccountConfig: balances={self.balances!r} must map asset to "
                              "amount, e.g. {'USDT': '10000'}")
        for asset in self.balances:
            if not isinstance(asset, str) or not _SYMBOL_RE.match(asset):
                raise ConfigError(f"AccountConfig: balance asset {asset!r} must be upper-case "
                                  "letters and digits as Binance writes it, e.g. 'USDT'")
        object.__setattr__(self, "balances",
                           {a: _amount(a, v) for a, v in self.balances.items()})
        for name in ("api_key", "api_secret"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ConfigError(f"AccountConfig: {name} must be a non-empty string")
        try:
            fee = Decimal(self.taker_fee_rate)
        except (InvalidOperation, TypeError):
            fee = Decimal("NaN")
        if not fee.is_finite() or not 0 <= fee < 1:
            raise ConfigError(f"AccountConfig: taker_fee_rate={self.taker_fee_rate!r} must be "
                              "a decimal string in [0, 1), e.g. '0.001' for 10 bps")
        if self.fee_asset not in FEE_ASSETS:
            raise ConfigError(f"AccountConfig: fee_asset={self.fee_asset!r}; use one of "
                              f"{', '.join(FEE_ASSETS)}")
        for name in ("order_latency_ms", "listen_key_ttl_s"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ConfigError(f"AccountConfig: {name}={value!r} must be a number >= 0")

    def __repr__(self) -> str:  # the secret stays out of logs and tracebacks
        return (f"AccountConfig(balances={dict(self.balances)!r}, api_key=<set>, "
                f"api_secret=<set>, taker_fee_rate={self.taker_fee_rate!r}, "
                f"fee_asset={self.fee_asset!r}, order_latency_ms={self.order_latency_ms!r})")


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
    account
        The trading account behind the private API (balances, keys, fee, order latency).

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
    account: AccountConfig = field(default_factory=AccountConfig)

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
        if not isinstance(self.account, AccountConfig):
            raise ConfigError(f"EmulatorConfig: account={self.account!r} must be an "
                              "AccountConfig")
