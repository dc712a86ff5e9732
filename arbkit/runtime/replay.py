"""A deterministic quote source: recorded quotes handed to a session as if they came live.

For tests and demos that must give the same events every run (the kill -9 / resume test, the
replay-parity test): each quote keeps its recorded receive time, so a session fed from it is a
pure function of the data. ``skip`` starts after the quotes a resumed session already has.
"""

from __future__ import annotations

import asyncio

import numpy as np

from arbkit.core import types as T
from arbkit.data.events import EventArrays
from arbkit.runtime.clock import monotonic_s
from arbkit.venues.normalize import Quote


class ReplaySource:
    """Puts the quotes of ``arrays`` on ``queue`` in order (``speed``: data seconds per wall
    second; None = as fast as the session takes them)."""

    def __init__(self, queue: asyncio.Queue, arrays: EventArrays, skip: int = 0, *,
                 speed: float | None = None, chunk: int = 256) -> None:
        ev = arrays.events
        self.events = ev[ev["kind"] == T.EV_QUOTE][skip:]
        self.keys = arrays.inst_keys
        self.queue, self.speed, self.chunk = queue, speed, chunk
        self.sent = 0
        self._stop = False

    async def run(self) -> None:
        ev = self.events
        if ev.shape[0] == 0:
            return
        t0_data, t0_wall = int(ev[0]["ts_recv"]), monotonic_s()
        for k in range(ev.shape[0]):
            if self._stop:
                return
            e = ev[k]
            if self.speed is not None:
                due = t0_wall + (int(e["ts_recv"]) - t0_data) / 1e9 / self.speed
                wait = due - monotonic_s()
                if wait > 0:
                    await asyncio.sleep(wait)
            elif k % self.chunk == 0:
                await asyncio.sleep(0)
            self.queue.put_nowait(Quote(self.keys[int(e["inst"])], int(e["ts_recv"]),
                                        int(e["ts_exch"]), float(e["bid_px"]),
                                        float(e["bid_qty"]), float(e["ask_px"]),
                                        float(e["ask_qty"])))
            self.sent += 1
            if self.queue.qsize() > 50_000:
                while self.queue.qsize() > 10_000 and not self._stop:
                    await asyncio.sleep(0.001)

    def stop(self) -> None:
        self._stop = True

    def stats(self) -> dict[str, dict]:
        return {"replay": {"messages": self.sent, "state": "live", "remaining":
                           int(self.events.shape[0] - self.sent)}}


def quotes_only(arrays: EventArrays) -> np.ndarray:
    ev = arrays.events
    return ev[ev["kind"] == T.EV_QUOTE]
