"""Bar mode: bars drive the same loop, each at its close (never before the bar has ended)."""

from __future__ import annotations

import polars as pl
import pytest

import arbkit
from arbkit.config import load_config_text
from arbkit.data.barmode import quote_bars_to_quotes, trade_bars_to_quotes
from arbkit.data.catalog import Catalog
from arbkit.data.importers import bars as bar_importers
from arbkit.errors import ConfigError

T0 = 1_700_000_000_000_000_000
M = 60_000_000_000

CONFIG = """
[run]
reference_ccy = "USDC"
equity_interval_s = 60.0
[[instruments]]
venue = "A"
symbol = "X"
quote = "USDC"
kind = "linear_perp"
lot = 0.001
order_latency_ms = 1000.0
[[instruments]]
venue = "B"
symbol = "X"
quote = "USDC"
kind = "linear_perp"
lot = 0.001
order_latency_ms = 1000.0
[route]
a = "A:X"
b = "B:X"
[strategy]
entry_bps = 10.0
exit_bps = 0.0
notional = 1000.0
max_slippage_bps = 50.0
[bars]
half_spread_bps = 1.0
participation = 0.5
"""


def trade_bars(closes_a: list[float], closes_b: list[float]) -> pl.DataFrame:
    rows = []
    for venue, closes in (("A", closes_a), ("B", closes_b)):
        for k, c in enumerate(closes):
            rows.append({"ts_open_ns": T0 + k * M, "ts_close_ns": T0 + (k + 1) * M,
                         "venue": venue, "symbol": "X", "open": c, "high": c, "low": c,
                         "close": c, "volume": 10.0})
    return pl.DataFrame(rows)


def test_each_bar_becomes_one_quote_at_its_close_with_the_assumed_spread() -> None:
    q = trade_bars_to_quotes(trade_bars([100.0, 100.0], [100.0, 0.0 + 100.0]),
                             half_spread_bps=2.0, participation=0.1)
    assert q.frame["ts_recv_ns"].to_list() == [T0 + M, T0 + 2 * M] * 2
    row = q.frame.row(0, named=True)
    assert (row["bid_px"], row["ask_px"]) == (100.0 * (1 - 2e-4), 100.0 * (1 + 2e-4))
    assert (row["bid_qty"], row["ask_qty"]) == (1.0, 1.0)  # 10% of volume 10


def test_zero_volume_bars_are_dropped_not_read_as_prices() -> None:
    b = trade_bars([100.0, 100.0, 100.0], [100.0] * 3).with_columns(
        pl.when((pl.col("venue") == "A") & (pl.col("ts_open_ns") == T0 + M))
        .then(0.0).otherwise(pl.col("volume")).alias("volume"))
    q = trade_bars_to_quotes(b, half_spread_bps=1.0, participation=0.1)
    assert q.dropped_zero_volume == 1 and q.frame.height == 5


def test_trade_bars_without_an_assumed_spread_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"set \[bars\] half_spread_bps"):
        trade_bars_to_quotes(trade_bars([1.0], [1.0]), half_spread_bps=None, participation=0.1)


def test_a_bars_close_is_never_visible_before_the_bar_ends() -> None:
    # B jumps 50 bps above A in the bar opened at T0 + 3 min; its close is known at T0 + 4 min
    a = [100.0] * 8
    b = [100.0, 100.0, 100.0, 100.5, 100.5, 100.0, 100.0, 100.0]
    res = arbkit.backtest(trade_bars(a, b), load_config_text(CONFIG))
    assert res.trades.height >= 1
    first = res.trades.row(0, named=True)
    assert first["entry_ts"] == T0 + 4 * M  # the close of the jump bar, not its open
    assert res.fills["ts"].min() >= T0 + 4 * M
    # an order never fills at the close its decision saw: it arrives 1 s later and meets the
    # next bar (T0 + 5 min), whose close is the first book it can trade against
    entry = res.orders.filter(pl.col("purpose_text") == "entry")
    assert entry["t_match"].to_list() == [T0 + 5 * M] * 2
    fills = {f["instrument"]: f for f in res.fills.filter(pl.col("purpose_text") == "entry")
             .iter_rows(named=True)}
    assert fills["A:X"]["px"] == pytest.approx(100.0 * (1 + 1e-4))  # A's ask at that bar
    assert fills["B:X"]["px"] == pytest.approx(100.5 * (1 - 1e-4))  # B's bid at that bar
    assert fills["A:X"]["ts"] == T0 + 5 * M
    assert any("bar mode" in n for n in res.meta["notes"])


def test_quote_bars_use_bid_and_ask_close_and_their_sizes() -> None:
    qb = pl.DataFrame({"ts_open_ns": [T0], "ts_close_ns": [T0 + M], "venue": ["v"],
                       "symbol": ["s"], "bid_open": [1.0], "bid_high": [1.0], "bid_low": [1.0],
                       "bid_close": [1.0], "ask_open": [1.1], "ask_high": [1.1],
                       "ask_low": [1.1], "ask_close": [1.1], "bid_qty": [3.0],
                       "ask_qty": [None]}, schema_overrides={"ask_qty": pl.Float64})
    with pytest.raises(ConfigError, match="quote_size"):
        quote_bars_to_quotes(qb, quote_size=None)
    q = quote_bars_to_quotes(qb, quote_size=2.0).row(0, named=True)
    assert (q["ts_recv_ns"], q["bid_px"], q["bid_qty"], q["ask_px"], q["ask_qty"]) == (
        T0 + M, 1.0, 3.0, 1.1, 2.0)


def test_real_quote_bars_from_a_catalog_run_end_to_end(tmp_path) -> None:
    """Lean 1m quote bars, Bybit spot vs Bybit linear perp (both USDT), from a catalog."""
    cat = Catalog(tmp_path / "cat")
    cat.add("quote_bars", bar_importers.read_lean_quote_bars())
    cfg = load_config_text(CONFIG.replace('"USDC"', '"USDT"').replace('"A"', '"bybit_spot"')
                           .replace('"B"', '"bybit_linear_perp"').replace('"X"', '"BTCUSDT"')
                           .replace("A:X", "bybit_spot:BTCUSDT")
                           .replace("B:X", "bybit_linear_perp:BTCUSDT"))
    res = arbkit.backtest(tmp_path / "cat", cfg)
    assert res.meta["data_kinds"] == {"bybit_spot:BTCUSDT": "quote_bars",
                                      "bybit_linear_perp:BTCUSDT": "quote_bars"}
    assert res.metric("events") == 721 + 460
    assert res.metric("opportunities_seen") >= 0 and res.metric("best_clean_edge_bps") < 50
