"""Binance's request security: API key, HMAC-SHA256 ``signature``, ``timestamp`` and
``recvWindow``, for REST (``USER_DATA``/``TRADE`` and ``USER_STREAM`` endpoints) and for the
websocket API's signed requests.

Timing is checked against this machine's wall clock, not the replay clock: the client signs
with its own clock (ccxt's ``nonce()``), and Binance compares that with its server time. A
request is refused with ``-1021`` when its ``timestamp`` is more than ``recvWindow`` ms old
(default 5000, at most 60000) or more than 1000 ms ahead. REST latency injected by the fault
config delays the check too, so a slow enough link makes a request stale, as on Binance.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Mapping
from urllib.parse import parse_qsl

from aiohttp import web

from arbkit.venues.emulator import wire
from arbkit.venues.emulator.config import AccountConfig

DEFAULT_RECV_WINDOW_MS = 5000
MAX_RECV_WINDOW_MS = 60_000
AHEAD_MS = 1000
_SIG_RE = re.compile(r"(^|&)signature=[^&]*")
_INT_RE = re.compile(r"^[0-9]{1,20}$")


def _api_key(request: web.Request, account: AccountConfig) -> None:
    key = request.headers.get("X-MBX-APIKEY")
    if not key:
        raise wire.ApiError(wire.BAD_API_KEY_FMT, "API-key format invalid.", status=401)
    if not hmac.compare_digest(key, account.api_key):
        raise wire.ApiError(wire.REJECTED_MBX_KEY,
                            "Invalid API-key, IP, or permissions for action.", status=401)


async def _raw(request: web.Request) -> tuple[str, str]:
    """The query string and body exactly as sent (the signature covers the raw bytes)."""
    query = request.raw_path.partition("?")[2]
    body = await request.text() if request.can_read_body else ""
    return query, body


def _params(query: str, body: str) -> dict[str, str]:
    params = dict(parse_qsl(query, keep_blank_values=True))
    params.update(parse_qsl(body, keep_blank_values=True))
    return params


def check_time(params: Mapping[str, object]) -> None:
    """``timestamp`` and ``recvWindow`` as Binance checks them (against wall time)."""
    ts_text = str(params.get("timestamp", ""))
    if not _INT_RE.match(ts_text):
        raise wire.mandatory("timestamp")
    window_text = str(params.get("recvWindow", DEFAULT_RECV_WINDOW_MS))
    if not _INT_RE.match(window_text):
        raise wire.ApiError(wire.ILLEGAL_CHARS, "Illegal characters found in parameter "
                            "'recvWindow'; legal range is '^[0-9]{1,20}$'.")
    window = int(window_text)
    if window > MAX_RECV_WINDOW_MS:
        raise wire.ApiError(wire.BAD_RECV_WINDOW, "recvWindow must be less than 60000")
    now_ms = int(time.time() * 1000)
    ts = int(ts_text)
    if ts > now_ms + AHEAD_MS:
        raise wire.ApiError(wire.INVALID_TIMESTAMP, "Timestamp for this request was 1000ms "
                            "ahead of the server's time.")
    if now_ms - ts > window:
        raise wire.ApiError(wire.INVALID_TIMESTAMP,
                            "Timestamp for this request is outside of the recvWindow.")


def _check_signature(payload: str, signature: str, secret: str) -> None:
    want = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(want, signature.lower()):
        raise wire.ApiError(wire.INVALID_SIGNATURE, "Signature for this request is not valid.")


async def signed_params(request: web.Request, account: AccountConfig) -> dict[str, str]:
    """The parameters of a signed (``TRADE``/``USER_DATA``) REST request, or ApiError."""
    _api_key(request, account)
    query, body = await _raw(request)
    params = _params(query, body)
    signature = params.pop("signature", "")
    if not signature:
        raise wire.mandatory("signature")
    # totalParams = query string + body, as sent, without the signature itself
    payload = _SIG_RE.sub("", query).lstrip("&") + _SIG_RE.sub("", body).lstrip("&")
    _check_signature(payload, signature, account.api_secret)
    check_time(params)
    return params


async def keyed_params(request: web.Request, account: AccountConfig) -> dict[str, str]:
    """The parameters of a ``USER_STREAM`` request (API key, no signature)."""
    _api_key(request, account)
    return _params(*await _raw(request))


def check_ws_signed(params: Mapping[str, object], account: AccountConfig) -> None:
    """A websocket API request signed with HMAC: ``apiKey``, ``timestamp``, ``signature``
    over the other parameters sorted by name (``k=v&...``), as Binance checks it."""
    key = str(params.get("apiKey", ""))
    if not key:
        raise wire.mandatory("apiKey")
    if not hmac.compare_digest(key, account.api_key):
        raise wire.ApiError(wire.REJECTED_MBX_KEY,
                            "Invalid API-key, IP, or permissions for action.", status=401)
    signature = str(params.get("signature", ""))
    if not signature:
        raise wire.mandatory("signature")
    rest = {k: v for k, v in params.items() if k != "signature"}
    payload = "&".join(f"{k}={_ws_value(v)}" for k, v in sorted(rest.items()))
    _check_signature(payload, signature, account.api_secret)
    check_time(rest)


def _ws_value(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)
