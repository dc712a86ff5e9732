"""Fault injection and the emulator's counters.

:class:`FaultConfig` says what goes wrong; :class:`FaultState` holds the current config (tests
change it while the server runs, from any thread) and counts what the server did, readable as
an :class:`EmulatorStats` snapshot.

Faults and what the real ccxt client (4.5.x) makes of them:

- ``http_429_every`` / ``http_429_on`` / :meth:`FaultState.fail_next_rest`: HTTP 429 with
  ``Retry-After`` and Binance's ``{"code": -1003, ...}`` body. ccxt's binance ``handle_errors``
  checks the status before the body, so it raises ``ccxt.DDoSProtection`` (a
  ``NetworkError``), not ``ccxt.RateLimitExceeded``.
- ``latency_ms``: every REST answer is delayed (``ccxt.RequestTimeout`` if over ``timeout``).
- ``drop_ws_after_messages``: a websocket is cut after N data messages (the transport is
  aborted, no close frame); ``drop_mode="close"`` sends close code 1011 instead.
- ``stall_ws_s``: a websocket goes silent for that long once it has sent
  ``stall_ws_after_messages`` data messages; the rows due meanwhile arrive in one burst after.
- ``garbage_every``: a non-JSON text frame before every Nth data message.
- ``depth_gap_after_messages``: once per connection, one ``@depth`` diff is not sent after
  N data messages: the next diff's ``U`` skips an id (a sequence gap; ccxt raises
  ``ChecksumError`` and drops its book).
"""

from __future__ import annotations

import dataclasses
import threading
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from arbkit.errors import ConfigError

DROP_MODES = ("abort", "close")
LOG_SIZE = 1000  # request log entries kept


def _opt_pos_int(name: str, value: object) -> None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                              or value < 1):
        raise ConfigError(f"FaultConfig: {name}={value!r} must be a whole number >= 1 or None")


@dataclass(frozen=True, kw_only=True)
class FaultConfig:
    """What goes wrong, and when (all off by default).

    Parameters
    ----------
    http_429_every
        Answer every Nth REST request (server-wide count, from 1) with HTTP 429.
    http_429_on
        REST request numbers (1-based, server-wide) answered with HTTP 429.
    retry_after_s
        ``Retry-After`` header value sent with a 429.
    latency_ms
        Wall-clock delay added to every REST answer.
    drop_ws_after_messages
        Cut a websocket once it has sent this many data messages.
    drop_ws_repeat
        False: only the first connection to get there is cut; True: every connection is.
    drop_mode
        ``"abort"`` (TCP closed, no close frame) or ``"close"`` (close frame, code 1011).
    stall_ws_s, stall_ws_after_messages
        Each connection goes silent for ``stall_ws_s`` seconds once, after it has sent
        ``stall_ws_after_messages`` data messages.
    garbage_every, garbage_payload
        Send ``garbage_payload`` (not JSON) before every Nth data message of a connection.
    depth_gap_after_messages
        Skip one ``@depth`` diff, once per connection, after this many data messages.

    Examples
    --------
    >>> FaultConfig(http_429_every=5, drop_ws_after_messages=100).http_429_every
    5
    """

    http_429_every: int | None = None
    http_429_on: frozenset[int] = frozenset()
    retry_after_s: int = 1
    latency_ms: float = 0.0
    drop_ws_after_messages: int | None = None
    drop_ws_repeat: bool = False
    drop_mode: str = "abort"
    stall_ws_s: float = 0.0
    stall_ws_after_messages: int = 0
    garbage_every: int | None = None
    garbage_payload: str = "<html>502 Bad Gateway</html>"
    depth_gap_after_messages: int | None = None

    def __post_init__(self) -> None:
        for name in ("http_429_every", "drop_ws_after_messages", "garbage_every",
                     "depth_gap_after_messages"):
            _opt_pos_int(name, getattr(self, name))
        object.__setattr__(self, "http_429_on", frozenset(self.http_429_on))
        if not all(isinstance(n, int) and n >= 1 for n in self.http_429_on):
            raise ConfigError(f"FaultConfig: http_429_on={set(self.http_429_on)} must hold "
                              "request numbers >= 1")
        for name in ("retry_after_s", "latency_ms", "stall_ws_s", "stall_ws_after_messages"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or value < 0:
                raise ConfigError(f"FaultConfig: {name}={value!r} must be a number >= 0")
        if self.drop_mode not in DROP_MODES:
            raise ConfigError(f"FaultConfig: drop_mode={self.drop_mode!r}; use one of "
                              f"{', '.join(DROP_MODES)}")


@dataclass(frozen=True)
class RequestRecord:
    """One REST request as the emulator answered it."""

    n: int  # server-wide REST request number, from 1
    wall_s: float  # time.time() when it arrived
    method: str
    path: str
    query: str
    status: int


@dataclass(frozen=True)
class EmulatorStats:
    """A snapshot of the emulator's counters."""

    rest_total: int = 0
    rest_by_path: dict[str, int] = field(default_factory=dict)
    http_429_sent: int = 0
    ws_connections: int = 0  # opened since start
    ws_open: int = 0  # open now
    ws_subscribe_requests: int = 0
    ws_messages_sent: int = 0  # data messages (not replies, not garbage)
    ws_garbage_sent: int = 0
    ws_drops: int = 0
    ws_stalls: int = 0
    ws_depth_gaps: int = 0  # @depth diffs skipped (sequence gaps injected)
    rest_log: tuple[RequestRecord, ...] = ()


class FaultState:
    """The live fault config and counters, shared by the server thread and test code."""

    def __init__(self, config: FaultConfig | None = None) -> None:
        self._lock = threading.Lock()
        self._config = config or FaultConfig()
        self._fail_next = 0
        self._auto_drop_spent = False
        self._counts: Counter[str] = Counter()
        self._by_path: Counter[str] = Counter()
        self._log: deque[RequestRecord] = deque(maxlen=LOG_SIZE)

    # ---- configuration (any thread) -------------------------------------------------------
    @property
    def config(self) -> FaultConfig:
        return self._config

    def set(self, **changes: Any) -> FaultConfig:
        """Change some fault settings now, e.g. ``faults.set(http_429_every=3)``.

        Setting any value re-arms a one-shot ``drop_ws_after_messages``.
        """
        with self._lock:
            try:
                self._config = dataclasses.replace(self._config, **changes)
            except TypeError as exc:
                known = ", ".join(f.name for f in dataclasses.fields(FaultConfig))
                raise ConfigError(f"faults.set: {exc}; known settings: {known}") from None
            self._auto_drop_spent = False
            return self._config

    def clear(self) -> None:
        """All faults off (counters are kept)."""
        with self._lock:
            self._config = FaultConfig()
            self._fail_next = 0

    def fail_next_rest(self, count: int = 1) -> None:
        """Answer the next ``count`` REST requests with HTTP 429."""
        with self._lock:
            self._fail_next += count

    # ---- decisions (server thread) --------------------------------------------------------
    def on_rest_request(self, path: str) -> tuple[int, bool]:
        """Count a REST request; return its number and whether to answer it with 429."""
        with self._lock:
            self._counts["rest_total"] += 1
            n = self._counts["rest_total"]
            self._by_path[path] += 1
            cfg = self._config
            limited = (n in cfg.http_429_on or self._fail_next > 0
                       or (cfg.http_429_every is not None and n % cfg.http_429_every == 0))
            if self._fail_next > 0:
                self._fail_next -= 1
            if limited:
                self._counts["http_429_sent"] += 1
            return n, limited

    def log_request(self, record: RequestRecord) -> None:
        """Keep a REST request in the log (the last ``LOG_SIZE``)."""
        with self._lock:
            self._log.append(record)

    def should_drop(self, sent: int) -> bool:
        """Whether a connection that has sent ``sent`` data messages is cut now."""
        with self._lock:
            after = self._config.drop_ws_after_messages
            if after is None or sent < after:
                return False
            if not self._config.drop_ws_repeat:
                if self._auto_drop_spent:
                    return False
                self._auto_drop_spent = True
            return True

    def count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counts[name] += n

    def stats(self, ws_open: int = 0) -> EmulatorStats:
        """A consistent snapshot of the counters."""
        with self._lock:
            c = self._counts
            return EmulatorStats(
                rest_total=c["rest_total"], rest_by_path=dict(self._by_path),
                http_429_sent=c["http_429_sent"], ws_connections=c["ws_connections"],
                ws_open=ws_open, ws_subscribe_requests=c["ws_subscribe_requests"],
                ws_messages_sent=c["ws_messages_sent"], ws_garbage_sent=c["ws_garbage_sent"],
                ws_drops=c["ws_drops"], ws_stalls=c["ws_stalls"],
                ws_depth_gaps=c["ws_depth_gaps"], rest_log=tuple(self._log))
