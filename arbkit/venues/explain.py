"""A ccxt exception as one line that says what happened and what to change.

ccxt's messages are a method, a URL and a raw body (``binance GET http://...``: a refused
connection says nothing more). Every venue error that reaches a user or a feed's statistics
goes through :func:`one_line` so it reads the same everywhere.
"""

from __future__ import annotations

import re
from typing import Any

MAX_DETAIL = 200
_BODY_MSG = re.compile(r'"msg"\s*:\s*"((?:[^"\\]|\\.)*)"')


def _detail(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    body = _BODY_MSG.search(text)  # a Binance-style JSON error body: its message says it all
    if body is not None:
        text = body.group(1)
    cause = exc.__cause__ or exc.__context__
    if cause is not None and str(cause) and str(cause) not in text:
        text += f" ({' '.join(str(cause).split())})"
    return text[:MAX_DETAIL] + ("..." if len(text) > MAX_DETAIL else "")


def hint(exc: BaseException, *, url: str | None = None) -> str:
    """What to change for a ccxt error (empty when there is nothing better than retrying)."""
    import ccxt

    where = f"the emulator at {url}" if url else "the venue"
    if isinstance(exc, ccxt.DDoSProtection | ccxt.RateLimitExceeded):
        return (f"{where} is rate limiting (HTTP 429): wait and rerun (downloads resume), or "
                "ask less often")
    if isinstance(exc, ccxt.RequestTimeout):
        return f"{where} did not answer in time: check the network, or raise the timeout"
    if isinstance(exc, ccxt.BadSymbol):
        return "check --symbols (the unified form, e.g. BTC/USDT; BTC/USDT:USDT for a perpetual)"
    if isinstance(exc, ccxt.AuthenticationError | ccxt.PermissionDenied):
        return "this call needs API keys; public market data does not"
    if isinstance(exc, ccxt.NetworkError):
        if url:
            return (f"cannot reach {url}: is `arbkit emulator serve` running on that port? "
                    "check --url / $ARBKIT_VENUE_URL")
        return "cannot reach the venue: check the network (or point --url at an emulator)"
    if isinstance(exc, ccxt.NotSupported):
        return "ccxt does not support this call on this venue: pick another --venue or --kind"
    if isinstance(exc, ccxt.BadRequest | ccxt.ExchangeError):
        return "the venue refused the request: change what it names"
    return ""


def one_line(exc: BaseException, *, action: str = "", url: str | None = None,
             advice: str | None = None) -> str:
    """``"<action>: <ErrorClass>: <message>; <hint>"`` on one line (``advice`` replaces the
    generic hint when the caller knows better).

    Examples
    --------
    >>> import ccxt
    >>> one_line(ccxt.DDoSProtection("binance 429"), action="fetch_order_book BTC/USDT")
    'fetch_order_book BTC/USDT: DDoSProtection: binance 429; the venue is rate limiting (HTTP 429): wait and rerun (downloads resume), or ask less often'
    """
    head = f"{action}: " if action else ""
    line = f"{head}{type(exc).__name__}: {_detail(exc)}"
    more = hint(exc, url=url) if advice is None else advice
    return f"{line}; {more}" if more else line


def is_retryable(exc: Any) -> bool:
    """A network error, timeout or rate limit: the same call may succeed later."""
    import ccxt

    return isinstance(exc, ccxt.NetworkError)


def local_url(exchange: Any) -> str | None:
    """``http://127.0.0.1:<port>`` when a ccxt instance points at a local emulator, else None
    (the hints then speak of the venue, not of an emulator)."""
    from urllib.parse import urlsplit

    api = getattr(exchange, "urls", {}).get("api", {})
    public = api.get("public") if isinstance(api, dict) else None
    if not isinstance(public, str):
        return None
    parts = urlsplit(public)
    if parts.hostname in ("127.0.0.1", "localhost", "::1") and parts.port:
        return f"{parts.scheme}://{parts.hostname}:{parts.port}"
    return None
