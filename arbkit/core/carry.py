"""What moves balances without trading: FX rates and perpetual funding, applied at their
event time on the kernel's clock.

- FX: a rate of series ``k`` (quote per base of the series) becomes each instrument's
  conversion to the reference currency (``inst["fx"]``), directly or inverted.
- Funding (linear perpetuals): at the funding time the venue pays ``-position x mark x rate``
  in the quote currency (longs pay when the rate is positive), with the *realised* rate of
  that funding time. Each route holding the instrument is attributed its own share
  (``-route position x mark x rate``, in the reference currency at today's FX).
- Funding (inverse perpetuals, core/inverse.py): ``-contracts x cv / mark x rate`` coins,
  valued at the mark: ``-contracts x cv x rate`` in the quote currency. Routes get their share
  of it in proportion to their base-equivalent positions.
"""

from __future__ import annotations

from arbkit.core.jit import njit
from arbkit.core.types import EXITING, FLAT, KIND_INVERSE_PERP, OPEN


@njit
def apply_fx(fx, inst, k, rate, t) -> None:
    """A new rate of FX series ``k`` at receive time ``t``."""
    rec = fx[k]
    rec["rate"] = rate
    rec["ts"] = t
    rec["n"] += 1
    for i in range(inst.shape[0]):
        if inst[i]["fx_id"] == k:
            inst[i]["fx"] = 1.0 / rate if inst[i]["fx_inv"] == 1 else rate


@njit
def apply_funding(s, i, rate, mark) -> None:
    """Funding of instrument ``i`` settles now (see module doc)."""
    inst = s.inst[i]
    inverse = inst["kind"] == KIND_INVERSE_PERP
    if inverse:  # initial_base is the coin margin there, not a position
        pay = -inst["contracts"] * inst["cv"] * rate
    else:
        pay = -(inst["pos0"] + inst["pos"]) * mark * rate
    inst["cash"] += pay
    inst["funding"] += pay
    fx = inst["fx"]
    for r in range(s.route.shape[0]):
        rt = s.route[r]
        if rt["state"] == FLAT:
            continue
        share = 0.0
        if rt["inst_a"] == i:
            share += rt["pos_a"]
        if rt["inst_b"] == i:
            share += rt["pos_b"]
        if share == 0.0:
            continue
        if inverse:
            if inst["pos"] == 0.0:  # routes' opposite positions net out: nothing is paid
                continue
            ref = pay * (share / inst["pos"]) * fx
        else:
            ref = -share * mark * rate * fx
        rt["funding"] += ref
        if rt["state"] == OPEN or rt["state"] == EXITING:
            rt["tp_k"] -= ref  # take-profit compares net PnL, which now includes this
