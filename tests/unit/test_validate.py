"""Bad-input matrix for arbkit.data.validate.validate_quotes."""

from __future__ import annotations

import time

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arbkit.data import schema
from arbkit.data.validate import ValidationReport, validate_quotes
from arbkit.errors import DataError

SRC = "quotes_test.parquet"
T0 = 1_700_000_000_000_000_000
NAN = float("nan")


def quotes(n: int = 4, **cols: list) -> pl.DataFrame:
    """Valid L1 quotes: two instruments interleaved, strictly increasing receive time."""
    base = {
        "ts_recv_ns": [T0 + 1_000 * i for i in range(n)],
        "venue": ["binance_spot", "binance_usdm"] * (n // 2),
        "symbol": ["BTCUSDT"] * n,
        "bid_px": [100.0 + i for i in range(n)],
        "bid_qty": [1.0] * n,
        "ask_px": [100.5 + i for i in range(n)],
        "ask_qty": [2.0] * n,
    }
    base.update(cols)
    return pl.DataFrame(base, strict=False)


def with_depth(df: pl.DataFrame, **cols: list) -> pl.DataFrame:
    """Add two depth levels below/above the touch, then override some columns."""
    extra = {
        "bid_px_1": df["bid_px"] - 1,
        "bid_qty_1": df["bid_qty"],
        "ask_px_1": df["ask_px"] + 1,
        "ask_qty_1": df["ask_qty"],
        "bid_px_2": df["bid_px"] - 2,
        "bid_qty_2": df["bid_qty"],
        "ask_px_2": df["ask_px"] + 2,
        "ask_qty_2": df["ask_qty"],
    }
    out = df.with_columns(pl.Series(k, v, dtype=pl.Float64) for k, v in extra.items())
    return out.with_columns(pl.Series(k, v, dtype=pl.Float64) for k, v in cols.items())


def fails(df: pl.DataFrame, field: str, value: str, *more: str) -> str:
    """Assert DataError whose one-line message names the file, the field and the value."""
    with pytest.raises(DataError) as info:
        validate_quotes(df, SRC)
    msg = str(info.value)
    assert "\n" not in msg
    for part in (SRC, field, value, *more):
        assert part in msg, f"{part!r} not in {msg!r}"
    return msg


# ------------------------------------------------------------------ valid data


def test_valid_frame_passes_with_canonical_dtypes_and_order() -> None:
    rep = validate_quotes(quotes(), SRC)
    assert isinstance(rep, ValidationReport)
    assert (rep.rows, rep.n_instruments, rep.crossed_rows, rep.depth_levels) == (4, 2, 0, 1)
    assert rep.span == (T0, T0 + 3_000) and rep.span_ns == 3_000
    assert rep.warnings == []
    expected = {**schema.QUOTE_REQUIRED, **schema.QUOTE_OPTIONAL_COLUMNS, "crossed": pl.Boolean}
    assert dict(rep.frame.schema) == expected
    assert rep.frame.columns[:4] == ["ts_recv_ns", "ts_exch_ns", "venue", "symbol"]
    assert rep.frame["ts_exch_ns"].null_count() == 4  # added, null: one timeline


def test_validated_frame_validates_again_unchanged() -> None:
    first = validate_quotes(with_depth(quotes()), SRC)
    again = validate_quotes(first.frame, SRC)
    assert again.frame.equals(first.frame)
    assert again.depth_levels == 3


def test_safe_casts_int32_timestamps_and_float32_sizes_pass() -> None:
    df = (
        quotes()
        .with_columns(
            (pl.col("ts_recv_ns") // 1_000_000_000).cast(pl.Int32).alias("small"),
            pl.col("bid_qty").cast(pl.Float32),
            pl.col("ask_qty").cast(pl.Int32),
            pl.col("venue").cast(pl.Categorical),
        )
        .with_columns(pl.lit(None, dtype=pl.Null).alias("ts_exch_ns"))
    )
    rep = validate_quotes(df, SRC)
    assert rep.frame.schema["bid_qty"] == pl.Float64
    assert rep.frame.schema["ask_qty"] == pl.Float64
    assert rep.frame.schema["venue"] == pl.String
    assert rep.frame.schema["ts_exch_ns"] == pl.Int64
    assert rep.frame.columns[-2:] == ["small", "crossed"]  # extras kept, after canonical


def test_float32_prices_are_cast_with_a_precision_warning() -> None:
    rep = validate_quotes(quotes().with_columns(pl.col("bid_px").cast(pl.Float32)), SRC)
    assert rep.frame.schema["bid_px"] == pl.Float64
    assert any("float32" in w and "bid_px" in w for w in rep.warnings)


def test_int32_seconds_cast_safely_then_fail_the_unit_check() -> None:
    # An Int32 column can only hold seconds; it casts safely, then the unit check fires.
    df = quotes().with_columns((pl.col("ts_recv_ns") // 1_000_000_000).cast(pl.Int32))
    fails(df, "ts_recv_ns", "1700000000", "looks like seconds", "multiply by 1_000_000_000")


def test_same_timestamp_different_rows_are_allowed() -> None:
    df = quotes(
        ts_recv_ns=[T0, T0, T0, T0], venue=["a", "a", "b", "b"], bid_px=[100.0, 100.1, 100.0, 100.2]
    )
    assert validate_quotes(df, SRC).rows == 4


def test_streams_need_not_be_merged_only_sorted_each() -> None:
    df = quotes(8).sort("venue", maintain_order=True)  # blocks per venue, not global order
    assert not df["ts_recv_ns"].is_sorted()
    assert validate_quotes(df, SRC).n_instruments == 2


def test_crossed_and_locked_rows_are_flagged_counted_not_rejected() -> None:
    df = quotes(ask_px=[100.5, 101.0, 101.0, 103.5])  # row 1 locked, row 2 crossed
    rep = validate_quotes(df, SRC)
    assert rep.rows == 4
    assert rep.crossed_rows == 2
    assert rep.frame["crossed"].to_list() == [False, True, True, False]
    assert any("2 crossed" in w for w in rep.warnings)


def test_depth_nan_means_no_level_and_passes() -> None:
    df = with_depth(quotes(), bid_px_2=[NAN, NAN, 97.0, NAN], bid_qty_2=[NAN, 0.0, 1.0, NAN])
    rep = validate_quotes(df, SRC)
    assert rep.depth_levels == 3


def test_null_depth_levels_become_nan() -> None:
    df = with_depth(quotes()).with_columns(
        pl.Series("ask_px_2", [None, 104.5, None, None], dtype=pl.Float64)
    )
    rep = validate_quotes(df, SRC)
    assert rep.frame["ask_px_2"].null_count() == 0
    assert rep.frame["ask_px_2"].is_nan().sum() == 3


# ------------------------------------------------------------------ table and columns


def test_empty_table() -> None:
    fails(quotes().head(0), "rows", "0", "empty")


def test_missing_column_suggests_rename_of_bid() -> None:
    msg = fails(
        quotes().rename({"bid_px": "bid"}),
        "columns",
        "'bid'",
        "missing column(s) ['bid_px']",
        "rename 'bid' to 'bid_px'",
    )
    assert "bid_qty" in msg  # the present columns are listed


def test_missing_column_suggests_rename_of_timestamp() -> None:
    fails(
        quotes().rename({"ts_recv_ns": "timestamp"}),
        "columns",
        "'timestamp'",
        "['ts_recv_ns']",
        "rename 'timestamp' to 'ts_recv_ns'",
    )


def test_missing_column_without_a_lookalike_lists_the_schema() -> None:
    fails(quotes().drop("venue"), "columns", "'symbol'", "['venue']", "QUOTE_REQUIRED")


def test_missing_depth_level_column() -> None:
    df = with_depth(quotes()).drop("ask_qty_1")
    fails(df, "columns", "'ask_px_1'", "['ask_qty_1']")


# ------------------------------------------------------------------ dtypes


def test_string_prices_are_an_error() -> None:
    df = quotes().with_columns(pl.col("bid_px").cast(pl.String))
    fails(df, "bid_px", "'100.0'", "String", "Float64")


def test_float_timestamps_are_an_error() -> None:
    df = quotes().with_columns(pl.col("ts_recv_ns").cast(pl.Float64))
    fails(df, "ts_recv_ns", "1.7e+18", "Float64", "int64 nanoseconds")


def test_string_timestamps_are_an_error() -> None:
    df = quotes().with_columns(pl.col("ts_recv_ns").cast(pl.String))
    fails(df, "ts_recv_ns", "'1700000000000000000'", "String")


def test_integer_venue_is_an_error() -> None:
    fails(quotes(venue=[1, 2, 1, 2]), "venue", "1", "Int64", "String")


def test_int64_sizes_beyond_float_precision_are_an_error() -> None:
    fails(quotes(bid_qty=[2**60, 1, 1, 1]), "bid_qty", str(2**60), "Int64", "Float64")


# ------------------------------------------------------------------ values


@pytest.mark.parametrize(
    ("field", "bad", "shown"),
    [
        ("bid_px", NAN, "nan"),
        ("bid_px", None, "null"),
        ("ask_px", float("inf"), "inf"),
        ("ask_px", 0.0, "0.0"),
        ("bid_px", -5.0, "-5.0"),
    ],
)
def test_bad_best_prices(field: str, bad: float | None, shown: str) -> None:
    col = quotes()[field].to_list()
    col[2] = bad
    fails(quotes(**{field: col}), field, f"{field}={shown}", "row 2", "binance_spot/BTCUSDT")


@pytest.mark.parametrize(
    ("field", "bad", "shown"),
    [("bid_qty", -1.0, "-1.0"), ("ask_qty", NAN, "nan"), ("ask_qty", None, "null")],
)
def test_bad_best_sizes(field: str, bad: float | None, shown: str) -> None:
    col = [1.0, bad, 1.0, 1.0]
    fails(quotes(**{field: col}), field, f"{field}={shown}", "row 1", "binance_usdm/BTCUSDT")


def test_zero_size_at_the_touch_is_allowed() -> None:
    assert validate_quotes(quotes(bid_qty=[0.0, 1.0, 1.0, 1.0]), SRC).rows == 4


@pytest.mark.parametrize(
    ("scale", "unit", "factor"),
    [
        (1_000_000_000, "seconds", "1_000_000_000"),
        (1_000_000, "milliseconds", "1_000_000"),
        (1_000, "microseconds", "1_000"),
    ],
)
def test_receive_time_in_the_wrong_unit(scale: int, unit: str, factor: str) -> None:
    df = quotes().with_columns(pl.col("ts_recv_ns") // scale)
    value = str(T0 // scale)
    fails(df, "ts_recv_ns", value, "row 0", f"looks like {unit}; multiply by {factor}")


def test_exchange_time_in_milliseconds() -> None:
    df = quotes(ts_exch_ns=[None, T0 // 1_000_000, None, None])
    fails(
        df,
        "ts_exch_ns",
        str(T0 // 1_000_000),
        "row 1",
        "looks like milliseconds; multiply by 1_000_000",
    )


def test_receive_time_far_in_the_future() -> None:
    late = 5_000_000_000_000_000_000  # year 2128
    fails(quotes(ts_recv_ns=[late + i for i in range(4)]), "ts_recv_ns", str(late), "after 2100")


def test_null_receive_time() -> None:
    fails(quotes(ts_recv_ns=[T0, None, T0 + 2, T0 + 3]), "ts_recv_ns", "null", "row 1")


def test_time_going_backwards_within_one_source() -> None:
    df = quotes(ts_recv_ns=[T0, T0 + 10, T0 + 20, T0 + 5])  # usdm: 10 then 5
    fails(df, "ts_recv_ns", str(T0 + 5), "row 3", "binance_usdm/BTCUSDT", "backwards")


def test_time_going_backwards_in_a_globally_sorted_looking_file() -> None:
    # interleaving hides nothing: spot goes back although the first rows look sorted
    df = quotes(6, ts_recv_ns=[T0, T0 + 1, T0 + 2, T0 + 3, T0 + 1, T0 + 5])
    fails(df, "ts_recv_ns", str(T0 + 1), "row 4", "binance_spot", "backwards")


def test_identical_duplicate_rows_are_an_error() -> None:
    df = pl.concat([quotes(), quotes().slice(2, 1)]).sort("ts_recv_ns", maintain_order=True)
    fails(df, "ts_recv_ns", str(T0 + 2_000), "row 3", "duplicate")


def test_identical_duplicate_rows_in_an_unsorted_file() -> None:
    df = pl.concat([quotes(), quotes().slice(3, 1)]).sort("venue", maintain_order=True)
    fails(df, "ts_recv_ns", str(T0 + 3_000), "row 4", "binance_usdm", "duplicate")


def test_identical_duplicate_rows_with_nan_depth_are_still_duplicates() -> None:
    df = with_depth(quotes(), bid_px_2=[NAN] * 4, bid_qty_2=[NAN] * 4)
    df = pl.concat([df, df.slice(0, 1)]).sort("ts_recv_ns", maintain_order=True)
    fails(df, "ts_recv_ns", str(T0), "row 1", "duplicate")


@pytest.mark.parametrize(("field", "bad"), [("venue", None), ("symbol", None), ("symbol", "")])
def test_null_or_empty_instrument_names(field: str, bad: str | None) -> None:
    col = quotes()[field].to_list()
    col[1] = bad
    fails(quotes(**{field: col}), field, f"{field}={'null' if bad is None else repr(bad)}", "row 1")


# ------------------------------------------------------------------ depth


def test_depth_bid_level_above_previous_level() -> None:
    df = with_depth(quotes(), bid_px_1=[99.0, 101.0, 101.0, 102.0])  # row 1 equals bid_px
    fails(df, "bid_px_1", "bid_px_1=101.0", "row 1", "below bid_px=101.0")


def test_depth_ask_level_inside_previous_level() -> None:
    df = with_depth(quotes(), ask_px_2=[102.5, 103.5, 103.0, 105.5])  # row 2: ask_px_1=103.5
    fails(df, "ask_px_2", "ask_px_2=103.0", "row 2", "above ask_px_1=103.5")


def test_depth_level_present_after_an_empty_level() -> None:
    df = with_depth(quotes(), bid_px_1=[99.0, NAN, 101.0, 102.0])
    fails(df, "bid_px_2", "bid_px_2=99.0", "row 1", "bid_px_1=nan")


def test_depth_negative_size_at_a_present_level() -> None:
    df = with_depth(quotes(), ask_qty_1=[2.0, 2.0, 2.0, -0.5])
    fails(df, "ask_qty_1", "ask_qty_1=-0.5", "row 3")


def test_depth_infinite_price() -> None:
    df = with_depth(quotes(), ask_px_2=[float("inf"), 103.5, 104.5, 105.5])
    fails(df, "ask_px_2", "ask_px_2=inf", "row 0")


# ------------------------------------------------------------------ property and speed


@st.composite
def valid_frames(draw: st.DrawFn) -> pl.DataFrame:
    """Random valid quotes: 1-3 instruments, strictly increasing time within each."""
    n_inst = draw(st.integers(1, 3))
    parts = []
    for k in range(n_inst):
        n = draw(st.integers(2, 12))
        steps = draw(st.lists(st.integers(1, 10**9), min_size=n, max_size=n))
        bids = draw(st.lists(st.floats(1e-6, 1e7), min_size=n, max_size=n))
        spread = draw(st.lists(st.floats(0.0, 10.0), min_size=n, max_size=n))
        qty = draw(st.lists(st.floats(0.0, 1e6), min_size=n, max_size=n))
        parts.append(
            pl.DataFrame(
                {
                    "ts_recv_ns": np.cumsum(steps) + T0,
                    "venue": f"v{k}",
                    "symbol": "S",
                    "bid_px": bids,
                    "bid_qty": qty,
                    "ask_px": [b + s for b, s in zip(bids, spread)],
                    "ask_qty": qty[::-1],
                }
            )
        )
    return pl.concat(parts).sort("ts_recv_ns", maintain_order=True)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(df=valid_frames(), data=st.data())
def test_property_valid_passes_and_shuffled_source_goes_backwards(
    df: pl.DataFrame, data: st.DataObject
) -> None:
    rep = validate_quotes(df, SRC)
    assert rep.rows == df.height
    assert rep.crossed_rows == int((df["bid_px"] >= df["ask_px"]).sum())

    venue = data.draw(st.sampled_from(sorted(set(df["venue"]))))
    idx = [i for i, v in enumerate(df["venue"]) if v == venue]
    perm = data.draw(st.permutations(idx).filter(lambda p: list(p) != sorted(p)))
    order = list(range(df.height))
    for src, dst in zip(idx, perm, strict=True):
        order[src] = dst  # the venue's rows swap places among themselves only
    shuffled = df[order]
    fails(shuffled, "ts_recv_ns", venue, "backwards")


def test_validator_is_vectorised_one_million_rows_quickly() -> None:
    n = 1_000_000
    rng = np.random.default_rng(7)
    bid = 60_000 + np.cumsum(rng.normal(0, 0.1, n))
    df = pl.DataFrame(
        {
            "ts_recv_ns": T0 + np.cumsum(rng.integers(0, 1_000, n)),
            "venue": np.array(["binance_spot", "binance_usdm"])[rng.integers(0, 2, n)],
            "symbol": "BTCUSDT",
            "bid_px": bid,
            "bid_qty": rng.random(n),
            "ask_px": bid + 0.01,
            "ask_qty": rng.random(n),
        }
    )
    t0 = time.perf_counter()
    rep = validate_quotes(df, SRC)
    elapsed = time.perf_counter() - t0
    assert rep.rows == n
    # ~0.05 s measured; a per-row Python loop would take tens of seconds.
    assert elapsed < 5.0, f"validate_quotes took {elapsed:.2f}s for 1M rows"
