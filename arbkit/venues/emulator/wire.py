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
TIMEOUT = -1007  # "Send status unknown; execution status unknown."
TOO_MANY_ORDERS = -1015
INVALID_TIMESTAMP = -1021
INVALID_SIGNATURE = -1022
UNKNOWN_ENDPOINT = -1100  # "illegal characters"; Binance itself answers an HTML 404
ILLEGAL_CHARS = -1100
MANDATORY_PARAM = -1102
INVALID_TIF = -1115
INVALID_ORDER_TYPE = -1116
INVALID_SIDE = -1117
BAD_INTERVAL = -1120
BAD_SYMBOL = -1121
INVALID_LISTEN_KEY = -1125
BAD_RECV_WINDOW = -1131
FILTER_FAILURE = -1013
NEW_ORDER_REJECTED = -2010
CANCEL_REJECTED = -2011
NO_SUCH_ORDER = -2013
BAD_API_KEY_FMT = -2014
REJECTED_MBX_KEY = -2015

MSG_UNKNOWN_STATUS = ("Timeout waiting for response from backend server. Send status unknown; "
                      "execution status unknown.")
MSG_NO_SUCH_ORDER = "Order does not exist."
MSG_UNKNOWN_ORDER = "Unknown order sent."
MSG_INSUFFICIENT = "Account has insufficient balance for requested action."
MSG_DUPLICATE = "Duplicate order sent."


class ApiError(Exception):
    """A Binance error answer: HTTP ``status`` and the body ``{"code": ..., "msg": ...}``."""

    def __init__(self, code: int, msg: str, status: int = 400,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{code} {msg}")
        self.code, self.msg, self.status, self.headers = code, msg, status, headers


def mandatory(name: str) -> ApiError:
    return ApiError(MANDATORY_PARAM, f"Mandatory parameter '{name}' was not sent, was "
                    "empty/null, or malformed.")


def filter_failure(name: str) -> ApiError:
    return ApiError(FILTER_FAILURE, f"Filter failure: {name}")

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


def too_many_orders(retry_after_s: int) -> ApiError:
    return ApiError(TOO_MANY_ORDERS, "Too many new orders; current limit is 100 orders per "
                    "10 SECOND.", status=429, headers={"Retry-After": str(retry_after_s)})


def banned(retry_after_s: int, until_ms: int) -> ApiError:
    return ApiError(TOO_MANY_REQUESTS, f"Way too many requests; IP(127.0.0.1) banned until "
                    f"{until_ms}. Please use the websocket for live updates to avoid bans.",
                    status=418, headers={"Retry-After": str(retry_after_s)})


# exchangeInfo's fixed filter bounds (the per-market ones come from MarketFeed)
MAX_PRICE = "1000000.00000000"
MAX_QTY = "9000.00000000"
MARKET_MAX_QTY = "100.00000000"
MAX_NOTIONAL = "9000000.00000000"


def _filters(m: Market, *, futures: bool) -> list[dict]:
    notional = ({"filterType": "MIN_NOTIONAL", "notional": m.min_notional} if futures else
                {"filterType": "NOTIONAL", "minNotional": m.min_notional,
                 "applyMinToMarket": True, "maxNotional": MAX_NOTIONAL,
                 "applyMaxToMarket": False, "avgPriceMins": 5})
    return [
        {"filterType": "PRICE_FILTER", "minPrice": m.tick_size, "maxPrice": MAX_PRICE,
         "tickSize": m.tick_size},
        {"filterType": "LOT_SIZE", "minQty": m.step_size, "maxQty": MAX_QTY,
         "stepSize": m.step_size},
        {"filterType": "MARKET_LOT_SIZE", "minQty": "0.00000000", "maxQty": MARKET_MAX_QTY,
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
