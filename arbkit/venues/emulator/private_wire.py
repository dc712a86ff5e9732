"""Binance's JSON shapes of the private API: orders, fills, the account, user-data events.

Field names, order and string-encoded decimals follow api.binance.com's spot API (2025):
``POST /api/v3/order`` (``newOrderRespType`` ACK, RESULT, FULL), ``GET /api/v3/order``,
``DELETE /api/v3/order``, ``GET /api/v3/account``, ``GET /api/v3/myTrades``, and the user-data
stream's ``executionReport`` and ``outboundAccountPosition``.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from arbkit.venues.emulator.matching import d8
from arbkit.venues.emulator.records import Balance, FillRecord, OrderRecord

STP = "EXPIRE_MAKER"  # the self-trade prevention mode Binance lists by default
RESP_TYPES = ("ACK", "RESULT", "FULL")


def _price(o: OrderRecord) -> str:
    return d8(o.price)


def order_json(o: OrderRecord) -> dict:
    """An order as ``GET /api/v3/order``, ``openOrders`` and ``allOrders`` list it."""
    return {"symbol": o.symbol, "orderId": o.order_id, "orderListId": -1,
            "clientOrderId": o.client_order_id, "price": _price(o),
            "origQty": d8(o.orig_qty), "executedQty": d8(o.executed_qty),
            "cummulativeQuoteQty": d8(o.cum_quote), "status": o.status,
            "timeInForce": o.time_in_force, "type": o.type, "side": o.side,
            "stopPrice": d8(Decimal(0)), "icebergQty": d8(Decimal(0)), "time": o.time_ms,
            "updateTime": o.update_ms, "isWorking": True, "workingTime": o.time_ms,
            "origQuoteOrderQty": d8(o.orig_quote_qty), "selfTradePreventionMode": STP}


def order_result(o: OrderRecord, resp_type: str) -> dict:
    """The answer to ``POST /api/v3/order`` in ``newOrderRespType`` ``resp_type``."""
    ack = {"symbol": o.symbol, "orderId": o.order_id, "orderListId": -1,
           "clientOrderId": o.client_order_id, "transactTime": o.time_ms}
    if resp_type == "ACK":
        return ack
    result = {**ack, "price": _price(o), "origQty": d8(o.orig_qty),
              "executedQty": d8(o.executed_qty), "origQuoteOrderQty": d8(o.orig_quote_qty),
              "cummulativeQuoteQty": d8(o.cum_quote), "status": o.status,
              "timeInForce": o.time_in_force, "type": o.type, "side": o.side,
              "workingTime": o.time_ms, "selfTradePreventionMode": STP}
    if resp_type == "RESULT":
        return result
    return {**result, "fills": [{"price": d8(f.price), "qty": d8(f.qty),
                                 "commission": d8(f.commission),
                                 "commissionAsset": f.commission_asset, "tradeId": f.trade_id}
                                for f in o.fills]}


def cancel_json(o: OrderRecord) -> dict:
    """The answer to ``DELETE /api/v3/order``."""
    return {"symbol": o.symbol, "origClientOrderId": o.client_order_id,
            "orderId": o.order_id, "orderListId": -1,
            "clientOrderId": o.cancel_client_order_id, "transactTime": o.update_ms,
            "price": _price(o), "origQty": d8(o.orig_qty), "executedQty": d8(o.executed_qty),
            "origQuoteOrderQty": d8(o.orig_quote_qty), "cummulativeQuoteQty": d8(o.cum_quote),
            "status": o.status, "timeInForce": o.time_in_force, "type": o.type,
            "side": o.side, "selfTradePreventionMode": STP}


def trade_json(f: FillRecord) -> dict:
    """A fill as ``GET /api/v3/myTrades`` lists it."""
    return {"symbol": f.symbol, "id": f.trade_id, "orderId": f.order_id, "orderListId": -1,
            "price": d8(f.price), "qty": d8(f.qty), "quoteQty": d8(f.quote_qty),
            "commission": d8(f.commission), "commissionAsset": f.commission_asset,
            "time": f.time_ms, "isBuyer": f.is_buyer, "isMaker": f.is_maker,
            "isBestMatch": True}


def account_json(balances: Mapping[str, Balance], *, taker_fee: Decimal, update_ms: int,
                 omit_zero: bool) -> dict:
    """``GET /api/v3/account``."""
    bps = int(taker_fee * 10_000)
    rows = [{"asset": a, "free": d8(b.free), "locked": d8(b.locked)}
            for a, b in sorted(balances.items()) if not (omit_zero and b.total == 0)]
    return {"makerCommission": bps, "takerCommission": bps, "buyerCommission": 0,
            "sellerCommission": 0,
            "commissionRates": {"maker": d8(taker_fee), "taker": d8(taker_fee),
                                "buyer": d8(Decimal(0)), "seller": d8(Decimal(0))},
            "canTrade": True, "canWithdraw": True, "canDeposit": True, "brokered": False,
            "requireSelfTradePrevention": False, "preventSor": False,
            "updateTime": update_ms, "accountType": "SPOT", "balances": rows,
            "permissions": ["SPOT"], "uid": 1}


def execution_report(o: OrderRecord, exec_type: str, event_ms: int,
                     fill: FillRecord | None = None) -> dict:
    """An ``executionReport`` of the user-data stream (``x`` = ``exec_type``)."""
    canceled = exec_type == "CANCELED"
    return {
        "e": "executionReport", "E": event_ms, "s": o.symbol,
        "c": o.cancel_client_order_id if canceled else o.client_order_id, "S": o.side,
        "o": o.type, "f": o.time_in_force, "q": d8(o.orig_qty), "p": _price(o),
        "P": d8(Decimal(0)), "F": d8(Decimal(0)), "g": -1,
        "C": o.client_order_id if canceled else "", "x": exec_type, "X": o.status,
        "r": "NONE", "i": o.order_id,
        "l": d8(fill.qty) if fill else d8(Decimal(0)),
        "z": d8(o.executed_qty), "L": d8(fill.price) if fill else d8(Decimal(0)),
        "n": d8(fill.commission) if fill else "0",
        "N": fill.commission_asset if fill else None,
        "T": fill.time_ms if fill else o.update_ms, "t": fill.trade_id if fill else -1,
        "I": 0, "w": o.is_open, "m": False, "M": False, "O": o.time_ms,
        "Z": d8(o.cum_quote), "Y": d8(fill.quote_qty) if fill else d8(Decimal(0)),
        "Q": d8(o.orig_quote_qty), "W": o.time_ms, "V": STP,
    }


def account_position(balances: Mapping[str, Balance], event_ms: int) -> dict:
    """An ``outboundAccountPosition`` event: the assets an order changed, as they are now."""
    return {"e": "outboundAccountPosition", "E": event_ms, "u": event_ms,
            "B": [{"a": a, "f": d8(b.free), "l": d8(b.locked)}
                  for a, b in sorted(balances.items())]}
