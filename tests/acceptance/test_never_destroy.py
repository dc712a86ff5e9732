"""The first promise of a tool: it never destroys the user's data (issue 13, "Data destroyed").

Each test is one of the reported cases, run in-process through the real CLI entry point, with
a snapshot of the folders before and after.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest

from arbkit.config import dump_config
from arbkit.data.catalog import Catalog
from arbkit.data.synth import generate
from tests.cli_harness import assert_one_error, cli, snapshot


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("src")
    frame, cfg = generate("normal", n_events=3_000, depth=1)
    frame.write_parquet(d / "q.parquet")
    (d / "config.toml").write_text(dump_config(cfg))
    Catalog(d / "cat").add_quotes(d / "q.parquet")
    return d


@pytest.fixture
def work(source: Path, tmp_path: Path, monkeypatch) -> Path:
    for f in ("q.parquet", "config.toml"):
        shutil.copy(source / f, tmp_path / f)
    shutil.copytree(source / "cat", tmp_path / "cat")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _parts(root: Path, frame: pl.DataFrame) -> Path:
    """A crashed recording's parts folder: two bbo part files."""
    session = root / "_recording" / "20250101T000000-1"
    (session / "quotes_bbo").mkdir(parents=True)
    half = frame.height // 2
    frame.slice(0, half).write_parquet(session / "quotes_bbo" / "part-00001.parquet")
    frame.slice(half).write_parquet(session / "quotes_bbo" / "part-00002.parquet")
    return session


# ------------------------------------------------------------------ data compact


@pytest.mark.parametrize("target", ["cat", "cat/quotes", "."], ids=["catalog-root",
                                                                  "catalog-kind", "plain-folder"])
def test_compact_of_a_folder_that_is_not_a_recording_deletes_nothing(work, target):
    before = snapshot(work)
    assert_one_error(cli("data", "compact", target, "--root", "cat"), target,
                     "not a recording's parts folder", "_recording/<session>")
    assert snapshot(work) == before


def test_compact_removes_only_the_part_files_it_merged(work):
    frame = pl.read_parquet(work / "q.parquet").with_columns(
        pl.col("venue") + "_rec")  # new streams: the rows are new to the catalog
    session = _parts(work / "cat", frame)
    (session / "notes.txt").write_text("mine")  # not a part file: left alone
    (session / "quotes_bbo" / "keep.parquet").write_bytes(b"x")  # not part-NNNNN: left alone
    r = cli("data", "compact", session, "--root", "cat")
    assert r.code == 0, r.err
    assert "quotes_bbo: 3,000 rows merged" in r.out
    assert sorted(p.name for p in session.rglob("*")) == ["keep.parquet", "notes.txt",
                                                          "quotes_bbo"]
    rows = Catalog("cat").read_table(
        __import__("arbkit.data.catalog", fromlist=["Selection"]).Selection("quotes", "*_rec"))
    assert rows.rows == 3_000


def test_compact_that_fails_validation_keeps_the_parts(work):
    frame = pl.read_parquet(work / "q.parquet").with_columns(pl.lit(-1.0).alias("bid_px"))
    session = _parts(work / "cat", frame)
    before = snapshot(work)
    assert_one_error(cli("data", "compact", session, "--root", "cat"), "bid_px")
    assert snapshot(work) == before


# ------------------------------------------------------------------ backtest --out


@pytest.mark.parametrize("out, needle", [
    (".", "working folder"),
    ("..", "parent of the working folder"),
    ("cat", "input --data"),
])
def test_out_never_replaces_the_working_folder_a_parent_or_an_input(work, out, needle):
    data = "cat" if out == "cat" else "q.parquet"
    before = snapshot(work.parent)
    assert_one_error(cli("backtest", "--data", data, "--config", "config.toml", "--out", out),
                     f"--out {out}", needle)
    assert snapshot(work.parent) == before


def test_out_into_the_inputs_own_folder_is_refused(work):
    (work / "in").mkdir()
    shutil.move(work / "q.parquet", work / "in" / "q.parquet")
    before = snapshot(work)
    assert_one_error(cli("backtest", "--data", "in/q.parquet", "--config", "config.toml",
                         "--out", "in"), "--out in", "input --data in/q.parquet")
    assert snapshot(work) == before


def test_out_on_a_folder_arbkit_did_not_write_is_refused_even_with_force(work):
    (work / "res").mkdir()
    (work / "res" / "thesis.txt").write_text("three years of work")
    before = snapshot(work)
    for extra in ((), ("--force",)):
        assert_one_error(cli("backtest", "--data", "q.parquet", "--config", "config.toml",
                             "--out", "res", *extra), "--out res", "did not write",
                         "thesis.txt")
        assert snapshot(work) == before


def test_out_replaces_its_own_folder_only_with_force(work):
    args = ("backtest", "--data", "q.parquet", "--config", "config.toml", "--out", "res")
    assert cli(*args).code == 0
    first = snapshot(work / "res")
    assert any(p.endswith(".arbkit-results") for p in first)
    assert_one_error(cli(*args), "--out res", "earlier arbkit run", "--force")
    assert snapshot(work / "res") == first
    assert cli(*args, "--force").code == 0
    assert sorted(snapshot(work / "res")) == sorted(first)
    assert not list(work.glob(".arbkit-*"))


@pytest.mark.parametrize("out, needle", [("notes.txt", "is a file"),
                                         ("notes.txt/res", "is a file")])
def test_out_at_or_under_a_file_is_one_line(work, out, needle):
    (work / "notes.txt").write_text("mine")
    before = snapshot(work)
    assert_one_error(cli("backtest", "--data", "q.parquet", "--config", "config.toml",
                         "--out", out), f"--out {out}", needle)
    assert snapshot(work) == before


# ------------------------------------------------------------------ import csv overflow


def test_a_ts_unit_that_overflows_int64_is_an_error_naming_the_unit(work):
    frame = pl.read_parquet(work / "q.parquet").head(50)
    frame.select("ts_recv_ns", "bid_px", "bid_qty", "ask_px", "ask_qty").write_csv("ns.csv")
    Path("map.toml").write_text('kind = "quotes"\nts_unit = "ms"\n[columns]\n'
                                'ts_recv_ns = "ts_recv_ns"\nbid_px = "bid_px"\n'
                                'bid_qty = "bid_qty"\nask_px = "ask_px"\nask_qty = "ask_qty"\n'
                                '[constants]\nvenue = "kr"\nsymbol = "X"\n')
    before = snapshot(work)
    assert_one_error(cli("data", "import", "csv", "ns.csv", "--map", "map.toml", "--root",
                         "cat"), "ts_unit = 'ms'", "overflow", "ts_unit = 'ns'")
    assert snapshot(work) == before


# ------------------------------------------------------------------ half-written leftovers


def test_validate_and_ls_name_an_orphan_temporary_file(work):
    part = next((work / "cat").rglob("*.parquet"))
    orphan = part.with_name(part.name + ".tmp")
    orphan.write_bytes(b"")  # what a killed import leaves
    r = cli("data", "validate", "--root", "cat")
    assert r.code == 1
    assert f"FAIL {orphan.relative_to(work)}" in r.out and "orphan temporary file" in r.out
    r = cli("data", "ls", "--root", "cat")
    assert r.code == 0 and "warning: 1 orphan temporary file" in r.err, r.err


STUDY = ('[study]\nname = "small"\ndata = "q.parquet"\nconfig = "config.toml"\ntrials = 2\n'
         'objectives = ["net_pnl"]\ndirections = ["maximize"]\nmin_trades = 1\n'
         '[split]\nkind = "holdout"\ntrain = 0.7\n'
         '[space]\n"strategy.entry_bps" = { low = 0.0, high = 4.0 }\n')


@pytest.mark.parametrize("failure", ["error", "interrupt"])
def test_a_tune_that_stores_no_finished_trial_leaves_no_study_and_no_files(work, monkeypatch,
                                                                           failure):
    import arbkit.tune as tune_mod
    from arbkit.errors import EngineError
    from arbkit.tune.study import open_study

    Path("study.toml").write_text(STUDY)

    def run_study(spec, storage, **_):
        open_study(spec, storage)  # the study exists, then the first trial fails
        raise KeyboardInterrupt if failure == "interrupt" else EngineError("trial 0 failed")

    monkeypatch.setattr(tune_mod, "run_study", run_study)
    before = snapshot(work)
    r = cli("tune", "study.toml")
    lines = [ln for ln in r.lines() if ln.startswith(("error:", "interrupted:"))]
    if failure == "interrupt":
        assert r.code == 130 and lines == ["interrupted: no trial finished; nothing stored"]
    else:
        assert r.code == 1 and lines == ["error: trial 0 failed"]
    assert snapshot(work) == before  # no results/, no journal, no DuckDB file
