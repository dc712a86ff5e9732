"""The emulator as a server on 127.0.0.1: in the caller's event loop
(:class:`EmulatorServer`) or in a background thread with its own loop for synchronous code
(:func:`run_emulator`).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from types import TracebackType
from typing import Any

from aiohttp import web

from arbkit.errors import ConfigError, VenueError
from arbkit.venues.emulator import private, rest
from arbkit.venues.emulator.account import Account
from arbkit.venues.emulator.clock import ReplayClock
from arbkit.venues.emulator.config import EmulatorConfig
from arbkit.venues.emulator.faults import EmulatorStats, FaultState
from arbkit.venues.emulator.feed import Market, load_market
from arbkit.venues.emulator.state import STATE, EmulatorState
from arbkit.venues.emulator.userstream import UserStreams
from arbkit.venues.emulator.ws import WsHub

HOST = "127.0.0.1"  # loopback only: the emulator is for tests and paper trading
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0
WATCHDOG_S = 0.05  # how often the forced disconnects and listenKey expiry are checked
FORCED_CLOSE = (1000, b"arbkit emulator: connection lifetime reached (Binance closes after 24 h)")


def _markets(config: EmulatorConfig) -> dict[str, Market]:
    return {f.symbol: load_market(f, config.catalog_root) for f in config.markets}


def data_span(markets: dict[str, Market]) -> tuple[int, int]:
    """(first, last) data time over every served tape."""
    firsts = [t for m in markets.values() if (t := m.first_ns()) is not None]
    lasts = [t for m in markets.values() if (t := m.last_ns()) is not None]
    if not firsts:
        raise ConfigError("EmulatorConfig: no rows in any feed to replay; check the feeds")
    return min(firsts), max(lasts)


def _start_ns(config: EmulatorConfig, markets: dict[str, Market]) -> int:
    """The replay's first data time: ``start_ns``, or the first row of any feed. Starting after
    the last row is allowed (REST then shows the final state, e.g. every bar for a download);
    ``arbkit emulator serve`` warns about it."""
    first, _ = data_span(markets)
    return first if config.start_ns is None else int(config.start_ns)


class EmulatorServer:
    """A Binance spot emulator replaying arbkit data, served by aiohttp in the running loop.

    Loading and validating the data happens here, in the constructor; ``start()`` binds the
    port and starts the replay clock (unless ``start_paused``, or the ``clock`` was given:
    then it is shared with other servers and its owner moves it).

    Examples
    --------
    >>> async def main(config: EmulatorConfig) -> None:  # doctest: +SKIP
    ...     async with EmulatorServer(config) as emu:
    ...         exchange = point_ccxt_at(ccxt.pro.binance(), emu.http_url, emu.ws_url)
    ...         print(await exchange.watch_order_book("BTC/USDT"))
    ...         await exchange.close()
    """

    def __init__(self, config: EmulatorConfig, *, clock: ReplayClock | None = None) -> None:
        self.config = config
        markets = _markets(config)
        # a clock given is shared (several venues replaying one timeline: emulator.multi);
        # its owner starts it, so start() leaves it alone
        self._own_clock = clock is None
        self.clock = clock or ReplayClock(start_ns=_start_ns(config, markets),
                                          speed=config.speed, paused=True)
        self.faults = FaultState(config.faults)
        self.state = EmulatorState(markets=markets, clock=self.clock, faults=self.faults)
        self.span_ns = data_span(markets)  # (first, last) data time served
        self.hub = WsHub(self.state)
        # the private API: one account, its orders and fills (the inspection API for tests)
        self.account = Account(config.account, markets, self.clock)
        self.user_streams = UserStreams(self.account, self.faults, self.clock)
        self.hub.user_streams = self.user_streams
        self._runner: web.AppRunner | None = None
        self._watchdog_task: asyncio.Task | None = None
        self.port: int | None = None

    def _app(self) -> web.Application:
        app = web.Application(middlewares=[rest.rest_middleware])
        app[STATE] = self.state
        rest.add_routes(app)
        private.add_routes(app, private.PrivateApi(self.account, self.user_streams))
        self.hub.add_routes(app)
        self.user_streams.add_routes(app)
        return app

    async def start(self) -> None:
        """Bind 127.0.0.1 (``config.port``, 0 = a free one) and start the replay clock."""
        if self._runner is not None:
            raise ConfigError("EmulatorServer.start: already started; stop() it first")
        runner = web.AppRunner(self._app(), handle_signals=False, access_log=None,
                               shutdown_timeout=1.0)
        await runner.setup()
        try:
            site = web.TCPSite(runner, HOST, self.config.port)
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise VenueError(f"emulator: cannot listen on {HOST}:{self.config.port} ({exc}); "
                             "use --port 0 (EmulatorConfig port=0) for a free port") from None
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        self.user_streams.bind(asyncio.get_running_loop())
        self._watchdog_task = asyncio.create_task(self._watchdog())
        if self._own_clock and not self.config.start_paused:
            self.clock.resume()

    async def stop(self) -> None:
        """Close every websocket, then the listening socket."""
        if self._runner is None:
            return
        if self._watchdog_task is not None:
            self._watchdog_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog_task
        await self.hub.close_all()
        await self.user_streams.close_all()
        await self._runner.cleanup()
        self._runner = None

    async def _watchdog(self) -> None:
        """Close every websocket when the replay crosses a ``disconnect_ws_at_ns`` time;
        expire listenKeys not kept alive."""
        last = self.clock.now_ns()
        while True:
            await asyncio.sleep(WATCHDOG_S)
            now = self.clock.now_ns()
            if any(last < t <= now for t in self.faults.config.disconnect_ws_at_ns):
                await self.disconnect_all()
            last = now
            self.user_streams.expire_stale()

    async def disconnect_all(self) -> int:
        """Close every websocket (market data, user data, websocket API) with code 1000, as
        Binance does at a connection's 24 h mark; returns how many were open."""
        n = await self.hub.close_all(*FORCED_CLOSE) + await self.user_streams.close_all(
            *FORCED_CLOSE)
        self.faults.count("ws_forced_disconnects", n)
        return n

    async def __aenter__(self) -> EmulatorServer:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.stop()

    @property
    def http_url(self) -> str:
        """``http://127.0.0.1:<port>`` (REST paths as Binance's: ``/api/v3/...``)."""
        return f"http://{HOST}:{self._bound_port()}"

    @property
    def ws_url(self) -> str:
        """``ws://127.0.0.1:<port>`` (streams at ``/ws``, ``/stream/ws``, ``/stream``)."""
        return f"ws://{HOST}:{self._bound_port()}"

    def _bound_port(self) -> int:
        if self.port is None:
            raise ConfigError("emulator: not started; use `async with EmulatorServer(...)` or "
                              "`with run_emulator(...)`")
        return self.port

    def stats(self) -> EmulatorStats:
        """The counters now (REST requests by path, 429s, ws connections, drops, messages)."""
        return self.faults.stats(ws_open=len(self.hub.sessions))

    def drop_now(self, mode: str | None = None) -> int:
        """Cut every open market-data websocket now (call in the server's loop); returns how
        many (user-data streams: :meth:`drop_user_streams`)."""
        return self.hub.drop_all(mode)

    def drop_user_streams(self, mode: str | None = None) -> int:
        """Cut every user-data websocket (listenKey streams, websocket API) now."""
        return self.user_streams.drop_all(mode)

    def expire_listen_keys(self) -> int:
        """Expire every listenKey now (``listenKeyExpired``, its sockets closed)."""
        return self.user_streams.expire_listen_keys()

    def terminate_user_streams(self) -> int:
        """End every websocket API user-data subscription (``eventStreamTerminated``)."""
        return self.user_streams.terminate_subscriptions()

    def stall_now(self, seconds: float, new_connections: bool = False) -> None:
        """No open websocket sends data for ``seconds`` of wall time (the rows due meanwhile
        follow in a burst); ``new_connections``: nor do those opened meanwhile."""
        self.hub.stall_all(seconds, new_connections)


class EmulatorThread:
    """An :class:`EmulatorServer` running in a background thread with its own event loop.

    For synchronous code (sync ccxt, pytest without an async plugin) and for async code that
    wants the server off its own loop. Use it as a context manager (see :func:`run_emulator`).
    """

    def __init__(self, config: EmulatorConfig, *, clock: ReplayClock | None = None) -> None:
        self.server = EmulatorServer(config, clock=clock)  # loads the data in this thread
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    # ---- life cycle -------------------------------------------------------------------------
    def start(self) -> EmulatorThread:
        self._thread = threading.Thread(target=self._run, name="arbkit-emulator", daemon=True)
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_S):
            raise VenueError(f"emulator: did not start within {START_TIMEOUT_S} s")
        if self._error is not None:
            self._thread.join(STOP_TIMEOUT_S)
            raise self._error
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self.server.start())
        except BaseException as exc:  # noqa: BLE001 - handed to the starting thread
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self.server.stop())
            _cancel_all(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def stop(self) -> None:
        """Stop the server and join its thread (idempotent)."""
        if self._thread is None or self._loop is None:
            return
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(STOP_TIMEOUT_S)
            if self._thread.is_alive():
                raise VenueError(f"emulator: thread did not stop within {STOP_TIMEOUT_S} s")
        self._thread = None

    def __enter__(self) -> EmulatorThread:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # ---- the server's surface, callable from any thread -------------------------------------
    @property
    def http_url(self) -> str:
        return self.server.http_url

    @property
    def ws_url(self) -> str:
        return self.server.ws_url

    @property
    def clock(self) -> ReplayClock:
        return self.server.clock

    @property
    def faults(self) -> FaultState:
        return self.server.faults

    def stats(self) -> EmulatorStats:
        return self.server.stats()

    @property
    def account(self) -> Account:
        """The venue's account: balances, every order and fill (read from any thread)."""
        return self.server.account

    def drop_now(self, mode: str | None = None) -> int:
        """Cut every open market-data websocket now; returns how many were open."""
        return self._call(self.server.drop_now, mode)

    def drop_user_streams(self, mode: str | None = None) -> int:
        """Cut every user-data websocket now; returns how many were open."""
        return self._call(self.server.drop_user_streams, mode)

    def expire_listen_keys(self) -> int:
        """Expire every listenKey now; returns how many."""
        return self._call(self.server.expire_listen_keys)

    def terminate_user_streams(self) -> int:
        """End every websocket API user-data subscription; returns how many."""
        return self._call(self.server.terminate_user_streams)

    def disconnect_all(self) -> int:
        """Close every websocket now (the 24 h disconnect); returns how many were open."""
        if self._loop is None or self._thread is None:
            raise ConfigError("emulator: not running; use `with run_emulator(config) as emu:`")
        future = asyncio.run_coroutine_threadsafe(self.server.disconnect_all(), self._loop)
        return future.result(STOP_TIMEOUT_S)

    def stall_now(self, seconds: float, new_connections: bool = False) -> None:
        """No open websocket sends data for ``seconds`` of wall time (see the server's)."""
        self._call(self.server.stall_now, seconds, new_connections)

    def _call(self, fn: Any, *args: Any) -> Any:
        if self._loop is None or self._thread is None:
            raise ConfigError("emulator: not running; use `with run_emulator(config) as emu:`")

        async def call() -> Any:
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(call(), self._loop).result(STOP_TIMEOUT_S)


def _cancel_all(loop: asyncio.AbstractEventLoop) -> None:
    tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for t in tasks:
        t.cancel()
    if tasks:
        with contextlib.suppress(Exception):
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))


@contextlib.contextmanager
def run_emulator(config: EmulatorConfig) -> Iterator[EmulatorThread]:
    """Serve ``config`` on 127.0.0.1 from a background thread for the ``with`` block.

    Examples
    --------
    >>> with run_emulator(config) as emu:  # doctest: +SKIP
    ...     exchange = point_ccxt_at(ccxt.binance(), emu.http_url)
    ...     exchange.fetch_order_book("BTC/USDT")
    """
    emu = EmulatorThread(config)
    emu.start()
    try:
        yield emu
    finally:
        emu.stop()
