"""The user-data stream: the account's events pushed to clients, two ways, as Binance does.

- **listenKey** (``POST/PUT/DELETE /api/v3/userDataStream``, then ``/ws/<listenKey>``): raw
  events (``executionReport``, ``outboundAccountPosition``). A key lives
  ``AccountConfig.listen_key_ttl_s`` without a keepalive; when it expires (or
  :meth:`UserStreams.expire_listen_keys`) its sockets get ``listenKeyExpired`` and are closed.
- **websocket API** (``/ws-api/v3``; ccxt.pro 4.5's ``watch_orders``/``watch_my_trades``/
  ``watch_balance`` use this for spot): ``userDataStream.subscribe.signature`` (signed with
  HMAC) answers ``{"subscriptionId": n}``; events follow as ``{"subscriptionId": n,
  "event": {...}}``. :meth:`UserStreams.terminate_subscriptions` sends
  ``eventStreamTerminated`` (the subscription ends; the socket stays open).

Events go to every live stream of the account in the order the account made them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from typing import Any

from aiohttp import WSMsgType, web

from arbkit.venues.emulator import signed, wire
from arbkit.venues.emulator.account import Account
from arbkit.venues.emulator.clock import ReplayClock
from arbkit.venues.emulator.config import AccountConfig
from arbkit.venues.emulator.faults import FaultState
from arbkit.venues.emulator.state import dumps

CLOSE_TIMEOUT_S = 1.0
REORDER_HOLD_S = 0.2  # a held-back event waits at most this long for the next one
WS_API_METHODS = ("userDataStream.subscribe.signature", "userDataStream.unsubscribe", "ping",
                  "time")


class UserSession:
    """One user-data websocket: a listenKey stream, or a websocket API connection."""

    def __init__(self, ws: web.WebSocketResponse, transport: Any, hub: UserStreams,
                 listen_key: str | None) -> None:
        self.ws, self.transport, self.hub, self.listen_key = ws, transport, hub, listen_key
        self.subscriptions: list[int] = []  # websocket API subscription ids
        self._next_sub = 0
        self.queue: asyncio.Queue[dict] = asyncio.Queue()
        self.sent = 0
        self.closed = False
        self._lock = asyncio.Lock()

    @property
    def wants_events(self) -> bool:
        return not self.closed and (self.listen_key is not None or bool(self.subscriptions))

    async def send(self, body: dict) -> None:
        async with self._lock:
            if not self.ws.closed:
                await self.ws.send_str(dumps(body))

    async def pump(self) -> None:
        """Send queued events until the connection ends (faults: drop after N events, every
        Nth event twice, every Nth event after the next one)."""
        faults = self.hub.faults
        n = 0
        held: dict | None = None  # an event sent after the next one (out of order)
        with contextlib.suppress(ConnectionError):
            while not self.closed:
                try:
                    event = await asyncio.wait_for(self.queue.get(),
                                                   REORDER_HOLD_S if held else None)
                except TimeoutError:  # nothing followed the held event: send it late
                    event, held = held, None
                    await self._emit(event)
                    continue
                n += 1
                cfg = faults.config
                every = cfg.user_event_reorder_every
                if held is None and every is not None and n % every == 0:
                    held = event
                    faults.count("user_events_reordered")
                    continue
                await self._emit(event)
                dup = cfg.user_event_duplicate_every
                if dup is not None and n % dup == 0:
                    faults.count("user_events_duplicated")
                    await self._emit(event)
                if held is not None:
                    await self._emit(held)
                    held = None

    async def _emit(self, event: dict) -> None:
        if self.listen_key is not None:
            await self.send(event)
        else:
            for sid in list(self.subscriptions):
                await self.send({"subscriptionId": sid, "event": event})
        self.sent += 1
        faults = self.hub.faults
        faults.count("user_events_sent")
        if faults.should_drop_user_stream(self.sent):
            await self.drop(faults.config.drop_mode)

    async def drop(self, mode: str) -> None:
        """Cut the connection: ``abort`` the transport, or ``close`` with code 1011."""
        if self.closed:
            return
        self.closed = True
        self.hub.faults.count("user_stream_drops")
        if mode == "abort" and self.transport is not None:
            self.transport.abort()
        else:
            await self.ws.close(code=1011, message=b"arbkit emulator: injected drop")

    async def close(self, code: int, message: bytes) -> None:
        self.closed = True
        with contextlib.suppress(Exception):
            await self.ws.close(code=code, message=message)

    # ---- websocket API requests -------------------------------------------------------------
    async def on_request(self, text: str) -> None:
        try:
            req = json.loads(text)
            if not isinstance(req, dict):
                raise ValueError("expected a JSON object")
        except ValueError as exc:
            await self.send(_ws_error(None, wire.ApiError(
                wire.ILLEGAL_CHARS, f"Malformed request: {exc}")))
            return
        rid, method = req.get("id"), req.get("method")
        params = req.get("params") or {}
        try:
            result = self._answer(str(method), params)
        except wire.ApiError as err:
            await self.send(_ws_error(rid, err))
            return
        await self.send({"id": rid, "status": 200, "result": result,
                         "rateLimits": _RATE_LIMITS})

    def _answer(self, method: str, params: dict) -> dict:
        if method == "userDataStream.subscribe.signature":
            signed.check_ws_signed(params, self.hub.account_config)
            sid = self._next_sub
            self._next_sub += 1
            self.subscriptions.append(sid)
            return {"subscriptionId": sid}
        if method == "userDataStream.unsubscribe":
            sid = params.get("subscriptionId")
            self.subscriptions = [] if sid is None else [s for s in self.subscriptions
                                                          if s != sid]
            return {}
        if method == "ping":
            return {}
        if method == "time":
            return {"serverTime": self.hub.clock.now_ms()}
        raise wire.ApiError(wire.ILLEGAL_CHARS, f"Unknown method {method!r}: the arbkit "
                            f"emulator's websocket API serves {', '.join(WS_API_METHODS)}")


_RATE_LIMITS = [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
                 "limit": 6000, "count": 2}]


def _ws_error(rid: object, err: wire.ApiError) -> dict:
    return {"id": rid, "status": err.status, "error": {"code": err.code, "msg": err.msg},
            "rateLimits": _RATE_LIMITS}


class UserStreams:
    """listenKeys and every user-data websocket of one venue's account."""

    def __init__(self, account: Account, faults: FaultState, clock: ReplayClock) -> None:
        self.account_config: AccountConfig = account.config
        self.faults = faults
        self.clock = clock
        self.sessions: set[UserSession] = set()
        self._keys: dict[str, float] = {}  # listenKey -> time.monotonic() of its last keepalive
        self._loop: asyncio.AbstractEventLoop | None = None
        account.add_listener(self.publish)

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """The loop the sessions live in (set when the server starts)."""
        self._loop = loop

    # ---- events (any thread) ----------------------------------------------------------------
    def publish(self, events: list[dict]) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._fan_out, events)

    def _fan_out(self, events: list[dict]) -> None:
        for session in self.sessions:
            if session.wants_events:
                for event in events:
                    session.queue.put_nowait(event)

    # ---- listenKeys (REST) ------------------------------------------------------------------
    def create_key(self) -> str:
        """The account's listenKey (an active one is kept alive and returned again)."""
        self.expire_stale()
        key = next(iter(self._keys), None) or secrets.token_hex(30)
        self._keys[key] = time.monotonic()
        return key

    def keepalive(self, key: str) -> None:
        self.expire_stale()
        if key not in self._keys:
            raise wire.ApiError(wire.INVALID_LISTEN_KEY, "This listenKey does not exist.")
        self._keys[key] = time.monotonic()

    def delete(self, key: str) -> None:
        if self._keys.pop(key, None) is None:
            raise wire.ApiError(wire.INVALID_LISTEN_KEY, "This listenKey does not exist.")
        for s in [s for s in self.sessions if s.listen_key == key]:
            self._spawn(s.close(1000, b"listenKey closed"))

    def expire_stale(self) -> int:
        """Expire the keys not kept alive within ``listen_key_ttl_s``; returns how many."""
        ttl = self.account_config.listen_key_ttl_s
        now = time.monotonic()
        stale = [k for k, t in self._keys.items() if now - t > ttl]
        return self.expire_listen_keys(stale) if stale else 0

    def expire_listen_keys(self, keys: list[str] | None = None) -> int:
        """Expire listenKeys now (all by default): their sockets get ``listenKeyExpired``
        and are closed; keepalives of them answer -1125. Call in the server's loop."""
        keys = list(self._keys) if keys is None else keys
        for key in keys:
            self._keys.pop(key, None)
            self.faults.count("listen_keys_expired")
            event = {"e": "listenKeyExpired", "E": self.clock.now_ms(), "listenKey": key}
            for s in [s for s in self.sessions if s.listen_key == key and not s.closed]:
                self._spawn(self._expire(s, event))
        return len(keys)

    async def _expire(self, session: UserSession, event: dict) -> None:
        with contextlib.suppress(ConnectionError):
            await session.send(event)
        await session.close(1000, b"listenKey expired")

    def terminate_subscriptions(self) -> int:
        """End every websocket API subscription with ``eventStreamTerminated`` (the sockets
        stay open; a client must subscribe again). Returns how many."""
        n = 0
        for s in self.sessions:
            for sid in s.subscriptions:
                event = {"e": "eventStreamTerminated", "E": self.clock.now_ms()}
                self._spawn(s.send({"subscriptionId": sid, "event": event}))
                n += 1
            s.subscriptions = []
        return n

    # ---- websockets -------------------------------------------------------------------------
    async def listen_key_ws(self, request: web.Request, key: str) -> web.StreamResponse:
        self.expire_stale()
        if key not in self._keys:
            return web.json_response(wire.error_body(wire.INVALID_LISTEN_KEY,
                                                     "This listenKey does not exist."),
                                     status=400, dumps=dumps)
        return await self._serve(request, key)

    async def ws_api(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, None)

    async def _serve(self, request: web.Request, key: str | None) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True, compress=False, timeout=CLOSE_TIMEOUT_S)
        transport = request.transport
        await ws.prepare(request)
        self.faults.count("user_ws_connections")
        session = UserSession(ws, transport, self, key)
        self.sessions.add(session)
        pump = asyncio.create_task(session.pump())
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT and key is None:
                    await session.on_request(msg.data)
        finally:
            session.closed = True
            self.sessions.discard(session)
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await pump
        return ws

    def drop_all(self, mode: str | None = None) -> int:
        """Cut every open user-data websocket now (call in the server's loop)."""
        live = [s for s in self.sessions if not s.closed]
        for s in live:
            self._spawn(s.drop(mode or self.faults.config.drop_mode))
        return len(live)

    async def close_all(self, code: int = 1001,
                        message: bytes = b"arbkit emulator shutting down") -> int:
        live = [s for s in self.sessions if not s.closed]
        await asyncio.gather(*(s.close(code, message) for s in live))
        return len(live)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        _TASKS.add(task)
        task.add_done_callback(_TASKS.discard)

    def add_routes(self, app: web.Application) -> None:
        for path in ("/ws-api/v3", "/ws-api/ws-api/v3"):
            app.router.add_get(path, self.ws_api)


_TASKS: set[asyncio.Task] = set()  # fire-and-forget sends/closes (the loop keeps weak refs)
