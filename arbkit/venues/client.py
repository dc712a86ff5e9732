"""ccxt exchange instances as arbkit uses them (rate limiting on, optional emulator URL).

Secrets: API keys are never passed here; public data needs none. Live trading (a later
issue) will read keys from the environment only.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from arbkit.errors import ConfigError


def make_exchange(exchange_id: str, *, url: str | None = None, pro: bool = False,
                  timeout_ms: int = 10_000) -> Any:
    """A ccxt exchange (``ccxt.pro`` when ``pro``), pointed at an emulator when ``url`` is set.

    Parameters
    ----------
    exchange_id : ccxt id, e.g. ``"binance"``.
    url : ``http://127.0.0.1:<port>`` of an arbkit exchange emulator (only ``binance`` is
        emulated); None talks to the real venue.
    pro : websocket client (``ccxt.pro``, asyncio) instead of the sync REST client.

    Examples
    --------
    >>> ex = make_exchange("binance", url="http://127.0.0.1:8765")
    >>> ex.urls["api"]["public"]
    'http://127.0.0.1:8765/api/v3'
    """
    import ccxt
    import ccxt.pro

    module = ccxt.pro if pro else ccxt
    if not hasattr(module, exchange_id):
        raise ConfigError(f"--venue {exchange_id!r}: not a ccxt{'.pro' if pro else ''} "
                          "exchange id (e.g. binance, kraken, okx)")
    ex = getattr(module, exchange_id)({"enableRateLimit": True, "timeout": timeout_ms})
    if url is None:
        return ex
    from arbkit.venues.emulator import point_ccxt_at

    parts = urlsplit(url)
    ws = f"ws://{parts.hostname}:{parts.port}" if parts.port else None
    return point_ccxt_at(ex, url.rstrip("/"), ws if pro else None)
