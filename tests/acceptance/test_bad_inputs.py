"""Bad inputs across every CLI surface (issue 13): each is one ``error:`` line and nothing else.

Every case runs in its own copy of a small workspace (quotes, a config, a catalog, a study
file), through the real CLI entry point in-process (:func:`tests.cli_harness.cli`), and must:

- exit 1 with exactly one line on stderr, ``error: ...``, and no traceback anywhere;
- name the field (the option, key or column), the value seen, and a fix (three needles per
  case, each found in that line);
- leave the workspace exactly as it was: a snapshot of every file and folder (hidden ones too)
  before and after, so nothing was deleted, replaced or half-written, and no empty study,
  journal, catalog folder or temporary file appeared.

A second table holds bad data that still runs (crossed books, a x100 venue, a funding rate of
1.0, stamps in the future, sizes that are all 0): exit 0, and the result says so.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest

from arbkit.config import dump_config
from arbkit.data.catalog import Catalog
from arbkit.data.synth import generate
from tests.cli_harness import assert_one_error, cli, snapshot

Setup = Callable[[Path], None]
REHEARSAL = Path(__file__).resolve().parents[2] / "studies" / "live_rehearsal.toml"


@dataclass(frozen=True)
class Case:
    id: str
    args: tuple[str, ...]
    field: str
    value: str
    fix: str
    setup: Setup | None = None


# ------------------------------------------------------------------ the workspace


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("base")
    frame, cfg = generate("normal", n_events=3_000, depth=3)
    frame.write_parquet(d / "qd.parquet")
    frame.select("ts_recv_ns", "ts_exch_ns", "venue", "symbol", "bid_px", "bid_qty", "ask_px",
                 "ask_qty").write_parquet(d / "q.parquet")
    (d / "config.toml").write_text(dump_config(cfg))
    Catalog(d / "cat").add_quotes(d / "q.parquet")
    (d / "notes.txt").write_text("the user's own file\n")
    (d / "wrong.csv").write_text("a,b\n1,2\n")
    (d / "study.toml").write_text(
        '[study]\nname = "small"\ndata = "q.parquet"\nconfig = "config.toml"\ntrials = 2\n'
        'objectives = ["net_pnl"]\ndirections = ["maximize"]\nmin_trades = 1\n'
        '[split]\nkind = "holdout"\ntrain = 0.7\n'
        '[space]\n"strategy.entry_bps" = { low = 0.0, high = 4.0 }\n')
    return d


@pytest.fixture
def work(base: Path, tmp_path: Path, monkeypatch) -> Path:
    w = tmp_path / "w"
    shutil.copytree(base, w)
    monkeypatch.chdir(w)
    monkeypatch.delenv("ARBKIT_DATA_ROOT", raising=False)
    monkeypatch.delenv("ARBKIT_STORAGE", raising=False)
    return w


# ------------------------------------------------------------------ setup helpers


def quotes_with(name: str, change: Callable[[pl.DataFrame], pl.DataFrame],
                src: str = "q.parquet") -> Setup:
    def setup(w: Path) -> None:
        change(pl.read_parquet(w / src)).write_parquet(w / name)
    return setup


def text(name: str, body: str) -> Setup:
    def setup(w: Path) -> None:
        (w / name).parent.mkdir(parents=True, exist_ok=True)
        (w / name).write_text(body)
    return setup


def config_with(old: str, new: str, name: str = "bad.toml") -> Setup:
    def setup(w: Path) -> None:
        t = (w / "config.toml").read_text()
        assert old in t, old
        (w / name).write_text(t.replace(old, new, 1))
    return setup


def both(*setups: Setup) -> Setup:
    def setup(w: Path) -> None:
        for s in setups:
            s(w)
    return setup


def folder(name: str, *files: str) -> Setup:
    def setup(w: Path) -> None:
        (w / name).mkdir(parents=True)
        for f in files:
            (w / name / f).write_text("x")
    return setup


def arbkit_results(name: str) -> Setup:
    def setup(w: Path) -> None:
        (w / name).mkdir()
        (w / name / ".arbkit-results").write_text("written by arbkit")
        (w / name / "trades.parquet").write_text("an earlier run")
    return setup


def move(src: str, dst: str) -> Setup:
    def setup(w: Path) -> None:
        (w / dst).parent.mkdir(parents=True, exist_ok=True)
        shutil.move(w / src, w / dst)
    return setup


def parts(rows: Callable[[pl.DataFrame], pl.DataFrame]) -> Setup:
    def setup(w: Path) -> None:
        d = w / "cat" / "_recording" / "s1" / "quotes_bbo"
        d.mkdir(parents=True)
        rows(pl.read_parquet(w / "q.parquet")).write_parquet(d / "part-00001.parquet")
    return setup


def preset(meta: str) -> Setup:
    def setup(w: Path) -> None:
        (w / "presets").mkdir()
        (w / "presets" / "p.toml").write_text(f"[preset]\n{meta}\n\n"
                                             + (w / "config.toml").read_text())
    return setup


def nth(col: str, i: int, value) -> Callable[[pl.DataFrame], pl.DataFrame]:
    return lambda f: f.with_columns(pl.when(pl.int_range(pl.len()) == i).then(value)
                                    .otherwise(pl.col(col)).alias(col))


BT = ("backtest", "--data", "q.parquet", "--config", "config.toml")
MAP = 'kind = "quotes"\nts_unit = "{unit}"\n[columns]\nts_recv_ns = "t"\nbid_px = "b"\n' \
      'bid_qty = "bq"\nask_px = "a"\nask_qty = "aq"\n[constants]\nvenue = "kr"\nsymbol = "X"\n'
NS_CSV = "t,b,bq,a,aq\n1733011200000000000,100,1,101,1\n1733011201000000000,100,1,101,1\n"
PG_DOWN = "postgresql://u@127.0.0.1:1/db"
PG_BADPORT = "postgresql://u@127.0.0.1:99999/db"


CASES = [
    # ---- backtest --out: never destroy a folder ----------------------------------------
    Case("out-working-folder", (*BT, "--out", "."), "--out", ".", "new folder"),
    Case("out-parent", (*BT, "--out", ".."), "--out", "..", "new folder"),
    Case("out-input-folder", ("backtest", "--data", "in/q.parquet", "--config", "config.toml",
                              "--out", "in"), "--out", "in/q.parquet", "new folder",
         move("q.parquet", "in/q.parquet")),
    Case("out-catalog-input", ("backtest", "--data", "cat", "--config", "config.toml", "--out",
                               "cat"), "--out", "cat", "new folder"),
    Case("out-config-folder", ("backtest", "--data", "q.parquet", "--config", "cfg/c.toml",
                               "--out", "cfg"), "--config", "cfg/c.toml", "new folder",
         move("config.toml", "cfg/c.toml")),
    Case("out-the-input-file", (*BT, "--out", "q.parquet"), "--out", "q.parquet",
         "new folder"),
    Case("out-foreign-folder", (*BT, "--out", "res"), "--out", "thesis.tex", "new or empty",
         folder("res", "thesis.tex")),
    Case("out-foreign-folder-force", (*BT, "--out", "res", "--force"), "--out", "thesis.tex",
         "even with --force", folder("res", "thesis.tex")),
    Case("out-arbkit-folder-no-force", (*BT, "--out", "old"), "--out", "old", "--force",
         arbkit_results("old")),
    Case("out-is-a-file", (*BT, "--out", "notes.txt"), "--out", "notes.txt", "new folder"),
    Case("out-under-a-file", (*BT, "--out", "notes.txt/res"), "--out", "notes.txt",
         "in a folder"),
    Case("force-without-out", (*BT, "--force"), "--force", "--out", "pass --out"),
    # ---- data compact: only recording part files -------------------------------------
    Case("compact-catalog-root", ("data", "compact", "cat", "--root", "cat"), "cat",
         "quotes", "_recording/<session>"),
    Case("compact-catalog-kind", ("data", "compact", "cat/quotes", "--root", "cat"),
         "cat/quotes", "venue=A", "_recording/<session>"),
    Case("compact-plain-folder", ("data", "compact", ".", "--root", "cat"), ".",
         "notes.txt", "_recording/<session>"),
    Case("compact-missing", ("data", "compact", "nope", "--root", "cat"), "nope",
         "no such folder", "_recording/<session>"),
    Case("compact-bad-rows", ("data", "compact", "cat/_recording/s1", "--root", "cat"),
         "bid_px", "-1.0", "repair or drop", parts(lambda f: f.with_columns(
             pl.lit(-1.0).alias("bid_px")))),
    # ---- data import csv ----------------------------------------------------------------
    Case("csv-ts-unit-overflow", ("data", "import", "csv", "ns.csv", "--map", "m.toml",
                                  "--root", "cat"), "ts_unit = 'ms'", "1733011201000000000",
         "ts_unit = 'ns'", both(text("ns.csv", NS_CSV), text("m.toml", MAP.format(unit="ms")))),
    Case("csv-ts-unit-unknown", ("data", "import", "csv", "ns.csv", "--map", "m.toml",
                                 "--root", "cat"), "ts_unit", "'minutes'", "use one of",
         both(text("ns.csv", NS_CSV), text("m.toml", MAP.format(unit="minutes")))),
    Case("csv-map-missing", ("data", "import", "csv", "ns.csv", "--root", "cat"), "--map",
         "mapping.toml", "see docs/data.md", text("ns.csv", NS_CSV)),
    Case("csv-map-no-kind", ("data", "import", "csv", "ns.csv", "--map", "m.toml", "--root",
                             "cat"), "kind", "m.toml", "one of quotes",
         both(text("ns.csv", NS_CSV), text("m.toml", 'ts_unit = "ns"\n'))),
    Case("csv-map-unknown-key", ("data", "import", "csv", "ns.csv", "--map", "m.toml",
                                 "--root", "cat"), "unknown key", "'unit'", "allowed:",
         both(text("ns.csv", NS_CSV), text("m.toml", 'kind = "quotes"\nunit = "ns"\n'))),
    Case("csv-map-absent-column", ("data", "import", "csv", "ns.csv", "--map", "m.toml",
                                   "--root", "cat"), "columns=", "'t'", "fix the mapping",
         both(text("ns.csv", "x,b,bq,a,aq\n1,2,3,4,5\n"),
              text("m.toml", MAP.format(unit="ns")))),
    Case("csv-map-bad-kind", ("data", "import", "csv", "ns.csv", "--map", "m.toml", "--root",
                              "cat"), "kind", "'candles'", "use one of",
         both(text("ns.csv", NS_CSV), text("m.toml", 'kind = "candles"\n'))),
    Case("csv-map-bad-toml", ("data", "import", "csv", "ns.csv", "--map", "m.toml", "--root",
                              "cat"), "m.toml", "not valid TOML", "fix the syntax",
         both(text("ns.csv", NS_CSV), text("m.toml", "kind = \n"))),
    Case("csv-given-parquet", ("data", "import", "csv", "q.parquet", "--map", "m.toml",
                               "--root", "cat"), "q.parquet", "Parquet file",
         "arbkit data add", text("m.toml", MAP.format(unit="ns"))),
    # ---- importers given the wrong file -------------------------------------------------
    Case("fred-text-rate", ("data", "import", "fred-fx", "f.csv", "--root", "cat"), "DEXKOUS",
         "'abc'", "fix or drop that row", text("f.csv", "date,DEXKOUS\n2024-01-02,1300\n"
                                                        "2024-01-03,abc\n")),
    Case("fred-bad-date", ("data", "import", "fred-fx", "f.csv", "--root", "cat"), "date",
         "'03/01/2024'", "YYYY-MM-DD", text("f.csv", "date,DEXKOUS\n03/01/2024,1300\n")),
    Case("lean-quote-bars-quotes", ("data", "import", "lean-quote-bars", "q.parquet", "--root",
                                    "cat"), "bar_start_utc", "q.parquet", "arbkit data add"),
    Case("lean-trade-bars-quotes", ("data", "import", "lean-trade-bars", "q.parquet", "--root",
                                    "cat"), "bar_start_utc", "q.parquet", "arbkit data add"),
    Case("binanceus-kraken-quotes", ("data", "import", "binanceus-kraken", "q.parquet",
                                     "--root", "cat"), "interval", "q.parquet",
         "arbkit data add"),
    Case("hftbacktest-bbo-quotes", ("data", "import", "hftbacktest-bbo", "q.parquet", "--root",
                                    "cat"), "local_ts_ns", "q.parquet", "arbkit data add"),
    Case("hftbacktest-bad-market", ("data", "import", "hftbacktest-bbo", "q.parquet",
                                    "--markets", "spot,bogus", "--root", "cat"), "--markets",
         "spot,bogus", "--markets spot,usdm"),
    Case("upbit-fx-wrong-csv", ("data", "import", "upbit-fx", "wrong.csv", "--root", "cat"),
         "date_utc", "['a', 'b']", "arbkit data formats"),
    Case("ecb-fx-wrong-csv", ("data", "import", "ecb-fx", "wrong.csv", "--root", "cat"),
         "fx_ecb_published", "['a', 'b']", "arbkit data formats"),
    Case("upbit-fx-parquet", ("data", "import", "upbit-fx", "q.parquet", "--root", "cat"),
         "q.parquet", "Parquet file", "arbkit data formats"),
    Case("lean-given-csv", ("data", "import", "lean-quote-bars", "wrong.csv", "--root", "cat"),
         "wrong.csv", "'a,b'", "CSV format"),
    Case("ohlcv-no-venue", ("data", "import", "ohlcv-csv", "wrong.csv", "--root", "cat"),
         "--venue", "ohlcv-csv", "pass --venue"),
    Case("ohlcv-wrong-columns", ("data", "import", "ohlcv-csv", "wrong.csv", "--venue", "v",
                                 "--symbol", "S", "--interval", "1m", "--root", "cat"),
         "timestamp", "['a', 'b']", "rename the columns"),
    Case("ohlcv-bad-interval", ("data", "import", "ohlcv-csv", "b.csv", "--venue", "v",
                                "--symbol", "S", "--interval", "1x", "--root", "cat"),
         "interval", "'1x'", "e.g. 1m", text("b.csv", "timestamp,open,high,low,close,volume\n"
                                                      "1700000000000,1,1,1,1,1\n")),
    Case("ohlcv-high-below-low", ("data", "import", "ohlcv-csv", "b.csv", "--venue", "v",
                                  "--symbol", "S", "--interval", "1m", "--root", "cat"),
         "high", "0.5", "repair or drop", text("b.csv", "timestamp,open,high,low,close,volume\n"
                                          "1700000000000,1,0.5,1,1,1\n")),
    Case("import-unknown-format", ("data", "import", "candles", "x", "--root", "cat"),
         "import format", "'candles'", "known:"),
    Case("tardis-wrong-csv", ("data", "import", "tardis-quotes", "wrong.csv", "--root", "cat"),
         "bid_price", "['a', 'b']", "Tardis quotes CSV"),
    Case("binance-raw-name", ("data", "import", "binance-raw", "wrong.csv", "--root", "cat"),
         "wrong.csv", "name", "rename it"),
    # ---- data add ---------------------------------------------------------------------
    Case("add-csv", ("data", "add", "wrong.csv", "--root", "cat"), "wrong.csv", "'a,b'",
         "CSV format"),
    Case("add-gzip", ("data", "add", "w.csv.gz", "--root", "cat"), "w.csv.gz", "gzip",
         "CSV format", lambda w: (w / "w.csv.gz").write_bytes(b"\x1f\x8b\x08\x00rest")),
    Case("add-missing", ("data", "add", "nope.parquet", "--root", "cat"), "nope.parquet",
         "does not exist", "check the path"),
    Case("add-empty-folder", ("data", "add", "empty", "--root", "cat"), "empty",
         "no *.parquet", "point at a Parquet file", folder("empty")),
    Case("add-nan-price", ("data", "add", "bad.parquet", "--root", "cat"), "ask_px", "nan",
         "repair or drop", quotes_with("bad.parquet", nth("ask_px", 5, float("nan")))),
    Case("add-time-backwards", ("data", "add", "bad.parquet", "--root", "cat"), "ts_recv_ns",
         "backwards", "sort each stream", quotes_with("bad.parquet", lambda f: f.reverse())),
    Case("add-huge-size", ("data", "add", "bad.parquet", "--root", "cat"), "bid_qty", "1e+308",
         "repair or drop", quotes_with("bad.parquet", nth("bid_qty", 3, 1e308))),
    Case("add-text-price", ("data", "add", "bad.parquet", "--root", "cat"), "bid_px", "'N/A'",
         "cast(pl.Float64)", quotes_with("bad.parquet", lambda f: nth("bid_px", 7, pl.lit("N/A"))(
             f.with_columns(pl.col("bid_px").cast(pl.String))))),
    Case("add-root-is-file", ("data", "add", "q.parquet", "--root", "notes.txt"), "notes.txt",
         "is a file", "pass a folder"),
    Case("add-conflict", ("data", "add", "bad.parquet", "--root", "cat"), "ts_recv_ns",
         "share a time", "Remove that file",
         quotes_with("bad.parquet", lambda f: f.with_columns(pl.col("bid_qty") + 1))),
    # ---- backtest data ------------------------------------------------------------------
    Case("data-missing-column", ("backtest", "--data", "bad.parquet", "--config",
                                 "config.toml"), "columns", "bid_px", "add them",
         quotes_with("bad.parquet", lambda f: f.drop("bid_px"))),
    Case("data-ms-stamps", ("backtest", "--data", "bad.parquet", "--config", "config.toml"),
         "ts_recv_ns", "milliseconds", "multiply by 1_000_000",
         quotes_with("bad.parquet", lambda f: f.with_columns(pl.col("ts_recv_ns") // 10**6))),
    Case("data-empty", ("backtest", "--data", "bad.parquet", "--config", "config.toml"),
         "rows", "empty", "re-export", quotes_with("bad.parquet", lambda f: f.head(0))),
    Case("data-huge-price", ("backtest", "--data", "bad.parquet", "--config", "config.toml"),
         "ask_px", "1e+308", "repair or drop", quotes_with("bad.parquet",
                                                           nth("ask_px", 3, 1e308))),
    Case("data-x100-touch", ("backtest", "--data", "bad.parquet", "--config", "config.toml"),
         "ask_px", "100x", "scale every price column", quotes_with(
             "bad.parquet", lambda f: f.with_columns(
                 pl.when(pl.col("venue") == "B").then(pl.col(c) * 100).otherwise(pl.col(c))
                 .alias(c) for c in ("bid_px", "ask_px")), src="qd.parquet")),
    Case("data-is-csv", ("backtest", "--data", "wrong.csv", "--config", "config.toml"),
         "wrong.csv", "'a,b'", "CSV format"),
    Case("data-missing-file", ("backtest", "--data", "nope.parquet", "--config",
                               "config.toml"), "nope.parquet", "does not exist",
         "check the path"),
    Case("data-only", ("backtest", "--data", "q.parquet"), "--config", "both",
         "or neither"),
    Case("fx-is-quotes", (*BT, "--fx", "q.parquet"), "columns", "quotes table",
         "pass the fx table"),
    Case("funding-is-quotes", (*BT, "--funding", "q.parquet"), "columns", "quotes table",
         "pass the funding table"),
    Case("chunk-negative", (*BT, "--chunk", "-5"), "--chunk", "-5", "e.g. --chunk"),
    Case("chunk-zero", (*BT, "--chunk", "0"), "--chunk", "0", "e.g. --chunk"),
    Case("start-without-catalog", (*BT, "--start", "2024-01-01"), "--start", "catalog root",
         "drop them"),
    Case("start-not-a-date", ("backtest", "--data", "cat", "--config", "config.toml",
                              "--start", "2024-13-01"), "--start", "2024-13-01", "YYYY-MM-DD"),
    Case("start-after-end", ("backtest", "--data", "cat", "--config", "config.toml",
                             "--start", "2024-02-01", "--end", "2024-01-01"), "--start",
         "2024-02-01", "swap them"),
    # ---- config -------------------------------------------------------------------------
    Case("config-entry-bps-negative", ("backtest", "--data", "q.parquet", "--config",
                                       "bad.toml"), "entry_bps", "-40.0", "fix the config",
         config_with("entry_bps = 1.0", "entry_bps = -40.0")),
    Case("config-exit-bps-60", ("backtest", "--data", "q.parquet", "--config", "bad.toml"),
         "exit_bps", "60.0", "raise entry_bps", config_with("exit_bps = -1.5", "exit_bps = 60.0")),
    Case("config-latency-negative", ("backtest", "--data", "q.parquet", "--config",
                                     "bad.toml"), "order_latency_ms", "-10.0",
         "a delay in milliseconds", config_with("order_latency_ms = 5.0",
                                                "order_latency_ms = -10.0")),
    Case("config-reference-lower", ("backtest", "--data", "q.parquet", "--config", "bad.toml"),
         "reference_ccy", "'usdt'", "upper case", config_with('reference_ccy = "USDT"',
                                                              'reference_ccy = "usdt"')),
    Case("config-venue-colon", ("backtest", "--data", "q.parquet", "--config", "bad.toml"),
         "venue", "'A:x'", "rename it", config_with('venue = "A"', 'venue = "A:x"')),
    Case("config-unknown-key", ("backtest", "--data", "q.parquet", "--config", "bad.toml"),
         "entry_bsp", "entry_bsp", "allowed", config_with("[strategy]\n",
                                                          "[strategy]\nentry_bsp = 1.0\n")),
    Case("config-negative-fee", ("backtest", "--data", "q.parquet", "--config", "bad.toml"),
         "taker_fee_bps", "-1.0", "rebate", config_with("taker_fee_bps = 1.0",
                                                        "taker_fee_bps = -1.0")),
    Case("config-bad-toml", ("backtest", "--data", "q.parquet", "--config", "bad.toml"),
         "bad.toml", "not valid TOML", "fix the syntax", config_with("[strategy]\n",
                                                                    "[strategy\n")),
    Case("config-text-number", ("backtest", "--data", "q.parquet", "--config", "bad.toml"),
         "notional", "abc", "number", config_with("notional = 10000.0", 'notional = "abc"')),
    Case("config-quote-lower", ("backtest", "--data", "q.parquet", "--config", "bad.toml"),
         "quote", "'usdt'", "upper case", config_with('quote = "USDT"', 'quote = "usdt"')),
    Case("config-is-folder", ("backtest", "--data", "q.parquet", "--config", "cat"), "cat",
         "is a folder", "pass the"),
    Case("config-missing", ("backtest", "--data", "q.parquet", "--config", "nope.toml"),
         "nope.toml", "not found", "existing --config"),
    # ---- catalog commands ---------------------------------------------------------------
    Case("ls-root-missing", ("data", "ls", "--root", "nope"), "nope", "does not exist",
         "pass --root"),
    Case("validate-root-file", ("data", "validate", "--root", "notes.txt"), "notes.txt",
         "is a file", "pass a folder"),
    Case("info-gap-negative", ("data", "info", "--root", "cat", "--gap-s", "-1"), "--gap-s",
         "-1", "e.g. --gap-s 60"),
    Case("info-gap-zero", ("data", "info", "--root", "cat", "--gap-s", "0"), "--gap-s", "0",
         "e.g. --gap-s 60"),
    Case("info-unknown-kind", ("data", "info", "candles", "--root", "cat"), "kind",
         "'candles'", "known kinds"),
    Case("ls-bad-start", ("data", "ls", "--root", "cat", "--start", "2024-13-01"), "--start",
         "2024-13-01", "YYYY-MM-DD"),
    Case("info-no-data", ("data", "info", "quotes/kraken", "--root", "cat"), "quotes/kraken",
         "no data", "arbkit data ls"),
    # ---- tune, report, presets ----------------------------------------------------------
    Case("tune-trials-zero", ("tune", "study.toml", "--trials", "0"), "--trials", "0",
         "e.g. --trials 20"),
    Case("tune-trials-negative", ("tune", "study.toml", "--trials", "-5"), "--trials", "-5",
         "e.g. --trials 20"),
    Case("tune-jobs-zero", ("tune", "study.toml", "-j", "0"), "-j", "0", "1 or more"),
    Case("tune-results-file", ("tune", "study.toml", "--results", "notes.txt"), "--results",
         "notes.txt", "pass a folder"),
    Case("tune-missing-study", ("tune", "nope.toml"), "nope.toml", "not found",
         "pass an existing"),
    Case("tune-storage-down", ("tune", "study.toml", "--storage", PG_DOWN), "--storage",
         "127.0.0.1:1", "check that PostgreSQL is running"),
    Case("tune-storage-bad-port", ("tune", "study.toml", "--storage", PG_BADPORT), "--storage",
         "99999", "port (1-65535)"),
    Case("tune-storage-scheme", ("tune", "study.toml", "--storage", "mysql://x/y"), "--storage",
         "mysql://x/y", "postgresql://"),
    Case("tune-space-typo", ("tune", "typo.toml"), "strategy.entry_bp",
         "did you mean strategy.entry_bps", "strategy keys: ",
         text("typo.toml", '[study]\nname = "typo"\ndata = "q.parquet"\nconfig = '
              '"config.toml"\n[space]\n"strategy.entry_bp" = { low = 0.0, high = 4.0 }\n')),
    Case("tune-space-section", ("tune", "typo.toml"), "strat.entry_bps",
         "did you mean strategy.entry_bps", "section in strategy, risk, run, bars",
         text("typo.toml", '[study]\nname = "typo"\ndata = "q.parquet"\nconfig = '
              '"config.toml"\n[space]\n"strat.entry_bps" = { low = 0.0, high = 4.0 }\n')),
    Case("report-no-study", ("report", "nostudy"), "nostudy", "results/optuna.journal",
         "run `arbkit tune`"),
    Case("report-out-folder", ("report", "nostudy", "--out", "cat"), "--out", "cat",
         "pass a file name"),
    Case("report-out-foreign-file", ("report", "nostudy", "--out", "notes.txt"), "--out",
         "notes.txt", "new file name"),
    Case("report-results-file", ("report", "nostudy", "--results", "notes.txt"), "--results",
         "notes.txt", "pass the folder"),
    Case("report-storage-down", ("report", "nostudy", "--storage", PG_DOWN), "--storage",
         "127.0.0.1:1", "check that PostgreSQL is running"),
    Case("promote-no-study", ("preset", "promote", "nostudy", "--name", "x"), "nostudy",
         "no study", "run `arbkit tune`"),
    Case("promote-bad-name", ("preset", "promote", "nostudy", "--name", "a/b"), "--name",
         "'a/b'", "letters, digits"),
    Case("preset-trial-text", ("backtest", "--preset", "presets/p.toml"), "trial", "'zero'",
         "promote the trial again", preset('study = "s"\ntrial = "zero"')),
    Case("preset-windows-text", ("backtest", "--preset", "presets/p.toml"), "windows", "'all'",
         "promote the trial again", preset('study = "s"\ntrial = 1\nwindows = "all"')),
    Case("preset-missing", ("backtest", "--preset", "nope"), "preset", "'nope'",
         "arbkit preset promote"),
    Case("preset-with-config", ("backtest", "--preset", "nope", "--config", "config.toml"),
         "--preset", "--config", "drop --config"),
    # ---- synth, emulator ----------------------------------------------------------------
    Case("synth-out-file", ("data", "synth", "--scenario", "flat", "--out", "notes.txt"),
         "--out", "notes.txt", "pass a folder"),
    Case("synth-out-under-file", ("data", "synth", "--scenario", "flat", "--out",
                                  "notes.txt/x"), "--out", "notes.txt", "in a folder"),
    Case("synth-over-user-data", ("data", "synth", "--scenario", "flat", "--out", "mine"),
         "--out", "quotes.parquet", "new or empty folder", move("q.parquet",
                                                                "mine/quotes.parquet")),
    Case("synth-unknown-scenario", ("data", "synth", "--scenario", "sideways", "--out", "x"),
         "scenario", "sideways", "always-win"),
    Case("synth-events-negative", ("data", "synth", "--scenario", "flat", "--events", "-5",
                                   "--out", "x"), "--events", "-5", "whole number >= 1"),
    Case("emulator-duration-negative", ("emulator", "serve", "--quotes", "BTCUSDT=A:BTC-USDT",
                                        "--root", "cat", "--duration-s", "-5"),
         "--duration-s", "-5", "0 or more"),
    Case("emulator-speed-zero", ("emulator", "serve", "--quotes", "BTCUSDT=A:BTC-USDT",
                                 "--root", "cat", "--speed", "0"), "--speed", "0", "above 0"),
    Case("emulator-bad-spec", ("emulator", "serve", "--quotes", "BTCUSDT", "--root", "cat"),
         "--quotes", "'BTCUSDT'", "SYMBOL=venue:symbol"),
    Case("emulator-root-missing", ("emulator", "serve", "--quotes", "BTCUSDT=A:BTC-USDT",
                                   "--root", "nope"), "nope", "does not exist", "pass --root"),
    Case("live-no-opt-in", ("live", "--config", "config.toml"), "arbkit live", "real orders",
         "add --i-understand-real-money"),
    Case("live-no-keys", ("live", "--config", "config.toml", "--i-understand-real-money"),
         "$ARBKIT_BINANCE_KEY", "not set", "export the API key"),
    Case("live-venues-missing", ("live", "--config", str(REHEARSAL), "--venues", "v.json"),
         "--venues v.json", "not a venues file", "arbkit emulator venues"),
    Case("live-http-bad", ("live", "--config", str(REHEARSAL), "--emulator", "q.parquet",
                           "--http", "8787"),
         "--http '8787'", "HOST:PORT", "127.0.0.1:8787"),
    Case("live-emulator-and-venues", ("live", "--config", str(REHEARSAL), "--emulator",
                                      "q.parquet", "--venues", "v.json"),
         "--emulator and --venues", "give one", "uses running ones"),
    Case("emulator-venues-fault-kind", ("emulator", "venues", "--config", str(REHEARSAL),
                                        "--data", "q.parquet", "--order-fault-kinds", "bogus"),
         "--order-fault-kinds", "'bogus'", "use some of"),
    Case("emulator-venues-fault-rate", ("emulator", "venues", "--config", str(REHEARSAL),
                                        "--data", "q.parquet", "--order-fault-rate", "2"),
         "--order-fault-rate", "2", "a share in [0, 1]"),
]


def test_the_table_is_big_and_its_ids_are_unique():
    assert len(CASES) >= 80
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_a_bad_input_is_one_line_and_changes_nothing(case: Case, work: Path):
    if case.setup is not None:
        case.setup(work)
    before = snapshot(work)
    r = cli(*case.args)
    assert_one_error(r, case.field, case.value, case.fix)
    assert snapshot(work) == before, "the workspace changed"


# ------------------------------------------------------------------ bad data that runs


def _perp(w: Path) -> None:
    t = (w / "config.toml").read_text()
    i = t.index('venue = "B"')
    j = t.index('kind = "spot"', i)
    (w / "perp.toml").write_text(t[:j] + 'kind = "linear_perp"' + t[j + len('kind = "spot"'):])
    q = pl.read_parquet(w / "q.parquet")
    mid = int(q["ts_recv_ns"].min() + (q["ts_recv_ns"].max() - q["ts_recv_ns"].min()) // 2)
    pl.DataFrame({"ts_ns": [mid], "venue": ["B"], "symbol": ["BTC-USDT"],
                  "rate": [1.0]}).write_parquet(w / "fund.parquet")


YEARS_50 = 50 * 365 * 86_400 * 10**9
WARN = [
    ("every-row-crossed", quotes_with("bad.parquet", lambda f: f.with_columns(
        pl.col("ask_px").alias("bid_px"), pl.col("bid_px").alias("ask_px"))),
     ("backtest", "--data", "bad.parquet", "--config", "config.toml"),
     "every quote row is crossed"),
    ("venue-x100", quotes_with("bad.parquet", lambda f: f.with_columns(
        pl.when(pl.col("venue") == "B").then(pl.col(c) * 100).otherwise(pl.col(c)).alias(c)
        for c in ("bid_px", "ask_px"))),
     ("backtest", "--data", "bad.parquet", "--config", "config.toml"),
     "wider than sanity_max_edge_bps"),
    ("funding-rate-1", _perp,
     ("backtest", "--data", "q.parquet", "--config", "perp.toml", "--funding", "fund.parquet"),
     "funding rates beyond ±3%"),
    ("stamps-in-the-future", quotes_with("bad.parquet", lambda f: f.with_columns(
        pl.col("ts_recv_ns") + YEARS_50, pl.col("ts_exch_ns") + YEARS_50)),
     ("backtest", "--data", "bad.parquet", "--config", "config.toml"), "in the future"),
    ("sizes-all-zero", quotes_with("bad.parquet", lambda f: f.with_columns(
        pl.lit(0.0).alias("bid_qty"), pl.lit(0.0).alias("ask_qty"))),
     ("backtest", "--data", "bad.parquet", "--config", "config.toml"), "is 0: no size"),
]


@pytest.mark.parametrize("setup, args, needle", [w[1:] for w in WARN],
                         ids=[w[0] for w in WARN])
def test_bad_data_that_still_runs_says_so(setup: Setup, args, needle: str, work: Path):
    setup(work)
    before = snapshot(work)
    r = cli(*args, "--json")
    assert r.code == 0, r.err
    import json

    notes = json.loads(r.out)["notes"]
    assert any(needle in n for n in notes), notes
    assert "Traceback" not in r.err
    assert snapshot(work) == before
