"""REST handlers: the public spot endpoints (and futures funding) as Binance answers them.
(The private ones, orders and the account, are in :mod:`~arbkit.venues.emulator.private`.)

Everything is answered "as of" the replay clock's now: the book is the latest quotes row at or
before now, only closed bars and past trades are listed, ``serverTime`` is data time. Faults
(429s, latency) are applied by :func:`rest_middleware` before a handler runs; wrong input gets
Binance's error codes so ccxt maps it to its own exceptions (``-1121`` -> ``BadSymbol``,
``-1100``/``-1102``/``-1120`` -> ``BadRequest``).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Awaitable, Callable

import numpy as np
from aiohttp import web

from arbkit.venues.emulator import wire
from arbkit.venues.emulator.faults import RequestRecord
from arbkit.venues.emulator.feed import ZERO, Market, QuoteTape, fmt
from arbkit.venues.emulator.state import STATE, EmulatorState, dumps

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_INT_RE = re.compile(r"^[0-9]{1,20}$")
NS_PER_MS = 1_000_000


class _Reject(Exception):
    """Answer the request with a Binance error (control flow inside this module only)."""

    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(msg)
        self.code, self.msg, self.status = code, msg, status


def _json(data: object, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(data, status=status, headers=headers, dumps=dumps)


# --------------------------------------------------------------------------- parameters


def _int(request: web.Request, name: str, default: int | None = None) -> int | None:
    text = request.query.get(name)
    if text is None or text == "":
        return default
    if not _INT_RE.match(text):
        raise _Reject(wire.UNKNOWN_ENDPOINT, f"Illegal characters found in parameter '{name}'; "
                      "legal range is '^[0-9]{1,20}$'.")
    return int(text)


def _limit(request: web.Request, default: int, top: int) -> int:
    n = _int(request, "limit", default)
    assert n is not None
    if n < 1:
        raise _Reject(wire.UNKNOWN_ENDPOINT, f"Illegal value {n} for parameter 'limit'.")
    return min(n, top)


def _market(request: web.Request, markets: dict[str, Market]) -> Market:
    name = request.query.get("symbol")
    if not name:
        raise _Reject(wire.MANDATORY_PARAM, "Mandatory parameter 'symbol' was not sent, was "
                      "empty/null, or malformed.")
    if name not in markets:
        raise _Reject(wire.BAD_SYMBOL, "Invalid symbol.")
    return markets[name]


def _markets(request: web.Request, markets: dict[str, Market]) -> list[Market]:
    """``symbol=X``, ``symbols=["X","Y"]`` or all."""
    if "symbol" in request.query:
        return [_market(request, markets)]
    if "symbols" in request.query:
        try:
            names = json.loads(request.query["symbols"])
        except ValueError:
            names = None
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise _Reject(wire.UNKNOWN_ENDPOINT, "Illegal characters found in parameter "
                          "'symbols'; write it as a JSON list: [\"BTCUSDT\",\"ETHUSDT\"]")
        if any(n not in markets for n in names):
            raise _Reject(wire.BAD_SYMBOL, "Invalid symbol.")
        return [markets[n] for n in names]
    return list(markets.values())


def _state(request: web.Request) -> EmulatorState:
    return request.app[STATE]


# --------------------------------------------------------------------------- handlers


async def ping(request: web.Request) -> web.Response:
    return _json({})


async def server_time(request: web.Request) -> web.Response:
    return _json({"serverTime": _state(request).clock.now_ms()})


async def exchange_info(request: web.Request) -> web.Response:
    st = _state(request)
    symbols = [wire.spot_symbol(m) for m in _markets(request, st.markets)]
    return _json(wire.exchange_info(symbols, st.clock.now_ms()))


async def futures_exchange_info(request: web.Request) -> web.Response:
    st = _state(request)
    symbols = [wire.futures_symbol(m) for m in st.futures.values()]
    return _json(wire.exchange_info(symbols, st.clock.now_ms()))


def _book_row(m: Market, now_ns: int) -> int:
    """Index of the latest quotes row at or before now (-1: nothing yet)."""
    return m.quotes.visible(now_ns) - 1 if m.quotes is not None else -1


async def depth(request: web.Request) -> web.Response:
    st = _state(request)
    m = _market(request, st.markets)
    limit = _limit(request, 100, 5000)
    i = _book_row(m, st.clock.now_ns())
    tape = m.quotes
    bids = tape.side(i, "bid")[:limit] if tape is not None else []
    asks = tape.side(i, "ask")[:limit] if tape is not None else []
    return _json({"lastUpdateId": QuoteTape.update_id(i),
                  "bids": [list(x) for x in bids], "asks": [list(x) for x in asks]})


def _book_ticker(m: Market, now_ns: int) -> dict:
    i = _book_row(m, now_ns)
    if i < 0 or m.quotes is None:
        return {"symbol": m.symbol, "bidPrice": ZERO, "bidQty": ZERO, "askPrice": ZERO,
                "askQty": ZERO}
    bp, bq, ap, aq = m.quotes.top(i)
    return {"symbol": m.symbol, "bidPrice": fmt(bp), "bidQty": fmt(bq), "askPrice": fmt(ap),
            "askQty": fmt(aq)}


async def book_ticker(request: web.Request) -> web.Response:
    st = _state(request)
    now = st.clock.now_ns()
    rows = [_book_ticker(m, now) for m in _markets(request, st.markets)]
    one = "symbol" in request.query
    return _json(rows[0] if one else rows)


async def klines(request: web.Request) -> web.Response:
    st = _state(request)
    m = _market(request, st.markets)
    interval = request.query.get("interval")
    if not interval:
        raise _Reject(wire.MANDATORY_PARAM, "Mandatory parameter 'interval' was not sent, was "
                      "empty/null, or malformed.")
    if interval not in wire.INTERVAL_MS:
        raise _Reject(wire.BAD_INTERVAL, "Invalid interval.")
    limit = _limit(request, 500, 1000)
    start, end = _int(request, "startTime"), _int(request, "endTime")
    if m.bars is None:
        return _json([])
    rows = m.bars.klines(wire.INTERVAL_MS[interval] * NS_PER_MS, st.clock.now_ns(), start, end,
                         limit)
    if rows is None:
        base_s = m.bars.interval_ns / 1e9
        raise _Reject(wire.BAD_INTERVAL, f"Invalid interval. (the emulator's {m.symbol} bars "
                      f"are {base_s:g} s: ask for a multiple of that)")
    return _json(rows)


async def trades(request: web.Request) -> web.Response:
    st = _state(request)
    m = _market(request, st.markets)
    limit = _limit(request, 500, 1000)
    if m.trades is None:
        return _json([])
    n = m.trades.visible(st.clock.now_ns())
    return _json([m.trades.rest_trade(i) for i in range(max(0, n - limit), n)])


async def agg_trades(request: web.Request) -> web.Response:
    st = _state(request)
    m = _market(request, st.markets)
    limit = _limit(request, 500, 1000)
    from_id, start, end = (_int(request, k) for k in ("fromId", "startTime", "endTime"))
    tape = m.trades
    if tape is None:
        return _json([])
    n = tape.visible(st.clock.now_ns())
    ok = np.ones(n, dtype=bool)
    if from_id is not None:
        ok &= tape.ids[:n] >= from_id
    if start is not None:
        ok &= tape.time_ms[:n] >= start
    if end is not None:
        ok &= tape.time_ms[:n] <= end
    idx = np.flatnonzero(ok)
    # from an id or a start: the first `limit` after it; otherwise the most recent ones
    chosen = idx[:limit] if (from_id is not None or start is not None) else idx[-limit:]
    return _json([tape.agg_trade(i) for i in chosen])


async def funding_rate(request: web.Request) -> web.Response:
    st = _state(request)
    m = _market(request, st.futures)
    limit = _limit(request, 100, 1000)
    start, end = _int(request, "startTime"), _int(request, "endTime")
    assert m.funding is not None
    return _json(m.funding.rows(m.symbol, st.clock.now_ns(), start, end, limit))


ROUTES: list[tuple[str, Handler]] = [
    ("/api/v3/ping", ping), ("/api/v3/time", server_time),
    ("/api/v3/exchangeInfo", exchange_info), ("/api/v3/depth", depth),
    ("/api/v3/ticker/bookTicker", book_ticker), ("/api/v3/klines", klines),
    ("/api/v3/trades", trades), ("/api/v3/aggTrades", agg_trades),
    ("/fapi/v1/ping", ping), ("/fapi/v1/time", server_time),
    ("/fapi/v1/exchangeInfo", futures_exchange_info), ("/fapi/v1/fundingRate", funding_rate),
]


def add_routes(app: web.Application) -> None:
    for path, handler in ROUTES:
        app.router.add_get(path, handler)


# --------------------------------------------------------------------------- faults


@web.middleware
async def rest_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count and log REST requests, add latency, inject 429s/418s, map errors to Binance JSON."""
    if request.headers.get("Upgrade", "").lower() == "websocket":
        return await handler(request)  # websockets have their own faults (ws.py)
    st = _state(request)
    arrived = time.time()
    n, limited = st.faults.on_rest_request_status(request.path)
    cfg = st.faults.config
    if cfg.latency_ms > 0:
        await asyncio.sleep(cfg.latency_ms / 1000)
    retry = {"Retry-After": str(cfg.retry_after_s)}
    if limited == 429:
        resp: web.StreamResponse = _json(wire.too_many_requests(cfg.retry_after_s), status=429,
                                         headers=retry)
    elif limited == 418:
        err = wire.banned(cfg.retry_after_s, int((arrived + cfg.retry_after_s) * 1000))
        resp = _json(wire.error_body(err.code, err.msg), status=418, headers=retry)
    else:
        resp = await _answer(request, handler)
    st.faults.log_request(RequestRecord(n, arrived, request.method, request.path,
                                        request.query_string, resp.status))
    return resp


async def _answer(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except _Reject as r:
        return _json(wire.error_body(r.code, r.msg), status=r.status)
    except wire.ApiError as err:
        return _json(wire.error_body(err.code, err.msg), status=err.status, headers=err.headers)
    except web.HTTPException as exc:
        # unknown path or method: Binance answers an HTML 404; JSON with a code lets ccxt map
        # it (to BadRequest) and tells the test writer what the emulator does serve
        served = ", ".join(sorted({r.canonical for r in request.app.router.resources()
                                   if r.canonical.startswith(("/api", "/fapi"))}))
        msg = (f"{request.method} {request.path}: not served by the arbkit emulator "
               f"({exc.reason}); served: {served}")
        return _json(wire.error_body(wire.UNKNOWN_ENDPOINT, msg), status=exc.status)
