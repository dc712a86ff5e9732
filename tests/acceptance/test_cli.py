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
