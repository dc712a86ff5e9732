"""Websocket market streams as Binance's ``wss://stream.binance.com:9443`` sends them.

Raw streams at ``/ws`` (also ``/ws/<stream>/<stream>...`` and the alias ``/stream/ws...``) and
combined streams at ``/stream?streams=a/b`` (each message wrapped as
``{"stream": ..., "data": ...}``). Clients subscribe with ``SUBSCRIBE`` / ``UNSUBSCRIBE`` /
``LIST_SUBSCRIPTIONS`` requests and get ``{"result": ..., "id": ...}`` back.

Streams: ``<symbol>@bookTicker`` (when the best bid or ask changes), ``<symbol>@depth`` and
``<symbol>@depth@100ms``/``@1000ms`` (one diff per quotes row, ``U == u`` = the book id after
the row, see :mod:`~arbkit.venues.emulator.feed`), ``<symbol>@trade``. A stream starts at the
replay clock's now when subscribed; each row is pushed once the clock passes its
``ts_recv_ns``. Rows of different streams of one connection go out in time order.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

from aiohttp import WSMsgType, web

from arbkit.venues.emulator.feed import Level, Market, QuoteTape, diff_levels, fmt
from arbkit.venues.emulator.state import EmulatorState, dumps

MAX_IDLE_S = 0.05  # re-read the clock at least this often (tests move it from other threads)
MAX_ROWS_PER_PASS = 5000  # per stream: keeps one pass short when the clock jumps far ahead
DEPTH_SUFFIXES = ("", "100ms", "1000ms")
CLOSE_TIMEOUT_S = 1.0


# --------------------------------------------------------------------------- streams


class _Stream:
    """One subscribed stream: a tape, a cursor, and how a row becomes a message."""

    def __init__(self, name: str, market: Market, tape: Any, now_ns: int) -> None:
        self.name = name
        self.market = market
        self.tape = tape
        self.cursor = tape.visible(now_ns)  # rows already past are not replayed

    def next_ns(self) -> int | None:
        return int(self.tape.ts_ns[self.cursor]) if self.cursor < len(self.tape) else None

    def message(self, i: int) -> dict | None:
        raise NotImplementedError


class _BookTicker(_Stream):
    def message(self, i: int) -> dict | None:
        top = self.tape.top(i)
        if i > 0 and top == self.tape.top(i - 1):
            return None  # Binance pushes bookTicker only when the best bid or ask changes
        bp, bq, ap, aq = top
        return {"u": QuoteTape.update_id(i), "s": self.market.symbol, "b": fmt(bp),
                "B": fmt(bq), "a": fmt(ap), "A": fmt(aq)}


class _Depth(_Stream):
    def __init__(self, name: str, market: Market, tape: Any, now_ns: int) -> None:
        super().__init__(name, market, tape, now_ns)
        self._bids: list[Level] = tape.side(self.cursor - 1, "bid")
        self._asks: list[Level] = tape.side(self.cursor - 1, "ask")

    def message(self, i: int) -> dict | None:
        bids, asks = self.tape.side(i, "bid"), self.tape.side(i, "ask")
        uid = QuoteTape.update_id(i)
        # an unchanged row still goes out (empty lists): ids must stay consecutive for the
        # client's U == previous u + 1 check
        msg = {"e": "depthUpdate", "E": int(self.tape.event_ms[i]), "s": self.market.symbol,
               "U": uid, "u": uid, "b": diff_levels(self._bids, bids),
               "a": diff_levels(self._asks, asks)}
        self._bids, self._asks = bids, asks
        return msg


class _Trade(_Stream):
    def message(self, i: int) -> dict | None:
        return self.tape.ws_trade(i, self.market.symbol)


def make_stream(name: str, markets: dict[str, Market], now_ns: int) -> _Stream | str:
    """The stream a subscription name asks for, or why it cannot be served."""
    parts = name.split("@")
    market = markets.get(parts[0].upper()) if parts[0].islower() else None
    if market is None:
        return f"Invalid request: unknown symbol in stream {name!r}"
    channel, rest = (parts[1] if len(parts) > 1 else ""), parts[2:]
    if channel == "bookTicker" and not rest and market.quotes is not None:
        return _BookTicker(name, market, market.quotes, now_ns)
    if channel == "depth" and len(rest) <= 1 and (rest or [""])[0] in DEPTH_SUFFIXES:
        if market.quotes is not None:
            return _Depth(name, market, market.quotes, now_ns)
    if channel == "trade" and not rest and market.trades is not None:
        return _Trade(name, market, market.trades, now_ns)
    return (f"Invalid request: stream {name!r} is not served (the emulator has "
            "<symbol>@bookTicker, <symbol>@depth[@100ms|@1000ms] and <symbol>@trade for "
            "markets with quotes or trades)")


# --------------------------------------------------------------------------- one connection


class WsSession:
    """One websocket connection: answers requests and pushes due rows."""

    def __init__(self, ws: web.WebSocketResponse, transport: Any, hub: WsHub,
                 combined: bool) -> None:
        self.ws, self.transport, self.hub, self.combined = ws, transport, hub, combined
        self.streams: dict[str, _Stream] = {}
        self.sent = 0  # data messages sent on this connection
        self.closed = False
        self._stalled_once = False
        self._gapped_once = False
        self.hold_until = 0.0  # time.monotonic() until which this connection sends no data
        self._lock = asyncio.Lock()  # replies and data never interleave inside a frame
        self._wake = asyncio.Event()

    @property
    def state(self) -> EmulatorState:
        return self.hub.state

    async def serve(self, initial: list[str]) -> None:
        now = self.state.clock.now_ns()
        for name in initial:
            stream = make_stream(name, self.state.markets, now)
            if not isinstance(stream, str):
                self.streams[name] = stream
        pusher = asyncio.create_task(self._push())
        try:
            async for msg in self.ws:
                if msg.type == WSMsgType.TEXT:
                    await self._on_request(msg.data)
        finally:
            self.closed = True
            pusher.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await pusher

    # ---- requests ---------------------------------------------------------------------------
    async def _reply(self, body: dict) -> None:
        async with self._lock:
            if not self.ws.closed:
                await self.ws.send_str(dumps(body))

    async def _on_request(self, text: str) -> None:
        try:
            req = json.loads(text)
        except ValueError as exc:
            await self._reply({"error": {"code": 3, "msg": f"Invalid JSON: {exc}"}})
            return
        if not isinstance(req, dict):
            await self._reply({"error": {"code": 3, "msg": "Invalid JSON: expected an object"}})
            return
        rid, method, params = req.get("id"), req.get("method"), req.get("params") or []
        if not isinstance(params, list):
            await self._reply({"error": {"code": 1, "msg": "Invalid value type: expected "
                                         "params to be a list of stream names"}, "id": rid})
        elif method == "LIST_SUBSCRIPTIONS":
            await self._reply({"result": list(self.streams), "id": rid})
        elif method == "UNSUBSCRIBE":
            for name in params:
                self.streams.pop(name, None)
            await self._reply({"result": None, "id": rid})
        elif method == "SUBSCRIBE":
            await self._subscribe(rid, params)
        else:
            await self._reply({"error": {"code": 2, "msg": f"Invalid request: method {method!r}"
                               "; use SUBSCRIBE, UNSUBSCRIBE or LIST_SUBSCRIPTIONS"}, "id": rid})

    async def _subscribe(self, rid: Any, params: list) -> None:
        self.state.faults.count("ws_subscribe_requests")
        now = self.state.clock.now_ns()
        made = [make_stream(str(p), self.state.markets, now) for p in params]
        errors = [m for m in made if isinstance(m, str)]
        if errors:
            await self._reply({"error": {"code": 2, "msg": errors[0]}, "id": rid})
            return
        # the reply goes out before any row of the new streams (as Binance does, mostly)
        await self._reply({"result": None, "id": rid})
        for stream in made:
            assert not isinstance(stream, str)
            self.streams.setdefault(stream.name, stream)
        self._wake.set()

    # ---- pushing ----------------------------------------------------------------------------
    async def _push(self) -> None:
        with contextlib.suppress(ConnectionError):  # the client went away mid-send
            await self._push_loop()

    async def _push_loop(self) -> None:
        while not self.closed:
            await self._push_due()
            if self.closed:
                return
            self._wake.clear()
            nexts = [n for s in list(self.streams.values()) if (n := s.next_ns()) is not None]
            delay = min((self.state.clock.wall_delay_s(n) for n in nexts), default=MAX_IDLE_S)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=min(delay, MAX_IDLE_S))

    async def _push_due(self) -> None:
        now = self.state.clock.now_ns()
        batch = []
        for k, stream in enumerate(list(self.streams.values())):
            end = min(stream.tape.visible(now), stream.cursor + MAX_ROWS_PER_PASS)
            batch += [(int(stream.tape.ts_ns[i]), k, i, stream) for i in range(stream.cursor, end)]
            stream.cursor = max(stream.cursor, end)
        batch.sort(key=lambda row: row[:3])
        for _, _, i, stream in batch:
            msg = stream.message(i)
            if msg is not None and not await self._send_data(stream, msg):
                return

    async def _send_data(self, stream: _Stream, msg: dict) -> bool:
        """Send one data message with the configured faults; False once the link is cut."""
        faults = self.state.faults
        cfg = faults.config
        stall_due = self.sent >= cfg.stall_ws_after_messages
        if cfg.stall_ws_s > 0 and not self._stalled_once and stall_due:
            self._stalled_once = True
            faults.count("ws_stalls")
            await asyncio.sleep(cfg.stall_ws_s)
        gap_at = cfg.depth_gap_after_messages
        if (gap_at is not None and not self._gapped_once and self.sent >= gap_at
                and isinstance(stream, _Depth)):
            self._gapped_once = True  # this diff is never sent: the client sees U jump
            faults.count("ws_depth_gaps")
            return True
        hold = max(self.hold_until, self.hub.stall_until) - time.monotonic()
        if hold > 0:
            await asyncio.sleep(hold)
        if self.closed or self.ws.closed:
            return False
        async with self._lock:
            if cfg.garbage_every is not None and (self.sent + 1) % cfg.garbage_every == 0:
                await self.ws.send_str(cfg.garbage_payload)
                faults.count("ws_garbage_sent")
            body = {"stream": stream.name, "data": msg} if self.combined else msg
            await self.ws.send_str(dumps(body))
        self.sent += 1
        faults.count("ws_messages_sent")
        if faults.should_drop(self.sent):
            await self.drop(cfg.drop_mode)
            return False
        return True

    async def drop(self, mode: str) -> None:
        """Cut the connection: ``abort`` the TCP transport, or ``close`` with code 1011."""
        if self.closed:
            return
        self.closed = True
        self.state.faults.count("ws_drops")
        if mode == "abort" and self.transport is not None:
            self.transport.abort()
        else:
            await self.ws.close(code=1011, message=b"arbkit emulator: injected drop")


# --------------------------------------------------------------------------- all connections


LISTEN_KEY_MIN_LEN = 32


class WsHub:
    """Accepts websocket connections and acts on all of them (drops, stalls, shutdown)."""

    def __init__(self, state: EmulatorState) -> None:
        self.state = state
        self.user_streams: Any = None  # UserStreams: /ws/<listenKey> is a user-data stream
        self.sessions: set[WsSession] = set()
        self.stall_until = 0.0  # time.monotonic() until which new connections send no data
        self._tasks: set[asyncio.Task] = set()  # drops in flight (the loop holds weak refs)

    async def raw(self, request: web.Request) -> web.StreamResponse:
        names = [s for s in request.match_info.get("streams", "").split("/") if s]
        # /ws/<listenKey> (a 60-character key) is a user-data stream; ccxt.pro numbers its
        # market-data sockets (/ws/0, /ws/1 ...) and subscribes on them afterwards
        if (self.user_streams is not None and len(names) == 1 and "@" not in names[0]
                and len(names[0]) >= LISTEN_KEY_MIN_LEN):
            return await self.user_streams.listen_key_ws(request, names[0])
        return await self._accept(request, [s for s in names if "@" in s], False)

    async def combined(self, request: web.Request) -> web.WebSocketResponse:
        names = [s for s in request.query.get("streams", "").split("/") if s]
        return await self._accept(request, names, True)

    async def _accept(self, request: web.Request, names: list[str],
                      combined: bool) -> web.WebSocketResponse:
        # no permessage-deflate (Binance does not offer it); a short close handshake timeout so
        # a client that never answers the close frame cannot hold up shutdown
        ws = web.WebSocketResponse(autoping=True, compress=False, timeout=CLOSE_TIMEOUT_S)
        transport = request.transport
        await ws.prepare(request)
        self.state.faults.count("ws_connections")
        session = WsSession(ws, transport, self, combined)
        self.sessions.add(session)
        try:
            await session.serve(names)
        finally:
            self.sessions.discard(session)
        return ws

    def drop_all(self, mode: str | None = None) -> int:
        """Cut every open connection (call in the server's loop); returns how many."""
        live = [s for s in self.sessions if not s.closed]
        for s in live:
            task = asyncio.ensure_future(s.drop(mode or self.state.faults.config.drop_mode))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return len(live)

    def stall_all(self, seconds: float, new_connections: bool = False) -> None:
        """No open connection sends data for ``seconds`` (rows due meanwhile follow in a
        burst); with ``new_connections`` neither do connections opened meanwhile (a venue
        whose streams all hang)."""
        until = time.monotonic() + seconds
        for session in self.sessions:
            session.hold_until = max(session.hold_until, until)
        if new_connections:
            self.stall_until = until

    async def close_all(self, code: int = 1001,
                        message: bytes = b"arbkit emulator shutting down") -> int:
        """Close every connection politely, all at once (server shutdown, or Binance's 24 h
        limit with code 1000); returns how many were open."""

        async def close(s: WsSession) -> None:
            s.closed = True
            with contextlib.suppress(Exception):
                await s.ws.close(code=code, message=message)

        live = [s for s in self.sessions if not s.closed]
        await asyncio.gather(*(close(s) for s in live))
        return len(live)

    def add_routes(self, app: web.Application) -> None:
        for base in ("/ws", "/stream/ws"):
            app.router.add_get(base, self.raw)
            app.router.add_get(base + "/{streams:.*}", self.raw)
        app.router.add_get("/stream", self.combined)
