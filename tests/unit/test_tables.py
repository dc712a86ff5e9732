"""The validator of the non-quote tables (trades, bars, quote bars, FX, funding): one clear
line per fault, naming the source, field, value and fix."""

from __future__ import annotations

import polars as pl
import pytest

from arbkit.data.tables import KINDS, SPECS, validate_any, validate_table
from arbkit.errors import DataError

T0 = 1_700_000_000_000_000_000
M = 60_000_000_000


def bars(n: int = 3, **over) -> pl.DataFrame:
    d = {"ts_open_ns": [T0 + k * M for k in range(n)],
         "ts_close_ns": [T0 + (k + 1) * M for k in range(n)],
         "venue": ["kraken"] * n, "symbol": ["XBTUSD"] * n,
         "open": [100.0] * n, "high": [101.0] * n, "low": [99.0] * n, "close": [100.5] * n,
         "volume": [1.0] * n}
    d.update(over)
    return pl.DataFrame(d)


def fx(**over) -> pl.DataFrame:
    d = {"ts_ns": [T0, T0 + 86_400 * 10**9], "venue": ["fred"] * 2,
         "symbol": ["USD/KRW"] * 2, "base": ["USD"] * 2, "quote": ["KRW"] * 2,
         "rate": [1300.0, 1301.5]}
    d.update(over)
    return pl.DataFrame(d)


def test_every_kind_has_a_spec_and_docs_name_every_column() -> None:
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs/data.md").read_text()
    assert set(KINDS) == {"quotes", *SPECS}
    for kind, sp in SPECS.items():
        assert f"`{kind}`" in text, f"docs/data.md does not describe the {kind} table"
        for c in sp.columns:
            assert f"`{c.name}`" in text, f"docs/data.md: {kind}.{c.name} is not documented"


def test_valid_tables_pass_with_canonical_dtypes() -> None:
    rep = validate_table("bars", bars(), "b.parquet")
    assert rep.rows == 3 and rep.n_streams == 1 and rep.frame.schema["volume"] == pl.Float64
    assert rep.frame.schema["trade_count"] == pl.Int64  # optional, added as null
    assert validate_table("fx", fx(), "fx.csv").rows == 2


@pytest.mark.parametrize(
    ("kind", "frame", "match"),
    [
        ("bars", bars().drop("close"), r"b: columns=.*missing column\(s\) \['close'\]"),
        ("bars", bars().rename({"close": "clse"}), r"rename 'clse' to 'close'"),
        ("bars", bars(high=[101.0, 98.0, 101.0]), r"high=98.0 at row 1 .*high below low=99.0"),
        ("bars", bars(close=[100.0, float("nan"), 100.0]), r"close=nan at row 1.*finite and > 0"),
        ("bars", bars(volume=[1.0, -2.0, 1.0]), r"volume=-2.0 at row 1.*>= 0"),
        ("bars", bars(ts_close_ns=[T0, T0 + 2 * M, T0 + 3 * M]),
         r"ts_close_ns=.*closes at or before its open"),
        ("bars", bars(ts_open_ns=[T0 // 10**6 + k * 60_000 for k in range(3)],
                      ts_close_ns=[T0 // 10**6 + (k + 1) * 60_000 for k in range(3)]),
         r"looks like milliseconds; multiply by 1_000_000"),
        ("bars", bars(ts_open_ns=[T0 + M, T0, T0 + 2 * M],
                      ts_close_ns=[T0 + 2 * M, T0 + M, T0 + 3 * M]),
         r"time goes backwards within this \(venue, symbol\) stream"),
        ("bars", pl.concat([bars(1), bars(1)]), r"identical duplicate"),
        ("bars", pl.concat([bars(1), bars(1, close=[100.7])]),
         r"two different bars rows at the same time"),
        ("bars", bars(0), r"rows=0: the bars table is empty"),
        ("bars", bars(ts_close_ns=[T0 + 5 * M, T0 + 6 * M, T0 + 7 * M]),
         r"ts_open_ns=.* at row 1 .*opens before the previous bar closed.*wrong --interval"),
        ("fx", fx(symbol=["KRW/USD"] * 2), r"symbol='KRW/USD' .*must be base/quote = USD/KRW"),
        ("fx", fx(quote=["USD"] * 2, symbol=["USD/USD"] * 2), r"base and quote are the same"),
        ("fx", fx(rate=[1300.0, 0.0]), r"rate=0.0 at row 1"),
        ("fx", fx(ts_ns=["2024-01-01", "2024-01-02"]), r"ts_ns='2024-01-01'.*Int64 nanoseconds"),
    ],
)
def test_bad_input_is_one_clear_line(kind, frame, match) -> None:
    with pytest.raises(DataError, match=match) as exc:
        validate_table(kind, frame, "b" if kind == "bars" else "fx.csv")
    assert "\n" not in str(exc.value)


def test_trades_side_and_ties() -> None:
    t = pl.DataFrame({"ts_recv_ns": [T0, T0, T0 + 5], "venue": ["x"] * 3, "symbol": ["y"] * 3,
                      "price": [1.0, 1.1, 1.2], "qty": [1.0, 2.0, 3.0], "side": [1, -1, 0]})
    assert validate_table("trades", t, "t").rows == 3  # ties in one stream are normal
    with pytest.raises(DataError, match=r"side=2 at row 1.*\+1 \(buy\), -1 \(sell\)"):
        validate_table("trades", t.with_columns(pl.Series("side", [1, 2, 0])), "t")


def test_quote_bars_crossed_close_is_flagged_not_rejected() -> None:
    q = pl.DataFrame({"ts_open_ns": [T0], "ts_close_ns": [T0 + M], "venue": ["v"],
                      "symbol": ["s"], "bid_open": [1.0], "bid_high": [1.2], "bid_low": [0.9],
                      "bid_close": [1.1], "ask_open": [1.05], "ask_high": [1.3],
                      "ask_low": [1.0], "ask_close": [1.1]})
    rep = validate_table("quote_bars", q, "q")
    assert rep.flagged_rows == 1 and "crossed or locked" in rep.warnings[0]


def test_funding_in_percent_is_warned() -> None:
    f = pl.DataFrame({"ts_ns": [T0], "venue": ["binance_usdm"], "symbol": ["BTCUSDT"],
                      "rate": [0.01 * 100]})
    rep = validate_table("funding", f, "f")
    assert "fraction, not percent" in rep.warnings[0]


def test_validate_any_routes_quotes_to_the_quote_validator() -> None:
    q = pl.DataFrame({"ts_recv_ns": [T0], "venue": ["a"], "symbol": ["b"], "bid_px": [2.0],
                      "bid_qty": [1.0], "ask_px": [1.0], "ask_qty": [1.0]})
    rep = validate_any("quotes", q, "q")
    assert rep.flagged_rows == 1  # crossed, flagged
    with pytest.raises(DataError, match="table kind 'candles' is unknown"):
        validate_any("candles", q, "q")
