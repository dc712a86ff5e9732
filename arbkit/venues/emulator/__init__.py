"""A local Binance spot exchange that replays arbkit catalog data to real ccxt clients.

REST (``/api/v3/...``, ``/fapi/v1/fundingRate``) and websocket streams (``@bookTicker``,
``@depth``, ``@trade``) on 127.0.0.1, in Binance's wire format, driven by a replay clock, with
fault injection (429s, latency, dropped/stalled/garbled websockets) for testing venue code.

>>> from arbkit.venues.emulator import EmulatorConfig, MarketFeed, run_emulator, point_ccxt_at
>>> cfg = EmulatorConfig(markets=[MarketFeed(symbol="BTCUSDT", base="BTC", quote="USDT",
...                                          quotes=("binance_spot", "BTCUSDT"))], speed=20.0)
>>> with run_emulator(cfg) as emu:  # doctest: +SKIP
...     ex = point_ccxt_at(ccxt.binance(), emu.http_url)
...     book = ex.fetch_order_book("BTC/USDT")

The private (trading) API, with one account per server (``EmulatorConfig(account=
AccountConfig(balances=..., api_key=..., api_secret=...))``): signed orders, queries, cancels,
balances, my trades, the user-data stream; ``emu.account`` shows every order the venue booked.
See ``docs/emulator.md``.

Several venues on one timeline (one server per config venue, for paper sessions of a
cross-venue route): :func:`~arbkit.venues.emulator.multi.run_venues`.
"""

from arbkit.venues.emulator.account import Account
from arbkit.venues.emulator.ccxt_urls import point_ccxt_at
from arbkit.venues.emulator.clock import ReplayClock
from arbkit.venues.emulator.config import AccountConfig, EmulatorConfig, MarketFeed, Source
from arbkit.venues.emulator.faults import (
    ORDER_FAULTS,
    EmulatorStats,
    FaultConfig,
    FaultState,
    RequestRecord,
)
from arbkit.venues.emulator.feed import FIRST_UPDATE_ID
from arbkit.venues.emulator.multi import EmulatedVenues, run_venues
from arbkit.venues.emulator.records import Balance, FillRecord, OrderRecord
from arbkit.venues.emulator.server import EmulatorServer, EmulatorThread, run_emulator

__all__ = [
    "FIRST_UPDATE_ID",
    "ORDER_FAULTS",
    "Account",
    "AccountConfig",
    "Balance",
    "EmulatedVenues",
    "EmulatorConfig",
    "EmulatorServer",
    "EmulatorStats",
    "EmulatorThread",
    "FaultConfig",
    "FaultState",
    "FillRecord",
    "MarketFeed",
    "OrderRecord",
    "ReplayClock",
    "RequestRecord",
    "Source",
    "point_ccxt_at",
    "run_emulator",
    "run_venues",
]
