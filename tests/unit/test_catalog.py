"""The Parquet catalog (arbkit/data/catalog.py) and `arbkit data add/ls/info/validate`."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

import arbkit
from arbkit.cli.app import app
from arbkit.data.catalog import Catalog, Selection
from arbkit.errors import DataError

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data/samples/binance_btcusdt_spot_usdm.parquet"
STUDY = ROOT / "studies/binance_spot_usdm_hypothetical_fees.toml"
S = 1_000_000_000
T0 = 1_700_000_000 * S  # 2023-11-14 22:13:20 UTC


@pytest.fixture(scope="module")
def sample_catalog(tmp_path_factory) -> Catalog:
    cat = Catalog(tmp_path_factory.mktemp("catalog"))
    cat.add_quotes(SAMPLE)
    return cat


def quotes(rows: list[tuple]) -> pl.DataFrame:
    """rows: (t_s, venue, bid, ask)."""
    return pl.DataFrame(
        {"ts_recv_ns": [T0 + round(t * S) for t, *_ in rows], "venue": [r[1] for r in rows],
         "symbol": ["X"] * len(rows), "bid_px": [r[2] for r in rows],
         "bid_qty": [1.0] * len(rows), "ask_px": [r[3] for r in rows],
         "ask_qty": [1.0] * len(rows)})


def test_layout_is_kind_venue_symbol_day_and_ls_reads_footers(sample_catalog: Catalog) -> None:
    parts = sample_catalog.partitions()
    assert [(p.venue, p.day.isoformat()) for p in parts] == [
        ("binance_spot", "2023-04-05"), ("binance_spot", "2024-08-08"),
        ("binance_usdm", "2023-04-05"), ("binance_usdm", "2024-08-08")]
    rel = parts[0].path.relative_to(sample_catalog.root).as_posix()
    assert rel == ("quotes/venue=binance_spot/symbol=BTCUSDT/date=2023-04-05/"
                   "binance_spot_BTCUSDT_2023-04-05.parquet")
    listing = sample_catalog.ls()
    assert listing.get_column("days").to_list() == [2, 2]
    assert listing.get_column("rows").sum() == pl.read_parquet(SAMPLE).height


def test_adding_the_same_data_twice_stores_it_once(sample_catalog: Catalog) -> None:
    before = sample_catalog.ls().get_column("rows").to_list()
    sample_catalog.add_quotes(SAMPLE)
    assert sample_catalog.ls().get_column("rows").to_list() == before


def test_a_selection_reads_only_its_instruments_and_days(sample_catalog: Catalog) -> None:
    sel = Selection.parse("quotes/binance_spot/BTC*", start="2024-08-08")
    assert [p.day.isoformat() for p in sample_catalog.partitions(sel)] == ["2024-08-08"]
    frame, report = sample_catalog.read(sel)
    assert frame.get_column("venue").unique().to_list() == ["binance_spot"]
    assert report.n_instruments == 1
    full = pl.read_parquet(SAMPLE)
    want = full.filter((pl.col("venue") == "binance_spot")
                       & (pl.col("ts_recv_ns") >= 1_723_075_200 * S)).height
    assert frame.height == want


def test_backtest_from_the_catalog_equals_backtest_from_the_file(sample_catalog: Catalog) -> None:
    a = arbkit.backtest(SAMPLE, STUDY)
    b = arbkit.backtest(sample_catalog.root, STUDY)
    assert a.trades.height > 0
    for name in ("trades", "fills", "orders", "equity", "legs"):
        assert getattr(a, name).equals(getattr(b, name)), name


def test_a_bad_import_writes_nothing(tmp_path: Path) -> None:
    cat = Catalog(tmp_path)
    bad = quotes([(0, "A", 100.0, 100.1), (86_400, "A", float("nan"), 100.1)])  # 2nd day bad
    with pytest.raises(DataError, match="bid_px"):
        cat.add_quotes(bad)
    assert cat.partitions() == []


def test_a_merge_that_conflicts_with_stored_rows_is_refused_and_keeps_the_old_file(
        tmp_path: Path) -> None:
    cat = Catalog(tmp_path)
    cat.add_quotes(quotes([(0, "A", 100.0, 100.1), (1, "A", 100.0, 100.1)]))
    stored = cat.partitions()[0].path.read_bytes()
    with pytest.raises(DataError):
        # same instrument and receive time, different prices: a duplicate timestamp
        cat.add_quotes(quotes([(1, "A", 99.0, 99.1)]))
    assert cat.partitions()[0].path.read_bytes() == stored


def test_info_tells_a_stale_feed_from_a_quiet_market(tmp_path: Path) -> None:
    cat = Catalog(tmp_path)
    rows = [(t, "A", 100.0, 100.1) for t in (0, 10, 200, 210)]  # A silent 10 s -> 200 s
    rows += [(t, "B", 100.0, 100.1) for t in range(0, 211, 10)]  # B quotes every 10 s
    rows += [(t, v, 100.0, 100.1) for t in (600, 610) for v in "AB"]  # both silent 210 -> 600
    cat.add_quotes(quotes(rows))
    info = {i.venue: i for i in cat.info(Selection.parse("quotes"), gap_s=60)}
    assert (info["A"].gaps, info["A"].stale_gaps, info["A"].quiet_gaps) == (2, 1, 1)
    assert (info["B"].gaps, info["B"].stale_gaps, info["B"].quiet_gaps) == (1, 0, 1)
    assert info["A"].longest_gap_s == 390.0


def test_selection_errors_are_one_clear_line(sample_catalog: Catalog) -> None:
    with pytest.raises(DataError, match="unknown kind 'candles'"):
        Selection.parse("candles/x")
    with pytest.raises(DataError, match="not a date; use YYYY-MM-DD"):
        Selection.parse("quotes", start="08/08/2024")
    with pytest.raises(DataError, match="no data for quotes/kraken/.*its quotes are binance_spot"):
        sample_catalog.read(Selection.parse("quotes/kraken"))
    with pytest.raises(DataError, match="that stream has days 2023-04-05 .. 2024-08-08 only"):
        sample_catalog.read(Selection.parse("quotes/binance_spot", start="2025-01-01"))
    with pytest.raises(DataError, match="--start 2024-08-09 is after --end 2024-08-01; swap"):
        Selection.parse("quotes", start="2024-08-09", end="2024-08-01")


def test_cli_add_ls_info_validate(tmp_path: Path) -> None:
    runner = CliRunner(env={"COLUMNS": "160"})
    root = str(tmp_path / "cat")
    r = runner.invoke(app, ["data", "add", str(SAMPLE), "--root", root])
    assert r.exit_code == 0, r.output
    assert "wrote 4 instrument-day file(s)" in r.output
    r = runner.invoke(app, ["data", "ls", "--root", root])
    assert r.exit_code == 0 and "binance_usdm" in r.output, r.output
    r = runner.invoke(app, ["data", "info", "quotes/binance_usdm", "--root", root])
    assert r.exit_code == 0 and "103,528" in r.output, r.output
    r = runner.invoke(app, ["data", "validate", "--root", root])
    assert r.exit_code == 0 and "4 ok, 0 failed" in r.output, r.output
    # a truncated file is caught by validate, named, and fails the command
    part = Catalog(root).partitions()[0].path
    part.write_bytes(part.read_bytes()[:100])
    r = runner.invoke(app, ["data", "validate", "--root", root])
    assert r.exit_code == 1, r.output
    assert "FAIL quotes/binance_spot/BTCUSDT/2023-04-05" in r.output
    assert "3 ok, 1 failed" in r.output
    r = runner.invoke(app, ["data", "info", "candles", "--root", root])
    # the DataError reaches arbkit.cli.app.main, which prints it as one line and exits 1
    assert isinstance(r.exception, DataError) and "unknown kind 'candles'" in str(r.exception)


def test_a_silence_the_others_share_is_quiet_even_with_a_row_at_each_end(tmp_path: Path) -> None:
    # A is silent 0 -> 1000 s; B has one row just after A stops and one just before it resumes,
    # but is silent in between too: a quiet market (a session gap), not a stale feed
    cat = Catalog(tmp_path / "c")
    rows = [(0, "A", 100.0, 100.1), (1000, "A", 100.0, 100.1),
            (1, "B", 100.0, 100.1), (999, "B", 100.0, 100.1)]
    cat.add_quotes(quotes(rows))
    info = {i.venue: i for i in cat.info(Selection.parse("quotes"), gap_s=60)}
    assert (info["A"].gaps, info["A"].stale_gaps, info["A"].quiet_gaps) == (1, 0, 1)


def test_info_reports_each_streams_own_book_levels(tmp_path: Path) -> None:
    cat = Catalog(tmp_path / "c")
    l1 = quotes([(0, "A", 100.0, 100.1), (1, "A", 100.0, 100.1)])
    deep = quotes([(0, "B", 100.0, 100.1), (1, "B", 100.0, 100.1)]).with_columns(
        pl.lit(99.9).alias("bid_px_1"), pl.lit(1.0).alias("bid_qty_1"),
        pl.lit(100.2).alias("ask_px_1"), pl.lit(1.0).alias("ask_qty_1"))
    cat.add_quotes(l1)
    cat.add_quotes(deep)
    info = {i.venue: i for i in cat.info(Selection.parse("quotes"))}
    assert (info["A"].depth_levels, info["B"].depth_levels) == (1, 2)
