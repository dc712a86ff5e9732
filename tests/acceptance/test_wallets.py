"""Per-venue shared wallets and rebalancing transfers (core/wallet.py), by hand."""

from __future__ import annotations

import polars as pl
import pytest

import arbkit
from arbkit.config import load_config_text
from arbkit.errors import ConfigError

S = 1_000_000_000
T0 = 1_700_000_000 * S

# Two routes sell BTC on venue B: A~B and C~B. B's BTC is one shared wallet.
CFG = """
[run]
capital = 100000.0
reference_ccy = "USD"
equity_interval_s = 1.0
max_gap_s = 3600.0  # A and B are quiet for 700 s on purpose: not a data gap here
[[instruments]]
venue = "A"
symbol = "BTC/USD"
quote = "USD"
lot = 0.001
[[instruments]]
venue = "B"
symbol = "BTC/USD"
quote = "USD"
lot = 0.001
[[instruments]]
venue = "C"
symbol = "BTC/USD"
quote = "USD"
lot = 0.001
[[routes]]
a = "A:BTC/USD"
b = "B:BTC/USD"
[[routes]]
a = "C:BTC/USD"
b = "B:BTC/USD"
[strategy]
entry_bps = 5.0
exit_bps = "off"
notional = 50000.0
reversal = false
[[wallets]]
venue = "A"
balances = { USD = 100000.0, BTC = 1.0 }
[[wallets]]
venue = "B"
balances = { USD = 100000.0, BTC = 1.0 }
{transfers}
"""

TRANSFERS = """[transfers]
rebalance_below = 0.5
delay_s = 600.0
fee_bps = 2.0
fee_fixed = { BTC = 0.001 }
"""


def cfg(transfers: str = TRANSFERS):
    return load_config_text(CFG.replace("{transfers}", transfers))


def market(rows):
    """rows: (t_s, venue, bid, ask), 10 BTC a side."""
    return pl.DataFrame({
        "ts_recv_ns": [T0 + round(t * S) for t, *_ in rows], "venue": [r[1] for r in rows],
        "symbol": ["BTC/USD"] * len(rows), "bid_px": [float(r[2]) for r in rows],
        "bid_qty": [10.0] * len(rows), "ask_px": [float(r[3]) for r in rows],
        "ask_qty": [10.0] * len(rows)})


# t=1: B rich vs A (+60 bps): route A~B buys 1 BTC on A, sells B's 1 BTC -> B has none.
# t=2: C cheap vs B: route C~B wants to sell on B too: nothing to sell (shared wallet).
# t=700: again, after the transfer A -> B (sent at t=1, 600 s) arrived: it sells 0.9988.
MARKET = [(1, "C", 50_390, 50_400), (1, "A", 49_990, 50_000), (1, "B", 50_300, 50_310),
          (2, "C", 49_990, 50_000), (700, "C", 49_990, 50_001)]


def test_routes_on_one_venue_share_its_wallet_and_a_transfer_refills_it_after_its_delay() -> None:
    res = arbkit.backtest(market(MARKET), cfg())
    trades = res.trades.sort("entry_ts")
    assert trades["route"].to_list() == [0, 1]
    assert trades["qty"][0] == pytest.approx(1.0)
    # at t=2 route C~B was refused for balance: B's BTC was gone (route 1 never sold on B)
    assert res.routes.filter(pl.col("route") == "C:BTC/USD~B:BTC/USD")["skipped_balance"][0] >= 1
    assert trades["entry_ts"][1] == T0 + 700 * S
    # the transfer: B fell below 0.5 x 1 BTC; A (2 BTC after buying 1) can spare 2 - 0.5 = 1.5;
    # B asks for its start back: 1 BTC, fee 1 x 2 bps + 0.001 = 0.0012, arrives 600 s later
    g = res.guards.filter(pl.col("guard").str.starts_with("transfer"))
    sent = g.filter(pl.col("guard") == "transfer_sent").row(0, named=True)
    assert sent["ts"] == T0 + 1 * S and sent["route_name"] == "B:BTC"
    assert sent["value"] == pytest.approx(1.0) and sent["limit"] == pytest.approx(0.0012)
    arrived = g.filter(pl.col("guard") == "transfer_arrived").row(0, named=True)
    assert arrived["ts"] == T0 + 601 * S and arrived["value"] == pytest.approx(0.9988)
    # ... so route C~B sells what arrived, in lots
    assert trades["qty"][1] == pytest.approx(0.998)
    # the fees are costs in the equity, not in any round trip (valued at A's mid, 49,995)
    fees_btc = g.filter(pl.col("guard") == "transfer_sent")["limit"].sum()
    assert res.metric("transfer_cost") == pytest.approx(fees_btc * 49_995.0, rel=1e-12)
    # the transfer line: the fees (1 x 2 bps + 0.001, and 0.0011 on a second transfer of 0.5
    # BTC sent at t=700, still in flight and still counted at A), and the 0.9988 BTC that
    # arrived, now counted at B's mid (50,305) instead of A's (49,995): coins are worth what
    # the venue holding them pays
    assert fees_btc == pytest.approx(0.0012 + 0.0011)
    line = -0.0023 * 49_995.0 + 0.9988 * (50_305.0 - 49_995.0)
    assert res.metric("transfer_pnl") == pytest.approx(line, rel=1e-12)
    assert res.metric("final_equity") - 100_000.0 == pytest.approx(
        trades["net_pnl_mid"].sum() + line, abs=1e-6)
    assert abs(res.metric("identity_gap")) <= 1e-9 * 100_000
    w = {r["wallet"]: r for r in res.wallets.iter_rows(named=True)}
    assert w["B:BTC"]["start"] == 1.0 and w["A:BTC"]["start"] == 1.0


def test_without_transfers_the_shared_wallet_stays_empty() -> None:
    res = arbkit.backtest(market(MARKET), cfg(transfers=""))
    assert res.trades["route"].to_list() == [0]
    assert res.metric("transfer_cost") == 0.0 and res.metric("transfers") == 0
    w = {r["wallet"]: r for r in res.wallets.iter_rows(named=True)}
    assert w["B:BTC"]["end"] == pytest.approx(0.0, abs=1e-12)


def test_instruments_without_a_wallet_keep_their_own_balances() -> None:
    """The same market with per-instrument balances on A and B (C holds no BTC): each
    instrument has its own pair of wallets; B:BTC/USD's 1 BTC, sold at t=1, is gone for both
    routes (one instrument), and nothing refills it."""
    text = CFG.replace("{transfers}", "").split("[[wallets]]")[0]
    for v in ("A", "B"):
        text = text.replace(f'venue = "{v}"\nsymbol = "BTC/USD"\nquote = "USD"\nlot = 0.001\n',
                            f'venue = "{v}"\nsymbol = "BTC/USD"\nquote = "USD"\nlot = 0.001\n'
                            'initial_base = 1.0\ninitial_quote = 100000.0\n')
    res = arbkit.backtest(market(MARKET), load_config_text(text))
    assert res.trades["route"].to_list() == [0]
    assert {r["wallet"] for r in res.wallets.iter_rows(named=True)} == {
        "A:BTC/USD:USD", "A:BTC/USD:BTC", "B:BTC/USD:USD", "B:BTC/USD:BTC", "C:BTC/USD:USD",
        "C:BTC/USD:BTC"}


@pytest.mark.parametrize("extra, message", [
    ('[[wallets]]\nvenue = "Z"\n', "no instrument trades on venue 'Z'"),
    ('[[wallets]]\nvenue = "A"\n', "a second wallet for the venue"),
    ('[transfers]\nrebalance_below = 1.5\n', "rebalance_below = 1.5"),
    ('[[wallets]]\nvenue = "C"\nbalances = { ETH = 1.0 }\n', "no spot instrument on C trades ETH"),
    ('[transfers]\nrebalance_below = 0.5\nfee_fixed = { SOL = 0.1 }\n', "no instrument trades SOL"),
    ('[transfers]\nrebalance_below = 0.5\ndelay_s = -5.0\n', r"transfers.delay_s = -5.0; must be >= 0"),
])
def test_wallet_config_mistakes_are_one_clear_line(extra: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config_text(CFG.replace("{transfers}", extra))


def test_a_wallet_venue_refuses_per_instrument_balances() -> None:
    text = CFG.replace("{transfers}", "").replace(
        'venue = "A"\nsymbol = "BTC/USD"\nquote = "USD"\nlot = 0.001\n',
        'venue = "A"\nsymbol = "BTC/USD"\nquote = "USD"\nlot = 0.001\ninitial_base = 2.0\n')
    with pytest.raises(ConfigError, match="put its balances in wallets.balances"):
        load_config_text(text)
