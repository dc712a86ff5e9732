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

Faults of the private (trading) API, per venue (see ``docs/emulator.md``):

- ``order_faults`` / ``order_fault_every`` / :meth:`FaultState.fail_next_orders`: what happens
  to a numbered ``POST /api/v3/order`` (:data:`ORDER_FAULTS`): the answer lost after the venue
  booked the order (``hang_after_accept``: held for ``order_hang_s`` then the connection is
  cut, so the client times out; ``drop_after_accept``: the connection is cut at once),
  ``-1007`` "execution status unknown" with the order booked or not, an HTTP 5xx gateway
  page without a Binance code (``server_error_status``) with the order booked or not, a
  definite reject
  (``reject_code``/``reject_msg``), a partial fill (``partial_fill_ratio`` of what the book
  gives), a 429 (``-1015``, too many orders) or a 418 ban.
- :meth:`FaultState.ban`: every REST request answers HTTP 418 with ``Retry-After`` for a while;
  ``fail_next_rest(n, status=418)`` does it for the next ``n`` requests.
- ``drop_user_stream_after_events``: a user-data websocket is cut after N events.
- ``user_event_duplicate_every`` / ``user_event_reorder_every``: every Nth user-data event is
  sent twice / held back and sent after the next one (reports arrive twice or out of order).
- ``disconnect_ws_at_ns``: every websocket (market data, user data, websocket API) is closed
  when the replay clock reaches each of these data times (Binance's 24 h connection limit).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from arbkit.errors import ConfigError

DROP_MODES = ("abort", "close")
LOG_SIZE = 1000  # request log entries kept
# what can happen to one POST /api/v3/order (FaultConfig.order_faults, fail_next_orders)
ORDER_FAULTS = ("hang_after_accept", "drop_after_accept", "unknown_booked",
                "unknown_not_booked", "server_error_booked", "server_error_not_booked",
                "reject", "partial_fill", "rate_limit", "ban")
BOOKED_THEN_LOST = ("hang_after_accept", "drop_after_accept", "unknown_booked",
                    "server_error_booked")


def _check_order_fault(name: str, kind: object) -> None:
    if kind not in ORDER_FAULTS:
        raise ConfigError(f"FaultConfig: {name}={kind!r} is not an order fault; use one of "
                          f"{', '.join(ORDER_FAULTS)}")


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
    order_faults
        ``{n: kind}``: the ``n``-th ``POST /api/v3/order`` of this venue (from 1) meets the
        order fault ``kind`` (one of :data:`ORDER_FAULTS`).
    order_fault_every, order_fault_kind
        Every Nth order request meets ``order_fault_kind``.
    order_hang_s
        How long ``hang_after_accept`` holds the request before cutting the connection.
    unknown_http_status
        HTTP status sent with ``-1007`` (ccxt reads the body's code first either way).
    reject_code, reject_msg
        The definite refusal of the ``reject`` fault (default ``-2010 Market is closed.``).
    partial_fill_ratio
        ``partial_fill``: the share (0..1) of the book's fill actually given.
    server_error_status
        HTTP status of the ``server_error_*`` faults (an HTML page, no Binance error code).
    user_event_duplicate_every, user_event_reorder_every
        Every Nth event of a user-data websocket is sent twice / swapped with the next one.
    drop_user_stream_after_events
        Cut a user-data websocket (listenKey stream or websocket API) once it has sent this
        many events (once per venue, like ``drop_ws_after_messages``).
    drop_user_stream_repeat
        False: only the first user-data websocket to get there is cut; True: every one is.
    disconnect_ws_at_ns
        Data times at which every open websocket is closed (code 1000), as Binance does
        after 24 h.

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
    order_faults: Mapping[int, str] = field(default_factory=dict)
    order_fault_every: int | None = None
    order_fault_kind: str = "drop_after_accept"
    order_hang_s: float = 30.0
    unknown_http_status: int = 408
    reject_code: int = -2010
    reject_msg: str = "Market is closed."
    partial_fill_ratio: float = 0.5
    server_error_status: int = 503
    user_event_duplicate_every: int | None = None
    user_event_reorder_every: int | None = None
    drop_user_stream_after_events: int | None = None
    drop_user_stream_repeat: bool = False
    disconnect_ws_at_ns: frozenset[int] = frozenset()

    def __post_init__(self) -> None:
        for name in ("http_429_every", "drop_ws_after_messages", "garbage_every",
                     "depth_gap_after_messages", "order_fault_every",
                     "drop_user_stream_after_events", "user_event_duplicate_every",
                     "user_event_reorder_every"):
            _opt_pos_int(name, getattr(self, name))
        self._check_private()
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

    def _check_private(self) -> None:
        if not isinstance(self.order_faults, Mapping):
            raise ConfigError(f"FaultConfig: order_faults={self.order_faults!r} must be a "
                              "mapping {order request number: fault}, e.g. {3: 'unknown_booked'}")
        object.__setattr__(self, "order_faults", dict(self.order_faults))
        for n, kind in self.order_faults.items():
            if not isinstance(n, int) or isinstance(n, bool) or n < 1:
                raise ConfigError(f"FaultConfig: order_faults key {n!r} must be an order "
                                  "request number >= 1")
            _check_order_fault(f"order_faults[{n}]", kind)
        _check_order_fault("order_fault_kind", self.order_fault_kind)
        if not (isinstance(self.order_hang_s, int | float) and self.order_hang_s >= 0):
            raise ConfigError(f"FaultConfig: order_hang_s={self.order_hang_s!r} must be a "
                              "number >= 0")
        if not (isinstance(self.partial_fill_ratio, int | float)
                and 0 <= self.partial_fill_ratio < 1):
            raise ConfigError(f"FaultConfig: partial_fill_ratio={self.partial_fill_ratio!r} "
                              "must be in [0, 1) (the share of the book's fill given)")
        if not (isinstance(self.unknown_http_status, int) and 400 <= self.unknown_http_status
                <= 599):
            raise ConfigError(f"FaultConfig: unknown_http_status={self.unknown_http_status!r}"
                              " must be an HTTP error status (400..599), e.g. 408 or 503")
        if not (isinstance(self.server_error_status, int) and 500 <= self.server_error_status
                <= 599):
            raise ConfigError(f"FaultConfig: server_error_status={self.server_error_status!r}"
                              " must be an HTTP server error status (500..599), e.g. 503")
        object.__setattr__(self, "disconnect_ws_at_ns", frozenset(self.disconnect_ws_at_ns))
        if not all(isinstance(t, int) and t > 0 for t in self.disconnect_ws_at_ns):
            raise ConfigError(f"FaultConfig: disconnect_ws_at_ns={set(self.disconnect_ws_at_ns)}"
                              " must hold data times in ns since the epoch")


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
    http_418_sent: int = 0
    orders_received: int = 0  # POST /api/v3/order requests (numbered for order_faults)
    order_faults: dict[str, int] = field(default_factory=dict)  # order faults applied, by kind
    user_ws_connections: int = 0  # user-data websockets opened (listenKey or websocket API)
    user_events_sent: int = 0
    user_stream_drops: int = 0
    user_events_duplicated: int = 0
    user_events_reordered: int = 0
    listen_keys_expired: int = 0
    ws_forced_disconnects: int = 0  # websockets closed by disconnect_ws_at_ns / disconnect_all


class FaultState:
    """The live fault config and counters, shared by the server thread and test code."""

    def __init__(self, config: FaultConfig | None = None) -> None:
        self._lock = threading.Lock()
        self._config = config or FaultConfig()
        self._fail_next = 0
        self._fail_status = 429
        self._ban_until = 0.0  # time.monotonic() until which every REST request gets 418
        self._order_queue: deque[str] = deque()
        self._order_faults: Counter[str] = Counter()
        self._auto_drop_spent = False
        self._user_drop_spent = False
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
            self._user_drop_spent = False
            return self._config

    def clear(self) -> None:
        """All faults off (counters are kept)."""
        with self._lock:
            self._config = FaultConfig()
            self._fail_next = 0
            self._ban_until = 0.0
            self._order_queue.clear()

    def fail_next_rest(self, count: int = 1, status: int = 429) -> None:
        """Answer the next ``count`` REST requests with HTTP 429 (or 418: an IP ban)."""
        if status not in (418, 429):
            raise ConfigError(f"fail_next_rest: status={status!r}; Binance rate-limits with "
                              "429 (slow down) or 418 (IP banned)")
        with self._lock:
            self._fail_next += count
            self._fail_status = status

    def ban(self, seconds: float) -> None:
        """Every REST request answers HTTP 418 (IP banned, ``Retry-After``) for ``seconds``."""
        with self._lock:
            self._ban_until = time.monotonic() + seconds

    def fail_next_orders(self, kind: str, count: int = 1) -> None:
        """The next ``count`` ``POST /api/v3/order`` requests meet the order fault ``kind``
        (one of :data:`ORDER_FAULTS`), before any ``order_faults`` schedule."""
        _check_order_fault("fail_next_orders", kind)
        with self._lock:
            self._order_queue.extend([kind] * count)

    # ---- decisions (server thread) --------------------------------------------------------
    def on_rest_request(self, path: str) -> tuple[int, bool]:
        """Count a REST request; return its number and whether to answer it with 429."""
        n, status = self.on_rest_request_status(path)
        return n, status == 429

    def on_rest_request_status(self, path: str) -> tuple[int, int | None]:
        """Count a REST request; return its number and the rate-limit status to answer it
        with (429, 418) or None."""
        with self._lock:
            self._counts["rest_total"] += 1
            n = self._counts["rest_total"]
            self._by_path[path] += 1
            cfg = self._config
            status: int | None = None
            if time.monotonic() < self._ban_until:
                status = 418
            elif self._fail_next > 0:
                self._fail_next -= 1
                status = self._fail_status
            elif n in cfg.http_429_on or (cfg.http_429_every is not None
                                          and n % cfg.http_429_every == 0):
                status = 429
            if status is not None:
                self._counts["http_429_sent" if status == 429 else "http_418_sent"] += 1
            return n, status

    def on_order_request(self) -> tuple[int, str | None]:
        """Count a ``POST /api/v3/order``; return its number and the order fault it meets."""
        with self._lock:
            self._counts["orders_received"] += 1
            n = self._counts["orders_received"]
            cfg = self._config
            kind: str | None = None
            if self._order_queue:
                kind = self._order_queue.popleft()
            elif n in cfg.order_faults:
                kind = cfg.order_faults[n]
            elif cfg.order_fault_every is not None and n % cfg.order_fault_every == 0:
                kind = cfg.order_fault_kind
            if kind is not None:
                self._order_faults[kind] += 1
            return n, kind

    def should_drop_user_stream(self, sent: int) -> bool:
        """Whether a user-data websocket that has sent ``sent`` events is cut now (once)."""
        with self._lock:
            after = self._config.drop_user_stream_after_events
            if after is None or sent < after:
                return False
            if not self._config.drop_user_stream_repeat:
                if self._user_drop_spent:
                    return False
                self._user_drop_spent = True
            return True

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
                ws_depth_gaps=c["ws_depth_gaps"], rest_log=tuple(self._log),
                http_418_sent=c["http_418_sent"], orders_received=c["orders_received"],
                order_faults=dict(self._order_faults),
                user_ws_connections=c["user_ws_connections"],
                user_events_sent=c["user_events_sent"], user_stream_drops=c["user_stream_drops"],
                user_events_duplicated=c["user_events_duplicated"],
                user_events_reordered=c["user_events_reordered"],
                listen_keys_expired=c["listen_keys_expired"],
                ws_forced_disconnects=c["ws_forced_disconnects"])
