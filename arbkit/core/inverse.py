"""Inverse (coin-margined) perpetuals: contracts of a fixed quote value, PnL in the coin.

A contract is worth ``cv`` units of the quote currency (100 USD on Binance COIN-M BTCUSD_PERP);
orders and the book's sizes are in contracts. Holding ``N`` contracts opened at ``P0`` and
closed at ``P1`` earns ``N x cv x (1/P0 - 1/P1)`` coins (long). Valued in the quote currency at
``P1``, that is ``q0 x (P1 - P0)`` with ``q0 = N x cv / P0``: an inverse position is a linear
one of ``q0`` coins, fixed by the prices it was opened at. So the kernel keeps, per inverse
instrument, ``contracts`` (the venue's count) and ``pos`` = that base-equivalent ``q0``, and
routes, risk and equity use ``pos`` exactly like a linear leg's. Each round trip keeps its own
contracts and base-equivalent on the leg (``route.ctr_*``, ``vp_*``): its closing fills reduce
*its* position at *its* average, so a round trip that closes its contracts holds exactly 0
coins, and the instrument's ``pos`` is the sum of the round trips' (what the account identity
needs when several routes share one inverse perpetual).

Settlement: realised PnL, fees (``N x cv / P x fee rate`` coins) and funding
(``-N x cv / mark x rate`` coins, longs pay a positive rate) are valued in the quote
currency at the fill or mark price of their moment (``N x cv x fee rate``, ``-N x cv x rate``).
What holding those coins afterwards would add or lose is not modelled (docs/config.md).
"""

from __future__ import annotations

import math

from arbkit.core.jit import njit


@njit
def to_contracts(held, held_be, cv, lot, side, qty, px) -> float:
    """A base-equivalent quantity as whole lots of contracts, for a round trip holding
    ``held`` contracts worth ``held_be`` coins (its own position on that leg). A fill against
    that position reduces it at its average (so closing what it holds closes exactly that
    many contracts); beyond it, and for opening orders, at the decision price ``px``."""
    if held != 0.0 and side * held < 0.0:
        base = abs(held_be)
        if qty <= base:
            n = qty * abs(held) / base
        else:
            n = abs(held) + (qty - base) * px / cv
    else:
        n = qty * px / cv
    return math.floor(n / lot + 0.5) * lot


@njit
def to_base(inst, n, px) -> float:
    """Base-equivalent of ``n`` new contracts at ``px``."""
    return n * inst["cv"] / px


@njit
def fill_be(held, held_be, cv, side, filled, px) -> float:
    """Base-equivalent of a fill of ``filled`` contracts at (harmonic average) ``px`` for a round
    trip holding ``held`` contracts worth ``held_be``: the part that closes its position at the
    position's average (all of ``held_be`` when it closes all of it, so a closed position is
    exactly 0), the rest at ``px``."""
    closed = 0.0
    closed_be = 0.0
    if held != 0.0 and side * held < 0.0:
        closed = filled if filled < abs(held) else abs(held)
        if closed == abs(held):
            closed_be = abs(held_be)
        else:
            closed_be = closed * abs(held_be) / abs(held)
    return closed_be + (filled - closed) * cv / px
