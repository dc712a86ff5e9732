"""Reading quotes from Parquet, manifest hashes, the hftbacktest importer and the sample."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import polars as pl
import pytest

from arbkit.data import schema
from arbkit.data.importers import SESSIONS, import_bbo
from arbkit.data.load import manifest_hash, read_quotes
from arbkit.data.validate import validate_quotes
from arbkit.errors import DataError

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "data" / "samples" / "binance_btcusdt_spot_usdm.parquet"
# ../shared is always beside the repository (also in CI): nothing here is skipped.
SHARED_BBO = REPO.parent / "shared/data/real/hftbacktest-binance/parquet/bbo.parquet"
CANONICAL = {**schema.QUOTE_REQUIRED, **schema.QUOTE_OPTIONAL_COLUMNS, "crossed": pl.Boolean}


@pytest.fixture(scope="module")
def sample() -> pl.DataFrame:
    return pl.read_parquet(SAMPLE)


@pytest.fixture(scope="module")
def imported() -> pl.DataFrame:
    return import_bbo(SHARED_BBO, markets=("spot", "usdm"), symbol="BTCUSDT")


def split_by_session(df: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    a_end = SESSIONS["A"][1]
    return df.filter(pl.col("ts_recv_ns") < a_end), df.filter(pl.col("ts_recv_ns") >= a_end)


# ------------------------------------------------------------------ read_quotes


def test_shipped_sample_loads_and_validates() -> None:
    frame, rep = read_quotes(SAMPLE)
    assert rep.rows == frame.height == 139_277
    assert rep.n_instruments == 2 and rep.crossed_rows == 0 and rep.warnings == []
    assert dict(frame.schema) == CANONICAL
    assert SAMPLE.stat().st_size < 3_000_000
    counts = dict(frame.group_by("venue").len().iter_rows())
    assert counts == {"binance_spot": 8_015 + 27_734, "binance_usdm": 37_439 + 66_089}


def test_sample_is_what_the_importer_produces(sample: pl.DataFrame, imported: pl.DataFrame) -> None:
    assert sample.equals(imported)  # scripts/make_samples.py regenerates it exactly


def test_folder_reads_all_parquet_in_name_order(tmp_path: Path, sample: pl.DataFrame) -> None:
    a, c = split_by_session(sample)
    a.write_parquet(tmp_path / "2023-04-05.parquet")
    c.write_parquet(tmp_path / "2024-08-08.parquet")
    (tmp_path / "notes.txt").write_text("not data")
    frame, rep = read_quotes(tmp_path)
    assert rep.rows == sample.height
    assert frame.drop("crossed").equals(sample)
    assert rep.source == str(tmp_path)


def test_folder_in_wrong_name_order_names_the_file_and_row(
    tmp_path: Path, sample: pl.DataFrame
) -> None:
    a, c = split_by_session(sample)
    c.write_parquet(tmp_path / "a.parquet")  # 2024 first, then 2023: time goes backwards
    a.write_parquet(tmp_path / "b.parquet")
    with pytest.raises(DataError) as info:
        read_quotes(tmp_path)
    msg = str(info.value)
    assert str(tmp_path) in msg and "ts_recv_ns" in msg and "backwards" in msg
    assert "file b.parquet row 0" in msg
    assert str(a["ts_recv_ns"][0]) in msg


def test_folder_files_with_different_depth_fill_nan(tmp_path: Path) -> None:
    base = pl.DataFrame(
        {
            "ts_recv_ns": [1_700_000_000_000_000_000, 1_700_000_000_000_000_001],
            "venue": ["x", "x"],
            "symbol": ["S", "S"],
            "bid_px": [10.0, 10.0],
            "bid_qty": [1.0, 1.0],
            "ask_px": [11.0, 11.0],
            "ask_qty": [1.0, 1.0],
        }
    )
    base.head(1).write_parquet(tmp_path / "1.parquet")
    base.tail(1).with_columns(
        bid_px_1=pl.lit(9.0), bid_qty_1=pl.lit(2.0), ask_px_1=pl.lit(12.0), ask_qty_1=pl.lit(2.0)
    ).write_parquet(tmp_path / "2.parquet")
    frame, rep = read_quotes(tmp_path)
    assert rep.depth_levels == 2
    assert frame["bid_px_1"].is_nan().to_list() == [True, False]


def test_dtype_fault_in_a_folder_names_its_file(tmp_path: Path, sample: pl.DataFrame) -> None:
    a, c = split_by_session(sample)
    a.write_parquet(tmp_path / "1.parquet")
    c.with_columns(pl.col("ask_px").cast(pl.String)).write_parquet(tmp_path / "2.parquet")
    with pytest.raises(DataError, match=r"2\.parquet: ask_px='.*String"):
        read_quotes(tmp_path)


def test_exchange_time_is_added_when_absent(tmp_path: Path, sample: pl.DataFrame) -> None:
    sample.drop("ts_exch_ns").head(100).write_parquet(tmp_path / "q.parquet")
    frame, _ = read_quotes(tmp_path / "q.parquet")
    assert frame.schema["ts_exch_ns"] == pl.Int64
    assert frame["ts_exch_ns"].null_count() == 100


def test_missing_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.parquet"
    with pytest.raises(DataError, match="does not exist") as info:
        read_quotes(missing)
    assert str(missing) in str(info.value)


def test_folder_without_parquet(tmp_path: Path) -> None:
    (tmp_path / "quotes.csv").write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match=r"no \*\.parquet.*quotes\.csv"):
        read_quotes(tmp_path)


def test_zero_byte_file(tmp_path: Path) -> None:
    f = tmp_path / "empty.parquet"
    f.write_bytes(b"")
    with pytest.raises(DataError, match=r"empty\.parquet: file is empty \(0 bytes\)"):
        read_quotes(f)


def test_parquet_with_no_rows(tmp_path: Path, sample: pl.DataFrame) -> None:
    f = tmp_path / "norows.parquet"
    sample.head(0).write_parquet(f)
    with pytest.raises(DataError, match=r"norows\.parquet: rows=0: the table is empty"):
        read_quotes(f)


@pytest.mark.parametrize("keep", [0.5, 0.99, 0.001])
def test_truncated_parquet(tmp_path: Path, keep: float) -> None:
    data = SAMPLE.read_bytes()
    f = tmp_path / "cut.parquet"
    f.write_bytes(data[: max(1, int(len(data) * keep))])
    with pytest.raises(DataError) as info:
        read_quotes(f)
    msg = str(info.value)
    assert msg.startswith(f"cannot read {f}: not a valid Parquet file (truncated?); re-export it")
    assert "\n" not in msg


# ------------------------------------------------------------------ manifest_hash


def test_manifest_hash_is_stable_and_content_sensitive(tmp_path: Path) -> None:
    first = tmp_path / "a" / SAMPLE.name
    first.parent.mkdir()
    shutil.copy(SAMPLE, first)
    h = manifest_hash(SAMPLE)
    assert len(h) == 64 and h == manifest_hash([SAMPLE])
    assert manifest_hash(first) == h  # the folder the data lives in does not matter
    assert manifest_hash(first.parent) == h  # a folder stands for its *.parquet files
    os.utime(first, (0, 0))
    assert manifest_hash(first) == h  # mtime is not content
    data = bytearray(first.read_bytes())
    data[len(data) // 2] ^= 0xFF
    first.write_bytes(bytes(data))
    assert manifest_hash(first) != h


def test_manifest_hash_depends_on_file_names(tmp_path: Path) -> None:
    shutil.copy(SAMPLE, tmp_path / "x.parquet")
    assert manifest_hash(tmp_path / "x.parquet") != manifest_hash(SAMPLE)


# ------------------------------------------------------------------ hftbacktest importer


def _raw_spans() -> pl.DataFrame:
    """Per session and market, first/last receive time straight from the shared file."""
    raw = pl.read_parquet(SHARED_BBO).filter(pl.col("symbol") == "BTCUSDT")
    session = pl.lit(None, dtype=pl.String)
    for name, (lo, hi) in SESSIONS.items():
        session = (
            pl.when(pl.col("local_ts_ns").is_between(lo, hi, closed="left"))
            .then(pl.lit(name))
            .otherwise(session)
        )
    return (
        raw.with_columns(session.alias("session"))
        .group_by("session", "market")
        .agg(pl.col("local_ts_ns").min().alias("first"), pl.col("local_ts_ns").max().alias("last"))
    )


def test_importer_keeps_both_venues_in_the_overlap_only(imported: pl.DataFrame) -> None:
    spans = _raw_spans()
    assert set(imported["venue"]) == {"binance_spot", "binance_usdm"}
    for name in ("A", "C"):
        s = spans.filter(pl.col("session") == name, pl.col("market").is_in(["spot", "usdm"]))
        start, end = s["first"].max(), s["last"].min()
        lo, hi = SESSIONS[name]
        part = imported.filter(pl.col("ts_recv_ns").is_between(lo, hi, closed="left"))
        assert part["ts_recv_ns"].min() >= start and part["ts_recv_ns"].max() <= end
        assert set(part["venue"]) == {"binance_spot", "binance_usdm"}
        for v in ("binance_spot", "binance_usdm"):  # nothing inside the window was lost
            raw_n = (
                pl.read_parquet(SHARED_BBO)
                .filter(
                    pl.col("symbol") == "BTCUSDT",
                    pl.col("market") == v.split("_")[1],
                    pl.col("local_ts_ns").is_between(start, end),
                )
                .height
            )
            assert part.filter(pl.col("venue") == v).height == raw_n
    # session B has no spot: it is not there at all
    b_lo, b_hi = SESSIONS["B"]
    assert imported.filter(pl.col("ts_recv_ns").is_between(b_lo, b_hi)).height == 0


def test_importer_output_is_sorted_canonical_and_uncrossed(imported: pl.DataFrame) -> None:
    assert imported.columns == schema.quote_column_order(1)
    key = imported.select("ts_recv_ns", "venue")
    assert key.equals(key.sort("ts_recv_ns", "venue"))
    rep = validate_quotes(imported, "import_bbo")
    assert rep.crossed_rows == 0 and rep.warnings == []
    assert dict(rep.frame.schema) == CANONICAL


def test_importer_exchange_time_is_null_for_spot_and_raw_for_usdm(
    imported: pl.DataFrame,
) -> None:
    spot = imported.filter(pl.col("venue") == "binance_spot")
    usdm = imported.filter(pl.col("venue") == "binance_usdm")
    assert spot["ts_exch_ns"].null_count() == spot.height
    assert usdm["ts_exch_ns"].null_count() == 0
    assert (usdm["ts_exch_ns"] % 1_000_000 == 0).all()  # ms stamps scaled, not converted
    lag = usdm.select(pl.col("ts_recv_ns") - pl.col("ts_exch_ns"))["ts_recv_ns"]
    c_lo = SESSIONS["C"][0]
    c_lag = lag.filter(usdm["ts_recv_ns"] >= c_lo).median()
    a_lag = lag.filter(usdm["ts_recv_ns"] < c_lo).median()
    # the 2024 collector clock is ~1.27 s behind the exchange and is NOT corrected here
    assert -1_300_000_000 < c_lag < -1_200_000_000  # type: ignore[operator]
    assert 0 < a_lag < 50_000_000  # type: ignore[operator]


def test_importer_one_session_and_single_market() -> None:
    a = import_bbo(SHARED_BBO, session="A")
    assert a["ts_recv_ns"].max() < SESSIONS["A"][1]
    b = import_bbo(SHARED_BBO, markets=("usdm",), session="B")
    assert set(b["venue"]) == {"binance_usdm"} and b.height > 0
    eth = import_bbo(SHARED_BBO, symbol="ETHUSDT", session="C")
    assert set(eth["symbol"]) == {"ETHUSDT"} and eth.height > 0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"session": "B"}, "no window where all markets quote"),
        ({"session": "Z"}, "session='Z' is unknown"),
        ({"markets": ("spot", "kraken")}, "markets=.*kraken"),
        ({"markets": ()}, r"markets=\(\)"),
        ({"symbol": "DOGEUSDT"}, "no window"),
    ],
)
def test_importer_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(DataError, match=match):
        import_bbo(SHARED_BBO, **kwargs)


def test_importer_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        import_bbo(tmp_path / "bbo.parquet")


def test_importer_default_path_works_from_any_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, imported: pl.DataFrame
) -> None:
    monkeypatch.chdir(tmp_path)
    assert import_bbo().equals(imported)
