"""The live session's crash suite: kill -9 at seeded points, restart, prove nothing was lost.

One run (``python -m arbkit.runtime.crashsuite --points 200``, or ``run_suite``):

1. a market of ``routes`` always-win routes on two Binance-protocol spot venues (synthetic,
   seeded; each route enters about once a minute of data) and its config;
2. a private ``redis-server`` with ``appendfsync always``; ``arbkit emulator venues`` in its
   own process (so the venue outlives every session process), with a share of the order
   requests meeting an unclear outcome (answer lost after the order was booked, -1007 booked
   or not, 5xx booked or not);
3. ``points`` times: ``arbkit live --venues ... [--resume]`` as a fresh process with
   ``ARBKIT_KILL_AT=step:n`` (``runtime.faultpoints``: every journal step of the node and the
   execution client, including between "intent durable" and "order sent" and inside the
   status-unknown path); it kills itself with SIGKILL there (or the suite kills it after
   ``max_life_s``); the next start resumes the session;
4. a last start without a kill: ``arbkit ctl stop`` (reduce only), open positions exit, the
   process ends normally; then the venue is read back with the ccxt client.

Figures: duplicate orders at the venue (a kernel order number with more than one venue
order), lost fills (a venue trade the session's fills do not hold, per order), positions
(per venue and base asset: venue balance change vs the session's fills, in lots), restarts
that refused to trade, and the time from process start to ready (reconciled) per restart.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
BASES = ("BTC", "ETH", "SOL", "XRP", "ADA", "DOGE", "LTC", "DOT", "LINK", "AVAX",
         "BNB", "TRX", "ATOM", "NEAR", "UNI", "FIL")
VENUES = ("binance_a", "binance_b")
SESSION = "crash"
# (step, weight, largest n): where a process dies (runtime/faultpoints.py)
STEPS = (("exec.durable", 6, 4), ("exec.answered", 5, 4), ("exec.reported", 5, 6),
         ("exec.final", 3, 4), ("exec.unknown", 4, 2), ("exec.lookup", 4, 2),
         ("node.flushed", 4, 3), ("node.submitted", 4, 6), ("node.report", 5, 8),
         ("node.checkpoint", 2, 2), ("node.ready", 1, 1))
# on top of the order faults: every 40th REST request answered 429, every market websocket
# stalled 1.5 s once after 10 messages and cut after 30, every user-data one after 6 events
STORM = ("--http-429-every", "40", "--drop-ws-after", "30", "--stall-ws-s", "1.5",
         "--drop-user-stream-after", "6")
KEY, SECRET = "crashsuiteKEY5d1e0b7a", "crashsuiteSECRET93c4f2a8e61b"


@dataclass
class SuiteResult:
    points: int = 0
    killed_at: Counter = field(default_factory=Counter)
    external_kills: int = 0
    refused: list[str] = field(default_factory=list)
    ready_s: list[float] = field(default_factory=list)
    quoted_s: list[float] = field(default_factory=list)  # ... and every instrument quoted
    venue_orders: int = 0
    venue_trades: int = 0
    duplicates: int = 0
    lost_fills: int = 0
    phantom_fills: int = 0
    position_diffs: dict[str, float] = field(default_factory=dict)
    unknown_venue_orders: int = 0
    session_fills: int = 0
    session_trades: int = 0
    wall_s: float = 0.0
    venue_faults: list[str] = field(default_factory=list)  # what the emulators did
    mismatches: list[tuple[int, float, float]] = field(default_factory=list)  # oid, venue, ours
    routes: int = 0

    @property
    def ok(self) -> bool:
        return (self.duplicates == 0 and self.lost_fills == 0 and self.phantom_fills == 0
                and not self.refused and self.unknown_venue_orders == 0
                and all(abs(v) < 0.5 for v in self.position_diffs.values())
                and self.venue_trades > 0 and self.points > 0)

    def lines(self) -> list[str]:
        r = np.array(self.ready_s) if self.ready_s else np.array([np.nan])
        q = np.array(self.quoted_s) if self.quoted_s else np.array([np.nan])
        worst = max(self.position_diffs.values(), key=abs, default=0.0)
        return [
            f"crash suite: {self.points} kill -9 points over {self.routes} routes "
            f"({self.external_kills} by the suite after the process outlived its point) "
            f"in {self.wall_s:.0f} s",
            "  killed at: " + ", ".join(f"{k} {v}" for k, v in sorted(self.killed_at.items())),
            *(f"  emulator {ln}" for ln in self.venue_faults),
            f"  venue: {self.venue_orders} orders, {self.venue_trades} trades; session: "
            f"{self.session_fills} fills, {self.session_trades} round trips",
            f"  duplicate orders at the venue: {self.duplicates}",
            f"  lost fills: {self.lost_fills} (phantom fills: {self.phantom_fills}); orders "
            f"unknown to the session at the venue: {self.unknown_venue_orders}",
            f"  positions equal to the venue's: {sum(abs(v) < 0.5 for v in self.position_diffs.values())}"
            f"/{len(self.position_diffs)} (largest difference {worst:.3g} lots)",
            f"  restarts refused by reconciliation: {len(self.refused)}",
            *(f"  order {o}: venue filled {v:g}, the session's fills {s:g}"
              for o, v, s in self.mismatches[:10]),
            f"  ready after a restart (process start -> reconciled, {len(self.ready_s)} starts):"
            f" p50 {np.nanmedian(r):.2f} s, p90 {np.nanpercentile(r, 90):.2f} s, max "
            f"{np.nanmax(r):.2f} s",
            f"  ... and a fresh quote of every instrument ({len(self.quoted_s)} starts): p50 "
            f"{np.nanmedian(q):.2f} s, max {np.nanmax(q):.2f} s",
            f"  verdict: {'PASS' if self.ok else 'FAIL'}",
        ]


# ---- the market --------------------------------------------------------------------------
def make_market(work: Path, routes: int, hours: float, seed: int = 7,
                thin: int = 20) -> tuple[Path, Path]:
    """``routes`` always-win pairs (seeded), every ``thin``-th quote kept, each route's
    episodes offset by a few seconds; returns (quotes.parquet, config.toml)."""
    import polars as pl

    from arbkit.data.synth import RATE_HZ, generate

    if not 1 <= routes <= len(BASES):
        raise ValueError(f"routes={routes}: 1..{len(BASES)}")
    n = int(hours * 3600 * sum(RATE_HZ))
    frames = []
    for i, base in enumerate(BASES[:routes]):
        df, _ = generate("always-win", seed=seed + i, n_events=n, depth=5)
        df = df.with_row_index("_r").filter(pl.col("_r") % thin == 0).drop("_r")
        shift = i * 5_000_000_000
        frames.append(df.with_columns(
            pl.col("ts_recv_ns") + shift, pl.col("ts_exch_ns") + shift,
            pl.col("venue").replace({"A": VENUES[0], "B": VENUES[1]}),
            pl.lit(f"{base}-USDT").alias("symbol")))
    quotes = pl.concat(frames).sort("ts_recv_ns", "venue", "symbol")
    work.mkdir(parents=True, exist_ok=True)
    qpath, cpath = work / "quotes.parquet", work / "config.toml"
    quotes.write_parquet(qpath)
    cpath.write_text(_config_text(routes))
    return qpath, cpath


def _config_text(routes: int) -> str:
    head = (ROOT / "studies/live_rehearsal.toml").read_text()
    run = head[head.index("[run]"):head.index("[[instruments]]")]
    inst = head[head.index("[[instruments]]"):head.index("[[instruments]]", head.index(
        "[[instruments]]") + 1)]
    strategy = head[head.index("[strategy]"):]
    strategy = (strategy.replace("notional = 10000.0", "notional = 2000.0")
                .replace("max_quote_age_ms = 2000.0", "max_quote_age_ms = 5000.0"))
    out = [f"# crash suite: {routes} always-win routes on two Binance-protocol spot venues\n",
           run]
    for base in BASES[:routes]:
        for v, lat in zip(VENUES, ("5.0", "8.0"), strict=True):
            out.append(inst.replace('venue = "binance_a"', f'venue = "{v}"')
                       .replace('symbol = "BTC-USDT"', f'symbol = "{base}-USDT"')
                       .replace('base = "BTC"', f'base = "{base}"')
                       .replace("order_latency_ms = 5.0", f"order_latency_ms = {lat}")
                       .replace("ack_latency_ms = 5.0", f"ack_latency_ms = {lat}"))
    for base in BASES[:routes]:
        out.append(f'[[routes]]\na = "{VENUES[0]}:{base}-USDT"\nb = "{VENUES[1]}:{base}-USDT"\n'
                   'name = ""\n\n')
    out.append(strategy)
    return "".join(out)


# ---- processes ---------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_redis(work: Path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    (work / "redis").mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                             "--dir", str(work / "redis"), "--appendonly", "yes",
                             "--appendfsync", "always", "--save", ""],
                            stdout=subprocess.DEVNULL)
    import redis

    url = f"redis://127.0.0.1:{port}/0"
    for _ in range(300):
        try:
            redis.Redis.from_url(url).ping()
            return proc, url
        except redis.ConnectionError:
            time.sleep(0.02)
    proc.kill()
    raise RuntimeError("redis-server did not start")


def suite_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARBKIT_KILL")}
    env.update(ARBKIT_BINANCE_KEY=KEY, ARBKIT_BINANCE_SECRET=SECRET,
               PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""), **extra)
    return env


def start_venues(work: Path, quotes: Path, cfg: Path, speed: float, fault_rate: float,
                 seed: int, extra: tuple[str, ...] = ()) -> tuple[subprocess.Popen, Path]:
    vfile = work / "venues.json"
    log = open(work / "venues.log", "w")  # noqa: SIM115 - the process's lifetime
    proc = subprocess.Popen(
        [sys.executable, "-m", "arbkit", "emulator", "venues", "--config", str(cfg),
         "--data", str(quotes), "--out", str(vfile), "--speed", str(speed),
         "--order-fault-rate", str(fault_rate), "--seed", str(seed), *extra],
        cwd=work, env=suite_env(), stdout=log, stderr=subprocess.STDOUT)
    for _ in range(600):
        if vfile.exists():
            return proc, vfile
        if proc.poll() is not None:
            raise RuntimeError(f"emulator venues exited: {(work / 'venues.log').read_text()}")
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("emulator venues did not start in 60 s")


def stop_venues(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    """End an ``arbkit emulator venues`` process (its venues file removed), killed after 20 s."""
    proc.send_signal(sig)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()


def venue_exchange(vfile: Path, cfg: Path, venue: str) -> Any:
    """A ccxt client of ``venue`` in the venues file, with the suite's keys (close it)."""
    from arbkit.config import load_config
    from arbkit.runtime.emulated import RemoteVenues
    from arbkit.venues.execution import make_private_exchange

    remote = RemoteVenues.load(vfile, load_config(cfg))
    return make_private_exchange({"ARBKIT_BINANCE_KEY": KEY, "ARBKIT_BINANCE_SECRET": SECRET},
                                 remote[venue], 10_000)


def start_live(work: Path, cfg: Path, vfile: Path, url: str, resume: bool, kill: str | None,
          duration_s: float | None, log: Path) -> subprocess.Popen:
    args = [sys.executable, "-m", "arbkit", "live", "--config", str(cfg), "--venues",
            str(vfile), "--session", SESSION, "--redis", url, "--results",
            str(work / "results.duckdb"), "--record-dir", str(work / "rec"), "--json",
            "--checkpoint-s", "2"]
    if resume:
        args.append("--resume")
    if duration_s is not None:
        args += ["--duration-s", str(duration_s)]
    extra = {"ARBKIT_KILL_LOG": str(log)}
    if kill:
        extra["ARBKIT_KILL_AT"] = kill
    return subprocess.Popen(args, cwd=work, env=suite_env(**extra), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _read_log(log: Path) -> list[tuple[str, int]]:
    if not log.exists():
        return []
    out = []
    for line in log.read_text().splitlines():
        step, _, ns = line.rpartition(" ")
        if ns.isdigit():
            out.append((step, int(ns)))
    return out


# ---- the suite ---------------------------------------------------------------------------
def run_suite(work: Path, *, points: int = 200, routes: int = 10, seed: int = 7,
              speed: float = 10.0, fault_rate: float = 0.05, max_life_s: float = 12.0,
              final_s: float = 40.0, venue_faults: tuple[str, ...] = (),
              progress: Any = None) -> SuiteResult:
    """The whole suite in ``work`` (module doc); ``progress(text)`` after each point;
    ``venue_faults``: more ``arbkit emulator venues`` fault options (``STORM``)."""
    t_start = time.monotonic()
    res = SuiteResult(routes=routes)
    rng = np.random.Generator(np.random.PCG64(seed))
    # data for every start (about 5 s each) and the final stretch, with room to spare
    hours = max(0.5, (points * 6.0 + final_s + 60) * speed / 3600 * 1.5)
    quotes, cfg = make_market(work, routes, hours, seed)
    rproc, url = start_redis(work)
    vproc, vfile = start_venues(work, quotes, cfg, speed, fault_rate, seed, venue_faults)
    steps = [s for s, _, _ in STEPS]
    weights = np.array([w for _, w, _ in STEPS], float)
    weights /= weights.sum()
    try:
        for k in range(points):
            j = int(rng.choice(len(steps), p=weights))
            target = f"{steps[j]}:{int(rng.integers(1, STEPS[j][2] + 1))}"
            log = work / f"kill-{k:03d}.log"
            t0 = time.monotonic_ns()
            proc = start_live(work, cfg, vfile, url, k > 0, target, None, log)
            try:
                out, err = proc.communicate(timeout=max_life_s)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
                out, err = proc.communicate()
                res.external_kills += 1
            entries = _read_log(log)
            ready = [ns for s, ns in entries if s == "node.ready"]
            if ready:
                res.ready_s.append((ready[0] - t0) / 1e9)
            quoted = [ns for s, ns in entries if s == "node.quoted"]
            if quoted:
                res.quoted_s.append((quoted[0] - t0) / 1e9)
            died = [s for s, _ in entries if s.startswith("kill:")]
            if died:
                res.killed_at[died[0][5:]] += 1
            elif proc.returncode == -signal.SIGKILL:
                res.killed_at["external"] += 1
            elif proc.returncode != 0:
                res.refused.append(f"start {k}: exit {proc.returncode}: "
                                   + (err.strip().splitlines() or ["?"])[-1][:300])
                break
            res.points += 1
            if progress is not None:
                progress(f"point {k + 1}/{points}: {target} -> "
                         f"{died[0][5:] if died else proc.returncode}"
                         + (f", ready {res.ready_s[-1]:.2f} s" if ready else ""))
        if not res.refused:
            final_run(work, cfg, vfile, url, final_s, res)
            check_venue(work, vfile, res)
    finally:
        stop_venues(vproc)
        rproc.terminate()
        rproc.wait(10)
    log = (work / "venues.log").read_text().splitlines()
    res.venue_faults = [ln for ln in log if "order faults:" in ln]
    res.wall_s = time.monotonic() - t_start
    return res


def final_run(work: Path, cfg: Path, vfile: Path, url: str, final_s: float,
           res: SuiteResult) -> None:
    """The last start: reduce only after a few seconds, every open position exits, the
    process ends normally; its report is the session's."""
    log = work / "final.log"
    proc = start_live(work, cfg, vfile, url, True, None, final_s, log)
    time.sleep(min(8.0, final_s / 4))
    subprocess.run([sys.executable, "-m", "arbkit", "ctl", "stop", "--session", SESSION,
                    "--redis", url], env=suite_env(), capture_output=True, timeout=60, check=False)
    out, err = proc.communicate(timeout=final_s + 120)
    if proc.returncode != 0:
        res.refused.append(f"final: exit {proc.returncode}: "
                           + (err.strip().splitlines() or ["?"])[-1][:300])
        return
    report = json.loads(out)
    (work / "final.json").write_text(out)
    res.session_trades = int(report.get("trades") or 0)
    from arbkit.store import open_store

    with open_store(path=work / "results.duckdb") as store:
        fills = store.frame("fills", report["run_id"])
    res.session_fills = fills.height
    (work / "fills.json").write_text(json.dumps({
        "oid": fills["oid"].to_list(), "instrument": fills["instrument"].to_list(),
        "side": fills["side"].to_list(), "qty": fills["qty"].to_list()}))


def check_venue(work: Path, vfile: Path, res: SuiteResult) -> None:
    """Read every venue back with the ccxt client: orders, trades, balances."""
    from arbkit.config import load_config
    cfg = load_config(work / "config.toml")
    fills = json.loads((work / "fills.json").read_text())
    ours: dict[int, float] = defaultdict(float)
    pos: dict[str, float] = defaultdict(float)
    for oid, inst, side, qty in zip(fills["oid"], fills["instrument"], fills["side"],
                                    fills["qty"], strict=True):
        ours[int(oid)] += qty
        venue, sym = inst.split(":")
        pos[f"{venue}:{sym.split('-')[0]}"] += side * qty
    lot = {inst.venue + ":" + inst.base: inst.lot for inst in cfg.instruments}
    initial = {inst.venue + ":" + inst.base: inst.initial_base for inst in cfg.instruments}

    async def read(venue: str) -> tuple[list, list, dict]:
        import ccxt

        ex = venue_exchange(vfile, work / "config.toml", venue)
        try:
            await ex.load_markets()
            orders, trades = [], []
            for inst in cfg.instruments:
                if inst.venue != venue:
                    continue
                sym = f"{inst.base}/{inst.quote}"
                orders += await fetch_all(ex.fetch_orders, sym)
                trades += await fetch_all(ex.fetch_my_trades, sym)
            for _ in range(20):
                try:
                    bal = await ex.fetch_balance()
                    break
                except ccxt.NetworkError:
                    await asyncio.sleep(1.0)
            return orders, trades, bal
        finally:
            await ex.close()

    venue_filled: dict[int, float] = defaultdict(float)
    for venue in VENUES:
        orders, trades, bal = asyncio.run(read(venue))
        res.venue_orders += len(orders)
        res.venue_trades += len(trades)
        by_oid: Counter[int] = Counter()
        vid_oid: dict[str, int] = {}
        for o in orders:
            oid = _oid(o.get("clientOrderId"))
            if oid is None:
                res.unknown_venue_orders += 1
                continue
            by_oid[oid] += 1
            vid_oid[str(o["id"])] = oid
        res.duplicates += sum(n - 1 for n in by_oid.values() if n > 1)
        for t in trades:
            oid = vid_oid.get(str(t.get("order")))
            if oid is None:
                res.unknown_venue_orders += 1
                continue
            venue_filled[oid] += float(t["amount"])
        for key, start in initial.items():
            if not key.startswith(venue + ":"):
                continue
            base = key.split(":")[1]
            have = float((bal.get("total") or {}).get(base) or 0.0) - start
            res.position_diffs[key] = (have - pos.get(key, 0.0)) / lot[key]
    for oid in sorted(set(venue_filled) | set(ours)):
        v, s = venue_filled.get(oid, 0.0), ours.get(oid, 0.0)
        if v > s + 1e-9:
            res.lost_fills += 1
        elif s > v + 1e-9:
            res.phantom_fills += 1
        if abs(v - s) > 1e-9:
            res.mismatches.append((oid, v, s))


async def fetch_all(fetch: Any, symbol: str) -> list:
    """Every row of a Binance list endpoint (pages of 1000 by id; a 429 waited out)."""
    import ccxt

    out: list = []
    params: dict[str, Any] = {}
    while True:
        for _ in range(20):
            try:
                page = await fetch(symbol, None, 1000, params)
                break
            except ccxt.NetworkError:
                await asyncio.sleep(1.0)
        else:
            raise RuntimeError(f"the venue did not answer {fetch.__name__} {symbol}")
        out += page
        if len(page) < 1000:
            return out
        last = max(int(p["id"]) for p in page)
        params = {"fromId": last + 1} if fetch.__name__ == "fetch_my_trades" else {
            "orderId": last + 1}


def _oid(cid: Any) -> int | None:
    parts = str(cid or "").split(".")
    if len(parts) != 3 or not parts[0].startswith("ak") or not parts[1].isdigit():
        return None
    return int(parts[1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=200)
    ap.add_argument("--routes", type=int, default=10)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--speed", type=float, default=10.0)
    ap.add_argument("--fault-rate", type=float, default=0.05)
    ap.add_argument("--storm", action="store_true", help="also 429s, websocket drops and "
                    "stalls (STORM)")
    ap.add_argument("--work", type=Path, default=None, help="kept after the run (default: a "
                    "temporary folder, removed)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    import tempfile

    work = a.work or Path(tempfile.mkdtemp(prefix="arbkit-crash-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        res = run_suite(work, points=a.points, routes=a.routes, seed=a.seed, speed=a.speed,
                        fault_rate=a.fault_rate, venue_faults=STORM if a.storm else (),
                        progress=lambda t: print(t, file=sys.stderr, flush=True))
    finally:
        if a.work is None:
            shutil.rmtree(work, ignore_errors=True)
    print("\n".join(res.lines()))
    if a.json:
        print(json.dumps({k: (dict(v) if isinstance(v, Counter) else v)
                          for k, v in res.__dict__.items()}))
    for line in res.refused:
        print("  refused: " + line)
    return 0 if res.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
