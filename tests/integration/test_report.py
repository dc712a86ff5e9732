"""The study report (arbkit/report) on a real study: a seeded Optuna search whose trials are
real backtests (arbkit.report.demo), rendered to one HTML file and checked in headless Chromium.

Chromium comes from `bash scripts/chromium.sh`. Outside CI a missing browser skips the render
test; under CI=true it fails.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import math
import os
import re
import tempfile
from pathlib import Path

import matplotlib.image
import numpy as np
import polars as pl
import pytest

import arbkit
from arbkit.data.universe import generate_universe
from arbkit.errors import DataError
from arbkit.report import SECTION_IDS, StudyReport, render, write_report
from arbkit.report.browser import dump_dom, find_chromium, screenshot
from arbkit.report.demo import demo_study, trial_config
from arbkit.report.markup import fmt
from arbkit.report.stats import deflated_sharpe, trade_returns

CREATED = "2024-06-01T00:00:00Z"
IMG = re.compile(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


@pytest.fixture(scope="module")
def rep() -> StudyReport:
    study = demo_study(n_trials=8, n_events=20_000)
    study.meta["created"] = CREATED
    return study


@pytest.fixture(scope="module")
def page(rep: StudyReport) -> str:
    return render(rep)


def sections(text: str) -> dict[str, str]:
    """section id → its HTML."""
    return dict(re.findall(r'<section id="([^"]+)">(.*?)</section>', text, re.S))


def bare_report() -> StudyReport:
    """One COMPLETE trial that never trades, the other states, no split, no importance."""
    df, cfg = generate_universe({"BTC": "flat"}, n_events=4_000, depth=1)
    res = arbkit.backtest(df, trial_config(cfg, {"entry_bps": 400.0}))  # above every edge
    trials = pl.DataFrame({
        "number": [0, 1, 2, 3], "state": ["COMPLETE", "FAIL", "PRUNED", "RUNNING"],
        "value_net_pnl": [res.metric("net_pnl"), None, None, None],
        "p_entry_bps": [400.0, 0.1, 3.0, 2.0],
        "m_trades": [res.metric("trades"), None, None, None],
        "m_net_pnl": [res.metric("net_pnl"), None, None, None],
    })
    return StudyReport(study="bare", objectives=["net_pnl"], directions=["maximize"],
                       trials=trials, best_number=0, best=res, meta={"created": CREATED})


# ----------------------------------------------------------------------------- content


def test_every_section_is_present_once_with_a_heading(page: str) -> None:
    found = sections(page)
    assert list(found) == list(SECTION_IDS)
    for sid, body in found.items():
        assert "<h2>" in body, sid
        assert page.count(f'id="{sid}"') == 1


def test_page_is_self_contained(page: str) -> None:
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:|//)""", page, re.I)
    assert "http://" not in page and "https://" not in page
    for banned in ("<script", "<link", "@import", "url(", "<iframe"):
        assert banned not in page.lower()
    hrefs = re.findall(r'href="([^"]*)"', page)
    assert hrefs and all(h.startswith("#") for h in hrefs)


def test_figures_are_inline_pngs_that_decode(page: str) -> None:
    pngs = IMG.findall(page)
    # importance, parallel, slices, train vs test, trial Sharpes, equity, exit reasons, trades
    assert len(pngs) == 8
    assert len(re.findall(r"<img ", page)) == len(pngs)
    for b64 in pngs:
        arr = matplotlib.image.imread(io.BytesIO(base64.b64decode(b64)), format="png")
        assert arr.ndim == 3 and arr.shape[0] > 50 and float(arr.std()) > 0


def test_best_trials_table_ranks_complete_trials_by_the_objective(rep: StudyReport,
                                                                  page: str) -> None:
    body = sections(page)["best-trials"]
    done = rep.trials.filter(pl.col("state") == "COMPLETE").sort(
        "value_net_pnl", descending=True)
    rows = re.findall(r"<tr(?: class=\"best\")?><td>(\d+)</td><td>(\d+)</td>", body)
    assert [int(n) for _, n in rows] == done.get_column("number").head(10).to_list()
    assert f'<tr class="best"><td>1</td><td>{rep.best_number}</td>' in body


def test_multiple_testing_states_n_and_the_deflated_sharpe(rep: StudyReport, page: str) -> None:
    body = sections(page)["multiple-testing"]
    done = rep.trials.filter(pl.col("state") == "COMPLETE")
    n = rep.trials.filter(pl.col("state").is_in(["COMPLETE", "PRUNED"])).height
    d = deflated_sharpe(trade_returns(rep.best.trades),
                        done.get_column("m_trade_sharpe").to_numpy(), n_trials=n)
    assert math.isfinite(d.dsr) and 0.0 <= d.dsr <= 1.0
    assert f"<th>trials evaluated (N)</th><td>{n}</td>" in body
    assert f"<th>Deflated Sharpe Ratio</th><td>{fmt(d.dsr)}</td>" in body
    assert f"<th>Probabilistic Sharpe Ratio vs 0</th><td>{fmt(d.psr0)}</td>" in body
    assert "per round trip" in body  # < 30 days of data: the per-trade basis


def test_daily_sharpe_basis_when_the_best_spans_30_days(rep: StudyReport) -> None:
    # The synthetic data spans minutes; a real study spans months. The best trial's equity is
    # replaced by a seeded 60-day curve (one sample a day) to exercise the daily basis.
    rng = np.random.default_rng(11)
    capital = rep.best.config.run.capital
    day_ns = 86_400_000_000_000
    ts = 1_704_067_200_000_000_000 + np.arange(60, dtype=np.int64) * day_ns + day_ns // 2
    eq = capital * np.cumprod(1 + rng.normal(0.001, 0.004, 60))
    best = dataclasses.replace(rep.best, equity=pl.DataFrame({"ts": ts, "equity": eq}))
    sharpes = rng.normal(0.5, 1.0, rep.trials.height)  # annualised, as m_sharpe is
    study = dataclasses.replace(rep, best=best, trials=rep.trials.with_columns(
        pl.Series("m_sharpe", sharpes)))
    body = sections(render(study))["multiple-testing"]
    done = study.trials.filter(pl.col("state") == "COMPLETE")
    n = study.trials.filter(pl.col("state").is_in(["COMPLETE", "PRUNED"])).height
    d = deflated_sharpe(eq / np.concatenate([[capital], eq[:-1]]) - 1,
                        done.get_column("m_sharpe").to_numpy() / math.sqrt(365), n_trials=n)
    assert "per day returns" in body
    assert "<th>returns of the best (T)</th><td>60</td>" in body
    assert f"<th>Deflated Sharpe Ratio</th><td>{fmt(d.dsr)}</td>" in body


def test_train_test_section_compares_windows(rep: StudyReport, page: str) -> None:
    body = sections(page)["train-test"]
    assert "Spearman rank correlation" in body and "Best trial on both windows" in body
    assert f"<td>net_pnl</td><td>{fmt(rep.best.metric('net_pnl'))}</td>" in body
    assert f"<td>{fmt(rep.best_test.metric('net_pnl'))}</td>" in body


def test_best_trial_sections_use_its_frames(rep: StudyReport, page: str) -> None:
    s = sections(page)
    closed = rep.best.trades.filter(pl.col("is_open") == 0)
    assert f"<td>closed round trips</td><td>{closed.height}</td>" in s["trade-distribution"]
    for reason, count in rep.best.trades.group_by("exit_reason_text").len().iter_rows():
        assert f"<td>{reason}</td><td>{count}</td>" in s["exit-reasons"]
    total = fmt(float(rep.best.symbols.get_column("net_pnl").sum()))
    assert f"<td>{total}</td>" in s["symbols"] and "<td>all</td>" in s["symbols"]
    for base in rep.best.symbols.get_column("base").to_list():
        assert f"<td>{base}</td>" in s["symbols"]


def test_two_objectives_mark_the_pareto_front(rep: StudyReport) -> None:
    two = dataclasses.replace(
        rep, objectives=["net_pnl", "max_drawdown"], directions=["maximize", "minimize"],
        trials=rep.trials.with_columns(pl.col("m_max_drawdown").alias("value_max_drawdown")))
    body = sections(render(two))["best-trials"]
    assert "Pareto front" in body and "<td>yes</td>" in body


# ----------------------------------------------------------------------------- edge cases


def test_missing_parts_are_explained_not_dropped() -> None:
    s = sections(render(bare_report()))
    assert list(s) == list(SECTION_IDS)
    assert "COMPLETE 1 · PRUNED 1 · FAIL 1 · RUNNING 1" in s["summary"]
    assert "Not computed" in s["importance"]
    assert "Not drawn: 1 COMPLETE trial(s)" in s["parallel"]
    assert "No train/test split" in s["train-test"]
    assert "Deflated Sharpe not computed" in s["multiple-testing"]
    assert "made no round trip" in s["exit-reasons"]
    assert "closed no round trip" in s["trade-distribution"]
    assert "<img " in s["equity"]  # equity is sampled even without trades


def test_strings_are_escaped_and_passwords_hidden(rep: StudyReport) -> None:
    evil = "<script>alert('x')</script> & \"q\""
    bad = dataclasses.replace(
        rep, study=evil,
        trials=rep.trials.with_columns(pl.lit("<b>bold</b>").alias("p_note")),
        meta={**rep.meta, "storage": "postgresql://arbkit:s3cret@127.0.0.1:5432/studies",
              "label": evil})
    text = render(bad)
    assert "<script" not in text and "<b>bold" not in text
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &quot;q&quot;" in text
    assert "&lt;b&gt;bold&lt;/b&gt;" in text
    assert "s3cret" not in text and "postgresql://arbkit:***@127.0.0.1:5432/studies" in text


def test_a_best_trial_that_does_not_reproduce_is_flagged(rep: StudyReport, page: str) -> None:
    trials = rep.trials.with_columns(
        pl.when(pl.col("number") == rep.best_number).then(pl.col("value_net_pnl") + 1.0)
        .otherwise(pl.col("value_net_pnl")).alias("value_net_pnl"))
    text = sections(render(dataclasses.replace(rep, trials=trials)))["summary"]
    assert "NOT REPRODUCED" in text
    assert "NOT REPRODUCED" not in sections(page)["summary"]


@pytest.mark.parametrize("change, message", [
    ({"directions": ["maximize", "minimize"]}, "direction(s)"),
    ({"directions": ["up"]}, "use 'maximize' or 'minimize'"),
    ({"objectives": ["sharpe"]}, "value_sharpe"),
])
def test_bad_input_raises_a_data_error(rep: StudyReport, change: dict, message: str) -> None:
    with pytest.raises(DataError, match=re.escape(message)):
        render(dataclasses.replace(rep, **change))


# ----------------------------------------------------------------------------- writing


def test_write_is_atomic_deterministic_and_small(rep: StudyReport, page: str,
                                                 tmp_path: Path) -> None:
    out = write_report(rep, tmp_path / "new" / "study.html")
    assert out.read_text(encoding="utf-8") == page  # a second render: the same bytes
    assert out.stat().st_size < 2_000_000
    out.write_text("old report", encoding="utf-8")
    write_report(rep, out)  # replaces an existing file
    assert out.read_text(encoding="utf-8") == page
    assert [p.name for p in out.parent.iterdir()] == ["study.html"]  # no temporary left


def test_write_fills_in_the_creation_time(tmp_path: Path) -> None:
    bare = bare_report()
    undated = dataclasses.replace(bare, meta={})
    text = write_report(undated, tmp_path / "bare.html").read_text(encoding="utf-8")
    assert undated.meta == {}  # the caller's report is left alone
    assert re.search(r"created \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", text)


# ----------------------------------------------------------------------------- browser


def _need_chromium() -> None:
    if find_chromium() is not None:
        return
    msg = "chromium not installed: run `bash scripts/chromium.sh` (apt-get, needs root)"
    if os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}:
        pytest.fail(msg, pytrace=False)
    pytest.skip(msg)


def test_report_renders_in_headless_chromium(page: str, tmp_path: Path) -> None:
    _need_chromium()
    html = tmp_path / "study.html"
    html.write_text(page, encoding="utf-8")
    png = tmp_path / "shot.png"
    took = screenshot(html, png, 1280, 4000, timeout_s=60)
    assert took < 60
    img = matplotlib.image.imread(png)
    assert img.shape[:2] == (4000, 1280)
    assert float(img[..., :3].var()) > 0
    assert float((img[..., :3] < 0.9).any(axis=2).mean()) > 0.02  # not a blank white page
    dom = dump_dom(html, timeout_s=60)
    for sid in SECTION_IDS:
        assert re.search(rf'<section id="{sid}">\s*<h2>', dom), sid
    assert len(re.findall(r'<img src="data:image/png;base64,', dom)) == len(IMG.findall(page))


def _chromium_commands() -> list[tuple[str, str]]:
    """(file, line) of every Chromium command line in the docs, README and scripts."""
    root = Path(__file__).resolve().parents[2]
    files = [root / "README.md", *(root / "docs").rglob("*.md"), *(root / "scripts").glob("*"),
             *(root / "deploy").rglob("*"), *(root / "notebooks").glob("*.ipynb")]
    run = re.compile(r"(^|[\s`\"'(])(/usr/bin/)?chromium(-browser)?\s+--")
    return [(str(f.relative_to(root)), ln) for f in files if f.is_file()
            for ln in f.read_text(encoding="utf-8", errors="replace").splitlines()
            if run.search(ln)]


def test_every_chromium_command_in_docs_and_scripts_passes_no_sandbox() -> None:
    """As root (containers, CI) headless Chromium does not start without --no-sandbox."""
    from arbkit.report.browser import FLAGS

    assert "--no-sandbox" in FLAGS
    found = _chromium_commands()
    assert len(found) >= 3, found  # docs/tuning.md, docs/operations.md, scripts/chromium.sh
    for where, line in found:
        assert "--no-sandbox" in line, (where, line)


def test_the_documented_headless_command_works_as_printed(page: str, tmp_path: Path) -> None:
    import shlex
    import subprocess

    _need_chromium()
    line = next(ln for f, ln in _chromium_commands() if f == "docs/tuning.md")
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "s.html").write_text(page, encoding="utf-8")
    args = shlex.split(line.replace("<study>", "s"))
    with tempfile.TemporaryDirectory(prefix="arbkit-chromium-") as profile:
        p = subprocess.run([*args, f"--user-data-dir={profile}"], cwd=tmp_path, timeout=120,
                           capture_output=True, text=True)
    assert p.returncode == 0, p.stderr[-2000:]
    assert (tmp_path / "report.png").stat().st_size > 10_000
