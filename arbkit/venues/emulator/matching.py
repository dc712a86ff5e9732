"""Binance's order filters and the walk of one replayed book row by a taking order.

Pure functions on :class:`~decimal.Decimal` (balances and fills stay exact to the venue's
8 decimals). A book side is a list of ``(price, available qty)`` from the touch outwards; what
an order takes is a list of ``(price, qty)`` fills, each a whole number of lots.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

from arbkit.venues.emulator import wire
from arbkit.venues.emulator.feed import Market

E8 = Decimal("0.00000001")
ZERO = Decimal(0)
Fill = tuple[Decimal, Decimal]  # (price, qty)


def d8(x: Decimal) -> str:
    """A decimal as Binance spot writes it: fixed point, 8 places."""
    return format(x.quantize(E8, rounding=ROUND_HALF_UP), "f")


def round8(x: Decimal) -> Decimal:
    return x.quantize(E8, rounding=ROUND_HALF_UP)


def floor_to(x: Decimal, step: Decimal) -> Decimal:
    """``x`` rounded down to a whole number of ``step``."""
    return (x / step).to_integral_value(rounding=ROUND_DOWN) * step


def on_grid(x: Decimal, step: Decimal) -> bool:
    return x % step == 0


@dataclass(frozen=True)
class Filters:
    """One market's filters as ``/api/v3/exchangeInfo`` lists them (see :mod:`wire`)."""

    tick: Decimal
    step: Decimal
    min_notional: Decimal
    max_price: Decimal = Decimal(wire.MAX_PRICE)
    max_qty: Decimal = Decimal(wire.MAX_QTY)
    market_max_qty: Decimal = Decimal(wire.MARKET_MAX_QTY)

    @classmethod
    def of(cls, market: Market) -> Filters:
        return cls(tick=Decimal(market.tick_size), step=Decimal(market.step_size),
                   min_notional=Decimal(market.min_notional))

    def check_price(self, price: Decimal) -> None:
        if price < self.tick or price > self.max_price or not on_grid(price, self.tick):
            raise wire.filter_failure("PRICE_FILTER")

    def check_qty(self, qty: Decimal, *, market: bool) -> None:
        if qty < self.step or qty > self.max_qty or not on_grid(qty, self.step):
            raise wire.filter_failure("LOT_SIZE")
        if market and qty > self.market_max_qty:
            raise wire.filter_failure("MARKET_LOT_SIZE")

    def check_notional(self, notional: Decimal) -> None:
        if notional < self.min_notional:
            raise wire.filter_failure("NOTIONAL")


def available(levels: Sequence[tuple[str, str]], taken: dict[Decimal, Decimal],
              step: Decimal) -> list[Fill]:
    """A replayed side as ``(price, qty left)``: sizes less what earlier orders took from this
    row, rounded down to the lot (a fill is whole lots)."""
    out = []
    for p, q in levels:
        price = Decimal(p)
        left = floor_to(Decimal(q) - taken.get(price, ZERO), step)
        if left > 0:
            out.append((price, left))
    return out


def walk(side: Sequence[Fill], *, buy: bool, limit: Decimal | None, qty: Decimal | None,
         quote_qty: Decimal | None, step: Decimal) -> list[Fill]:
    """The fills of a taking order walking ``side`` (asks for a buy) from the touch.

    ``limit``: stop at levels worse than it (None: a market order). The order wants ``qty``
    of the base asset, or (market orders) to spend/receive ``quote_qty``.
    """
    fills: list[Fill] = []
    want, spend = qty, quote_qty
    for price, size in side:
        if limit is not None and (price > limit if buy else price < limit):
            break
        if want is not None:
            take = min(size, want)
        else:
            assert spend is not None
            take = min(size, floor_to(spend / price, step))
        if take <= 0:
            break
        fills.append((price, take))
        if want is not None:
            want -= take
            if want <= 0:
                break
        else:
            assert spend is not None
            spend -= take * price
    return fills


def cut(fills: list[Fill], ratio: float, step: Decimal) -> list[Fill]:
    """The first ``ratio`` of ``fills``' quantity (whole lots): an injected partial fill."""
    keep = floor_to(sum((q for _, q in fills), ZERO) * Decimal(str(ratio)), step)
    out: list[Fill] = []
    for price, qty in fills:
        if keep <= 0:
            break
        take = min(qty, keep)
        out.append((price, take))
        keep -= take
    return out


def mid(bids: Sequence[Fill], asks: Sequence[Fill]) -> Decimal | None:
    """The book's mid (stands in for Binance's 5-minute average price in NOTIONAL checks of
    market orders); one side when the other is empty."""
    tops = [s[0][0] for s in (bids, asks) if s]
    return sum(tops, ZERO) / len(tops) if tops else None
