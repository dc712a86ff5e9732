"""What the request handlers share: the markets, the replay clock and the fault state."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import partial

from aiohttp import web

from arbkit.venues.emulator.clock import ReplayClock
from arbkit.venues.emulator.faults import FaultState
from arbkit.venues.emulator.feed import Market

# Binance sends compact JSON; so does the emulator (REST bodies and websocket frames).
dumps = partial(json.dumps, separators=(",", ":"))


@dataclass
class EmulatorState:
    """The live emulator as the handlers see it."""

    markets: dict[str, Market]
    clock: ReplayClock
    faults: FaultState

    @property
    def futures(self) -> dict[str, Market]:
        """Markets also listed as USDⓈ-M perpetuals (those with funding data)."""
        return {s: m for s, m in self.markets.items() if m.funding is not None}


STATE = web.AppKey("arbkit_emulator_state", EmulatorState)
