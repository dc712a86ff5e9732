"""The CLI as a user meets it: real processes, exit codes, one-line errors, no partial output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from arbkit.config import dump_config
from arbkit.data.synth import generate

ROOT = Path(__file__).resolve().parents[2]


def arbkit(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "arbkit", *args], capture_output=True,
                          text=True, cwd=cwd or ROOT, timeout=300)


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> tuple[Path, Path, pl.DataFrame]:
    d = tmp_path_factory.mktemp("good")
    frame, cfg = generate("normal", n_events=20_000)
    frame.write_parquet(d / "quotes.parquet")
    (d / "config.toml").write_text(dump_config(cfg))
    return d / "quotes.parquet", d / "config.toml", frame


def one_line_error(p: subprocess.CompletedProcess, *needles: str) -> str:
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    lines = [ln for ln in p.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), p.stderr
    for n in needles:
        assert n in lines[0], (n, lines[0])
    assert "Traceback" not in p.stderr
    return lines[0]


def test_backtest_json_on_generated_data(good):
    data, cfg, _ = good
    p = arbkit("backtest", "--data", str(data), "--config", str(cfg), "--json")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["trades"] > 0 and "net_pnl" in out and "notes" in out


def test_default_backtest_runs_with_no_arguments(tmp_path):
    p = arbkit("backtest", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert "net_pnl" in p.stdout and "exits_converge" in p.stdout
    assert (tmp_path / "out" / "default-study" / "quotes.parquet").is_file()


def test_results_are_written_whole(good, tmp_path):
    data, cfg, _ = good
    out = tmp_path / "res"
    assert arbkit("backtest", "--data", str(data), "--config", str(cfg), "--out", str(out)).returncode == 0
    assert {f.name for f in out.iterdir()} >= {"trades.parquet", "fills.parquet", "summary.parquet",
                                                "meta.json", "config.toml"}


@pytest.mark.parametrize(
    "mutate, needles",
    [
        (lambda f: f.drop("bid_px"), ["bid_px"]),
        (lambda f: f.with_columns(pl.when(pl.int_range(pl.len()) == 5).then(float("nan"))
                                  .otherwise(pl.col("ask_px")).alias("ask_px")), ["ask_px", "nan"]),
        (lambda f: f.with_columns(pl.col("ts_recv_ns") // 1_000_000), ["ts_recv_ns", "millisecond"]),
        (lambda f: f.reverse(), ["ts_recv_ns", "backwards"]),
        (lambda f: f.head(0), ["empty"]),
    ],
    ids=["missing-column", "nan-price", "ms-timestamps", "time-backwards", "empty-file"],
)
def test_bad_data_is_one_clear_line_and_nothing_is_written(good, tmp_path, mutate, needles):
    _, cfg, frame = good
    bad = tmp_path / "bad.parquet"
    mutate(frame).write_parquet(bad)
    out = tmp_path / "res"
    p = arbkit("backtest", "--data", str(bad), "--config", str(cfg), "--out", str(out))
    line = one_line_error(p, str(bad), *needles)
    assert len(line) < 600
    assert not out.exists() and not list(tmp_path.glob(".arbkit-*"))


@pytest.mark.parametrize(
    "edit, needles",
    [
        (lambda t: t.replace("[strategy]\n", "[strategy]\nentry_bsp = 1.0\n"), ["entry_bsp", "allowed"]),
        (lambda t: t.replace("taker_fee_bps = 1.0", "taker_fee_bps = -1.0", 1), ["taker_fee_bps", "-1.0"]),
        (lambda t: t.replace("stop_loss_bps = 8.0", "stop_loss_bps = 0"), ["stop_loss_bps", "off"]),
        (lambda t: t + "\n[strategi]\n", ["strategi"]),
    ],
    ids=["unknown-key", "negative-fee", "zero-meaning-off", "unknown-section"],
)
def test_bad_config_is_one_clear_line(good, tmp_path, edit, needles):
    data, cfg, _ = good
    bad = tmp_path / "bad.toml"
    bad.write_text(edit(cfg.read_text()))
    one_line_error(arbkit("backtest", "--data", str(data), "--config", str(bad)), str(bad), *needles)


def test_unknown_scenario_and_missing_files(tmp_path):
    one_line_error(arbkit("data", "synth", "--scenario", "sideways", "--out", str(tmp_path / "x")),
                   "sideways", "always-win")
    one_line_error(arbkit("backtest", "--data", str(tmp_path / "nope.parquet"), "--config",
                          str(ROOT / "studies" / "binance_spot_usdm.toml")), "nope.parquet")


def test_usage_errors_exit_2_without_a_traceback():
    p = arbkit("backtest", "--bogus")
    assert p.returncode == 2 and "Traceback" not in p.stderr and "--bogus" in p.stderr


def test_json_is_strict(good):
    data, cfg, _ = good
    p = arbkit("backtest", "--data", str(data), "--config", str(cfg), "--json")
    out = json.loads(p.stdout, parse_constant=lambda c: pytest.fail(f"non-strict JSON {c}"))
    assert out["sharpe"] is None  # under 30 days: undefined, written as null


# ------------------------------------------------------------------ issue 12: as printed


def test_json_counts_are_whole_numbers(good):
    data, cfg, _ = good
    out = json.loads(arbkit("backtest", "--data", str(data), "--config", str(cfg),
                            "--json").stdout)
    counts = [k for k in out if k in ("events", "trades", "entries", "opportunities_seen",
                                      "days") or k.startswith(("exits_", "skipped_"))]
    assert len(counts) > 20
    for k in counts:
        assert type(out[k]) is int, (k, out[k])  # "trades": 12, not 12.0
    assert type(out["net_pnl"]) is float and out["trades"] > 0


def test_summary_opens_with_a_headline_and_hides_idle_skip_counters(good):
    data, cfg, _ = good
    p = arbkit("backtest", "--data", str(data), "--config", str(cfg))
    assert p.returncode == 0, p.stderr
    out = json.loads(arbkit("backtest", "--data", str(data), "--config", str(cfg),
                            "--json").stdout)
    head = p.stdout[:p.stdout.index("┏")]  # above the table
    verdict = "made money" if out["net_pnl"] > 0 else "lost money"
    assert f"strategy {verdict}: net PnL {out['net_pnl']:+,.2f} USDT over {out['trades']} " \
           "closed trades" in head
    assert "max drawdown" in head and "win rate" in head
    assert "net_pnl is the strategy's answer" in head and "treasury_pnl" in head
    idle = [k for k, v in out.items() if k.startswith("skipped_") and v == 0]
    busy = [k for k, v in out.items() if k.startswith("skipped_") and v]
    assert idle and busy
    for k in idle:
        assert f" {k} " not in p.stdout
    for k in busy:
        assert f" {k} " in p.stdout
    assert "skip counters and rare lines are 0 and not shown; --verbose" in p.stdout
    v = arbkit("backtest", "--data", str(data), "--config", str(cfg), "--verbose")
    for k in out:  # --verbose: every metric, also those no section lists
        if k not in ("label", "notes"):
            assert f" {k} " in v.stdout, k
    # one format per kind of figure: counts whole, money with 4 decimals (0.0000, not 0)
    assert "│   fx_pnl" in p.stdout and "0.0000 │" in p.stdout.split("│   fx_pnl")[1][:40]


def test_a_few_crossed_rows_are_a_printed_and_a_json_note(good, tmp_path):
    data, cfg, frame = good
    few = tmp_path / "few.parquet"
    frame.with_columns(pl.when(pl.int_range(pl.len()) % 1000 == 7).then(pl.col("ask_px"))
                       .otherwise(pl.col("bid_px")).alias("bid_px")).write_parquet(few)
    p = arbkit("backtest", "--data", str(few), "--config", str(cfg), "--json")
    notes = json.loads(p.stdout)["notes"]
    assert any("20 quote row(s) (0.10%) are crossed or locked" in n for n in notes), notes
    p = arbkit("backtest", "--data", str(few), "--config", str(cfg))
    assert "note: 20 quote row(s) (0.10%) are crossed or locked" in p.stdout


def test_piped_output_is_not_wrapped_at_80_columns(good, tmp_path):
    """stdout to a pipe (a log, grep): every line whole, however long."""
    import os

    _, cfg, frame = good
    few = tmp_path / "a_rather_long_folder_name_for_the_quotes_of_this_test" / "few.parquet"
    few.parent.mkdir()
    frame.with_columns(pl.when(pl.int_range(pl.len()) == 7).then(pl.col("ask_px"))
                       .otherwise(pl.col("bid_px")).alias("bid_px")).write_parquet(few)
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    p = subprocess.run([sys.executable, "-m", "arbkit", "backtest", "--data", str(few),
                        "--config", str(cfg)], capture_output=True, text=True, cwd=ROOT,
                       env=env, timeout=300)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0] == f"arbkit backtest — synth:normal — {few}"
    note = next(ln for ln in lines if "crossed or locked" in ln)
    assert len(note) > 100 and note.startswith("note: 1 quote row(s)") and \
        note.endswith("counts the moments they cost)")
    assert any(ln.startswith("net_pnl is the strategy's answer") and
               ln.endswith("plus open positions)") for ln in lines)


def test_a_csv_given_as_data_names_the_import_that_works_as_printed(good, tmp_path):
    data, cfg, frame = good
    frame.write_csv(tmp_path / "q.csv")
    line = one_line_error(arbkit("backtest", "--data", "q.csv", "--config", str(cfg),
                                 cwd=tmp_path), "q.csv", "not a Parquet file")
    cmd = line.split("`arbkit ")[1].split("`")[0]
    assert cmd == "data import csv q.csv --map mapping.toml"
    assert 'kind = "quotes"' in line and "--data data" in line
    (tmp_path / "mapping.toml").write_text('kind = "quotes"\n')  # the one line it names
    p = arbkit(*cmd.split(), cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    got = json.loads(arbkit("backtest", "--data", "data", "--config", str(cfg), "--json",
                            cwd=tmp_path).stdout)
    want = json.loads(arbkit("backtest", "--data", str(data), "--config", str(cfg),
                             "--json").stdout)
    assert (got["trades"], got["net_pnl"]) == (want["trades"], want["net_pnl"]) and got["trades"]


def test_a_first_run_says_it_is_compiling_the_kernel(good, tmp_path):
    """A fresh install (an empty numba cache) says at once that it compiles, with an estimate,
    instead of ~1-3 minutes of silence; a warm one says nothing about it."""
    import os
    import time

    data, cfg, _ = good
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "empty-cache")}
    proc = subprocess.Popen([sys.executable, "-m", "arbkit", "backtest", "--data", str(data),
                             "--config", str(cfg)], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        first = proc.stderr.readline()  # before any compiling: the line comes first
    finally:
        t = time.perf_counter()
        proc.kill()
        proc.communicate(timeout=30)
    assert first.startswith("compiling arbkit's numba kernel: the first run of this install "
                            "(about 2-4 min, once; later runs load it from "), first
    assert str(tmp_path / "empty-cache") in first and time.perf_counter() - t < 30
    warm = arbkit("backtest", "--data", str(data), "--config", str(cfg))
    assert warm.returncode == 0 and "compiling" not in warm.stderr + warm.stdout


def test_the_kernel_is_ready_in_a_warm_install_and_not_in_an_empty_cache(tmp_path):
    import os

    code = "from arbkit.cli.compiling import kernel_ready; print(kernel_ready())"
    cold = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "c")})
    warm = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert (cold.stdout.strip(), warm.stdout.strip()) == ("False", "True"), cold.stderr
