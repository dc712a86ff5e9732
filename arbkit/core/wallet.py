"""Spot balances and rebalancing transfers between venues.

Every spot instrument draws on two wallets: its quote currency's and its base's. A venue with a
``[[wallets]]`` entry has one wallet per currency shared by all its spot instruments; otherwise
each instrument has its own pair (``initial_quote`` / ``initial_base``). Balance checks (entry
sizing, the venue's check at arrival) read the wallets; fills change them by exactly what they
change the instrument's ``cash`` / ``pos`` (which equity and the reports use).

Transfers (``[transfers]``): after a fill, a shared wallet under its floor is refilled to its
start from the shared wallet of the same currency holding the most above its own floor. The
amount leaves the sender now and arrives ``delay`` later less the fee (proportional + fixed,
paid by the sender: booked on the sender wallet's owner instrument, so equity carries it;
``fees`` sums them per wallet, in its currency).
Arrivals are credited when a balance is next read at or after the arrival time, and at the end
of the run; the log row carries the arrival time.
"""

from __future__ import annotations

from arbkit.core.jit import njit
from arbkit.core.risk import log_guard
from arbkit.core.types import G_TRANSFER, G_TRANSFER_IN


@njit
def wallet_cash(s, i) -> float:
    """Quote currency spot instrument ``i`` can spend."""
    w = s.wallet[s.inst[i]["w_quote"]]
    return w["bal0"] + w["bal"]


@njit
def wallet_coins(s, i) -> float:
    """Base spot instrument ``i`` can sell."""
    w = s.wallet[s.inst[i]["w_base"]]
    return w["bal0"] + w["bal"]


@njit
def wallet_book(s, i, d_cash, d_pos, t) -> None:
    """A spot fill moved the instrument's cash and base: the wallets move the same."""
    inst = s.inst[i]
    s.wallet[inst["w_quote"]]["bal"] += d_cash
    s.wallet[inst["w_base"]]["bal"] += d_pos
    if s.glob[0]["xfer_on"] == 1:
        _maybe_refill(s, inst["w_quote"], t)
        _maybe_refill(s, inst["w_base"], t)


@njit
def wallet_settle(s, t) -> None:
    """Credit the transfers that have arrived by ``t``."""
    g = s.glob[0]
    if g["n_transit"] == 0:
        return
    for w in range(s.wallet.shape[0]):
        rec = s.wallet[w]
        if rec["sent"] > 0.0 and rec["arrive"] <= t:
            rec["bal"] += rec["incoming"]
            # the amount now counts where it arrived, at that venue's price (the transfer line)
            _book_xfer(s, rec["src"], -rec["incoming"])
            _book_xfer(s, w, rec["incoming"])
            log_guard(s, rec["arrive"], G_TRANSFER_IN, w, rec["incoming"], rec["sent"] - rec["incoming"])
            rec["incoming"] = 0.0
            rec["sent"] = 0.0
            rec["n_in"] += 1
            g["n_transit"] -= 1


@njit
def _maybe_refill(s, w, t) -> None:
    rec = s.wallet[w]
    if rec["shared"] == 0 or rec["floor"] <= 0.0 or rec["sent"] > 0.0:
        return
    have = rec["bal0"] + rec["bal"]
    if have >= rec["floor"]:
        return
    src = -1
    spare = 0.0
    for v in range(s.wallet.shape[0]):
        o = s.wallet[v]
        if v != w and o["shared"] == 1 and o["ccy"] == rec["ccy"]:
            extra = o["bal0"] + o["bal"] - o["floor"]
            if extra > spare:
                spare = extra
                src = v
    if src < 0:
        return
    amount = rec["bal0"] - have
    if amount > spare:
        amount = spare
    sender = s.wallet[src]
    fee = amount * s.glob[0]["xfer_fee_bps"] * 1e-4 + sender["fee_fixed"]
    if amount <= fee:
        return
    sender["bal"] -= amount
    rec["sent"] = amount
    rec["incoming"] = amount - fee
    rec["arrive"] = t + s.glob[0]["xfer_delay_ns"]
    s.glob[0]["n_transit"] += 1
    rec["src"] = src
    sender["fees"] += fee
    # the fee leaves the books of the sender's owner instrument (its transfer line), so the
    # equity carries it; the amount counts there until it arrives
    _book_xfer(s, src, -fee)
    log_guard(s, t, G_TRANSFER, w, amount, fee)


@njit
def _book_xfer(s, w, amount) -> None:
    """Transfers' line of wallet ``w``'s owner instrument (its coins or its quote cash),
    valued by the equity at that instrument's mid and FX (``inst.xfer_p`` / ``xfer_c``)."""
    rec = s.wallet[w]
    inst = s.inst[rec["owner"]]
    if rec["owner_base"] == 1:
        inst["xfer_p"] += amount
    else:
        inst["xfer_c"] += amount
