"""Importers: bars, FX, Tardis CSVs, generic CSV with a mapping, raw Binance captures, and the
`arbkit data import` command (all or nothing across the tables of one import)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from arbkit.cli.app import app
from arbkit.data.catalog import Catalog, Selection
from arbkit.data.importers import bars, fx, tardis
from arbkit.data.importers.binance_depth import rebuild_depth
from arbkit.data.importers.binance_raw import import_raw
from arbkit.data.importers.common import SHARED_REAL
from arbkit.data.importers.csv import CsvMapping, read_csv_mapped
from arbkit.data.tables import validate_any
from arbkit.errors import DataError

S = 1_000_000_000


def ns(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp()) * S


# ---- bars: stamped at the open by every source; known at the close ----------------------

def test_ohlcv_csv_bars_close_one_interval_after_their_open() -> None:
    f = SHARED_REAL / "binance-upbit-btc-2025/binance_BTCUSDT_5m_20250525-20250823.csv.gz"
    b = bars.read_ohlcv_csv(f, venue="binance", symbol="BTC/USDT", interval="5m")
    assert b.height == 25_920
    first = b.row(0, named=True)
    assert first["ts_open_ns"] == ns(2025, 5, 25, 23, 30)  # the file's first "timestamp"
    assert first["ts_close_ns"] == ns(2025, 5, 25, 23, 35)
    assert first["close"] == 108726.01
    assert validate_any("bars", b, "binance 5m").rows == 25_920


def test_binanceus_kraken_and_lean_bars_validate() -> None:
    bk = bars.read_binanceus_kraken(interval="1m")
    assert set(bk["venue"].unique()) == {"binanceus", "kraken"}
    assert validate_any("bars", bk, "bk").rows == 3 * 30_240 + 56_717
    q = bars.read_lean_quote_bars()
    assert set(q["venue"].unique()) == {"bybit_spot", "bybit_linear_perp",
                                        "bybit_inverse_perp", "binance_coinm_perp"}
    assert validate_any("quote_bars", q, "lean").rows == 2_749
    with pytest.raises(DataError, match="interval='2m'"):
        bars.read_binanceus_kraken(interval="2m")


# ---- FX: stamped when observable --------------------------------------------------------

def test_fred_is_stamped_at_noon_new_york_and_holidays_are_dropped() -> None:
    f = fx.read_fred_csv()
    assert f.height == 845 - 36  # 36 blank holidays
    jan3 = f.row(0, named=True)  # 2023-01-02 is blank (a holiday)
    assert jan3["ts_ns"] == ns(2023, 1, 3, 17)  # noon EST = 17:00 UTC
    assert jan3["rate"] == 1271.10 and jan3["symbol"] == "USD/KRW"
    july = f.filter(pl.col("ts_ns") >= ns(2023, 7, 3)).row(0, named=True)
    assert july["ts_ns"] == ns(2023, 7, 3, 16)  # noon EDT = 16:00 UTC


def test_upbit_daily_close_is_known_at_the_end_of_its_utc_day() -> None:
    u = fx.read_upbit_krw_usdt()
    first = u.row(0, named=True)
    assert first["ts_ns"] == ns(2024, 6, 8)  # the 2024-06-07 candle closes at 24:00 UTC
    assert (first["base"], first["quote"], first["rate"]) == ("USDT", "KRW", 1412.0)
    assert fx.fx_at(u, ns(2024, 6, 7, 23, 59)) != fx.fx_at(u, ns(2024, 6, 8))
    ecb = fx.read_ecb_usd_krw()
    assert ecb.height == 564 and ecb.row(0, named=True)["ts_ns"] == ns(2024, 6, 7, 14)


# ---- Tardis -----------------------------------------------------------------------------

def test_tardis_quotes_trades_and_snapshots(tmp_path: Path) -> None:
    (tmp_path / "q.csv").write_text(
        "exchange,symbol,timestamp,local_timestamp,ask_amount,ask_price,bid_price,bid_amount\n"
        "deribit,BTC-PERPETUAL,1700000000000000,1700000000001000,10,100.5,100.0,5\n"
        "deribit,BTC-PERPETUAL,1700000000100000,1700000000101000,,,100.0,5\n")
    q, dropped = tardis.read_quotes_csv(tmp_path / "q.csv")
    assert dropped == 1 and q.row(0, named=True)["ts_recv_ns"] == 1_700_000_000_001_000_000
    assert validate_any("quotes", q, "q").rows == 1
    (tmp_path / "t.csv").write_text(
        "exchange,symbol,timestamp,local_timestamp,id,side,price,amount\n"
        "binance,BTCUSDT,1700000000000000,1700000000001000,7,buy,100.0,0.5\n"
        "binance,BTCUSDT,1700000000000000,1700000000001000,8,sell,99.9,0.1\n")
    t = tardis.read_trades_csv(tmp_path / "t.csv")
    assert t["side"].to_list() == [1, -1] and validate_any("trades", t, "t").rows == 2
    (tmp_path / "s.csv").write_text(
        "exchange,symbol,timestamp,local_timestamp,asks[0].price,asks[0].amount,bids[0].price,"
        "bids[0].amount,asks[1].price,asks[1].amount,bids[1].price,bids[1].amount\n"
        "okex,BTC-USDT,1700000000000000,1700000000001000,101,1,100,2,102,3,,\n")
    s = tardis.read_book_snapshot_csv(tmp_path / "s.csv")
    row = s.row(0, named=True)
    assert (row["ask_px_1"], row["ask_qty_1"]) == (102.0, 3.0)
    assert row["bid_px_1"] != row["bid_px_1"]  # NaN: no second bid level
    assert validate_any("quotes", s, "s").rows == 1


def test_tardis_incremental_l2_resets_the_book_on_a_new_snapshot(tmp_path: Path) -> None:
    head = "exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount\n"
    rows = [
        (1, "true", "bid", 100.0, 1), (1, "true", "bid", 99.0, 2), (1, "true", "ask", 101.0, 1),
        (2, "false", "bid", 100.0, 0),   # delete the best bid
        (3, "false", "ask", 100.5, 4),   # a better ask
        (4, "true", "bid", 90.0, 1), (4, "true", "ask", 91.0, 1),  # reconnect: new book
    ]
    (tmp_path / "l2.csv").write_text(head + "".join(
        f"ftx,BTC-PERP,{1_700_000_000_000_000 + t * 1000},{1_700_000_000_000_000 + t * 1000 + 5},"
        f"{snap},{side},{px},{qty}\n" for t, snap, side, px, qty in rows))
    book = tardis.read_incremental_l2_csv(tmp_path / "l2.csv", n_levels=2)
    assert book["bid_px"].to_list() == [100.0, 99.0, 99.0, 90.0]
    assert book["ask_px"].to_list() == [101.0, 101.0, 100.5, 91.0]
    last = book.row(3, named=True)  # nothing of the old book survives the new snapshot
    assert last["bid_px_1"] != last["bid_px_1"] and last["ask_px_1"] != last["ask_px_1"]


# ---- generic CSV ------------------------------------------------------------------------

def test_generic_csv_with_a_mapping_file(tmp_path: Path) -> None:
    (tmp_path / "k.csv").write_text("time,bid,bsz,ask,asz\n"
                                    "1700000000000,100.0,1,100.5,2\n1700000000250,100.1,1,100.6,2\n")
    (tmp_path / "map.toml").write_text(
        'kind = "quotes"\nts_unit = "ms"\n[columns]\nts_recv_ns = "time"\nbid_px = "bid"\n'
        'bid_qty = "bsz"\nask_px = "ask"\nask_qty = "asz"\n'
        '[constants]\nvenue = "kraken"\nsymbol = "XBT/USD"\n')
    q = read_csv_mapped(tmp_path / "k.csv", CsvMapping.load(tmp_path / "map.toml"))
    assert q["ts_recv_ns"].to_list() == [1_700_000_000_000_000_000, 1_700_000_000_250_000_000]
    assert validate_any("quotes", q, "k").rows == 2
    (tmp_path / "bad.toml").write_text('kind = "quotes"\n[columns]\nbid_price = "bid"\n')
    with pytest.raises(DataError, match="mapping names 'bid_price', not a column of quotes"):
        read_csv_mapped(tmp_path / "k.csv", CsvMapping.load(tmp_path / "bad.toml"))
    (tmp_path / "typo.toml").write_text('kind = "quotes"\ncolums = {}\n')
    with pytest.raises(DataError, match="unknown key 'colums'"):
        CsvMapping.load(tmp_path / "typo.toml")


# ---- raw Binance captures ---------------------------------------------------------------

def test_raw_binance_capture_rebuilds_the_same_book_as_the_parquet() -> None:
    raw = SHARED_REAL / "hftbacktest-binance/raw"
    cap = import_raw(sorted(raw.glob("usdm_btcusdt_2024080*.txt.gz")))
    assert cap.depth is not None and cap.depth.stats.gaps == 0
    assert cap.depth.frame.equals(rebuild_depth("usdm", "BTCUSDT", session="C").frame)
    assert cap.quotes.height == 66_089 and cap.trades.height > 20_000


def test_raw_binance_microsecond_stamps_are_detected() -> None:
    cap = import_raw([SHARED_REAL / "hftbacktest-binance/raw/spot_btcusdt_20230405.txt.gz"])
    assert cap.quotes["ts_recv_ns"][0] == 1_680_652_800_004_231_000  # 16 digits x 1000
    assert cap.depth is None  # spot session A has no REST snapshot: no L2 rebuild


# ---- the command: all or nothing --------------------------------------------------------

def test_cli_import_is_all_or_nothing_across_tables(tmp_path: Path) -> None:
    runner = CliRunner()
    root = str(tmp_path / "cat")
    r = runner.invoke(app, ["data", "import", "hftbacktest-bbo", "--session", "C", "--root", root])
    assert r.exit_code == 0, r.output
    before = sorted(p.path for p in Catalog(root).partitions())
    raw = sorted(str(p) for p in (SHARED_REAL / "hftbacktest-binance/raw")
                 .glob("spot_btcusdt_2024080*.txt.gz"))
    # the rebuilt L2 book would land in the bookTicker stream binance_spot/BTCUSDT: refused,
    # and its trades (a separate table of the same import) are not written either
    r = runner.invoke(app, ["data", "import", "binance-raw", *raw, "--root", root])
    assert isinstance(r.exception, DataError) and "one stream holds one source" in str(r.exception)
    assert sorted(p.path for p in Catalog(root).partitions()) == before
    r = runner.invoke(app, ["data", "import", "binance-raw", *raw, "--venue", "binance_spot_l2",
                            "--root", root])
    assert r.exit_code == 0, r.output
    cat = Catalog(root)
    assert cat.read_table(Selection.parse("trades/binance_spot_l2")).rows > 19_000
    assert cat.read_table(Selection.parse("quotes/binance_spot_l2")).frame.width > 20


def test_cli_import_fx_goes_to_monthly_files(tmp_path: Path) -> None:
    runner = CliRunner()
    root = tmp_path / "cat"
    r = runner.invoke(app, ["data", "import", "upbit-fx", "--root", str(root)])
    assert r.exit_code == 0, r.output
    months = sorted(p.name for p in (root / "fx/venue=upbit/symbol=USDT%2FKRW").iterdir())
    assert months[0] == "date=2024-06" and len(months) == 27
    sel = Selection.parse("fx/upbit", start="2025-02-10", end="2025-02-11")
    assert len(Catalog(root).partitions(sel)) == 1  # the February file


def test_mixed_raw_capture_files_are_refused() -> None:
    raw = SHARED_REAL / "hftbacktest-binance/raw"
    with pytest.raises(DataError, match="is usdm/ETHUSDT but usdm_btcusdt_20240808.txt.gz is "
                                        "usdm/BTCUSDT: one import takes"):
        import_raw([raw / "usdm_btcusdt_20240808.txt.gz", raw / "usdm_ethusdt_20240808.txt.gz"])


def test_empty_and_truncated_inputs_are_one_line(tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError, match="empty.csv: the file is empty; re-export it"):
        bars.read_ohlcv_csv(tmp_path / "empty.csv", venue="v", symbol="s", interval="1m")
    src = SHARED_REAL / "lean-1m-bars-20221213/quote_bars_1m.parquet"
    (tmp_path / "cut.parquet").write_bytes(src.read_bytes()[:5000])
    with pytest.raises(DataError, match="cut.parquet: not a valid Parquet file"):
        bars.read_lean_quote_bars(tmp_path / "cut.parquet")


def test_an_ohlcv_file_whose_bars_go_backwards_is_refused_not_sorted(tmp_path: Path) -> None:
    (tmp_path / "rev.csv").write_text("timestamp,open,high,low,close,volume\n"
                                      "2025-01-01 00:01:00,1,1,1,1,1\n"
                                      "2025-01-01 00:00:00,1,1,1,1,1\n")
    b = bars.read_ohlcv_csv(tmp_path / "rev.csv", venue="v", symbol="s", interval="1m")
    with pytest.raises(DataError, match="time goes backwards"):
        validate_any("bars", b, "rev.csv")
