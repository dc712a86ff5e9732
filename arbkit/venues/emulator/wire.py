"""Binance's JSON shapes that are not rows of a tape: exchange info, errors, intervals.

Field names, nesting and string-encoded decimals follow what api.binance.com and
fapi.binance.com send (2025), trimmed to what a client parses.
"""

from __future__ import annotations

from arbkit.venues.emulator.feed import Market

PERPETUAL_DELIVERY_MS = 4_133_404_800_000  # what Binance puts as a perpetual's delivery date

INTERVAL_MS = {
    "1s": 1_000, "1m": 60_000, "3m": 180_000, "5m": 300_000, "15m": 900_000,
    "30m": 1_800_000, "1h": 3_600_000, "2h": 7_200_000, "4h": 14_400_000,
    "6h": 21_600_000, "8h": 28_800_000, "12h": 43_200_000, "1d": 86_400_000,
    "3d": 259_200_000, "1w": 604_800_000,
}

# Binance error codes used by the emulator (https://developers.binance.com, "Error codes")
TOO_MANY_REQUESTS = -1003
UNKNOWN_ENDPOINT = -1100  # "illegal characters"; Binance itself answers an HTML 404
MANDATORY_PARAM = -1102
BAD_INTERVAL = -1120
BAD_SYMBOL = -1121

RATE_LIMITS = [
    {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
    {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
    {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000},
]


def error_body(code: int, msg: str) -> dict:
    return {"code": code, "msg": msg}


def too_many_requests(retry_after_s: int) -> dict:
    return error_body(TOO_MANY_REQUESTS,
                      f"Too many requests; current limit of IP(127.0.0.1) is 6000 requests per "
                      f"minute. Please use the websocket for live updates to avoid polling the "
                      f"API. Retry after {retry_after_s} s.")


def _filters(m: Market, *, futures: bool) -> list[dict]:
    notional = ({"filterType": "MIN_NOTIONAL", "notional": m.min_notional} if futures else
                {"filterType": "NOTIONAL", "minNotional": m.min_notional,
                 "applyMinToMarket": True, "maxNotional": "9000000.00000000",
                 "applyMaxToMarket": False, "avgPriceMins": 5})
    return [
        {"filterType": "PRICE_FILTER", "minPrice": m.tick_size, "maxPrice": "1000000.00000000",
         "tickSize": m.tick_size},
        {"filterType": "LOT_SIZE", "minQty": m.step_size, "maxQty": "9000.00000000",
         "stepSize": m.step_size},
        {"filterType": "MARKET_LOT_SIZE", "minQty": "0.00000000", "maxQty": "100.00000000",
         "stepSize": "0.00000000"},
        notional,
        {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
    ]


def spot_symbol(m: Market) -> dict:
    """A spot market as ``/api/v3/exchangeInfo`` lists it."""
    return {
        "symbol": m.symbol, "status": "TRADING", "baseAsset": m.base, "baseAssetPrecision": 8,
        "quoteAsset": m.quote, "quotePrecision": 8, "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8, "quoteCommissionPrecision": 8,
        "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT",
                       "TAKE_PROFIT", "TAKE_PROFIT_LIMIT"],
        "icebergAllowed": True, "ocoAllowed": True, "otoAllowed": True,
        "quoteOrderQtyMarketAllowed": True, "allowTrailingStop": True,
        "cancelReplaceAllowed": True, "amendAllowed": True, "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False, "filters": _filters(m, futures=False),
        "permissions": [], "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
    }


def futures_symbol(m: Market) -> dict:
    """A USDⓈ-M perpetual as ``/fapi/v1/exchangeInfo`` lists it."""
    return {
        "symbol": m.symbol, "pair": m.symbol, "contractType": "PERPETUAL",
        "deliveryDate": PERPETUAL_DELIVERY_MS, "onboardDate": 1_569_398_400_000,
        "status": "TRADING", "maintMarginPercent": "2.5000", "requiredMarginPercent": "5.0000",
        "baseAsset": m.base, "quoteAsset": m.quote, "marginAsset": m.quote,
        "pricePrecision": 2, "quantityPrecision": 3, "baseAssetPrecision": 8,
        "quotePrecision": 8, "underlyingType": "COIN", "underlyingSubType": [],
        "triggerProtect": "0.0500", "liquidationFee": "0.012500", "marketTakeBound": "0.05",
        "maxMoveOrderLimit": 10000, "filters": _filters(m, futures=True),
        "orderTypes": ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT",
                       "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"],
        "timeInForce": ["GTC", "IOC", "FOK", "GTX", "GTD"],
    }


def exchange_info(symbols: list[dict], server_ms: int) -> dict:
    return {"timezone": "UTC", "serverTime": server_ms, "rateLimits": RATE_LIMITS,
            "exchangeFilters": [], "symbols": symbols}
