"""REST handlers of Binance's private spot API: orders, the account, listenKeys.

``TRADE``/``USER_DATA`` endpoints need the API key header and an HMAC-SHA256 signature with a
fresh ``timestamp`` (:mod:`~arbkit.venues.emulator.signed`); ``userDataStream`` needs the key
only. Order faults (:data:`~arbkit.venues.emulator.faults.ORDER_FAULTS`) are applied to
``POST /api/v3/order`` here; server-wide ones (429s, 418 bans, latency) by the REST middleware.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from dataclasses import dataclass
from decimal import Decimal

from aiohttp import web

from arbkit.venues.emulator import private_wire as pw
from arbkit.venues.emulator import signed, wire
from arbkit.venues.emulator.account import ORDER_TYPES, TIME_IN_FORCE, Account, OrderRequest
from arbkit.venues.emulator.clock import ReplayClock
from arbkit.venues.emulator.records import FillRecord, OrderRecord
from arbkit.venues.emulator.state import STATE, EmulatorState, dumps
from arbkit.venues.emulator.userstream import UserStreams

NS_PER_MS = 1_000_000
MAX_MATCH_WAIT_S = 10.0  # an order never waits longer than this for the replay to get there
_DECIMAL_RE = re.compile(r"^([0-9]{1,20})(\.[0-9]{1,20})?$")
_CLIENT_ID_RE = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")
_INT_RE = re.compile(r"^[0-9]{1,20}$")
_BINANCE_TYPES = ("STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT")


@dataclass
class PrivateApi:
    """The account and its user streams, as the handlers see them."""

    account: Account
    streams: UserStreams


PRIVATE = web.AppKey("arbkit_emulator_private", PrivateApi)


def _json(data: object) -> web.Response:
    return web.json_response(data, dumps=dumps)


def _parts(request: web.Request) -> tuple[EmulatorState, PrivateApi]:
    return request.app[STATE], request.app[PRIVATE]


# --------------------------------------------------------------------------- parameters


def _decimal(params: dict[str, str], name: str) -> Decimal | None:
    text = params.get(name)
    if text is None or text == "":
        return None
    if not _DECIMAL_RE.match(text):
        raise wire.ApiError(wire.ILLEGAL_CHARS, f"Illegal characters found in parameter "
                            f"'{name}'; legal range is '^([0-9]{{1,20}})(\\.[0-9]{{1,20}})?$'.")
    return Decimal(text)


def _int(params: dict[str, str], name: str) -> int | None:
    text = params.get(name)
    if text is None or text == "":
        return None
    if not _INT_RE.match(text):
        raise wire.ApiError(wire.ILLEGAL_CHARS, f"Illegal characters found in parameter "
                            f"'{name}'; legal range is '^[0-9]{{1,20}}$'.")
    return int(text)


def _required(params: dict[str, str], name: str) -> str:
    value = params.get(name)
    if not value:
        raise wire.mandatory(name)
    return value


def _not_required(name: str) -> wire.ApiError:
    return wire.ApiError(-1106, f"Parameter '{name}' sent when not required.")


def _client_id(params: dict[str, str], name: str) -> str | None:
    cid = params.get(name)
    if cid is not None and not _CLIENT_ID_RE.match(cid):
        raise wire.ApiError(wire.ILLEGAL_CHARS, f"Illegal characters found in parameter "
                            f"'{name}'; legal range is '^[\\.A-Z\\:/a-z0-9_-]{{1,36}}$'.")
    return cid


def parse_order(params: dict[str, str], symbols: set[str]) -> tuple[OrderRequest, str]:
    """``POST /api/v3/order``'s parameters as an order and its ``newOrderRespType``."""
    symbol = _required(params, "symbol")
    if symbol not in symbols:
        raise wire.ApiError(wire.BAD_SYMBOL, "Invalid symbol.")
    side = _required(params, "side")
    if side not in ("BUY", "SELL"):
        raise wire.ApiError(wire.INVALID_SIDE, "Invalid side.")
    kind = _required(params, "type")
    if kind not in ORDER_TYPES:
        extra = (" (the arbkit emulator takes LIMIT, LIMIT_MAKER and MARKET)"
                 if kind in _BINANCE_TYPES else "")
        raise wire.ApiError(wire.INVALID_ORDER_TYPE, "Invalid orderType." + extra)
    tif = params.get("timeInForce")
    qty, price = _decimal(params, "quantity"), _decimal(params, "price")
    quote_qty = _decimal(params, "quoteOrderQty")
    if kind == "LIMIT":
        if not tif:
            raise wire.mandatory("timeInForce")
        if tif not in TIME_IN_FORCE:
            raise wire.ApiError(wire.INVALID_TIF, "Invalid timeInForce.")
    elif tif:
        raise _not_required("timeInForce")
    if kind == "MARKET":
        if price is not None:
            raise _not_required("price")
        if qty is None and quote_qty is None:
            raise wire.ApiError(wire.MANDATORY_PARAM, "Param 'quantity' or 'quoteOrderQty' "
                                "must be sent, but both were empty/null!")
        if qty is not None and quote_qty is not None:
            raise _not_required("quoteOrderQty")
    else:
        if qty is None:
            raise wire.mandatory("quantity")
        if price is None:
            raise wire.mandatory("price")
        if quote_qty is not None:
            raise _not_required("quoteOrderQty")
    resp_type = params.get("newOrderRespType") or "FULL"
    if resp_type not in pw.RESP_TYPES:
        raise wire.ApiError(wire.ILLEGAL_CHARS, "Illegal characters found in parameter "
                            "'newOrderRespType'; legal range is 'ACK, RESULT, FULL'.")
    req = OrderRequest(symbol=symbol, side=side, type=kind, time_in_force=tif or "GTC",
                       qty=qty, price=price, quote_qty=quote_qty,
                       client_order_id=_client_id(params, "newClientOrderId"))
    return req, resp_type


def _order_ref(params: dict[str, str]) -> tuple[str, int | None, str | None]:
    symbol = _required(params, "symbol")
    order_id = _int(params, "orderId")
    cid = params.get("origClientOrderId") or None
    if order_id is None and cid is None:
        raise wire.ApiError(wire.MANDATORY_PARAM, "Param 'origClientOrderId' or 'orderId' "
                            "must be sent, but both were empty/null!")
    return symbol, order_id, cid


def _limit(params: dict[str, str], default: int, top: int) -> int:
    n = _int(params, "limit") or default
    return min(max(n, 1), top)


def _in_window(ms: int, params: dict[str, str]) -> bool:
    start, end = _int(params, "startTime"), _int(params, "endTime")
    return (start is None or ms >= start) and (end is None or ms <= end)


# --------------------------------------------------------------------------- orders


async def _match_time(clock: ReplayClock, latency_ms: float) -> int:
    """The data time an order arriving now is matched at; while the replay runs, wait until
    it gets there (the client sees the venue's latency)."""
    target = clock.now_ns() + int(latency_ms * NS_PER_MS)
    delay = clock.wall_delay_s(target)
    if latency_ms > 0 and math.isfinite(delay):
        await asyncio.sleep(min(delay, MAX_MATCH_WAIT_S))
    return target


async def new_order(request: web.Request) -> web.StreamResponse:
    st, pv = _parts(request)
    arrived = time.time()
    params = await signed.signed_params(request, pv.account.config)
    _, fault = st.faults.on_order_request()
    cfg = st.faults.config
    if fault == "rate_limit":
        raise wire.too_many_orders(cfg.retry_after_s)
    if fault == "ban":
        st.faults.ban(cfg.retry_after_s)
        raise wire.banned(cfg.retry_after_s, int((time.time() + cfg.retry_after_s) * 1000))
    req, resp_type = parse_order(params, set(st.markets))
    unknown = wire.ApiError(wire.TIMEOUT, wire.MSG_UNKNOWN_STATUS,
                            status=cfg.unknown_http_status)
    if fault == "reject":
        raise wire.ApiError(cfg.reject_code, cfg.reject_msg)
    if fault == "unknown_not_booked":
        raise unknown
    if fault == "server_error_not_booked":
        return _gateway_error(cfg.server_error_status)
    match_ns = await _match_time(st.clock, pv.account.config.order_latency_ms)
    ratio = cfg.partial_fill_ratio if fault == "partial_fill" else None
    order = pv.account.submit(req, match_ns, partial_ratio=ratio, received_wall_s=arrived)
    if fault == "unknown_booked":
        pv.account.mark_answer(order.order_id, "unknown")
        raise unknown
    if fault == "server_error_booked":
        pv.account.mark_answer(order.order_id, "unknown")
        return _gateway_error(cfg.server_error_status)
    if fault in ("hang_after_accept", "drop_after_accept"):
        pv.account.mark_answer(order.order_id, "lost")
        if fault == "hang_after_accept":
            await asyncio.sleep(cfg.order_hang_s)
        if request.transport is not None:
            request.transport.abort()  # the venue booked it; the client never hears
        return web.Response(status=499)
    return _json(pw.order_result(order, resp_type))


def _gateway_error(status: int) -> web.Response:
    """What a load balancer answers when the backend is slow or down: HTML, no Binance code."""
    return web.Response(status=status, content_type="text/html",
                        text=f"<html><body><h1>{status} Service Unavailable</h1></body></html>")


async def query_order(request: web.Request) -> web.Response:
    _, pv = _parts(request)
    symbol, order_id, cid = _order_ref(await signed.signed_params(request, pv.account.config))
    order = pv.account.find(symbol, order_id, cid)
    if order is None:
        raise wire.ApiError(wire.NO_SUCH_ORDER, wire.MSG_NO_SUCH_ORDER)
    return _json(pw.order_json(order))


async def cancel_order(request: web.Request) -> web.Response:
    _, pv = _parts(request)
    params = await signed.signed_params(request, pv.account.config)
    symbol, order_id, cid = _order_ref(params)
    new_cid = _client_id(params, "newClientOrderId")
    return _json(pw.cancel_json(pv.account.cancel(symbol, order_id, cid, new_cid)))


async def cancel_open_orders(request: web.Request) -> web.Response:
    _, pv = _parts(request)
    params = await signed.signed_params(request, pv.account.config)
    symbol = _required(params, "symbol")
    open_now = pv.account.open_orders(symbol)
    if not open_now:
        raise wire.ApiError(wire.CANCEL_REJECTED, wire.MSG_UNKNOWN_ORDER)
    done = [pv.account.cancel(symbol, o.order_id, None) for o in open_now]
    return _json([pw.cancel_json(o) for o in done])


async def open_orders(request: web.Request) -> web.Response:
    st, pv = _parts(request)
    params = await signed.signed_params(request, pv.account.config)
    symbol = params.get("symbol") or None
    if symbol is not None and symbol not in st.markets:
        raise wire.ApiError(wire.BAD_SYMBOL, "Invalid symbol.")
    return _json([pw.order_json(o) for o in pv.account.open_orders(symbol)])


async def all_orders(request: web.Request) -> web.Response:
    _, pv = _parts(request)
    params = await signed.signed_params(request, pv.account.config)
    symbol = _required(params, "symbol")
    from_id = _int(params, "orderId")
    rows: list[OrderRecord] = [o for o in pv.account.orders(symbol)
                               if (from_id is None or o.order_id >= from_id)
                               and _in_window(o.time_ms, params)]
    limit = _limit(params, 500, 1000)
    rows = rows[:limit] if from_id is not None else rows[-limit:]
    return _json([pw.order_json(o) for o in rows])


# --------------------------------------------------------------------------- account


async def account(request: web.Request) -> web.Response:
    st, pv = _parts(request)
    params = await signed.signed_params(request, pv.account.config)
    omit = params.get("omitZeroBalances", "false").lower() == "true"
    return _json(pw.account_json(pv.account.balances(),
                                 taker_fee=Decimal(pv.account.config.taker_fee_rate),
                                 update_ms=pv.account.update_ms, omit_zero=omit))


async def my_trades(request: web.Request) -> web.Response:
    _, pv = _parts(request)
    params = await signed.signed_params(request, pv.account.config)
    symbol = _required(params, "symbol")
    order_id, from_id = _int(params, "orderId"), _int(params, "fromId")
    rows: list[FillRecord] = [f for f in pv.account.trades(symbol)
                              if (order_id is None or f.order_id == order_id)
                              and (from_id is None or f.trade_id >= from_id)
                              and _in_window(f.time_ms, params)]
    limit = _limit(params, 500, 1000)
    rows = rows[:limit] if (from_id is not None or "startTime" in params) else rows[-limit:]
    return _json([pw.trade_json(f) for f in rows])


async def listen_key(request: web.Request) -> web.Response:
    _, pv = _parts(request)
    params = await signed.keyed_params(request, pv.account.config)
    if request.method == "POST":
        return _json({"listenKey": pv.streams.create_key()})
    key = _required(params, "listenKey")
    if request.method == "PUT":
        pv.streams.keepalive(key)
    else:
        pv.streams.delete(key)
    return _json({})


ROUTES = [
    ("POST", "/api/v3/order", new_order), ("GET", "/api/v3/order", query_order),
    ("DELETE", "/api/v3/order", cancel_order), ("GET", "/api/v3/openOrders", open_orders),
    ("DELETE", "/api/v3/openOrders", cancel_open_orders),
    ("GET", "/api/v3/allOrders", all_orders), ("GET", "/api/v3/account", account),
    ("GET", "/api/v3/myTrades", my_trades), ("POST", "/api/v3/userDataStream", listen_key),
    ("PUT", "/api/v3/userDataStream", listen_key),
    ("DELETE", "/api/v3/userDataStream", listen_key),
]


def add_routes(app: web.Application, api: PrivateApi) -> None:
    app[PRIVATE] = api
    for method, path, handler in ROUTES:
        app.router.add_route(method, path, handler)
