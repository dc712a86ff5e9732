"""Synthetic scenario data: determinism, schema, invariants and the shape of each scenario.

Edges are recomputed from the frame the way the strategy sees them: each venue's last quote
as of every row (receive time), ``e_AB = (bid_B - ask_A) / mid_ref``, ``e_BA = (bid_A - ask_B)
/ mid_ref``, premium ``p = (mid_B - mid_A) / mid_ref``, all in bps.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from arbkit.config import OFF, Config, load_config
from arbkit.data import synth
from arbkit.data.load import read_quotes
from arbkit.data.schema import (
    NS_MIN,
    QUOTE_OPTIONAL_COLUMNS,
    QUOTE_REQUIRED,
    depth_columns,
    quote_column_order,
)
from arbkit.data.synth import SCENARIOS, generate, generate_l1_events_fast, write_scenario
from arbkit.data.validate import validate_quotes
from arbkit.errors import ConfigError

SMALL = 4_000
START_NS = 1_704_067_200_000_000_000  # 2024-01-01T00:00:00Z


@functools.cache
def _gen(scenario: str, seed: int = 7, n: int | None = None,
         depth: int = 5) -> tuple[pl.DataFrame, Config]:
    return generate(scenario, seed=seed, n_events=n, depth=depth)


def _thr(cfg: Config) -> float:
    """entry_bps - exit_bps + fees of four fills + latency allowance (BRIEF §5)."""
    s = cfg.strategy
    fees4 = 2.0 * sum(i.taker_fee_bps for i in cfg.instruments)
    return s.entry_bps - float(s.exit_bps) + fees4 + s.latency_allowance_bps


@functools.cache
def _edges(scenario: str) -> pl.DataFrame:
    """As-of L1 of both venues at every row (default size), with edges and premium in bps."""
    df, _ = _gen(scenario)
    ffill = [
        pl.when(pl.col("venue") == v).then(pl.col(c)).forward_fill().alias(f"{c}_{v}")
        for v in ("A", "B") for c in ("bid_px", "ask_px")
    ]
    e = df.select("ts_recv_ns", *ffill).drop_nulls()
    mid_a = (pl.col("bid_px_A") + pl.col("ask_px_A")) / 2
    mid_b = (pl.col("bid_px_B") + pl.col("ask_px_B")) / 2
    ref = (mid_a + mid_b) / 2
    t_s = (pl.col("ts_recv_ns") - START_NS) / 1e9
    return e.select(
        t_s.alias("t_s"),
        ((pl.col("bid_px_B") - pl.col("ask_px_A")) / ref * 1e4).alias("e_ab"),
        ((pl.col("bid_px_A") - pl.col("ask_px_B")) / ref * 1e4).alias("e_ba"),
        ((mid_b - mid_a) / ref * 1e4).alias("prem"),
    )


def _episodes(scenario: str) -> pl.DataFrame:
    """Edges tagged by 60 s episode: direction d (+1 = B rich first), phase, and the opening,
    closing and adverse-premium series seen from that direction. Complete episodes only."""
    e = _edges(scenario)
    k = (pl.col("t_s") // synth.EPISODE_S).cast(pl.Int64)
    e = e.with_columns(k.alias("k"), (pl.col("t_s") % synth.EPISODE_S).alias("phase"))
    d = pl.when(pl.col("k") % 2 == 0).then(1.0).otherwise(-1.0)
    plus = pl.col("k") % 2 == 0
    e = e.with_columns(
        d.alias("d"),
        pl.when(plus).then(pl.col("e_ab")).otherwise(pl.col("e_ba")).alias("open_edge"),
        pl.when(plus).then(pl.col("e_ba")).otherwise(pl.col("e_ab")).alias("close_edge"),
        (d * pl.col("prem")).alias("adverse"),
    )
    last = int(e["t_s"].max() // synth.EPISODE_S)
    return e.filter(pl.col("k") < last)


# ---- determinism ----------------------------------------------------------------------------

@pytest.mark.parametrize("scenario", SCENARIOS)
def test_same_seed_gives_identical_frame(scenario: str) -> None:
    a, cfg_a = generate(scenario, seed=3, n_events=SMALL)
    b, cfg_b = generate(scenario, seed=3, n_events=SMALL)
    assert a.equals(b)
    assert cfg_a == cfg_b


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_different_seed_gives_different_frame(scenario: str) -> None:
    a, _ = generate(scenario, seed=3, n_events=SMALL)
    b, _ = generate(scenario, seed=4, n_events=SMALL)
    assert not a.equals(b)


def test_same_seed_writes_identical_bytes(tmp_path: Path) -> None:
    one = write_scenario("normal", tmp_path / "one", seed=5, n_events=SMALL)
    two = write_scenario("normal", tmp_path / "two", seed=5, n_events=SMALL)
    for name in ("quotes.parquet", "config.toml"):
        assert (one / name).read_bytes() == (two / name).read_bytes()


# ---- schema and invariants ------------------------------------------------------------------

@pytest.mark.parametrize("scenario", SCENARIOS)
def test_schema_matches_canonical_quotes_table(scenario: str) -> None:
    df, _ = _gen(scenario, n=SMALL)
    assert df.columns == quote_column_order(5)
    expected = {**QUOTE_REQUIRED, **QUOTE_OPTIONAL_COLUMNS, **dict.fromkeys(
        depth_columns(5), pl.Float64())}
    assert dict(df.schema) == expected
    assert df.height == SMALL
    assert df.null_count().sum_horizontal().item() == 0
    assert df["ts_recv_ns"].min() == START_NS
    assert df["ts_exch_ns"].min() >= NS_MIN
    assert set(df["venue"].unique()) == {"A", "B"}
    assert set(df["symbol"].unique()) == {"BTC-USDT"}


def test_depth_one_is_l1_only() -> None:
    df, _ = generate("normal", n_events=SMALL, depth=1)
    assert df.columns == quote_column_order(1)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_rows_sorted_and_each_venue_strictly_increasing(scenario: str) -> None:
    df, _ = _gen(scenario)
    assert df.equals(df.sort("ts_recv_ns", "venue"))
    for venue, delay_ns in (("A", 2_000_000), ("B", 5_000_000)):
        v = df.filter(pl.col("venue") == venue)
        assert (v["ts_recv_ns"].diff().drop_nulls() > 0).all()
        assert (v["ts_exch_ns"].diff().drop_nulls() > 0).all()
        assert ((v["ts_recv_ns"] - v["ts_exch_ns"]) == delay_ns).all()


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_books_never_crossed_and_prices_on_the_tick(scenario: str) -> None:
    df, _ = _gen(scenario)
    assert (df["bid_px"] < df["ask_px"]).all()
    px = df.select(pl.col("^(bid|ask)_px.*$")).to_numpy()
    assert np.abs(px * 100 - np.round(px * 100)).max() < 1e-6
    assert px.min() >= 40_000 and px.max() <= 70_000
    assert df.select(pl.col("^(bid|ask)_qty.*$")).to_numpy().min() > 0


@pytest.mark.parametrize("scenario", ["normal", "flash-crash"])
def test_depth_levels_monotone(scenario: str) -> None:
    df, _ = _gen(scenario)
    for lvl in range(1, 5):
        prev = "" if lvl == 1 else f"_{lvl - 1}"
        assert (df[f"bid_px_{lvl}"] < df[f"bid_px{prev}"]).all()
        assert (df[f"ask_px_{lvl}"] > df[f"ask_px{prev}"]).all()
        assert (df[f"bid_qty_{lvl}"] > df[f"bid_qty{prev}"]).all()
        assert (df[f"ask_qty_{lvl}"] > df[f"ask_qty{prev}"]).all()


def test_default_size_covers_two_hours_at_realistic_rates() -> None:
    df, _ = _gen("normal")
    span_s = (df["ts_recv_ns"].max() - df["ts_recv_ns"].min()) / 1e9
    assert span_s >= 2 * 3600
    for venue in ("A", "B"):
        rate = df.filter(pl.col("venue") == venue).height / span_s
        assert 10 <= rate <= 50


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_passes_the_quotes_validator_without_warnings(scenario: str) -> None:
    df, _ = _gen(scenario)
    rep = validate_quotes(df, f"synth:{scenario}")
    assert (rep.rows, rep.n_instruments, rep.crossed_rows, rep.depth_levels) == (
        df.height, 2, 0, 5)
    assert rep.warnings == []


# ---- configs --------------------------------------------------------------------------------

@pytest.mark.parametrize("scenario", SCENARIOS)
def test_config_is_tradable_both_ways_and_feasible(scenario: str) -> None:
    _, cfg = _gen(scenario, n=SMALL)
    assert [i.key for i in cfg.instruments] == [cfg.route.a, cfg.route.b]
    assert all(i.initial_base * 50_000 > cfg.strategy.notional for i in cfg.instruments)
    fees4 = 2.0 * sum(i.taker_fee_bps for i in cfg.instruments)
    assert cfg.strategy.stop_loss_bps != OFF and cfg.strategy.stop_loss_bps > fees4
    assert cfg.strategy.max_hold_s != OFF
    assert _thr(cfg) < cfg.strategy.sanity_max_edge_bps


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_written_config_loads_and_quotes_read_back(scenario: str, tmp_path: Path) -> None:
    out = write_scenario(scenario, tmp_path / scenario, n_events=SMALL, depth=3)
    df, cfg = generate(scenario, n_events=SMALL, depth=3)
    assert out == tmp_path / scenario
    assert load_config(out / "config.toml") == cfg
    assert pl.read_parquet(out / "quotes.parquet").equals(df)
    loaded, rep = read_quotes(out / "quotes.parquet")
    assert loaded.drop("crossed").equals(df) and rep.crossed_rows == 0
    assert sorted(p.name for p in out.iterdir()) == ["config.toml", "quotes.parquet"]


def test_write_failure_leaves_nothing_behind(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(self: pl.DataFrame, *args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(pl.DataFrame, "write_parquet", boom)
    with pytest.raises(OSError, match="disk full"):
        write_scenario("flat", tmp_path / "out", n_events=SMALL)
    assert list((tmp_path / "out").iterdir()) == []


def test_unknown_scenario_names_the_value_and_the_choices(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'sideways'") as info:
        generate("sideways")
    assert all(name in str(info.value) for name in SCENARIOS)
    with pytest.raises(ConfigError):
        write_scenario("sideways", tmp_path / "x")
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("kwargs", [{"n_events": 0}, {"depth": 0}, {"n_events": 2.5}])
def test_bad_sizes_are_config_errors(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        generate("normal", **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="n_events = 0"):
        generate_l1_events_fast(0)


# ---- scenario shapes ------------------------------------------------------------------------

def test_always_win_episodes_open_above_threshold_then_converge() -> None:
    _, cfg = _gen("always-win")
    thr, stop = _thr(cfg), float(cfg.strategy.stop_loss_bps)
    exit_bps = float(cfg.strategy.exit_bps)
    ep = _episodes("always-win")
    opened = ep.filter(pl.col("open_edge") >= thr)
    per = opened.group_by("k").agg(
        (pl.col("t_s").max() - pl.col("t_s").min()).alias("open_s"),
        pl.col("adverse").min().alias("entry_adverse"),
        pl.col("phase").max().alias("last_phase"),
    )
    after = ep.filter(pl.col("phase") >= 20).group_by("k").agg(
        pl.col("adverse").max().alias("worst"),
        pl.col("close_edge").filter(pl.col("phase") >= 27).max().alias("close_max"),
    )
    per = per.join(after, on="k")
    assert per.height == ep["k"].n_unique() >= 100
    assert (per["open_s"] >= 4.0).all()  # far longer than the order latency
    assert (per["last_phase"] < 27.0).all()  # one opening per episode, none in between
    assert (per["worst"] - per["entry_adverse"] < stop).all()
    assert (per["close_max"] >= exit_bps).all()
    assert set(ep.filter(pl.col("open_edge") >= thr)["d"].unique()) == {-1.0, 1.0}


def test_always_lose_episodes_widen_past_the_stop_then_reset() -> None:
    _, cfg = _gen("always-lose")
    thr, stop = _thr(cfg), float(cfg.strategy.stop_loss_bps)
    ep = _episodes("always-lose")
    entry = ep.filter((pl.col("phase") < 23) & (pl.col("open_edge") >= thr)).group_by("k").agg(
        (pl.col("t_s").max() - pl.col("t_s").min()).alias("open_s"),
        pl.col("adverse").max().alias("entry_adverse"),  # worst case: the latest entry
    )
    wide = ep.filter((pl.col("phase") >= 24) & (pl.col("phase") < 28)).group_by("k").agg(
        pl.col("adverse").min().alias("wide_min"),
    )
    per = entry.join(wide, on="k")
    assert per.height == ep["k"].n_unique() >= 100
    assert (per["open_s"] >= 2.0).all()
    assert (per["wide_min"] - per["entry_adverse"] >= stop + 5).all()  # 4 s past the stop
    calm = ep.filter(pl.col("phase") >= 30.5)
    assert calm.select(pl.max_horizontal("e_ab", "e_ba").max()).item() < thr
    # the still-wide gap after the stop must fall inside the stop cooldown
    assert cfg.strategy.cooldown_after_stop_s >= 30 - 23


def test_flat_never_clears_the_entry_threshold() -> None:
    _, cfg = _gen("flat")
    best = _edges("flat").select(pl.max_horizontal("e_ab", "e_ba").max()).item()
    assert best < _thr(cfg) - 3.0


def test_normal_offers_entries_in_both_directions() -> None:
    _, cfg = _gen("normal")
    e = _edges("normal")
    assert e["e_ab"].max() >= _thr(cfg) and e["e_ba"].max() >= _thr(cfg)
    spread_bps = _gen("normal")[0].select(
        ((pl.col("ask_px") - pl.col("bid_px")) / pl.col("bid_px") * 1e4).median()).item()
    assert 0.5 <= spread_bps <= 2.0


def test_flash_crash_drops_b_ten_percent_within_a_second_and_recovers() -> None:
    e = _edges("flash-crash")
    i_min = int(e["prem"].arg_min())
    t_min, p_min = e["t_s"][i_min], e["prem"][i_min]
    assert p_min <= -1000
    before = e.filter((pl.col("t_s") < t_min) & (pl.col("prem") > -50))["t_s"].max()
    assert t_min - before <= 1.0
    later = e.filter((pl.col("t_s") > t_min + 65) & (pl.col("t_s") < t_min + 120))
    assert later["prem"].abs().max() < 40


def test_outage_leaves_one_venue_silent_for_ten_minutes() -> None:
    df, _ = _gen("outage")
    assert df.height == synth.DEFAULT_N_EVENTS
    gap_s = {
        v: df.filter(pl.col("venue") == v)["ts_recv_ns"].diff().max() / 1e9 for v in ("A", "B")
    }
    assert gap_s["B"] >= 600
    assert gap_s["A"] < 5


# ---- benchmark generator --------------------------------------------------------------------

def test_fast_l1_generator_builds_a_million_rows_quickly() -> None:
    t0 = time.perf_counter()
    df = generate_l1_events_fast(1_000_000)
    elapsed = time.perf_counter() - t0
    print(f"generate_l1_events_fast(1_000_000): {elapsed:.2f} s")
    assert elapsed < 10  # loose: shared CI machines; ~0.2 s on a laptop core
    assert df.height == 1_000_000
    assert df.columns == quote_column_order(1)
    assert (df["bid_px"] < df["ask_px"]).all()
    assert (df["ts_recv_ns"].diff().drop_nulls() > 0).all()
    assert generate_l1_events_fast(1_000, seed=1).equals(generate_l1_events_fast(1_000, seed=1))
