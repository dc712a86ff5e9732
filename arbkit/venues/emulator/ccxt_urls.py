"""Point a real ccxt ``binance`` client (sync, async or ``ccxt.pro``) at the emulator.

Every URL of ``exchange.urls['api']`` is rewritten to 127.0.0.1, so nothing the client does
can leave the machine: endpoints the emulator does not serve answer a Binance-style 404
(``ccxt.BadRequest``). REST keeps Binance's paths (``/api/v3``, ``/fapi/v1``, ``/sapi/v1``
...). Websocket URLs keep their host's first label as a path prefix
(``wss://stream.binance.com:9443/ws`` -> ``ws://127.0.0.1:<port>/stream/ws``) because ccxt.pro
tells spot connections from futures ones by ``/stream`` in the URL: without it, spot messages
of a symbol that is also a perpetual (``BTCUSDT``) would be filed under the perpetual.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from arbkit.errors import ConfigError

LOOPBACK = ("127.0.0.1", "localhost", "::1")
MARKET_TYPES = ("spot", "linear")


def _loopback(url: str, schemes: tuple[str, ...], what: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in schemes or parts.hostname not in LOOPBACK:
        raise ConfigError(f"point_ccxt_at: {what}={url!r} must be {schemes[0]}://127.0.0.1:<port>"
                          " (the emulator listens on loopback only; a real host here would "
                          "send test traffic to the internet)")
    return url.rstrip("/")


def _rest_url(url: str, base: str) -> str:
    return base + urlsplit(url).path


def _ws_url(url: str, base: str) -> str:
    parts = urlsplit(url)
    label = (parts.hostname or "ws").split(".")[0]
    return f"{base}/{label}{parts.path}"


def _rewrite_ws(node: dict, base: str) -> None:
    for key, value in node.items():
        if isinstance(value, str) and value.startswith(("ws://", "wss://")):
            node[key] = _ws_url(value, base)
        elif isinstance(value, dict):
            _rewrite_ws(value, base)


def point_ccxt_at(exchange: Any, base_http_url: str, base_ws_url: str | None = None, *,
                  market_types: Sequence[str] = MARKET_TYPES) -> Any:
    """Send every request of a ccxt ``binance`` instance to the emulator; returns it.

    Parameters
    ----------
    exchange
        ``ccxt.binance()``, ``ccxt.async_support.binance()`` or ``ccxt.pro.binance()``.
    base_http_url
        The emulator's ``http://127.0.0.1:<port>``.
    base_ws_url
        The emulator's ``ws://127.0.0.1:<port>``; required for ``ccxt.pro`` instances.
    market_types
        What ``load_markets`` fetches: ``spot`` (``/api/v3/exchangeInfo``) and ``linear``
        (``/fapi/v1/exchangeInfo``, perpetuals of markets with funding data).

    Notes
    -----
    Also switched off because they call endpoints the emulator does not serve (or need keys):
    currencies (``sapi/capital/config/getall``), margin pairs, the time-difference probe.

    Examples
    --------
    >>> import ccxt
    >>> ex = point_ccxt_at(ccxt.binance(), "http://127.0.0.1:8765")
    >>> ex.urls["api"]["public"]
    'http://127.0.0.1:8765/api/v3'
    """
    if not str(getattr(exchange, "id", "")).startswith("binance"):
        raise ConfigError(f"point_ccxt_at: exchange id {getattr(exchange, 'id', None)!r}; the "
                          "emulator speaks Binance's API: pass ccxt.binance() or "
                          "ccxt.pro.binance()")
    bad = [t for t in market_types if t not in MARKET_TYPES]
    if bad or not market_types:
        raise ConfigError(f"point_ccxt_at: market_types={list(market_types)}; the emulator "
                          f"serves {', '.join(MARKET_TYPES)}")
    http = _loopback(base_http_url, ("http",), "base_http_url")
    api = exchange.urls["api"]
    for key, value in list(api.items()):
        if isinstance(value, str) and value.startswith(("http://", "https://")):
            api[key] = _rest_url(value, http)
    if isinstance(api.get("ws"), dict):
        if base_ws_url is None:
            raise ConfigError("point_ccxt_at: this is a ccxt.pro instance; pass base_ws_url "
                              "(the emulator's ws://127.0.0.1:<port>) too")
        _rewrite_ws(api["ws"], _loopback(base_ws_url, ("ws",), "base_ws_url"))
    exchange.options["fetchMarkets"] = {"types": list(market_types), "loadAllOptions": False}
    exchange.options["fetchCurrencies"] = False
    exchange.options["fetchMargins"] = False
    exchange.options["adjustForTimeDifference"] = False
    return exchange
