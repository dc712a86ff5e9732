"""Order-book state per instrument: apply updates, measure and take liquidity.

Books live in three arrays of shape (n_inst, 2, depth): price, size and ``taken`` (size our
own orders consumed since the book last updated, so a chase or unwind cannot fill twice against
the same liquidity). Side index 0 is bids, 1 is asks.
"""

from __future__ import annotations

import math

import numpy as np

from arbkit.core.jit import njit, njit_inline
from arbkit.core.types import ASK, BID, KIND_INVERSE_PERP


@njit
def floor_lot(qty: float, lot: float) -> float:
    """Round a quantity down to a whole number of lots (tolerant to float noise)."""
    if qty <= 0.0:
        return 0.0
    return math.floor(qty / lot + 1e-9) * lot


@njit_inline
def apply_quote(inst, book_px, book_qty, book_taken, book_n, ev, depth, k) -> None:
    """Replace instrument ``ev[k].inst``'s book with the event's levels.

    Hot path: takes the few arrays it touches, not the whole state (passing the state tuple to
    a function costs a reference-count update per member).
    """
    e = ev[k]
    i = e["inst"]
    rec = inst[i]
    if rec["taken_dirty"] == 1:
        for side in range(2):
            for lvl in range(book_taken.shape[2]):
                book_taken[i, side, lvl] = 0.0
        rec["taken_dirty"] = 0
    bid = e["bid_px"]
    ask = e["ask_px"]
    book_px[i, BID, 0] = bid
    book_qty[i, BID, 0] = e["bid_qty"]
    book_px[i, ASK, 0] = ask
    book_qty[i, ASK, 0] = e["ask_qty"]
    row = e["depth_row"]
    if row < 0:
        if book_n[i, BID] != 1 or book_n[i, ASK] != 1:
            book_n[i, BID] = 1
            book_n[i, ASK] = 1
    else:
        _apply_depth(book_px, book_qty, book_n, i, depth, row)
    rec["crossed"] = 1 if bid >= ask else 0
    rec["has_quote"] = 1
    rec["ts_recv"] = e["ts_recv"]
    rec["ts_exch"] = e["ts_exch"]


@njit
def _apply_depth(book_px, book_qty, book_n, i, depth, row) -> None:
    extra = depth.shape[2]
    for side in range(2):
        n = 1
        for lvl in range(extra):
            px = depth[row, 2 * side, lvl]
            if np.isnan(px):
                break
            book_px[i, side, lvl + 1] = px
            book_qty[i, side, lvl + 1] = depth[row, 2 * side + 1, lvl]
            n += 1
        book_n[i, side] = n


@njit
def available(s, i, side_idx, limit) -> float:
    """Size (not yet taken by us) on one side within ``limit``."""
    total = 0.0
    for lvl in range(s.book_n[i, side_idx]):
        px = s.book_px[i, side_idx, lvl]
        if (side_idx == ASK and px > limit) or (side_idx == BID and px < limit):
            break
        total += s.book_qty[i, side_idx, lvl] - s.book_taken[i, side_idx, lvl]
    return total


@njit
def vwap(s, i, side_idx, qty, limit) -> float:
    """VWAP of ``qty`` walking one side up to ``limit``; NaN when it cannot be filled."""
    remaining = qty
    notional = 0.0
    for lvl in range(s.book_n[i, side_idx]):
        px = s.book_px[i, side_idx, lvl]
        if (side_idx == ASK and px > limit) or (side_idx == BID and px < limit):
            break
        avail = s.book_qty[i, side_idx, lvl] - s.book_taken[i, side_idx, lvl]
        if avail <= 0.0:
            continue
        take = avail if avail < remaining else remaining
        notional += take * px
        remaining -= take
        if remaining <= 1e-12 * qty:
            return notional / qty
    return np.nan


@njit
def take(s, i, side_idx, qty, limit, lot):
    """Walk one side up to ``limit`` taking at most ``qty`` in whole lots.

    Returns (filled, average price, levels touched) and marks the size as taken. The average
    is volume-weighted; for an inverse perpetual (sizes in contracts) it is the harmonic one,
    ``filled / sum(got / px)``, which is what its coin amounts are made of.
    """
    remaining = qty
    filled = 0.0
    notional = 0.0
    coins = 0.0
    levels = 0
    for lvl in range(s.book_n[i, side_idx]):
        px = s.book_px[i, side_idx, lvl]
        if (side_idx == ASK and px > limit) or (side_idx == BID and px < limit):
            break
        avail = s.book_qty[i, side_idx, lvl] - s.book_taken[i, side_idx, lvl]
        got = floor_lot(avail if avail < remaining else remaining, lot)
        if got <= 0.0:
            continue
        s.book_taken[i, side_idx, lvl] += got
        filled += got
        notional += got * px
        coins += got / px
        remaining -= got
        levels += 1
        if remaining < 1e-6 * lot:
            break
    if levels > 0:
        s.inst[i]["taken_dirty"] = 1
        if s.inst[i]["kind"] == KIND_INVERSE_PERP and levels > 1:
            return filled, filled / coins, levels
        return filled, notional / filled, levels
    return 0.0, np.nan, 0


@njit_inline
def ref_touch(inst, book_px, a, b):
    """The touch of legs ``a`` and ``b`` in the reference currency (each leg's price times its
    FX of the moment): ``(bid_a, ask_a, bid_b, ask_b)``. Inlined: it is on the hot path."""
    fa = inst[a]["fx"]
    fb = inst[b]["fx"]
    return (book_px[a, BID, 0] * fa, book_px[a, ASK, 0] * fa,
            book_px[b, BID, 0] * fb, book_px[b, ASK, 0] * fb)
