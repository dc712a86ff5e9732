"""The quote source of a session on local emulators: the real ccxt feeds (``venues.feed``)
on the venues ``venues.emulator.multi.run_venues`` serves, until the emulators have replayed
their data (and ``tail_ns`` of data time more). Used by ``arbkit paper/live --emulator``,
``arbkit campaign`` and the soak."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any


class EmulatedSource:
    """``tick``: an async call made every ``every_s`` while the data plays (a soak's fault
    schedule); ``end_ns``: the data time to stop at (default: the last row any venue serves)."""

    def __init__(self, venues: Any, queue: asyncio.Queue, *, end_ns: int | None = None,
                 tail_ns: int = 2_000_000_000, every_s: float = 0.2,
                 tick: Callable[[], Awaitable[None]] | None = None) -> None:
        from arbkit.venues.feed import FeedSet

        self.venues = venues
        self.feed = FeedSet(venues.specs, queue, venues.clock.now_ns)
        if end_ns is None:
            end_ns = max(t.server.span_ns[1] for t in venues.emulators.values())
        self.until = end_ns + tail_ns
        self.every_s, self.tick = every_s, tick

    async def run(self) -> None:
        task = asyncio.create_task(self.feed.run())
        while self.venues.clock.now_ns() < self.until and not task.done():
            if self.tick is not None:
                await self.tick()
            await asyncio.sleep(self.every_s)
        self.feed.stop()
        await asyncio.gather(task, return_exceptions=True)

    def stop(self) -> None:
        self.feed.stop()

    def stats(self) -> dict[str, dict]:
        return self.feed.stats()
