"""Shared by the private-API tests: an emulated Binance account with a frozen book, and the
real ccxt clients (async REST, ccxt.pro) signed with the emulator's test key.

The replay clock is paused on row 0 of :data:`QUOTES`, so the book every order meets is
known: asks 30000.5 x 1.0, 30001.5 x 1.75, 30002.5 x 2.5; bids 29999.5 x 1.0, 29998.5 x 2.25,
29997.5 x 3.5 (what an order takes stays taken while the replay stays on the row).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import ccxt.pro

from arbkit.venues.emulator import (
    AccountConfig,
    EmulatorConfig,
    EmulatorThread,
    FaultConfig,
    MarketFeed,
    point_ccxt_at,
)
from tests.integration.test_emulator import QUOTES

T = TypeVar("T")
KEY = "arbkit-test-key-7f3a"
SECRET = "arbkit-test-secret-c91e5d"  # made up; the secret-leak tests grep for it
BALANCES = {"USDT": "100000", "BTC": "2"}
ASK0, BID0 = 30000.5, 29999.5


def account_config(**kw: Any) -> EmulatorConfig:
    """One BTCUSDT market, clock paused at the first book row, an account with BALANCES."""
    faults = kw.pop("faults", FaultConfig())
    account = AccountConfig(balances=kw.pop("balances", BALANCES), api_key=KEY,
                            api_secret=SECRET, **kw)
    return EmulatorConfig(markets=[MarketFeed(symbol="BTCUSDT", base="BTC", quote="USDT",
                                              quotes=QUOTES)],
                          start_paused=True, account=account, faults=faults)


def pro_client(emu: EmulatorThread, *, timeout_ms: int = 3000, secret: str = SECRET,
               **options: Any) -> Any:
    """A ccxt.pro binance (async REST + websockets) signed with the test key."""
    ex = ccxt.pro.binance({"apiKey": KEY, "secret": secret, "timeout": timeout_ms,
                           "enableRateLimit": False, "options": options})
    return point_ccxt_at(ex, emu.http_url, emu.ws_url, market_types=["spot"])


def run_with(emu: EmulatorThread, body: Callable[[Any], Awaitable[T]], *,
             timeout_s: float = 15.0, **client: Any) -> T:
    """``body(exchange)`` with a loaded ccxt.pro client; the client is always closed."""

    async def main() -> T:
        ex = pro_client(emu, **client)
        try:
            await ex.load_markets()
            return await asyncio.wait_for(body(ex), timeout_s)
        finally:
            await ex.close()

    return asyncio.run(main())
