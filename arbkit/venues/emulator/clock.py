"""The replay clock: data time as a function of wall time.

This is the one place in arbkit where the wall clock is legitimate: the emulator is an
exchange simulator talking to real clients in real time, not the backtest kernel. Data time
advances at ``speed`` data seconds per wall second from an anchor; pausing freezes it and
seeking moves the anchor (forward only: a venue's history cannot be re-lived, and update ids
already sent to clients must stay increasing).
"""

from __future__ import annotations

import math
import threading
import time

from arbkit.errors import ConfigError

NS_PER_MS = 1_000_000
NS_PER_S = 1_000_000_000


class ReplayClock:
    """Maps wall time to data time (thread-safe; read by the server, moved by tests).

    Parameters
    ----------
    start_ns
        Data time at the anchor.
    speed
        Data seconds per wall second.
    paused
        Start frozen at ``start_ns``.

    Examples
    --------
    >>> clock = ReplayClock(start_ns=1_700_000_000_000_000_000, speed=50.0, paused=True)
    >>> clock.now_ns()
    1700000000000000000
    >>> clock.seek(1_700_000_000_500_000_000)
    >>> clock.now_ms()
    1700000000500
    """

    def __init__(self, *, start_ns: int, speed: float = 1.0, paused: bool = False) -> None:
        _check_speed(speed)
        self._lock = threading.Lock()
        self._speed = float(speed)
        self._anchor_data_ns = int(start_ns)
        self._anchor_wall_ns = time.monotonic_ns()
        self._paused = paused

    # ---- reading --------------------------------------------------------------------------
    @property
    def speed(self) -> float:
        return self._speed

    @property
    def paused(self) -> bool:
        return self._paused

    def anchor(self) -> dict[str, float | int | bool]:
        """Where the timeline stands: data time ``data_ns`` at ``time.monotonic_ns()`` =
        ``wall_ns``, ``speed``, ``paused``. CLOCK_MONOTONIC is one clock for every process of
        the machine, so another process rebuilds this timeline from it (``MirrorClock``)."""
        with self._lock:
            return {"data_ns": self._anchor_data_ns, "wall_ns": self._anchor_wall_ns,
                    "speed": self._speed, "paused": self._paused}

    def now_ns(self) -> int:
        """The current data time in ns since the epoch."""
        with self._lock:
            return self._now_locked(time.monotonic_ns())

    def now_ms(self) -> int:
        """The current data time in ms (what Binance timestamps carry)."""
        return self.now_ns() // NS_PER_MS

    def wall_delay_s(self, data_ns: int) -> float:
        """Wall seconds until data time reaches ``data_ns`` (inf while paused, 0 if past)."""
        with self._lock:
            if self._paused:
                return math.inf
            ahead = data_ns - self._now_locked(time.monotonic_ns())
            return max(0.0, ahead / self._speed / NS_PER_S)

    # ---- moving ---------------------------------------------------------------------------
    def pause(self) -> None:
        """Freeze data time where it is."""
        with self._lock:
            self._reanchor()
            self._paused = True

    def resume(self) -> None:
        """Let data time run again from where it was frozen."""
        with self._lock:
            self._reanchor()
            self._paused = False

    def seek(self, data_ns: int) -> None:
        """Jump data time forward to ``data_ns`` (paused or running)."""
        with self._lock:
            now = self._now_locked(time.monotonic_ns())
            if data_ns < now:
                raise ConfigError(f"clock.seek({data_ns}): before the current data time {now}; "
                                  "the replay only moves forward (start a new emulator to "
                                  "replay from earlier)")
            self._anchor_data_ns = int(data_ns)
            self._anchor_wall_ns = time.monotonic_ns()

    def set_speed(self, speed: float) -> None:
        """Change the replay speed from now on."""
        _check_speed(speed)
        with self._lock:
            self._reanchor()
            self._speed = float(speed)

    # ---- internals ------------------------------------------------------------------------
    def _now_locked(self, wall_ns: int) -> int:
        if self._paused:
            return self._anchor_data_ns
        return self._anchor_data_ns + int((wall_ns - self._anchor_wall_ns) * self._speed)

    def _reanchor(self) -> None:
        wall = time.monotonic_ns()
        self._anchor_data_ns = self._now_locked(wall)
        self._anchor_wall_ns = wall


def _check_speed(speed: float) -> None:
    if not (isinstance(speed, int | float) and math.isfinite(speed) and speed > 0):
        raise ConfigError(f"replay speed={speed!r} must be a finite number > 0 (1.0 = real time)")
