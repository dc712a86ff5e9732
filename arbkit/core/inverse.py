"""Inverse (coin-margined) perpetuals: contracts of a fixed quote value, PnL in the coin.

A contract is worth ``cv`` units of the quote currency (100 USD on Binance COIN-M BTCUSD_PERP);
orders and the book's sizes are in contracts. Holding ``N`` contracts opened at ``P0`` and
closed at ``P1`` earns ``N x cv x (1/P0 - 1/P1)`` coins (long). Valued in the quote currency at
``P1``, that is ``q0 x (P1 - P0)`` with ``q0 = N x cv / P0``: an inverse position is a linear
one of ``q0`` coins, fixed by the prices it was opened at. So the kernel keeps, per inverse
instrument, ``contracts`` (the venue's count) and ``pos`` = that base-equivalent ``q0``
(reduced at its average on closing fills, as the venue computes realised PnL), and routes,
risk and equity use ``pos`` exactly like a linear leg's.

Settlement: realised PnL, fees (``N x cv / P x fee rate`` coins) and funding
(``-N x cv / mark x rate`` coins, longs pay a positive rate) are valued in the quote
currency at the fill or mark price of their moment (``N x cv x fee rate``, ``-N x cv x rate``).
What holding those coins afterwards would add or lose is not modelled (docs/config.md).
"""

from __future__ import annotations

import math

from arbkit.core.jit import njit


@njit
def to_contracts(inst, side, qty, px) -> float:
    """A base-equivalent quantity as whole lots of contracts. A fill against the position
    reduces it at its average (so closing what is held closes exactly that many contracts);
    beyond it, and for opening orders, at the decision price ``px``."""
    held = inst["contracts"]
    lot = inst["lot"]
    if held != 0.0 and side * held < 0.0:
        base = abs(inst["pos"])
        if qty <= base:
            n = qty * abs(held) / base
        else:
            n = abs(held) + (qty - base) * px / inst["cv"]
    else:
        n = qty * px / inst["cv"]
    return math.floor(n / lot + 0.5) * lot


@njit
def to_base(inst, n, px) -> float:
    """Base-equivalent of ``n`` new contracts at ``px``."""
    return n * inst["cv"] / px


@njit
def book_contracts(inst, side, filled, px) -> float:
    """Apply a fill of ``filled`` contracts at (harmonic average) ``px``: update the count and
    the base-equivalent; return the fill's base-equivalent (the route's quantity)."""
    held = inst["contracts"]
    closed = 0.0
    closed_be = 0.0
    if held != 0.0 and side * held < 0.0:
        closed = filled if filled < abs(held) else abs(held)
        if closed == abs(held):
            closed_be = abs(inst["pos"])
        else:
            closed_be = closed * abs(inst["pos"]) / abs(held)
    opened_be = (filled - closed) * inst["cv"] / px
    inst["contracts"] = held + side * filled
    if closed > 0.0 and closed == abs(held):
        inst["pos"] = side * opened_be  # the old position is gone: no rounding residue
    else:
        inst["pos"] += side * (closed_be + opened_be)
    return closed_be + opened_be
