"""Tuning end to end: sweeps that change trades, stored configs that are the engine's, resume
after a kill, two workers on PostgreSQL, the grid fast path, presets reproduced bit for bit."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import optuna
import polars as pl
import pytest
from optuna.trial import TrialState

from arbkit.config.load import from_dict
from arbkit.data.synth import write_scenario
from arbkit.engine.backtest import prepare, run_prepared
from arbkit.engine.sweep import run_batch
from arbkit.tune import apply_params, load_study, run_study, storage_for, trials_frame
from arbkit.tune.evaluate import mean_metrics
from arbkit.tune.preset import load_preset, promote, run_preset
from tests.cli_harness import Ran, cli

ROOT = Path(__file__).resolve().parents[2]
ARBKIT = [sys.executable, "-m", "arbkit"]

STUDY = """
[study]
name = "{name}"
data = "{data}"
config = "{config}"
trials = {trials}
sampler = "{sampler}"
seed = 3
objectives = ["net_pnl"]
directions = ["maximize"]
min_trades = 1
batch = {batch}

[split]
kind = "holdout"
train = 0.7
embargo_s = 10

[space]
{space}
"""
SPACE = """"strategy.entry_bps" = { low = 0.0, high = 5.0 }
"strategy.stop_loss_bps" = { low = 4.0, high = 30.0 }"""
GRID = """"strategy.entry_bps" = { values = [0.5, 1.5, 3.0] }
"strategy.max_hold_s" = { values = [60.0, 300.0] }"""


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_scenario("normal", tmp_path_factory.mktemp("tune"), n_events=60_000)


def study_file(tmp: Path, scen: Path, *, name: str | None = None, trials: int = 6,
               sampler: str = "random", batch: int = 1, space: str = SPACE) -> Path:
    p = tmp / f"{name or 'study'}.toml"
    p.write_text(STUDY.format(name=name or f"t{uuid.uuid4().hex[:8]}", data=scen /
                              "quotes.parquet", config=scen / "config.toml", trials=trials,
                              sampler=sampler, batch=batch, space=space))
    return p


def finished(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))


def test_sweep_changes_trades_and_each_trial_stored_the_config_the_engine_used(
        tmp_path: Path, scenario: Path) -> None:
    spec = load_study(study_file(tmp_path, scenario, trials=5))
    st = storage_for(None, tmp_path / "results")
    study = run_study(spec, st)
    done = finished(study)
    assert len(done) == 5
    prep = prepare(scenario / "quotes.parquet", scenario / "config.toml")
    trade_sets = set()
    with st.store() as store:
        runs = store.runs(spec.name)
        assert runs.height == 10  # train + test per trial
        for t in done:
            cfg = from_dict(json.loads(t.user_attrs["config"]))
            assert cfg.config_hash() == t.user_attrs["config_hash"]
            # the stored config carries the trial's parameters ...
            assert cfg.strategy.entry_bps == t.params["strategy.entry_bps"]
            assert cfg.strategy.stop_loss_bps == t.params["strategy.stop_loss_bps"]
            # ... and running it gives the trial's metrics exactly: it is what the engine ran
            (a, b) = t.user_attrs["windows"]["train"][0]
            res = run_prepared(cfg, prep.window(a, b))
            m = mean_metrics([res])
            for k in ("net_pnl", "trades", "fees", "max_drawdown", "trade_sharpe"):
                assert m[k] == t.user_attrs[f"m.{k}"] or (m[k] != m[k]), k
            rid = runs.filter((pl.col("trial") == t.number)
                              & pl.col("extra_json").str.contains('"train"'))["run_id"][0]
            stored = store.frame("trades", rid)
            assert stored.height == res.trades.height
            trade_sets.add(tuple(stored["net_pnl"].to_list()))
    assert len(trade_sets) == 5, "different configs must give different trade sets"


def test_objective_expression_min_trades_and_bad_study_keys(tmp_path: Path,
                                                            scenario: Path) -> None:
    p = study_file(tmp_path, scenario, trials=3)
    text = p.read_text().replace('objectives = ["net_pnl"]',
                                 'objectives = ["net_pnl - 0.5 * max_drawdown"]')
    p.write_text(text.replace("min_trades = 1", "min_trades = 100000"))
    spec = load_study(p)
    study = run_study(spec, storage_for(None, tmp_path / "r"))
    states = {t.state for t in study.get_trials()}
    assert states == {TrialState.PRUNED}
    assert "min_trades" in study.get_trials()[0].user_attrs["pruned_because"]
    p.write_text(text.replace("seed = 3", "seeed = 3"))
    r = subprocess.run([*ARBKIT, "tune", str(p)], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 1
    assert "unknown key study.seeed" in r.stderr and r.stderr.count("\n") == 1


def test_grid_fast_path_equals_one_by_one(tmp_path: Path, scenario: Path) -> None:
    prep = prepare(scenario / "quotes.parquet", scenario / "config.toml")
    base = load_study(study_file(tmp_path, scenario))
    from arbkit.config import load_config

    cfg0 = load_config(scenario / "config.toml")
    cfgs = [apply_params(cfg0, {"strategy.entry_bps": e, "strategy.max_hold_s": h})
            for e in (0.5, 1.5, 3.0) for h in (60.0, 300.0)]
    batch = run_batch(cfgs, prep)
    for cfg, rb in zip(cfgs, batch):
        r1 = run_prepared(cfg, prep)
        for name in ("trades", "fills", "equity", "guards"):
            assert getattr(rb, name).equals(getattr(r1, name)), name
        assert rb.summary.filter(pl.col("metric") != "run_s").equals(
            r1.summary.filter(pl.col("metric") != "run_s"))
    assert len({r.trades.height for r in batch}) > 1
    # the study's batch path gives the same trials as one at a time
    vals = []
    for b in (1, 6):
        spec = load_study(study_file(tmp_path, scenario, name=f"grid{b}", sampler="grid",
                                     batch=b, space=GRID, trials=6))
        study = run_study(spec, storage_for(None, tmp_path / f"g{b}"))
        vals.append(sorted((tuple(sorted(t.params.items())), t.values[0])
                           for t in finished(study)))
    assert vals[0] == vals[1] and len(vals[0]) == 6
    assert base.name


def test_resume_after_kill_loses_and_duplicates_nothing(tmp_path: Path,
                                                        scenario: Path) -> None:
    p = study_file(tmp_path, scenario, name="killed", trials=8)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([*ARBKIT, "tune", str(p)], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    st = storage_for(None, tmp_path / "results")
    deadline = time.time() + 120
    while time.time() < deadline:
        time.sleep(0.3)
        try:
            s = optuna.load_study(study_name="killed", storage=st.optuna())
        except KeyError:
            continue
        if len(finished(s)) >= 2:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    spec = load_study(p)
    s = optuna.load_study(study_name="killed", storage=st.optuna())
    before = len(finished(s))
    assert 2 <= before < 8
    # a trial a killed worker left RUNNING (made certain here: one more, owned by a dead pid)
    dead = subprocess.run([sys.executable, "-c", "from arbkit.tune.study import worker_id; "
                           "print(worker_id())"], capture_output=True, text=True,
                          env=env).stdout.strip()  # host:pid:start of a process now gone
    orphan = s.ask({"strategy.entry_bps": optuna.distributions.FloatDistribution(0.0, 5.0),
                    "strategy.stop_loss_bps": optuna.distributions.FloatDistribution(4, 30)})
    import socket

    assert dead.startswith(socket.gethostname() + ":"), dead
    orphan.set_user_attr("worker", dead)
    study = run_study(spec, st)
    trials = study.get_trials()
    done = finished(study)
    assert len(done) == 8  # the budget exactly: nothing lost, nothing extra
    # a resumed sampler does not start over from the same seed (no repeated parameter sets)
    assert len({tuple(sorted(t.params.items())) for t in done}) == len(done)
    assert len({t.number for t in trials}) == len(trials)
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert orphan.number in {t.number for t in failed}
    retries = [t for t in done if t.user_attrs.get("retry_of") is not None]
    assert {t.user_attrs["retry_of"] for t in retries} >= {orphan.number}
    for r in retries:
        src = next(t for t in trials if t.number == r.user_attrs["retry_of"])
        assert r.params == src.params
    # every finished trial has its runs in the store, once
    with st.store() as store:
        runs = store.runs("killed")
    per_trial = runs.group_by("trial").len()
    assert set(per_trial["trial"].to_list()) >= {t.number for t in done}
    assert (per_trial.filter(pl.col("trial").is_in([t.number for t in done]))["len"] == 2).all()


def test_two_workers_on_postgresql_share_one_study(tmp_path: Path, scenario: Path,
                                                   pg_url: str) -> None:
    name = f"pg{uuid.uuid4().hex[:8]}"
    p = study_file(tmp_path, scenario, name=name, trials=10)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([*ARBKIT, "tune", str(p), "-j", "2", "--storage", pg_url],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    secret = pg_url.split("@")[0].rsplit(":", 1)[-1]
    assert f":{secret}@" not in r.stderr + r.stdout and ":***@" in r.stderr  # masked
    st = storage_for(pg_url)
    study = optuna.load_study(study_name=name, storage=st.optuna())
    done = finished(study)
    assert len(done) == 10
    assert len({t.number for t in study.get_trials()}) == len(study.get_trials())
    workers = {t.user_attrs["worker"] for t in done}
    assert len(workers) == 2, workers  # both processes did trials
    # each worker's sampler has its own seed: no trial repeats another's parameters
    assert len({tuple(sorted(t.params.items())) for t in done}) == len(done)
    with st.store() as store:
        runs = store.runs(name)
        assert runs.height == 20
        assert runs.select("trial", "extra_json").is_duplicated().sum() == 0
        store.delete_study(name)
    optuna.delete_study(study_name=name, storage=st.optuna())


def test_preset_round_trip_and_report(tmp_path: Path, scenario: Path) -> None:
    p = study_file(tmp_path, scenario, name="presetstudy", trials=4)
    st = storage_for(None, tmp_path / "results")
    study = run_study(load_study(p), st)
    path = promote("presetstudy", st, "best", folder=tmp_path / "presets")
    pr = load_preset(path)
    best = study.best_trial
    assert pr.meta["trial"] == best.number
    _, metrics, bad = run_preset(pr)
    assert bad == []
    assert metrics["net_pnl"] == best.user_attrs["m.net_pnl"]
    # the CLI does the same, from the presets folder of the working directory
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    (tmp_path / "presets").rename(tmp_path / "presets_moved")
    (tmp_path / "presets").mkdir()
    (tmp_path / "presets_moved" / "best.toml").rename(tmp_path / "presets" / "best.toml")
    r = subprocess.run([*ARBKIT, "backtest", "--preset", "best", "--json"], cwd=tmp_path,
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "bit for bit" in r.stderr
    # an edited preset is refused, not silently run
    text = (tmp_path / "presets" / "best.toml").read_text()
    (tmp_path / "presets" / "bad.toml").write_text(text.replace("\nnotional = ", "\nnotional = 1"))
    r = subprocess.run([*ARBKIT, "backtest", "--preset", "bad"], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 1 and "was edited" in r.stderr
    # the HTML report of the study has every section
    r = subprocess.run([*ARBKIT, "report", "presetstudy", "--out", "rep.html"], cwd=tmp_path,
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    from arbkit.report import SECTION_IDS

    html = (tmp_path / "rep.html").read_text()
    for sid in SECTION_IDS:
        assert f'id="{sid}"' in html, sid


def test_walk_forward_multi_objective(tmp_path: Path, scenario: Path) -> None:
    p = study_file(tmp_path, scenario, name="wf", trials=4)
    text = p.read_text().replace('objectives = ["net_pnl"]\ndirections = ["maximize"]',
                                 'objectives = ["net_pnl", "max_drawdown"]\n'
                                 'directions = ["maximize", "minimize"]')
    text = text.replace('kind = "holdout"\ntrain = 0.7', 'kind = "walk_forward"\nwindows = 2')
    p.write_text(text)
    spec = load_study(p)
    study = run_study(spec, storage_for(None, tmp_path / "r"))
    done = [t for t in finished(study) if t.state == TrialState.COMPLETE]
    assert done and all(len(t.values) == 2 for t in done)
    w = done[0].user_attrs["windows"]
    assert len(w["train"]) == 2 and len(w["test"]) == 2
    for (a, b), (c, d) in zip(w["train"], w["test"]):
        assert b + 10 * 1_000_000_000 == c and a < b < c < d  # embargo between them
    assert w["train"][1][0] == w["train"][0][1]  # rolling: fold 2 trains where fold 1 ended
    df = trials_frame(study)
    assert {"value_net_pnl", "value_max_drawdown", "test_net_pnl"} <= set(df.columns)
    from arbkit.tune import best_trial

    assert best_trial(study).number in {t.number for t in done}


def test_a_bad_objective_is_refused_before_anything_is_stored(tmp_path: Path,
                                                              scenario: Path) -> None:
    p = study_file(tmp_path, scenario, name="badobj", trials=2)
    p.write_text(p.read_text().replace('objectives = ["net_pnl"]',
                                       'objectives = ["net_pnll"]'))
    r = subprocess.run([*ARBKIT, "tune", str(p)], capture_output=True, text=True, cwd=tmp_path,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 1
    assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1, r.stderr
    assert "study.objectives" in r.stderr and "did you mean 'net_pnl'" in r.stderr
    st = storage_for(None, tmp_path / "results")
    with pytest.raises(KeyError):
        optuna.load_study(study_name="badobj", storage=st.optuna())


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_ctrl_c_stops_cleanly_and_resumes(tmp_path: Path, scenario: Path, jobs: str) -> None:
    p = study_file(tmp_path, scenario, name="ctrlc", trials=30)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([*ARBKIT, "tune", str(p), "-j", jobs], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    st = storage_for(None, tmp_path / "results")
    deadline = time.time() + 180
    while time.time() < deadline:
        time.sleep(0.3)
        try:
            s = optuna.load_study(study_name="ctrlc", storage=st.optuna())
        except KeyError:
            continue
        if len(finished(s)) >= 3:
            break
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole group
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "interrupted:" in err and "Traceback" not in err and "SpawnProcess" not in err
    r = subprocess.run([*ARBKIT, "tune", str(p), "-j", jobs], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "resuming:" in r.stderr
    study = optuna.load_study(study_name="ctrlc", storage=st.optuna())
    done = finished(study)
    assert len(done) == 30
    assert not study.get_trials(states=(TrialState.RUNNING, TrialState.WAITING))


def test_a_dead_worker_on_another_host_is_retried_through_postgresql_heartbeats(
        tmp_path: Path, scenario: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """No pid to check across machines: Optuna's heartbeat (recorded by run_worker) says the
    trial's worker went silent; the trial is failed and its parameters run again."""
    from arbkit.tune import study as study_mod

    monkeypatch.setattr(study_mod, "HEARTBEAT_S", 1)
    monkeypatch.setattr(study_mod, "GRACE_S", 2)
    name = f"hb{uuid.uuid4().hex[:8]}"
    spec = load_study(study_file(tmp_path, scenario, name=name, trials=3))
    st = storage_for(pg_url)
    s = study_mod.open_study(spec, st)
    orphan = s.ask({"strategy.entry_bps": optuna.distributions.FloatDistribution(0.0, 5.0),
                    "strategy.stop_loss_bps": optuna.distributions.FloatDistribution(4, 30)})
    orphan.set_user_attr("worker", "another-machine:4242")
    s._storage.record_heartbeat(orphan._trial_id)  # its last sign of life
    time.sleep(3)
    study = run_study(spec, st)
    trials = study.get_trials()
    assert len(finished(study)) == 3
    assert next(t for t in trials if t.number == orphan.number).state == TrialState.FAIL
    from arbkit.tune import trials_frame as tf

    retried = tf(study).filter(pl.col("retry_of") == orphan.number)
    assert retried.height == 1
    r = next(t for t in trials if t.number == retried["number"][0])
    assert r.params == orphan.params and r.state == TrialState.COMPLETE
    with st.store() as store:
        store.delete_study(name)
    optuna.delete_study(study_name=name, storage=st.optuna())


def test_a_preset_works_after_its_project_is_moved_and_names_its_objectives(
        tmp_path: Path, scenario: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A preset stores its study file and data relative to the project (not /home/me/...):
    the project cloned or moved elsewhere still reproduces the trial, from its root or from
    any other folder; the study names its metrics (optuna-dashboard shows net_pnl, not
    "Objective 0")."""
    import shutil

    proj = tmp_path / "proj"
    (proj / "data").mkdir(parents=True)
    (proj / "studies").mkdir()
    for f in ("quotes.parquet", "config.toml"):
        shutil.copy(scenario / f, proj / "data" / f)
    study_file(proj / "studies", proj / "data", name="moved", trials=2)
    (proj / "studies" / "moved.toml").write_text(
        (proj / "studies" / "moved.toml").read_text().replace(str(proj / "data"), "data"))
    monkeypatch.chdir(proj)
    st = storage_for(None, Path("results"))
    study = run_study(load_study("studies/moved.toml"), st)
    assert study.metric_names == ["net_pnl"]
    path = promote("moved", st, "best")
    text = path.read_text()
    assert str(tmp_path) not in text, text[:800]
    meta = load_preset("best").meta
    assert (meta["study_file"], meta["data"]) == ("studies/moved.toml", "data/quotes.parquet")

    shutil.move(proj, tmp_path / "elsewhere")  # cloned or moved: the old path is gone
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert run_preset(load_preset("best"))[2] == []
    monkeypatch.chdir(tmp_path)  # and from outside the project, by the preset's path
    assert run_preset(load_preset(tmp_path / "elsewhere" / "presets" / "best.toml"))[2] == []


def test_a_postgresql_study_names_its_objectives(tmp_path: Path, scenario: Path,
                                                 pg_url: str) -> None:
    from arbkit.tune import study as study_mod

    name = f"mn{uuid.uuid4().hex[:8]}"
    p = study_file(tmp_path, scenario, name=name, trials=1)
    p.write_text(p.read_text().replace(
        'objectives = ["net_pnl"]\ndirections = ["maximize"]',
        'objectives = ["net_pnl", "max_drawdown"]\ndirections = ["maximize", "minimize"]'))
    st = storage_for(pg_url)
    try:
        study_mod.open_study(load_study(p), st)
        again = optuna.load_study(study_name=name, storage=st.optuna())
        assert again.metric_names == ["net_pnl", "max_drawdown"]
    finally:
        optuna.delete_study(study_name=name, storage=st.optuna())


def _run_hint(cmd: str, **subs: str) -> Ran:
    """Run a printed ``arbkit ...`` hint as the user would copy it (placeholders filled)."""
    import shlex

    for k, v in subs.items():
        cmd = cmd.replace(k, v)
    args = shlex.split(cmd)
    assert args[0] == "arbkit", cmd
    return cli(*args[1:])


def _next_hints(out: str) -> list[str]:
    line = next(ln for ln in out.splitlines() if ln.startswith("next: "))
    return [h.strip() for h in line[len("next: "):].split("|")]


def test_printed_hints_carry_the_storage_and_a_resumed_report_states_its_budget(
        tmp_path: Path, scenario: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """`next: arbkit report <study> ...` after `tune --storage postgresql://...` names the same
    database (without it, the report would read the local journal); copied as printed, the
    report, promote and preset commands work; a study resumed with --trials 3 reports a budget
    of 3 next to its 3 trials, not the study file's 2."""
    from urllib.parse import urlsplit, urlunsplit

    from arbkit.tune import delete_study

    u = urlsplit(pg_url)
    monkeypatch.setenv("PGPASSWORD", u.password or "")
    monkeypatch.delenv("ARBKIT_STORAGE", raising=False)
    url = urlunsplit(u._replace(netloc=f"{u.username}@{u.hostname}:{u.port}"))
    name = f"hint{uuid.uuid4().hex[:8]}"
    monkeypatch.chdir(tmp_path)
    p = study_file(tmp_path, scenario, name=name, trials=2)
    try:
        r = cli("tune", p, "--storage", url)
        assert r.code == 0, r.err[-2000:]
        report, promote_ = _next_hints(r.out)
        assert report == f"arbkit report {name} --storage {url}"
        r = cli("tune", p, "--storage", url, "--trials", "3")  # resumed, a larger budget
        assert r.code == 0 and "resuming: 2/3" in r.err, r.err[-2000:]
        r = _run_hint(report)
        assert r.code == 0, r.err
        html = (tmp_path / "reports" / f"{name}.html").read_text()
        assert "3 in all: COMPLETE 3" in html and "budget of its latest run: 3 " in html
        r = _run_hint(promote_, **{"<preset>": "best"})
        assert r.code == 0, r.err
        again = r.out.split("reproduce it with: ")[1].strip()
        r = _run_hint(again)
        assert r.code == 0 and "bit for bit" in r.err, r.err
    finally:
        delete_study(name, storage_for(pg_url))
    # a password in the URL is never printed: *** and a line saying what it stands for
    r = cli("tune", p, "--storage", pg_url, "--trials", "1", "--fresh")
    try:
        assert r.code == 0, r.err[-2000:]
        assert f":{u.password}@" not in r.out + r.err
        assert f"--storage '{u.scheme}://{u.username}:***@" in _next_hints(r.out)[0]
        assert "*** stands for the password" in r.out
    finally:
        delete_study(name, storage_for(pg_url))


def test_hints_after_a_tune_in_another_results_folder_name_it(tmp_path: Path, scenario: Path,
                                                              monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ARBKIT_STORAGE", raising=False)
    p = study_file(tmp_path, scenario, name="elsewhere", trials=1)
    r = cli("tune", p, "--results", "runs/a b")
    assert r.code == 0, r.err[-2000:]
    report, promote_ = _next_hints(r.out)
    assert report == "arbkit report elsewhere --results 'runs/a b'"
    assert _run_hint(report).code == 0
    r = _run_hint(promote_ + " --presets kept", **{"<preset>": "p1"})
    assert r.code == 0, r.err
    again = r.out.split("reproduce it with: ")[1].strip()
    assert again == "arbkit backtest --preset kept/p1.toml"
    r = _run_hint(again)
    assert r.code == 0 and "bit for bit" in r.err, r.err


def test_the_live_table_formats_each_column_one_way(tmp_path: Path, scenario: Path) -> None:
    """win %, net PnL, max DD and objective with two decimals (75.00 beside 75.25, never 75),
    trades as whole numbers."""
    from rich.console import Console

    from arbkit.cli.tune import ProgressView

    view = ProgressView(load_study(study_file(tmp_path, scenario, trials=3)))
    for n, (win, pnl) in enumerate([(0.75, 12.0), (0.7525, -3.5), (1.0, 0.0)]):
        view.add({"number": n, "state": "COMPLETE", "values": [pnl], "trades": 4.0,
                  "win_rate": win, "net_pnl": pnl, "max_drawdown": 2.0, "reason": ""})
    con = Console(record=True, width=200)
    con.print(view.table())
    rows = [ln for ln in con.export_text().splitlines() if "COMPLETE" in ln]
    cells = [[c.strip() for c in ln.split("│")[1:-1]] for ln in rows]
    assert [c[2:] for c in cells] == [["4", "75.00", "12.00", "2.00", "12.00"],
                                      ["4", "75.25", "-3.50", "2.00", "-3.50"],
                                      ["4", "100.00", "0.00", "2.00", "0.00"]]


def test_a_dead_workers_pid_given_to_another_process_is_not_taken_for_the_worker() -> None:
    """pids wrap (32768 here): a RUNNING trial's worker is matched by pid and start time."""
    import os

    from arbkit.tune.study import _parse_worker, _pid_alive, worker_id

    me = worker_id()
    host, pid, started = _parse_worker(me)
    assert pid == str(os.getpid()) and started.isdigit() and me == f"{host}:{pid}:{started}"
    assert _pid_alive(int(pid), started)
    assert not _pid_alive(int(pid), str(int(started) + 1))  # same pid, another process
    assert _pid_alive(int(pid))  # written by an older arbkit (host:pid): the pid alone
    assert _parse_worker("box:123") == ("box", "123", "")
    assert _parse_worker("box:123:") == ("box", "123", "")
