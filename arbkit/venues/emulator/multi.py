"""Several venues on one replay timeline: one emulator per venue of a config.

The emulator speaks one venue (Binance's protocol) per server, so a paper session of a
cross-venue route (``binance_spot:BTCUSDT`` vs ``binance_usdm:BTCUSDT``, or 20-50 symbols on
two venues) runs one server per config venue, each serving that venue's instruments from
the rows whose ``venue`` column is that venue. All servers share one :class:`ReplayClock`,
so every venue replays the same data time at the same speed (a cross-venue edge in the data
stays an edge on the wire).

Each instrument is listed under a Binance-style market id built from its config's
``base`` + ``quote`` (``BTC`` + ``USDT`` -> ``BTCUSDT``, ccxt symbol ``BTC/USDT``), whatever
its config symbol (``BTC-USDT``, ``BTCUSDT``); :func:`run_venues` gives the
:class:`~arbkit.venues.feed.StreamSpec` of every instrument, keyed as the config keys it.

>>> with run_venues("data/samples/binance_btcusdt_spot_usdm.parquet",  # doctest: +SKIP
...                 cfg.instruments, speed=20) as venues:
...     venues          # {"binance_spot": "http://127.0.0.1:41234", "binance_usdm": ...}
...     venues.specs    # [StreamSpec("binance_spot:BTCUSDT", "binance", "BTC/USDT", ...), ...]
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl

from arbkit.data.catalog import Catalog, Selection
from arbkit.errors import ConfigError
from arbkit.venues.emulator.clock import ReplayClock
from arbkit.venues.emulator.config import EmulatorConfig, MarketFeed, Source
from arbkit.venues.emulator.faults import FaultConfig
from arbkit.venues.emulator.server import EmulatorThread
from arbkit.venues.feed import StreamSpec

_ID_RE = re.compile(r"^[A-Z0-9]{2,20}$")
Data = pl.DataFrame | Catalog | str | Path


@dataclass(frozen=True)
class EmulatedInstrument:
    """How one config instrument is served: its venue's emulator lists it as ``market_id``
    (ccxt ``ccxt_symbol``); quotes come from the rows ``(venue, symbol)``."""

    key: str
    venue: str
    symbol: str
    market_id: str
    base: str
    quote: str
    tick: str
    lot: str

    @property
    def ccxt_symbol(self) -> str:
        return f"{self.base}/{self.quote}"


class EmulatedVenues(dict):
    """``{venue: emulator base URL}``, plus what a test or a paper session needs.

    Attributes
    ----------
    specs : list of StreamSpec
        One per config instrument (the key is the config's ``venue:symbol``).
    emulators : dict of venue -> EmulatorThread
        Per venue: ``.faults`` to inject faults, ``.stats()``, ``.drop_now()`` ...
    clock : ReplayClock
        The one timeline every venue replays (pause, seek, speed).
    instruments : list of EmulatedInstrument
    """

    specs: list[StreamSpec]
    emulators: dict[str, EmulatorThread]
    clock: ReplayClock
    instruments: list[EmulatedInstrument]


def _decimal(x: float, default: str) -> str:
    if not x or x <= 0:
        return default
    return format(Decimal(repr(float(x))).normalize(), "f")


def plan(instruments: Sequence[Any]) -> dict[str, list[EmulatedInstrument]]:
    """Config instruments grouped by venue, each with its Binance-style market id.

    ``instruments`` are :class:`~arbkit.config.model.InstrumentConfig` (or anything with
    ``venue``, ``symbol``, ``base``, ``quote``, ``tick``, ``lot``), or a whole ``Config``.
    """
    insts = list(getattr(instruments, "instruments", instruments))
    if not insts:
        raise ConfigError("run_venues: no instruments; pass the config's instruments")
    out: dict[str, list[EmulatedInstrument]] = {}
    for inst in insts:
        base, quote = str(inst.base).upper(), str(inst.quote).upper()
        mid = base + quote
        if not (_ID_RE.match(base) and _ID_RE.match(quote) and len(mid) <= 20):
            raise ConfigError(f"run_venues: instrument {inst.venue}:{inst.symbol} has base "
                              f"{inst.base!r} / quote {inst.quote!r}; the emulator needs "
                              "letters and digits (e.g. BTC, USDT) to list it as BASEQUOTE")
        taken = {e.market_id: e for e in out.get(inst.venue, [])}
        if mid in taken:
            raise ConfigError(f"run_venues: {inst.venue}:{inst.symbol} and "
                              f"{taken[mid].key} would both be {mid} on the {inst.venue} "
                              "emulator; one venue lists a base/quote pair once")
        out.setdefault(inst.venue, []).append(EmulatedInstrument(
            key=f"{inst.venue}:{inst.symbol}", venue=inst.venue, symbol=inst.symbol,
            market_id=mid, base=base, quote=quote,
            tick=_decimal(getattr(inst, "tick", 0.0), "0.01"),
            lot=_decimal(getattr(inst, "lot", 0.0), "0.00001")))
    return out


def _resolve(data: Data) -> pl.DataFrame | Catalog:
    if isinstance(data, pl.DataFrame | Catalog):
        return data
    path = Path(data)
    if path.is_dir() and (path / "quotes").is_dir():
        return Catalog(path)
    from arbkit.data.load import read_quotes

    return read_quotes(path)[0]


def _source(data: pl.DataFrame | Catalog, inst: EmulatedInstrument) -> Source:
    if isinstance(data, Catalog):
        if not data.partitions(Selection("quotes", inst.venue, inst.symbol)):
            raise ConfigError(f"run_venues: the catalog {data.root} has no quotes for "
                              f"{inst.key}; `arbkit data ls` lists what it holds")
        return Selection("quotes", inst.venue, inst.symbol)
    rows = data.filter((pl.col("venue") == inst.venue) & (pl.col("symbol") == inst.symbol))
    if rows.height == 0:
        held = ", ".join(f"{v}:{s}" for v, s in
                         data.select("venue", "symbol").unique().sort("venue", "symbol")
                         .head(8).iter_rows())
        raise ConfigError(f"run_venues: no quote rows for {inst.key} in the data (it holds "
                          f"{held}); the config's venue and symbol must match the data's")
    return rows


def _faults(faults: FaultConfig | Mapping[str, FaultConfig] | None, venue: str) -> FaultConfig:
    if faults is None:
        return FaultConfig()
    if isinstance(faults, FaultConfig):
        return faults
    return faults.get(venue) or FaultConfig()


@contextlib.contextmanager
def run_venues(data: Data, cfg_instruments: Sequence[Any], speed: float = 1.0,
               faults: FaultConfig | Mapping[str, FaultConfig] | None = None, *,
               channel: str = "bbo", levels: int = 1, start_ns: int | None = None,
               start_paused: bool = False,
               accounts: Mapping[str, Any] | None = None) -> Iterator[EmulatedVenues]:
    """Serve every config venue from its own emulator (background threads, 127.0.0.1).

    Parameters
    ----------
    data
        Quotes: a frame in the catalog's schema, a :class:`Catalog`, a catalog root folder, or
        a quotes Parquet file/folder. Each instrument replays its ``(venue, symbol)`` rows.
    cfg_instruments
        The config's instruments (or the config).
    speed
        Data seconds per wall second, shared by every venue.
    faults
        One :class:`FaultConfig` for every venue, or ``{venue: FaultConfig}``.
    channel, levels
        What the :class:`StreamSpec` of every instrument asks for (``"bbo"`` or ``"book"``).
    start_ns
        Data time to start at (default: the first row of any venue).
    start_paused
        Leave the shared clock stopped (move it with ``venues.clock``).
    accounts
        ``{venue: AccountConfig}``: the trading account of a venue's private API (balances,
        keys, fee); a venue not named gets the default empty account.

    Yields
    ------
    EmulatedVenues
        ``{venue: url}`` with ``.specs``, ``.emulators``, ``.clock``, ``.instruments``.
    """
    planned = plan(cfg_instruments)
    source = _resolve(data)
    root = source.root if isinstance(source, Catalog) else None
    clock = ReplayClock(start_ns=0 if start_ns is None else int(start_ns), speed=speed,
                        paused=True)
    threads: dict[str, EmulatorThread] = {}
    for venue, insts in planned.items():
        feeds = [MarketFeed(symbol=i.market_id, base=i.base, quote=i.quote,
                            quotes=_source(source, i), tick_size=i.tick, step_size=i.lot)
                 for i in insts]
        extra = {"account": accounts[venue]} if accounts and venue in accounts else {}
        cfg = EmulatorConfig(markets=feeds, speed=speed, start_paused=True, catalog_root=root,
                             faults=_faults(faults, venue), **extra)
        threads[venue] = EmulatorThread(cfg, clock=clock)
    if start_ns is None:
        clock.seek(min(t.server.span_ns[0] for t in threads.values()))
    started: list[EmulatorThread] = []
    try:
        for t in threads.values():
            started.append(t.start())
        venues = EmulatedVenues({v: t.http_url for v, t in threads.items()})
        venues.emulators, venues.clock = threads, clock
        venues.instruments = [i for insts in planned.values() for i in insts]
        venues.specs = [StreamSpec(i.key, "binance", i.ccxt_symbol, url=venues[i.venue],
                                   channel=channel, levels=levels) for i in venues.instruments]
        if not start_paused:
            clock.resume()
        yield venues
    finally:
        for t in reversed(started):
            t.stop()
