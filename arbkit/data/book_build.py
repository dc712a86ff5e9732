"""A price-level book side for importers that rebuild depth from diffs (absolute sizes, 0 =
delete): Binance depth streams, Tardis ``incremental_book_L2``, the exchange emulator."""

from __future__ import annotations

from bisect import bisect_left, insort

import numpy as np


class BookSide:
    """One side of a book: price -> qty plus the prices kept sorted ascending."""

    def __init__(self, is_bid: bool) -> None:
        self.is_bid = is_bid
        self.qty: dict[float, float] = {}
        self.prices: list[float] = []

    def reset(self, prices: np.ndarray | list[float] = (), qtys: np.ndarray | list[float] = ()) -> None:
        self.qty = {float(p): float(q) for p, q in zip(prices, qtys) if q > 0}
        self.prices = sorted(self.qty)

    def set(self, price: float, qty: float) -> None:
        """Absolute size at ``price``; 0 deletes the level."""
        if qty == 0.0:
            if self.qty.pop(price, None) is not None:
                del self.prices[bisect_left(self.prices, price)]
        else:
            if price not in self.qty:
                insort(self.prices, price)
            self.qty[price] = qty

    def top(self, n: int, out: list[float]) -> bool:
        """Append (px, qty) of the best ``n`` levels (NaN pads); False if the side is empty."""
        px = self.prices[: -n - 1 : -1] if self.is_bid else self.prices[:n]
        for p in px:
            out += (p, self.qty[p])
        out += [np.nan] * (2 * (n - len(px)))
        return bool(px)

    def levels(self, n: int) -> list[tuple[float, float]]:
        """The best ``n`` (price, qty) levels, best first."""
        px = self.prices[: -n - 1 : -1] if self.is_bid else self.prices[:n]
        return [(p, self.qty[p]) for p in px]
