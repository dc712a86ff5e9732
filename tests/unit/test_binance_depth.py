"""Binance L2 rebuild (snapshot + diffs, update-id rules) on the shared captures and on
scripted streams with sequence gaps."""

from __future__ import annotations

import polars as pl
import pytest

from arbkit.data.importers.binance_depth import (
    match_rate,
    read_bbo,
    rebuild_depth,
    rebuild_from_frames,
)
from arbkit.data.validate import validate_quotes
from arbkit.errors import DataError

T0 = 1_723_161_600_000_000_000  # 2024-08-09 00:00:00 UTC
MS = 1_000_000


# ---- the shared real captures (../shared is beside the repository, also in CI) ----------

@pytest.mark.parametrize(
    ("market", "symbol", "session", "floor"),
    [
        # the data README reports 99.5% (USD-M BTC 2024-08-08), 99.9% (spot BTC), 100%
        # (COIN-M BTC, USD-M BTC 2023); the issue asks for >= 99% everywhere
        ("usdm", "BTCUSDT", "A", 0.999),
        ("usdm", "BTCUSDT", "C", 0.99),
        ("spot", "BTCUSDT", "C", 0.99),
        ("coinm", "BTCUSD_PERP", "C", 0.999),
        ("usdm", "ETHUSDT", "C", 0.99),
    ],
)
def test_rebuilt_best_bid_ask_matches_the_recorded_book_ticker(market, symbol, session, floor):
    rb = rebuild_depth(market, symbol, session=session, n_levels=5)
    rate = match_rate(rb, read_bbo(market, symbol, session=session))
    assert rate >= floor, f"{market} {symbol} {session}: {rate:.4f}"
    assert rb.stats.gaps == 0 and rb.stats.unsynced == 0
    assert rb.stats.messages == rb.stats.applied + rb.stats.dropped_before_sync + rb.stats.unsynced
    assert rb.frame.height > 5_000
    # the output is canonical quotes with 5 levels and passes the one validator
    rep = validate_quotes(rb.frame, f"rebuild {market}")
    assert rep.depth_levels == 5 and rep.crossed_rows == 0


def test_spot_session_a_has_no_snapshot_and_is_refused_clearly():
    with pytest.raises(DataError, match="no REST depth snapshot"):
        rebuild_depth("spot", "BTCUSDT", session="A")


def test_unknown_market_is_one_clear_line():
    with pytest.raises(DataError, match="market='kraken' is unknown"):
        rebuild_depth("kraken", "BTCUSDT")


# ---- scripted streams ------------------------------------------------------------------

def _snap(ts_ms: int, last_id: int, bids: dict, asks: dict) -> pl.DataFrame:
    rows = [(T0 + ts_ms * MS, last_id, "bid", p, q) for p, q in bids.items()]
    rows += [(T0 + ts_ms * MS, last_id, "ask", p, q) for p, q in asks.items()]
    return pl.DataFrame(rows, schema=["local_ts_ns", "last_update_id", "side", "price", "qty"],
                        orient="row")


def _diffs(msgs: list[tuple]) -> pl.DataFrame:
    """msgs: (ts_ms, U, u, pu, [(side, px, qty), ...]) -> long format, one row per level."""
    rows = []
    for ts_ms, first, last, prev, levels in msgs:
        for side, px, qty in levels:
            rows.append((T0 + ts_ms * MS, ts_ms, first, last, prev, side, px, qty))
    return pl.DataFrame(rows, schema=["local_ts_ns", "event_ts_ms", "first_update_id",
                                      "last_update_id", "prev_update_id", "side", "price", "qty"],
                        orient="row")


BOOK_B = {100.0: 1.0, 99.0: 2.0}
BOOK_A = {101.0: 1.0, 102.0: 3.0}


def test_futures_rules_drop_old_diffs_bridge_the_snapshot_and_delete_zero_levels():
    snaps = _snap(10, 50, BOOK_B, BOOK_A)
    diffs = _diffs([
        (5, 40, 45, 39, [("bid", 100.0, 9.0)]),   # buffered, then dropped: u < lastUpdateId
        (12, 48, 52, 45, [("bid", 100.5, 1.0)]),  # bridges 50: applied
        (13, 53, 55, 52, [("ask", 101.0, 0.0)]),  # pu == previous u; deletes 101
    ])
    rb = rebuild_from_frames(snaps, diffs, market="usdm", symbol="X", n_levels=2)
    f = rb.frame
    assert rb.stats.dropped_before_sync == 1 and rb.stats.applied == 2 and rb.stats.gaps == 0
    assert f["bid_px"].to_list() == [100.5, 100.5]
    assert f["ask_px"].to_list() == [101.0, 102.0]  # after the delete the best ask is 102
    assert f["bid_px_1"].to_list() == [100.0, 100.0]
    assert f["ts_exch_ns"].to_list() == [12 * MS, 13 * MS]  # event time E x 1e6


def test_a_sequence_gap_invalidates_the_book_until_the_next_snapshot():
    snaps = pl.concat([_snap(10, 50, BOOK_B, BOOK_A),
                       _snap(100, 80, {98.0: 1.0}, {99.5: 1.0})])
    diffs = _diffs([
        (12, 49, 51, 49, [("bid", 100.5, 1.0)]),  # applied
        (13, 60, 62, 58, [("bid", 100.7, 1.0)]),  # pu 58 != 51: gap -> invalid
        (14, 63, 64, 62, [("bid", 100.9, 1.0)]),  # would chain to the bad one: not applied
        (110, 79, 81, 78, [("ask", 99.4, 2.0)]),  # after the new snapshot: bridges 80
    ])
    rb = rebuild_from_frames(snaps, diffs, market="usdm", symbol="X", n_levels=1)
    assert rb.stats.gaps == 1 and rb.stats.gap_ts_ns == [T0 + 13 * MS]
    ts = (rb.frame["ts_recv_ns"] - T0).to_list()
    # no row is emitted while the book is invalid (13 and 14 ms); the book restarts at 100 ms
    assert all(not (13 * MS <= t < 100 * MS) for t in ts)
    assert rb.frame["bid_px"].to_list()[0] == 100.5
    assert rb.frame["ask_px"].to_list()[-1] == 99.4
    assert rb.frame["bid_px"].to_list()[-1] == 98.0  # the new snapshot's book, not the old one


def test_spot_rules_need_consecutive_update_ids():
    snaps = _snap(10, 50, BOOK_B, BOOK_A)
    diffs = _diffs([
        (11, 45, 50, None, [("bid", 100.2, 1.0)]),  # u <= lastUpdateId: dropped on spot
        (12, 51, 53, None, [("bid", 100.5, 1.0)]),  # U <= 51 <= u: first applied
        (13, 54, 54, None, [("ask", 100.9, 1.0)]),  # U == 53 + 1: applied
        (14, 56, 57, None, [("ask", 100.8, 1.0)]),  # U 56 != 55: gap
    ])
    rb = rebuild_from_frames(snaps, diffs, market="spot", symbol="X", n_levels=1)
    assert (rb.stats.dropped_before_sync, rb.stats.applied, rb.stats.gaps) == (1, 2, 1)
    assert rb.stats.unsynced == 1  # the diff after the gap never met a new snapshot
    assert rb.frame["ask_px"].to_list() == [101.0, 100.9]


def test_diffs_received_before_the_snapshot_are_stamped_at_the_snapshot():
    snaps = _snap(10, 50, BOOK_B, BOOK_A)
    diffs = _diffs([(5, 49, 51, 48, [("bid", 100.5, 1.0)])])
    rb = rebuild_from_frames(snaps, diffs, market="usdm", symbol="X", n_levels=1)
    # the book was only knowable once the snapshot arrived at 10 ms
    assert rb.frame["ts_recv_ns"].to_list() == [T0 + 10 * MS]
