"""The runtime's clocks: the only place arbkit reads the wall clock.

The kernel never reads a clock; the runtime stamps each event with a receive time from one of
these, and the kernel's time is those stamps.
"""

from __future__ import annotations

import time
from collections.abc import Callable


def wall_ns() -> int:
    """Wall time, ns since the epoch (UTC)."""
    return time.time_ns()


def monotonic_s() -> float:
    """Seconds of a monotonic clock (timers and timeouts, never stamps)."""
    return time.monotonic()


class Stamper:
    """Receive times that strictly increase across every event of a session (a tie, or a
    clock that steps back, is bumped by 1 ns), so the kernel sees one timestamp per event and
    a recording replays to the same decisions (core/loop.py: one decision per timestamp)."""

    def __init__(self, clock: Callable[[], int], last: int = -1) -> None:
        self.clock = clock
        self.last = last

    def now(self) -> int:
        return self.stamp(self.clock())

    def stamp(self, ts: int) -> int:
        ts = int(ts)
        if ts <= self.last:
            ts = self.last + 1
        self.last = ts
        return ts
