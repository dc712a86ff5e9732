"""Properties of inverse perpetuals, shared wallets and transfers on random streams.

The streams come from ``test_reference.scenarios``; each property rewrites one scenario:
- its linear perp leg B becomes an inverse perpetual (same prices, book sizes in contracts):
  the money identities still hold exactly, fills are whole contracts, a flat position is flat
  in both units;
- one venue's per-instrument balances move into a ``[[wallets]]`` entry (one spot instrument
  on it, so nothing is shared): every output is identical, bit for bit;
- both spot legs get wallets and rebalancing transfers: equity = trades + the transfer line
  (fees, and what arrived counted at the receiving venue's price instead of the sender's).
"""

from __future__ import annotations

import copy
import math

import numpy as np
from hypothesis import given, settings

from arbkit.core import types as T
from arbkit.metrics.breakdown import lines
from tests.property.test_accounting import kernel_run
from tests.property.test_reference import SETTINGS, Scenario, examples, scenarios


def _inverse(scn: Scenario) -> Scenario:
    """Leg B as an inverse perp worth ~1/100 of a coin per contract at the first price."""
    raw = copy.deepcopy(scn.raw)
    b = raw["instruments"][1]
    first = next(r for r in scn.rows if r[1] == 1)
    cv = round(first[4] / 100.0, 6)
    b.pop("initial_base", None)  # a spot leg B becomes the perpetual: no balances
    b.pop("initial_quote", None)
    b.update(kind="inverse_perp", contract_value=cv, lot=1.0, min_notional=0.0)
    rows = []
    for r in scn.rows:
        if r[1] == 1:  # sizes in contracts of cv quote each
            deeper = tuple((bp, bq * bp / cv, ap, aq * ap / cv) for bp, bq, ap, aq in r[7])
            r = (r[0], 1, r[2], r[3] * r[2] / cv, r[4], r[5] * r[4] / cv, r[6], deeper)
        rows.append(r)
    return Scenario(raw=raw, rows=rows, heartbeats=scn.heartbeats, n_levels=scn.n_levels)


def _identities(scn: Scenario, out: dict, cost: float = 0.0) -> None:
    final = out["equity"][-1]["equity"]
    closed = sum(t["net_pnl"] for t in out["trades"] if t["is_open"] == 0)
    open_mid = sum(t["net_pnl_mid"] for t in out["trades"] if t["is_open"] == 1)
    want = scn.cfg.run.capital + closed + open_mid - cost
    assert abs(final - want) <= 1e-12 * abs(want) + 1e-9, (final, want)
    for t in out["trades"]:
        parts = t["price_pnl"] - t["slippage"] - t["fees"] + t["fx_pnl"] + t["funding"]
        net = t["net_pnl_mid"] if t["is_open"] else t["net_pnl"]
        assert math.isclose(net, parts, rel_tol=1e-9, abs_tol=1e-9), t


def _spot(scn: Scenario, legs: tuple[int, ...]) -> Scenario:
    """The scenario with ``legs`` made spot (with the scenario's balances, or 50 coins and
    1e6 cash when it had none): properties drawn for spot legs need no rejection."""
    raw = copy.deepcopy(scn.raw)
    for k in legs:
        inst = raw["instruments"][k]
        if inst["kind"] != "spot":
            inst.update(kind="spot", initial_base=50.0, initial_quote=1e6)
    return Scenario(raw=raw, rows=scn.rows, heartbeats=scn.heartbeats, n_levels=scn.n_levels)


@settings(max_examples=examples(60, 20), **SETTINGS)
@given(scenarios())
def test_an_inverse_leg_keeps_every_money_identity(scn: Scenario) -> None:
    inv = _inverse(scn)
    runner, out, _ = kernel_run(inv)
    _identities(inv, out)
    qty = np.array([f["qty"] for f in out["fills"] if f["inst"] == 1])
    assert (qty == np.round(qty)).all()  # whole contracts
    rec = runner.state.inst[1]
    assert (rec["contracts"] == 0.0) == (rec["pos"] == 0.0), (rec["contracts"], rec["pos"])
    if rec["contracts"] != 0.0:  # base-equivalent of the contracts at prices they were opened
        assert np.sign(rec["contracts"]) == np.sign(rec["pos"])


def _wallet_raw(scn: Scenario, venues: tuple[str, ...]) -> dict:
    raw = copy.deepcopy(scn.raw)
    raw["wallets"] = []
    for inst in raw["instruments"]:
        if inst["venue"] in venues:
            raw["wallets"].append({"venue": inst["venue"], "balances": {
                "USDT": inst.pop("initial_quote"), "BTC": inst.pop("initial_base")}})
    return raw


@settings(max_examples=examples(60, 20), **SETTINGS)
@given(scenarios())
def test_a_wallet_holding_one_instruments_balances_changes_nothing(scn: Scenario) -> None:
    scn = _spot(scn, (0,))
    _, own, _ = kernel_run(scn)
    walled = Scenario(raw=_wallet_raw(scn, ("A",)), rows=scn.rows,
                      heartbeats=scn.heartbeats, n_levels=scn.n_levels)
    _, out, _ = kernel_run(walled)
    for k in ("trades", "fills", "orders", "legs", "equity"):
        assert len(out[k]) == len(own[k])
        for x, y in zip(out[k], own[k], strict=True):
            assert repr(x) == repr(y), (k, x, y)  # exact floats, NaN-safe


@settings(max_examples=examples(60, 20), **SETTINGS)
@given(scenarios())
def test_transfers_move_the_equity_by_exactly_their_line(scn: Scenario) -> None:
    scn = _spot(scn, (0, 1))
    raw = _wallet_raw(scn, ("A", "B"))
    raw["transfers"] = {"rebalance_below": 0.9, "delay_s": 0.2, "fee_bps": 3.0,
                        "fee_fixed": {"BTC": 0.0001, "USDT": 0.5}}
    walled = Scenario(raw=raw, rows=scn.rows, heartbeats=scn.heartbeats, n_levels=scn.n_levels)
    runner, out, _ = kernel_run(walled)
    g = runner.state.glob[0]
    line = lines(runner.state.inst, runner.state.book_px)["transfer_pnl"]
    _identities(walled, out, cost=-line)
    w = runner.state.wallet
    assert (w["bal0"] + w["bal"] >= -1e-9).all()  # no wallet ever overdrawn
    guards = runner.state.guards[: int(g["n_guard"])]
    sent = guards[guards["code"] == T.G_TRANSFER]
    arrived = guards[guards["code"] == T.G_TRANSFER_IN]
    assert len(arrived) + int(g["n_transit"]) == len(sent)
