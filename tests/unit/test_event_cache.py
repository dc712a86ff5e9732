"""The event cache (``arbkit.data.cache``): a hit gives the arrays a build gives, bit for bit;
a changed input file is a miss; nothing is written unless asked; and the data path's fast
paths (threads, the frame gather, the clock-offset shortcut) change no bit either."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from arbkit.config import dump_config, load_config_text
from arbkit.data.catalog import Catalog
from arbkit.data.events import (
    build_events,
    exch_offset_ns,
    merge_streams,
    streams_of_frame,
)
from arbkit.data.stream import CatalogEvents
from arbkit.data.synth import START_NS, generate
from arbkit.engine.backtest import prepare, run_prepared, store_cached

DAY = 86_400_000_000_000


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> tuple[Path, str]:
    """Two days of the `normal` scenario with depth, B's recorder clock 1.3 s behind on the
    first day (so clock offsets are estimated, not all 0)."""
    df, cfg = generate("normal", n_events=20_000, depth=3)
    t0 = START_NS + 23 * 3_600_000_000_000
    df = df.with_columns((t0 + (pl.col("ts_recv_ns") - START_NS) * 10).alias("ts_recv_ns"),
                         (t0 + (pl.col("ts_exch_ns") - START_NS) * 10).alias("ts_exch_ns"))
    first = (pl.col("venue") == "B") & (pl.col("ts_recv_ns") < (t0 // DAY + 1) * DAY)
    df = df.with_columns(pl.when(first).then(pl.col("ts_recv_ns") + 1_300_000_000)
                         .otherwise(pl.col("ts_exch_ns")).alias("ts_exch_ns"))
    root = tmp_path_factory.mktemp("cache")
    df.write_parquet(root / "q.parquet")
    Catalog(root / "cat").add_quotes(root / "q.parquet")
    return root, dump_config(cfg)


@pytest.fixture
def work(inputs, tmp_path) -> tuple[Path, object]:
    root, text = inputs
    shutil.copytree(root / "cat", tmp_path / "cat")
    shutil.copy(root / "q.parquet", tmp_path / "q.parquet")
    return tmp_path, load_config_text(text)


def _same(a, b) -> None:
    assert a.arrays.events.tobytes() == b.arrays.events.tobytes()
    assert a.arrays.depth.shape == b.arrays.depth.shape
    assert np.array_equal(a.arrays.depth, b.arrays.depth, equal_nan=True)
    assert a.arrays.clock_offset_ns == b.arrays.clock_offset_ns
    assert a.arrays.use_exch == b.arrays.use_exch and a.arrays.n_levels == b.arrays.n_levels
    assert (a.kinds, a.notes, a.crossed_rows) == (b.kinds, b.notes, b.crossed_rows)


@pytest.mark.parametrize("what", ["cat", "q.parquet"])
def test_a_hit_gives_the_built_arrays_bit_for_bit(work, what) -> None:
    d, cfg = work
    plain = prepare(d / what, cfg)
    first = prepare(d / what, cfg, cache=True)
    assert first.extra_meta["event_cache"] == "written"
    again = prepare(d / what, cfg, cache=True)
    assert again.extra_meta["event_cache"] == "hit"
    _same(plain, first)
    _same(plain, again)
    assert any(v != [0] for v in plain.arrays.clock_offset_ns.values())  # offsets estimated
    a, b = run_prepared(cfg, plain), run_prepared(cfg, again)
    assert a.metric("trades") >= 5
    for frame in ("trades", "fills", "equity", "summary"):
        assert getattr(a, frame).equals(getattr(b, frame)), frame


def test_a_changed_input_file_is_a_miss_and_the_stale_entry_goes(work) -> None:
    d, cfg = work
    prepare(d / "cat", cfg, cache=True)
    entries = list((d / "cat" / ".cache" / "events").iterdir())
    assert len(entries) == 1
    part = Catalog(d / "cat").partitions()[0]
    df = pl.read_parquet(part.path)
    df.with_columns(pl.col("bid_qty") * 2).write_parquet(part.path)  # same rows, new sizes
    again = prepare(d / "cat", cfg, cache=True)
    assert again.extra_meta["event_cache"] == "written"  # a miss, built again
    _same(prepare(d / "cat", cfg), again)
    now = list((d / "cat" / ".cache" / "events").iterdir())
    assert len(now) == 1 and now != entries  # the stale one was removed


def test_read_only_mode_writes_nothing_until_asked(work) -> None:
    d, cfg = work
    prep = prepare(d / "cat", cfg, cache="read")
    assert prep.extra_meta["event_cache"] == "miss"
    assert not (d / "cat" / ".cache").exists()
    assert store_cached(prep) and prep.extra_meta["event_cache"] == "written"
    assert prepare(d / "cat", cfg, cache="read").extra_meta["event_cache"] == "hit"


def test_the_environment_turns_it_off_and_a_read_only_folder_is_no_error(work, monkeypatch):
    d, cfg = work
    monkeypatch.setenv("ARBKIT_EVENT_CACHE", "off")
    assert "event_cache" not in prepare(d / "cat", cfg, cache=True).extra_meta
    monkeypatch.delenv("ARBKIT_EVENT_CACHE")

    def refused(*_a, **_k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("arbkit.data.cache.tempfile.mkdtemp", refused)  # a read-only catalog
    prep = prepare(d / "cat", cfg, cache=True)
    assert prep.extra_meta["event_cache"] == "miss"
    assert not list((d / "cat" / ".cache" / "events").iterdir())


def test_whole_is_the_same_on_one_thread_or_many(work, monkeypatch) -> None:
    d, cfg = work
    arrays = []
    for threads in ("1", "4"):
        monkeypatch.setenv("ARBKIT_DATA_THREADS", threads)
        arrays.append(CatalogEvents(d / "cat", cfg).whole())
    a, b = arrays
    assert a.events.tobytes() == b.events.tobytes()
    assert np.array_equal(a.depth, b.depth, equal_nan=True)
    assert a.clock_offset_ns == b.clock_offset_ns


def test_the_frame_gather_equals_streams_then_merge(work) -> None:
    d, cfg = work
    frame = pl.read_parquet(d / "q.parquet")
    extra = frame.filter(pl.col("venue") == "A").with_columns(pl.lit("C").alias("venue"))
    frame = pl.concat([frame, extra]).sort("ts_recv_ns", maintain_order=True)
    for keys in (["B:BTC-USDT", "A:BTC-USDT"], ["A:BTC-USDT", "C:BTC-USDT", "B:BTC-USDT"]):
        for timeline in ("recv", "exch"):
            fast = build_events(frame, keys, timeline=timeline)
            streams, dropped = streams_of_frame(frame, keys)
            use = {keys[s.inst]: timeline == "exch" for s in streams}
            slow = merge_streams(streams, keys, n_levels=fast.n_levels, use_exch=use,
                                 dropped=dropped)
            assert fast.events.tobytes() == slow.events.tobytes()
            assert np.array_equal(fast.depth, slow.depth, equal_nan=True)
            assert (fast.clock_offset_ns, fast.dropped_rows) == (slow.clock_offset_ns,
                                                                 slow.dropped_rows)


def test_the_clock_offset_shortcut_equals_the_percentile() -> None:
    rng = np.random.default_rng(5)
    for _ in range(400):
        n = int(rng.integers(1, 2000))
        recv = np.sort(rng.integers(0, 10**12, n))
        exch = recv - rng.integers(0, 10**6, n)
        ahead = rng.random(n) < rng.choice([0.0, 0.005, 0.01, 0.011, 0.02, 0.5])
        exch[ahead] = recv[ahead] + rng.integers(1, 10**6, int(ahead.sum()))
        p1 = int(np.percentile(recv - exch, 1))
        assert exch_offset_ns(recv, exch) == min(p1, 0)
