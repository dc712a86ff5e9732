"""Pure rules of order entry on Binance spot: client order ids, rounding to the venue's
filters, and what an error answer means for an order (booked, not booked, or unknown).

ccxt 4.5 picks its exception class from the HTTP status before the Binance code (a -1015
"too many orders" arrives as ``DDoSProtection``, a -1007 "status unknown" with HTTP 408 as
``RequestTimeout``), so the code is read from the message. The rule (NautilusTrader's): only
a definite refusal is a reject; anything not known to be a refusal is UNKNOWN and is resolved
by looking the order up.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from arbkit.core import types as T

# reject reasons beyond the simulator's (ask_px/inst fields of an EV_ORDER report): one
# list, in core.types (REJECT_TEXT names them in the results)
RJ_FILTER, RJ_VENUE, RJ_RATE_LIMIT, RJ_HALTED = T.RJ_FILTER, T.RJ_VENUE, T.RJ_RATE_LIMIT, T.RJ_HALTED
REJECT_TEXT = {k: T.REJECT_TEXT[k] for k in (RJ_FILTER, RJ_VENUE, RJ_RATE_LIMIT, RJ_HALTED)}

CLIENT_ID_RE = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")
_CODE_RE = re.compile(r'"code"\s*:\s*(-?\d+)')
_SESSION_RE = re.compile(r"^[A-Za-z0-9_-]{1,14}$")
# answers that say the order was not booked
NOT_BOOKED_CODES = {-1013, -1015, -1003, -1021, -1022, -1100, -1101, -1102, -1103, -1104,
                    -1105, -1106, -1111, -1112, -1114, -1115, -1116, -1117, -1121, -1131,
                    -2010, -2014, -2015}
RATE_CODES = {-1003, -1015}
# refusals ccxt raises with the message alone (its exact-message table beats the code)
NOT_BOOKED_MESSAGES = ("Market is closed.", "Order would immediately match and take.",
                       "Order would trigger immediately.", "Rest API trading is not enabled.",
                       "This account may not place or cancel orders.", "Filter failure",
                       "This action is disabled on", "This symbol is restricted",
                       "This symbol is not permitted", "You don't have permission.")
INSUFFICIENT = "insufficient balance"
NO_SUCH_ORDER = -2013

# outcome kinds of a send
BOOKED, REJECTED, UNKNOWN = "booked", "rejected", "unknown"


def client_order_id(session: str, oid: int, attempt: int) -> str:
    """The client order id of attempt ``attempt`` of kernel order ``oid``: ``ak<tag>.<oid>.<n>``
    with ``tag`` the session id (or a 10-hex hash of it when it is long or has characters
    Binance refuses); at most 36 characters.

    >>> client_order_id("live1", 42, 0)
    'aklive1.42.0'
    """
    tag = session if _SESSION_RE.match(session) else hashlib.blake2s(
        session.encode(), digest_size=5).hexdigest()
    cid = f"ak{tag}.{oid}.{attempt}"
    if not CLIENT_ID_RE.match(cid):
        raise ValueError(f"client order id {cid!r} does not fit Binance's pattern")
    return cid


def error_code(exc: BaseException) -> int | None:
    """The Binance error code in a ccxt exception's message, if any."""
    m = _CODE_RE.search(str(exc))
    return int(m.group(1)) if m else None


@dataclass(frozen=True)
class SendOutcome:
    kind: str  # REJECTED | UNKNOWN
    reason: int = T.RJ_NONE
    retry_after_s: float = 0.0
    detail: str = ""


def classify_send_error(exc: BaseException, retry_after: str | None = None) -> SendOutcome:
    """What a failed ``POST /api/v3/order`` means for the order."""
    import ccxt

    code = error_code(exc)
    text = str(exc)
    detail = f"{type(exc).__name__} {code if code is not None else ''}".strip()
    if code == -2010 and "Duplicate order" in text:
        return SendOutcome(UNKNOWN, detail=detail)  # an open order has this id: ours
    if code in RATE_CODES or (code is None and isinstance(exc, ccxt.DDoSProtection)
                              and ("418" in text or "429" in text)):
        return SendOutcome(REJECTED, RJ_RATE_LIMIT, _seconds(retry_after), detail)
    if INSUFFICIENT in text and code in (-2010, None):
        return SendOutcome(REJECTED, T.RJ_BALANCE, detail=detail)
    if code in NOT_BOOKED_CODES or (code is None and any(m in text
                                                          for m in NOT_BOOKED_MESSAGES)):
        return SendOutcome(REJECTED, RJ_VENUE, detail=detail)
    return SendOutcome(UNKNOWN, detail=detail)  # -1007, 5xx pages, timeouts, cut connections


def _seconds(text: str | None) -> float:
    try:
        return max(0.0, float(text)) if text else 1.0
    except ValueError:
        return 1.0


@dataclass(frozen=True)
class Filters:
    """One market's filters from ccxt's market (precision mode TICK_SIZE on binance)."""

    tick: Decimal
    step: Decimal
    min_qty: Decimal
    min_notional: Decimal

    @classmethod
    def of(cls, market: dict) -> Filters:
        limits = market.get("limits") or {}

        def dec(x: object, default: str = "0") -> Decimal:
            return Decimal(str(x)) if x is not None else Decimal(default)

        return cls(tick=dec(market["precision"]["price"]),
                   step=dec(market["precision"]["amount"]),
                   min_qty=dec((limits.get("amount") or {}).get("min")),
                   min_notional=dec((limits.get("cost") or {}).get("min")))

    def round(self, side: int, qty: float, limit_px: float) -> tuple[Decimal, Decimal]:
        """(qty floored to the lot, price to the tick on the safe side: a buy's limit down,
        a sell's up, so the order never accepts a worse price than the intent)."""
        q = (Decimal(repr(qty)) / self.step).to_integral_value(ROUND_FLOOR) * self.step
        mode = ROUND_FLOOR if side > 0 else ROUND_CEILING
        p = (Decimal(repr(limit_px)) / self.tick).to_integral_value(mode) * self.tick
        return q.normalize() if q else Decimal(0), p.normalize()

    def refusal(self, qty: Decimal, px: Decimal) -> str | None:
        """Why the venue would refuse (qty, px), or None."""
        if px <= 0:
            return f"price {px} <= 0"
        if qty <= 0 or qty < self.min_qty:
            return f"quantity {qty} below the lot/min quantity {max(self.step, self.min_qty)}"
        if qty * px < self.min_notional:
            return f"notional {qty * px} below the minimum {self.min_notional}"
        return None
