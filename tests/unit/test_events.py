"""Events: the tie rule, dropped instruments, and per-session clock offsets on the exchange
timeline (each session, and each UTC day, estimated on its own)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from arbkit.data.events import build_events, session_offsets_ns
from arbkit.data.load import read_quotes

MS = 1_000_000
S = 1_000 * MS
T0 = 1_700_000_000 * S
SAMPLE = Path(__file__).resolve().parents[2] / "data/samples/binance_btcusdt_spot_usdm.parquet"


def rows(spec: list[tuple[int, str, float]]) -> pl.DataFrame:
    return pl.DataFrame({"ts_recv_ns": [T0 + t for t, _, _ in spec],
                         "venue": [v for _, v, _ in spec], "symbol": ["X"] * len(spec),
                         "bid_px": [b for _, _, b in spec], "bid_qty": [1.0] * len(spec),
                         "ask_px": [b + 1 for _, _, b in spec], "ask_qty": [1.0] * len(spec)})


def test_ties_order_by_config_instrument_then_source_row_and_others_are_dropped() -> None:
    df = rows([(0, "B", 10.0), (5, "B", 11.0), (5, "A", 20.0), (5, "B", 12.0), (9, "C", 30.0)])
    arr = build_events(df, ["A:X", "B:X"])
    ev = arr.events
    assert [(int(t - T0), int(i), float(b)) for t, i, b in
            zip(ev["ts_recv"], ev["inst"], ev["bid_px"])] == [
        (0, 1, 10.0), (5, 0, 20.0), (5, 1, 11.0), (5, 1, 12.0)]
    assert arr.dropped_rows == 1


def test_an_unsorted_stream_is_refused_before_the_merge() -> None:
    df = rows([(5, "A", 1.0), (0, "A", 1.0), (1, "B", 1.0)])
    with pytest.raises(Exception, match="time goes backwards"):
        build_events(df, ["A:X", "B:X"])


def test_each_recording_session_gets_its_own_clock_offset() -> None:
    # session 1: the recorder's clock runs 1.3 s behind (recv - exch ~ -1300 ms)
    # session 2 (after a 20-minute silence): sane, +5 ms feed latency
    recv1 = T0 + np.arange(1000) * 100 * MS
    recv2 = recv1[-1] + 20 * 60 * S + np.arange(1000) * 100 * MS
    recv = np.r_[recv1, recv2]
    exch = np.r_[recv1 + 1300 * MS - np.arange(1000) % 7 * MS, recv2 - 5 * MS]
    off = session_offsets_ns(recv, exch)
    first = int(off[0])
    assert -1300 * MS <= first <= -1294 * MS  # 1st percentile of recv - exch
    assert (off[:1000] == first).all() and (off[1000:] == 0).all()
    assert (recv[:1000] - (exch[:1000] + off[:1000]) >= 0).sum() >= 990  # latency >= 0 now


def test_offsets_are_cut_at_utc_midnight_so_day_by_day_reads_agree() -> None:
    midnight = (T0 // (86_400 * S) + 1) * 86_400 * S
    recv = midnight + np.r_[np.arange(-50, 0), np.arange(0, 50)] * S
    exch = recv + np.r_[np.full(50, 2 * S), np.full(50, 1 * S)]  # different offsets each day
    off = session_offsets_ns(recv, exch)
    assert set(off[:50]) == {-2 * S} and set(off[50:]) == {-1 * S}


def test_the_shipped_sample_gets_one_offset_per_session_on_the_exchange_timeline() -> None:
    frame, _ = read_quotes(SAMPLE)
    arr = build_events(frame, ["binance_spot:BTCUSDT", "binance_usdm:BTCUSDT"],
                       timeline="exch")
    assert arr.use_exch == {"binance_spot:BTCUSDT": False, "binance_usdm:BTCUSDT": True}
    offs = arr.clock_offset_ns["binance_usdm:BTCUSDT"]
    assert len(offs) == 2  # session A (2023) and session C (2024)
    assert -1_272 * MS < min(offs) < -1_270 * MS  # C: the collector's clock ~1.27 s behind
    assert -30 * MS < max(offs) < 0  # A: only the latency jitter's tail is negative
