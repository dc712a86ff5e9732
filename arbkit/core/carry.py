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
from arbkit.core.types import FLAT, KIND_INVERSE_PERP


@njit
def apply_fx(fx, inst, k, rate, ts) -> None:
    """A new rate of FX series ``k``, stamped ``ts`` (its own time: a rate in force before the
    market data starts is delivered with the first market event but keeps its age)."""
    rec = fx[k]
    rec["rate"] = rate
    rec["ts"] = ts
    rec["n"] += 1
    for i in range(inst.shape[0]):
        if inst[i]["fx_id"] == k:
            inst[i]["fx"] = 1.0 / rate if inst[i]["fx_inv"] == 1 else rate
            if inst[i]["fx0"] != inst[i]["fx0"]:  # the treasury line's starting rate
                inst[i]["fx0"] = inst[i]["fx"]


@njit
def apply_funding(s, i, rate, mark) -> None:
    """Funding of instrument ``i`` settles now (see module doc). Each round trip is paid on
    the position the venue holds for it now (its fills so far, not the acks the strategy has
    seen); what no round trip holds (a starting position, a leftover) is ``fund_free``."""
    inst = s.inst[i]
    inverse = inst["kind"] == KIND_INVERSE_PERP
    if inverse:  # initial_base is the coin margin there, not a position
        pay = -inst["contracts"] * inst["cv"] * rate
    else:
        pay = -(inst["pos0"] + inst["pos"]) * mark * rate
    inst["cash"] += pay
    inst["funding"] += pay
    fx = inst["fx"]
    rest = pay
    for r in range(s.route.shape[0]):
        rt = s.route[r]
        if rt["state"] == FLAT:
            continue
        for leg in range(2):
            if (rt["inst_a"] if leg == 0 else rt["inst_b"]) != i:
                continue
            share = rt["vp_a"] if leg == 0 else rt["vp_b"]
            if share == 0.0:
                continue
            if inverse:
                if inst["pos"] == 0.0:  # routes' opposite positions net out: nothing is paid
                    continue
                q = pay * (share / inst["pos"])
            else:
                q = -share * mark * rate
            rest -= q
            rt["funding"] += q * fx
            if leg == 0:
                rt["uq_a"] += q
                rt["ur_a"] += q * fx
                rt["tp_qa"] += q  # take-profit compares net PnL, which now includes this
            else:
                rt["uq_b"] += q
                rt["ur_b"] += q * fx
                rt["tp_qb"] += q
    inst["fund_free"] += rest
