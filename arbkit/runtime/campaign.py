"""The standard verification runs of paper trading (``arbkit campaign NAME``).

Each campaign is a paper session against local exchange emulators (one per venue, the real
ccxt client reading them), accelerated, followed by the checks a user needs before trusting a
session: entries and exits happened (zero of either is ❌, never a pass), the recording
replays to the session's fills bit for bit, the account identity holds, feeds stayed healthy.
It writes a markdown and an HTML report.

The data: seeded synthetic two-venue L1 books (``arbkit.data.universe``: realistic spreads,
sizes and premium episodes; the shipped real captures are minutes long, too short for a 1 h
or 6 h session), thinned to ~10 book updates per second per instrument, which the emulator
and ccxt sustain at the campaign's speed on this machine.
"""

from __future__ import annotations

import asyncio
import html
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from arbkit.errors import ConfigError

EVENTS_PER_S = 40.0  # synth.generate: book updates per second, both venues of a symbol
THIN = 1  # keep one update in THIN per instrument


@dataclass(frozen=True)
class Campaign:
    name: str
    spec: dict[str, str]  # base asset -> synthetic scenario
    hours: float
    speed: float
    about: str


CAMPAIGNS = {
    "btc-1h": Campaign("btc-1h", {"BTC": "normal"}, 1.0, 60.0,
                       "1 simulated hour, BTC on two venues"),
    "btc-eth-1h": Campaign("btc-eth-1h", {"BTC": "normal", "ETH": "always-win"}, 1.0, 60.0,
                           "1 simulated hour, BTC and ETH on two venues"),
    "multi-6h": Campaign("multi-6h", {"BTC": "normal", "ETH": "always-win",
                                      "SOL": "flash-crash", "XRP": "outage"}, 6.0, 90.0,
                         "6 simulated hours, four symbols on two venues (a flash crash on "
                         "SOL, a venue outage on XRP)"),
}


@dataclass
class CampaignResult:
    name: str
    report_md: Path
    report_html: Path
    checks: list[tuple[str, str, str]]  # (check, ✅/⚠️/❌, detail)
    figures: dict[str, Any]

    @property
    def passed(self) -> bool:
        return all(mark != "❌" for _, mark, _ in self.checks)


def campaign_data(c: Campaign, out: Path, minutes: float | None = None) -> tuple[Path, Any]:
    """Write the campaign's quotes (Parquet) and return (path, config)."""
    from arbkit.data.universe import generate_universe

    hours = c.hours if minutes is None else minutes / 60.0
    n = int(hours * 3600 * EVENTS_PER_S)
    df, cfg = generate_universe(c.spec, n_events=n, depth=1)
    df = (df.with_columns(pl.int_range(pl.len()).over("venue", "symbol").alias("_k"))
          .filter(pl.col("_k") % THIN == 0).drop("_k").drop("ts_exch_ns"))
    out.mkdir(parents=True, exist_ok=True)
    path = out / "quotes.parquet"
    tmp = out / ".quotes.parquet.tmp"
    df.write_parquet(tmp)
    tmp.replace(path)
    return path, cfg


def run_campaign(name: str, *, redis_url: str, results: str, out: Path,
                 minutes: float | None = None, speed: float | None = None) -> CampaignResult:
    """Run campaign ``name`` (``minutes`` of data instead of its hours: a short version)."""
    if name not in CAMPAIGNS:
        raise ConfigError(f"campaign {name!r}: unknown; one of {', '.join(CAMPAIGNS)}")
    c = CAMPAIGNS[name]
    from arbkit.engine.backtest import prepare, run_prepared
    from arbkit.runtime.emulated import EmulatedSource
    from arbkit.runtime.node import NodeOptions, PaperNode
    from arbkit.store import open_store
    from arbkit.store.redis import SessionStore
    from arbkit.venues.emulator.multi import run_venues

    out = Path(out)
    data, cfg = campaign_data(c, out / "data", minutes)
    quotes = pl.read_parquet(data)
    span_s = (quotes["ts_recv_ns"].max() - quotes["ts_recv_ns"].min()) / 1e9
    spd = speed or c.speed
    session = f"campaign-{name}-{int(time.time())}"
    store = SessionStore(redis_url, session)
    rstore = open_store(**({"url": results} if "://" in results else {"path": results}))
    rec = out / "recordings" / session
    t0 = time.monotonic()
    with run_venues(data, cfg, speed=spd) as venues:
        end_ns = int(quotes["ts_recv_ns"].max())

        node = PaperNode(cfg, store=store, results=rstore, record_dir=rec,
                         clock=venues.clock.now_ns,
                         source_factory=lambda q, skip: EmulatedSource(venues, q, end_ns=end_ns),
                         options=NodeOptions(session=session, checkpoint_s=5.0),
                         extra_meta={"campaign": name})
        report = asyncio.run(node.run())
        node.finish()
        report = node.report()
    wall = time.monotonic() - t0
    replay = run_prepared(cfg, prepare(rec, cfg))
    got = {k: rstore.frame(k, report.run_id) for k in ("trades", "fills", "equity")}
    rstore.close()
    parity = all(getattr(replay, k).select(got[k].columns).equals(got[k]) for k in got)
    store.clean(force=True)
    return _report(c, out, report, replay, parity, span_s, spd, wall)


def _report(c: Campaign, out: Path, report: Any, res: Any, parity: bool, span_s: float,
            speed: float, wall: float) -> CampaignResult:
    m = {r["metric"]: r["value"] for r in res.summary.iter_rows(named=True)}
    closed = res.trades.filter(pl.col("is_open") == 0)
    reasons = (closed.group_by("exit_reason_text").len().sort("exit_reason_text")
               .iter_rows() if closed.height else [])
    lat = report.decide_us
    p50 = float(np.percentile(lat, 50)) if lat else math.nan
    p99 = float(np.percentile(lat, 99)) if lat else math.nan
    feeds = report.feed_stats
    reconnects = sum(int(v.get("reconnects", 0)) for v in feeds.values())
    errors = sum(len(v.get("errors", [])) for v in feeds.values())
    checks = [
        ("entries", "✅" if m["entries"] > 0 else "❌", f"{m['entries']:.0f}"),
        ("exits (closed round trips)", "✅" if m["trades"] > 0 else "❌", f"{m['trades']:.0f}"),
        ("replay parity: the recording's backtest = the session's trades, fills, equity",
         "✅" if parity else "❌", "bit for bit" if parity else "DIFFERENT"),
        ("account identity (trades + open marks + treasury + funding + transfers)",
         "✅" if m["identity_gap_rel"] <= 1e-9 else "❌", f"gap {m['identity_gap']:.2e}"),
        ("tick → decision p99 ≤ 200 µs (kernel call per batch, per event)",
         "✅" if p99 <= 200 else "⚠️", f"p50 {p50:.1f} µs, p99 {p99:.1f} µs"),
        ("feeds: reconnects / errors", "✅" if errors == 0 else "⚠️",
         f"{reconnects} / {errors}"),
    ]
    too_good = [n for n in res.meta.get("notes", []) if n.startswith("CHECK:")]
    if too_good:
        checks.append(("results that look too good or too bad", "⚠️", "; ".join(too_good)))
    figures = {k: m[k] for k in ("trades", "entries", "win_rate", "avg_r", "expectancy",
                                 "net_pnl", "fees", "slippage", "max_drawdown",
                                 "guard_events", "legging_incidents")}
    figures.update(events=report.events, quotes=report.quotes, data_span_s=span_s,
                   speed=speed, wall_s=wall, decide_us_p50=p50, decide_us_p99=p99,
                   reconnects=reconnects, checkpoints=report.checkpoints)
    per_route = res.routes.select("route", "trades", "wins", "net_pnl", "fees")
    lines = [f"# Campaign {c.name}", "", f"{c.about}; {span_s / 3600:.2f} h of data replayed at "
             f"×{speed:g} in {wall:.0f} s wall through one emulator per venue and the real "
             "ccxt client (loopback only).", "", "| check | | |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {d} |" for a, b, d in checks]
    lines += ["", "| figure | value |", "|---|---:|"]
    lines += [f"| {k} | {_fmt(v)} |" for k, v in figures.items()]
    lines += ["", "Exit reasons: " + (", ".join(f"{r} {n}" for r, n in reasons) or "none"),
              "", "| route | trades | wins | net PnL | fees |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {r['route']} | {r['trades']} | {r['wins']} | {r['net_pnl']:,.4f} | "
              f"{r['fees']:,.4f} |" for r in per_route.iter_rows(named=True)]
    md = "\n".join(lines) + "\n"
    out.mkdir(parents=True, exist_ok=True)
    p_md, p_html = out / f"campaign-{c.name}.md", out / f"campaign-{c.name}.html"
    p_md.write_text(md)
    p_html.write_text("<!doctype html><meta charset=utf-8><title>campaign "
                      f"{html.escape(c.name)}</title><pre>{html.escape(md)}</pre>")
    (out / f"campaign-{c.name}.json").write_text(json.dumps(
        {"checks": checks, "figures": figures}, default=str, indent=1))
    return CampaignResult(c.name, p_md, p_html, checks, figures)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "n/a" if math.isnan(v) else f"{v:,.4f}" if abs(v) < 1000 else f"{v:,.1f}"
    return f"{v:,}" if isinstance(v, int) else str(v)
