"""Strategy options beyond the core rules: the EWMA anchor (hand-checked scenarios)."""

from __future__ import annotations

import math

import polars as pl

import arbkit
from arbkit.config import load_config_text

S = 1_000_000_000
T0 = 1_700_000_000 * S

BASE = """
[run]
capital = 100000.0
equity_interval_s = 60.0
[[instruments]]
venue = "A"
symbol = "X"
kind = "linear_perp"
lot = 0.001
[[instruments]]
venue = "B"
symbol = "X"
kind = "linear_perp"
lot = 0.001
[route]
a = "A:X"
b = "B:X"
[strategy]
entry_bps = 8.0
exit_bps = 0.0
notional = 1000.0
max_hold_s = 1200.0
reversal = false
{extra}
"""


def market(premiums_bps: list[float], step_s: int = 10) -> pl.DataFrame:
    """A at 100.00/100.01, B's mid at the given premium over A's mid, every step."""
    rows = []
    for k, p in enumerate(premiums_bps):
        t = T0 + k * step_s * S
        mid_b = 100.005 * (1 + p * 1e-4)
        rows += [(t, "A", 100.00, 100.01), (t, "B", mid_b - 0.005, mid_b + 0.005)]
    return pl.DataFrame({"ts_recv_ns": [r[0] for r in rows], "venue": [r[1] for r in rows],
                         "symbol": ["X"] * len(rows), "bid_px": [r[2] for r in rows],
                         "bid_qty": [50.0] * len(rows), "ask_px": [r[3] for r in rows],
                         "ask_qty": [50.0] * len(rows)})


# B sits 100 bps rich for 30 minutes, jumps to 130 bps for a minute, and comes back to 100
PREMIUM = [100.0] * 180 + [130.0] * 6 + [100.0] * 60


def test_without_an_anchor_the_persistent_level_looks_like_an_edge_that_never_converges():
    res = arbkit.backtest(market(PREMIUM), load_config_text(BASE.format(extra="")))
    first = res.trades.row(0, named=True)
    assert first["entry_ts"] == T0  # entered at once on the 100 bps level
    assert first["exit_reason_text"] == "time"  # and it never came back to 0


def test_an_ewma_anchor_trades_the_deviation_and_converges_back_to_the_level():
    extra = 'anchor = "ewma"\nanchor_halflife_s = 600.0\nanchor_warmup_s = 900.0'
    res = arbkit.backtest(market(PREMIUM), load_config_text(BASE.format(extra=extra)))
    assert res.trades.height == 1
    t = res.trades.row(0, named=True)
    # the only entry is the 130 bps jump (30 bps beyond an anchor of ~100 bps), once warm
    assert t["entry_ts"] == T0 + 180 * 10 * S and t["dir"] == 1
    assert math.isclose(t["entry_anchor_bps"], 100.0, abs_tol=0.5)
    assert t["entry_edge_bps"] > 20.0  # the raw executable edge
    assert t["exit_reason_text"] == "converge"
    assert t["exit_ts"] == T0 + 186 * 10 * S  # as soon as B is back at the level
    assert t["net_pnl"] > 0


# ---- a user @njit entry signal ---------------------------------------------------------

import numba  # noqa: E402

from arbkit.data.synth import generate  # noqa: E402


@numba.njit
def builtin_rule(bid_a, ask_a, bid_b, ask_b, anchor_bps, thr_bps, t):
    """The built-in entry rule, written as a plug-in (the kernel's own test, division-free)."""
    sum4 = bid_a + ask_a + bid_b + ask_b
    d_ab = bid_b - ask_a
    d_ba = bid_a - ask_b
    best = d_ab if d_ab >= d_ba else d_ba
    if best * 4e4 >= thr_bps * sum4:
        return 1 if d_ab >= d_ba else -1
    return 0


@numba.njit
def only_sell_a(bid_a, ask_a, bid_b, ask_b, anchor_bps, thr_bps, t):
    """Enter only in direction -1 (sell A, buy B), at half the usual threshold, forced."""
    sum4 = bid_a + ask_a + bid_b + ask_b
    if (bid_a - ask_b) * 4e4 >= 0.5 * thr_bps * sum4:
        return -2
    return 0


def test_a_plugin_signal_that_restates_the_builtin_rule_trades_identically():
    df, cfg = generate("normal", n_events=60_000, depth=3)
    builtin = arbkit.backtest(df, cfg)
    plugged = arbkit.backtest(df, cfg, signal=builtin_rule)
    assert builtin.metric("trades") >= 5
    cols = ["dir", "entry_ts", "exit_ts", "qty", "net_pnl", "exit_reason"]
    assert plugged.trades.select(cols).equals(builtin.trades.select(cols))


def test_a_plugin_signal_changes_the_entries_and_keeps_every_guard():
    df, cfg = generate("normal", n_events=60_000, depth=3)
    res = arbkit.backtest(df, cfg, signal=only_sell_a)
    assert res.metric("trades") > 0 and set(res.trades["dir"].to_list()) == {-1}
    assert res.metric("opportunities_taken") == res.metric("entries")
