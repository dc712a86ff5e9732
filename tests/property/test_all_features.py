"""The net under every money feature at once (issue 11): random streams on a KRW spot venue,
a USDT spot venue and a perpetual (linear or inverse), three routes between them, with a
moving FX series (and a rate from before the data), funding, fees in the quote or the
received coins, order and ack latency with jitter, shared wallets with rebalancing transfers,
data gaps, events sharing a timestamp, and (sometimes) bar mode. On every run:

- the account identity: account PnL = closed net + open marks + treasury + funding line +
  transfer line, to 1e-9 relative (``identity_gap_rel``);
- the venues' positions equal their fills (coins that arrived, contracts filled);
- no spot wallet ever goes negative;
- fed in chunks (1, 7, 97 events), every output is bit-for-bit the whole run's.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arbkit.config import from_dict
from arbkit.engine.backtest import prepare, result_of, run_arrays
from tests.property.test_reference import SETTINGS, examples

S = 1_000_000_000
MS = 1_000_000
T0 = 1_700_000_000 * S
KEYS = ["U:BTC-KRW", "B:BTCUSDT", "P:BTCUSDT-PERP"]


@st.composite
def universes(draw):
    inverse = draw(st.booleans())
    lat = st.sampled_from([0.0, 0.0, 3.0, 40.0])

    def inst(venue, symbol, quote, kind, tick, lot, **extra):
        return {"venue": venue, "symbol": symbol, "quote": quote, "kind": kind, "tick": tick,
                "lot": lot, "taker_fee_bps": draw(st.sampled_from([0.0, 2.5, 10.0])),
                "order_latency_ms": draw(lat), "ack_latency_ms": draw(lat),
                "order_latency_jitter_ms": draw(st.sampled_from([0.0, 5.0])), **extra}

    fee = st.sampled_from(["quote", "received"])
    raw = {
        "run": {"seed": draw(st.integers(0, 2**32)), "capital": 100_000.0,
                "equity_interval_s": draw(st.sampled_from([0.5, 5.0, 60.0])),
                "max_gap_s": draw(st.sampled_from([20.0, "auto", "off"]))},
        "instruments": [
            inst("U", "BTC-KRW", "KRW", "spot", 1.0, 0.001, fee_ccy=draw(fee)),
            inst("B", "BTCUSDT", "USDT", "spot", 0.01, 0.001, fee_ccy=draw(fee)),
            inst("P", "BTCUSDT-PERP", "USDT", "inverse_perp", 0.1, 1.0, contract_value=10.0)
            if inverse else inst("P", "BTCUSDT-PERP", "USDT", "linear_perp", 0.01, 0.001),
        ],
        "routes": [{"a": KEYS[0], "b": KEYS[2]}, {"a": KEYS[1], "b": KEYS[2]},
                   {"a": KEYS[0], "b": KEYS[1]}],
        "strategy": {
            "entry_bps": draw(st.sampled_from([2.0, 10.0, 30.0])),
            "exit_bps": draw(st.sampled_from([0.0, -5.0])), "notional": 3000.0,
            "max_slippage_bps": 20.0, "sanity_max_edge_bps": 800.0,
            "stop_loss_bps": draw(st.sampled_from(["off", 120.0])),
            "max_hold_s": draw(st.sampled_from(["off", 30.0])),
            "max_quote_age_ms": draw(st.sampled_from(["off", 5000.0])),
            "legging": draw(st.sampled_from(["unwind", "hold", "chase"])),
            "allow_infeasible": True, "anchor": "ewma", "anchor_halflife_s": 120.0},
        "fx": [{"venue": "upbit", "symbol": "USDT/KRW",
                "max_age_s": draw(st.sampled_from(["off", 60.0]))}],
        "wallets": [{"venue": "U", "balances": {"KRW": 2e7, "BTC": 0.3}},
                    {"venue": "B", "balances": {"USDT": 1e5, "BTC": 0.3}}],
        "transfers": {"rebalance_below": 0.9, "delay_s": draw(st.sampled_from([1.0, 30.0])),
                      "fee_bps": 5.0, "fee_fixed": {"BTC": 0.0001}},
    }
    # market: a USDT mid, each venue's own premium (the KRW one persistent), a moving FX
    n = draw(st.integers(30, 160))
    t, mid, fx = T0, 50_000.0, 1300.0
    prem = [150.0, 0.0, 0.0]
    quotes, rates = [], [(T0 - 3600 * S, 1290.0)]  # a rate from before the data
    seen: set[tuple[int, int]] = set()
    for k in range(n):
        step = draw(st.sampled_from(["same", "ms", "ms", "s", "gap"])) if k >= 3 else "same"
        t += {"same": 0, "ms": draw(st.integers(1, 900)) * MS, "s": draw(st.integers(1, 9)) * S,
              "gap": draw(st.integers(25, 400)) * S}[step]
        mid *= 1.0 + draw(st.integers(-4, 4)) * 1e-4
        if draw(st.integers(0, 4)) == 0 and t > rates[-1][0]:
            fx *= 1.0 + draw(st.integers(-20, 20)) * 1e-4
            rates.append((t, fx))
        i = k if k < 3 else draw(st.integers(0, 2))
        if (t, i) in seen:  # one row per stream and time
            continue
        seen.add((t, i))
        if draw(st.integers(0, 5)) == 0:
            prem[i] = draw(st.sampled_from([40.0, -40.0, 0.0, 80.0])) + (150.0 if i == 0 else 0)
        m = mid * (1 + prem[i] * 1e-4) * (fx if i == 0 else 1.0)
        tick = raw["instruments"][i]["tick"]
        spread = draw(st.integers(1, 4))
        bid = round(round(m / tick) * tick, 8)
        size = draw(st.sampled_from([0.05, 0.5, 3.0]))
        if i == 2 and inverse:
            size = round(size * m / 10.0)  # contracts of 10 USDT
        quotes.append((t, KEYS[i], bid, size, round(bid + spread * tick, 8), size))
    times = draw(st.sets(st.integers(1, max(2, (t - T0) // S)), min_size=1, max_size=4))
    funding = [(T0 + x * S, draw(st.sampled_from([1e-4, -3e-4, 5e-4])), mid) for x in times]
    bars = draw(st.sampled_from([(), (), ("B:BTCUSDT",), tuple(KEYS)]))
    return raw, quotes, rates, sorted(funding), bars


def frames(quotes, rates, funding):
    q = pl.DataFrame({
        "ts_recv_ns": [r[0] for r in quotes], "venue": [r[1].split(":")[0] for r in quotes],
        "symbol": [r[1].split(":")[1] for r in quotes], "bid_px": [r[2] for r in quotes],
        "bid_qty": [float(r[3]) for r in quotes], "ask_px": [r[4] for r in quotes],
        "ask_qty": [float(r[5]) for r in quotes]})
    fx = pl.DataFrame({"ts_ns": [r[0] for r in rates], "venue": "upbit", "symbol": "USDT/KRW",
                       "base": "USDT", "quote": "KRW", "rate": [r[1] for r in rates]})
    fund = pl.DataFrame({"ts_ns": [r[0] for r in funding], "venue": "P",
                         "symbol": "BTCUSDT-PERP", "rate": [r[1] for r in funding],
                         "mark_px": [r[2] for r in funding]},
                        schema={"ts_ns": pl.Int64, "venue": pl.String, "symbol": pl.String,
                                "rate": pl.Float64, "mark_px": pl.Float64})
    return q, fx, fund


@settings(max_examples=examples(40, 8), **SETTINGS)
@given(universes())
def test_every_feature_at_once_keeps_the_account_identity(u) -> None:
    raw, quotes, rates, funding, bars = u
    cfg = from_dict(raw)
    q, fx, fund = frames(quotes, rates, funding)
    prep = prepare(q, cfg, fx=fx, funding=fund)
    kinds = {k: ("bars" if k in bars else "quotes") for k in KEYS}
    prep = dataclasses.replace(prep, kinds=kinds)
    whole = result_of(run_arrays(cfg, prep.arrays, kinds=kinds), prep, 0.0)
    m = {r["metric"]: r["value"] for r in whole.summary.iter_rows(named=True)}
    assert m["identity_gap_rel"] <= 1e-9, (m["identity_gap"], m["account_pnl"])
    # the venues' positions are their fills (coins that arrived; contracts)
    runner = run_arrays(cfg, prep.arrays, kinds=kinds)
    inst = runner.state.inst
    f = whole.fills
    for i, key in enumerate(KEYS):
        mine = f.filter(pl.col("inst") == i)
        side, qty = mine["side"].to_numpy(), mine["qty"].to_numpy()
        if key.startswith("P") and raw["instruments"][2]["kind"] == "inverse_perp":
            assert inst[i]["contracts"] == pytest.approx((side * qty).sum(), abs=1e-9)
            continue
        fee = raw["instruments"][i]["taker_fee_bps"] * 1e-4
        got = np.where(side > 0, qty * (1 - fee), -qty) if (
            raw["instruments"][i].get("fee_ccy") == "received") else side * qty
        assert inst[i]["pos"] == pytest.approx(got.sum(), abs=1e-9), key
    w = runner.state.wallet
    assert (w["bal0"] + w["bal"] >= -1e-9).all()  # no spot wallet ever overdrawn
    for chunk in (1, 7, 97):
        part = result_of(run_arrays(cfg, prep.arrays, kinds=kinds, chunk=chunk), prep, 0.0)
        for name in ("trades", "fills", "orders", "equity", "legs", "guards"):
            assert getattr(part, name).equals(getattr(whole, name)), (chunk, name)
