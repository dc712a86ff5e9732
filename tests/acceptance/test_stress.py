"""`arbkit stress`: scenarios as transforms of the config or the event arrays, the risk guards
holding the damage of a flash crash and a venue outage to their limits, the account identity
in every scenario, the same seed giving the same table, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from arbkit.config import dump_config
from arbkit.config.load import from_dict
from arbkit.data.synth import generate
from arbkit.engine.backtest import prepare
from arbkit.engine.scenarios import SCENARIOS, StressParams
from arbkit.engine.stress import stress
from arbkit.report.sections_stress import load_stress, stress_page
from tests.cli_harness import cli

S = 1_000_000_000
FX0 = 1350.0  # KRW per USDT
PREMIUM = 0.003  # A's KRW price sits 30 bps above B's: the FX is not the legs' own ratio


@pytest.fixture(scope="module")
def market() -> tuple[pl.DataFrame, dict]:
    """25 minutes of two venues (synthetic 'normal', 60k quotes)."""
    df, cfg = generate("normal", n_events=60_000, seed=3)
    return df, cfg.to_dict()


@pytest.fixture(scope="module")
def guarded(market):
    """Spot/spot with risk limits: one position at a time (gross cap), a drawdown halt at 300
    and a daily loss limit of 600 (reference currency), the sanity guard at 500 bps."""
    df, d = market
    d = json.loads(json.dumps(d))
    d["risk"].update(max_drawdown=300.0, daily_loss_limit=600.0, max_gross_exposure=25000.0)
    d["strategy"].update(entry_bps=0.5, exit_bps=0.0, max_hold_s=600.0)  # held for seconds
    cfg = from_dict(d)
    return cfg, prepare(df, cfg)


@pytest.fixture(scope="module")
def fx_perp(market):
    """Every scenario applies: A quoted in KRW through a recorded USDT/KRW series (a random
    walk updated every 30 s), B a linear perpetual."""
    df, d = market
    rng = np.random.default_rng(11)
    t0, t1 = int(df["ts_recv_ns"].min()), int(df["ts_recv_ns"].max())
    ts = np.arange(t0 - 60 * S, t1 + 1, 30 * S)
    rate = FX0 * np.exp(np.cumsum(rng.standard_normal(ts.size) * 2e-4))
    fx = pl.DataFrame({"ts_ns": ts, "venue": "upbit", "symbol": "USDT/KRW", "base": "USDT",
                       "quote": "KRW", "rate": rate})
    on_a = pl.col("venue") == "A"
    krw = pl.Series(rate)[np.clip(np.searchsorted(ts, df["ts_recv_ns"].to_numpy(), "right") - 1,
                                  0, None)] * (1 + PREMIUM)
    df = df.with_columns(pl.when(on_a).then(pl.lit("BTC-KRW")).otherwise(pl.col("symbol"))
                         .alias("symbol"),
                         *[pl.when(on_a).then(pl.col(c) * krw).otherwise(pl.col(c)).alias(c)
                           for c in df.columns if c.startswith(("bid_px", "ask_px"))])
    d = json.loads(json.dumps(d))
    a, b = d["instruments"]
    a.update(symbol="BTC-KRW", quote="KRW", tick=1000.0, initial_quote=25000.0 * FX0)
    b.update(kind="linear_perp", initial_base=0.0)
    d["routes"] = [{"a": "A:BTC-KRW", "b": "B:BTC-USDT"}]
    d["fx"] = [{"venue": "upbit", "symbol": "USDT/KRW", "max_age_s": 120.0}]
    d["strategy"].update(anchor="ewma", anchor_halflife_s=300.0, entry_bps=0.5)
    cfg = from_dict(d)
    return cfg, prepare(df, cfg, fx=fx)


def test_every_scenario_keeps_the_account_identity(fx_perp) -> None:
    cfg, prep = fx_perp
    rep = stress(cfg, [prep], StressParams(seed=2))
    assert [r.scenario for r in rep.rows] == list(SCENARIOS)
    assert all(r.applies for r in rep.rows), [r.detail for r in rep.rows if not r.applies]
    assert rep.row("baseline").metrics["trades"] > 0
    for r in rep.rows:
        assert r.metrics["identity_gap_rel"] < 1e-9, (r.scenario, r.metrics["identity_gap"])
    base = rep.row("baseline").metrics
    # each scenario changed what it says it changed
    assert rep.row("fees_x2").metrics["fees"] / max(rep.row("fees_x2").metrics["trades"], 1) \
        > 1.9 * base["fees"] / base["trades"]
    # the side held pays 100 bps of its ~notional (an open round trip: in account PnL)
    paid = base["account_pnl"] - rep.row("funding_spike").metrics["account_pnl"]
    assert 0.9 * cfg.strategy.notional * 0.01 < paid < 1.1 * cfg.strategy.notional * 0.01
    stale = rep.row("fx_stale")
    assert "stale_fx" in stale.guards, stale  # max_age_s 120 < the hour without updates
    assert rep.row("venue_outage").guards.get("data_gap", 0) >= 1


def test_guards_bound_a_flash_crash(guarded) -> None:
    cfg, prep = guarded
    notional, crash = cfg.strategy.notional, 0.10
    for seed in (0, 2):
        rep = stress(cfg, [prep], StressParams(seed=seed), ["flash_crash"])
        r = rep.row("flash_crash")
        assert "halfway through baseline trade" in r.detail  # it hit an open position
        # the crash's entries were refused as a data fault, and the drawdown halt fired
        assert r.guards.get("sanity", 0) >= 1 and r.guards.get("drawdown", 0) >= 1, r.guards
        # one position's crash loss (the gap no guard can stop) on top of the limit, never
        # more: the halt stopped every entry after it
        bound = cfg.risk.max_drawdown + notional * crash * 1.05
        assert r.metrics["max_drawdown"] <= bound, (r.metrics["max_drawdown"], bound)
        assert -r.metrics["net_pnl"] <= bound
        assert r.metrics["identity_gap_rel"] < 1e-9


def test_guards_close_what_a_venue_outage_strands(guarded) -> None:
    cfg, prep = guarded
    for seed in (0, 1):
        rep = stress(cfg, [prep], StressParams(seed=seed), ["venue_outage"])
        r, base = rep.row("venue_outage"), rep.row("baseline")
        assert "halfway through baseline trade" in r.detail
        # the silent leg's position was closed by the data-gap rule, entries were blocked
        assert r.metrics["exits_data_gap"] >= 1 and r.guards.get("data_gap", 0) >= 1, r
        assert r.metrics["max_drawdown"] <= cfg.risk.max_drawdown, r.metrics
        assert r.metrics["open_at_end"] <= base.metrics["open_at_end"]
        assert r.metrics["identity_gap_rel"] < 1e-9


def test_same_seed_same_table_other_seed_other_noise(guarded) -> None:
    cfg, prep = guarded
    names = ["quote_noise", "flash_crash", "venue_outage"]
    one = stress(cfg, [prep], StressParams(seed=5), names).to_dict()
    two = stress(cfg, [prep], StressParams(seed=5), names).to_dict()
    assert json.dumps(one, sort_keys=True) == json.dumps(two, sort_keys=True)
    other = stress(cfg, [prep], StressParams(seed=6), names).to_dict()
    noise = {s["scenario"]: s["metrics"] for s in other["scenarios"]}["quote_noise"]
    assert noise != {s["scenario"]: s["metrics"] for s in one["scenarios"]}["quote_noise"]


@pytest.fixture(scope="module")
def preset(market, guarded, tmp_path_factory) -> Path:
    """A preset file (as `arbkit preset promote` writes one) over the guarded config."""
    df, _ = market
    cfg, _ = guarded
    d = tmp_path_factory.mktemp("stress")
    df.write_parquet(d / "quotes.parquet")
    text = (f'[preset]\nstudy = "hand"\ntrial = 0\ndata = "{d / "quotes.parquet"}"\n'
            f'windows = []\n\n' + dump_config(cfg))
    (d / "guarded.toml").write_text(text)
    return d / "guarded.toml"


def test_cli_table_json_and_out_folder(preset, tmp_path) -> None:
    ran = cli("stress", "--preset", preset, "--scenarios", "flash_crash,venue_outage")
    assert ran.code == 0, ran.err
    for word in ("baseline", "flash_crash", "venue_outage", "drawdown", "worst: flash_crash"):
        assert word in ran.out
    ran = cli("stress", "--preset", preset, "--scenarios", "fx_stale", "--json")
    assert ran.code == 0, ran.err
    data = json.loads(ran.out)
    assert [s["scenario"] for s in data["scenarios"]] == ["baseline", "fx_stale"]
    assert data["scenarios"][1]["detail"].startswith("n/a: no FX route")
    out = tmp_path / "st"
    ran = cli("stress", "--preset", preset, "--scenarios", "flash_crash", "--out", out)
    assert ran.code == 0, ran.err
    assert f"arbkit report hand --stress {out}" in ran.err
    data = load_stress(out)
    page = (out / "stress.html").read_text()
    assert page == stress_page(data) and 'id="stress"' in page and "flash_crash" in page
    assert cli("stress", "--preset", preset, "--scenarios", "flash_crash", "--out",
               out).code == 1  # an earlier run's folder: only with --force


@pytest.mark.parametrize("args, words", [
    (["--preset", "no_such_preset"], ["preset 'no_such_preset' not found"]),
    (["--scenarios", "meteor"], ["--scenarios", "'meteor'", "fees_x2"]),
    (["--crash-pct", "150"], ["--crash-pct 150.0", "below 100"]),
    (["--outage-s", "0"], ["--outage-s 0.0", "above 0"]),
    (["--venue", "Z"], ["--venue 'Z'", "A, B"]),
])
def test_bad_input_is_one_line(preset, args, words) -> None:
    full = ["stress", *(["--preset", str(preset)] if "--preset" not in args else []), *args]
    ran = cli(*full)
    assert ran.code == 1
    assert len(ran.lines()) == 1 and ran.lines()[0].startswith("error: "), ran.err
    for w in words:
        assert w in ran.err, (w, ran.err)


def test_study_report_gets_a_stress_section(preset, tmp_path) -> None:
    from arbkit.report import SECTION_IDS, render
    from tests.integration.test_report import bare_report, sections

    out = tmp_path / "st"
    assert cli("stress", "--preset", preset, "--scenarios", "flash_crash", "--out",
               out).code == 0
    rep = bare_report()
    assert "stress" not in sections(render(rep))  # no stress.json given: no section
    rep.stress = load_stress(out)
    found = sections(render(rep))
    assert list(found) == [*SECTION_IDS, "stress"]
    assert "flash_crash" in found["stress"] and "drawdown" in found["stress"]
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    ran = cli("report", "any", "--stress", bad)
    assert ran.code == 1 and "not a stress.json" in ran.err and len(ran.lines()) == 1


def test_tune_holds_trials_to_a_stress_floor(market, guarded, tmp_path) -> None:
    """study.stress_min_net: a trial whose worst stressed run loses more is PRUNED, saying
    which scenario; a kept trial records stress_worst_net (usable as an objective)."""
    from optuna.trial import TrialState

    from arbkit.tune import load_study, run_study, storage_for

    df, _ = market
    cfg, _ = guarded
    df.write_parquet(tmp_path / "quotes.parquet")
    (tmp_path / "base.toml").write_text(dump_config(cfg))
    (tmp_path / "study.toml").write_text(
        '[study]\nname = "stress_floor"\ndata = "quotes.parquet"\nconfig = "base.toml"\n'
        'trials = 2\nsampler = "grid"\nseed = 0\nmin_trades = 1\n'
        'objectives = ["net_pnl", "stress_worst_net"]\ndirections = ["maximize", "maximize"]\n'
        'stress_min_net = -500.0\nstress_scenarios = ["flash_crash"]\n\n'
        '[space]\n"strategy.notional" = { values = [2000.0, 10000.0] }\n')
    spec = load_study(tmp_path / "study.toml")
    study = run_study(spec, storage_for(None, tmp_path / "results"))
    by = {t.params["strategy.notional"]: t for t in study.get_trials()}
    small, big = by[2000.0], by[10000.0]
    assert small.state == TrialState.COMPLETE, small.user_attrs.get("pruned_because")
    assert small.user_attrs["stress_worst"] == "flash_crash"
    worst = small.user_attrs["m.stress_worst_net"]
    assert -500.0 <= worst < 0 and small.values[1] == worst
    assert big.state == TrialState.PRUNED
    assert big.user_attrs["pruned_because"].startswith("stress: flash_crash net PnL -")
    assert "< study.stress_min_net = -500" in big.user_attrs["pruned_because"]


@pytest.mark.parametrize("line, words", [
    ("stress_min_net = \"low\"", ["study.stress_min_net = 'low'", "e.g. -500.0"]),
    ("stress_min_net = -1.0\nstress_scenarios = [\"meteor\"]", ["'meteor'", "flash_crash"]),
    ("stress_scenarios = [\"fees_x2\"]", ["needs study.stress_min_net"]),
])
def test_bad_stress_keys_in_a_study(line, words, tmp_path) -> None:
    from arbkit.errors import ConfigError
    from arbkit.tune import load_study

    (tmp_path / "s.toml").write_text(f'[study]\nname = "x"\ndata = "synth:normal"\n{line}\n'
                                     '[space]\n"strategy.entry_bps" = { low = 1.0, high = 2.0 }\n')
    with pytest.raises(ConfigError) as exc:
        load_study(tmp_path / "s.toml")
    for w in words:
        assert w in str(exc.value), (w, str(exc.value))
