"""What the venue keeps about its account: orders, fills and balances, as immutable records.

These are both the emulator's state (an order's record is replaced on every change) and the
inspection API a test reads (``emu.account.orders()``): every order the venue booked, with
its client id, status, fills and times, and how its answer went (``answer``).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

OPEN_STATUSES = ("NEW", "PARTIALLY_FILLED")
SOURCES = ("api", "hand")  # sent by a client through the REST API / placed "by hand" (a test)
# what the client that sent an order was told
ANSWERS = ("sent", "lost", "unknown")  # the order's JSON / nothing (timeout, cut) / -1007


@dataclass(frozen=True)
class FillRecord:
    """One fill of one of the account's orders (a row of ``/api/v3/myTrades``)."""

    trade_id: int
    order_id: int
    client_order_id: str
    symbol: str
    side: str  # "BUY" | "SELL"
    price: Decimal
    qty: Decimal
    quote_qty: Decimal
    commission: Decimal
    commission_asset: str
    time_ms: int  # data time of the match
    is_maker: bool = False

    @property
    def is_buyer(self) -> bool:
        return self.side == "BUY"


@dataclass(frozen=True)
class OrderRecord:
    """One order the venue booked, as it stands (a snapshot: records are never mutated).

    ``time_ms``/``update_ms`` are data times (the replay clock, as Binance's ``time`` and
    ``updateTime``); ``received_wall_s`` is ``time.time()`` when the request arrived.
    """

    order_id: int
    client_order_id: str
    symbol: str
    side: str  # "BUY" | "SELL"
    type: str  # "LIMIT" | "LIMIT_MAKER" | "MARKET"
    time_in_force: str  # "GTC" | "IOC" | "FOK" ("GTC" for market orders, as Binance lists them)
    price: Decimal  # 0 for market orders
    orig_qty: Decimal
    orig_quote_qty: Decimal
    executed_qty: Decimal
    cum_quote: Decimal
    status: str  # NEW | PARTIALLY_FILLED | FILLED | CANCELED | EXPIRED
    time_ms: int
    update_ms: int
    received_wall_s: float
    fills: tuple[FillRecord, ...] = ()
    source: str = "api"
    answer: str = "sent"
    cancel_client_order_id: str | None = None

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def side_sign(self) -> int:
        """+1 buy, -1 sell (arbkit's side convention)."""
        return 1 if self.side == "BUY" else -1


@dataclass(frozen=True)
class Balance:
    """One asset of the account."""

    free: Decimal
    locked: Decimal

    @property
    def total(self) -> Decimal:
        return self.free + self.locked
