"""Operations end to end, against real servers: a paper session (the PaperNode with real
Redis and DuckDB, fed recorded quotes in two phases) serving /metrics, /health and the
dashboard; a real Prometheus server (Debian's) scraping it and a real ``arbkit paper
--emulator --http`` process, with the alert rules loaded; the page in headless Chromium
(driven over the DevTools protocol): its numbers match ``arbkit status --json``, a click turns
a symbol off and the kernel stops entering on it; ``arbkit ctl`` / ``arbkit reset`` on the
running CLI session; the kill switch firing a Prometheus alert and an arbkit webhook.

Servers: Redis from ``bash scripts/services.sh``, Prometheus from ``bash
scripts/prometheus.sh``, Chromium from ``bash scripts/chromium.sh``; under CI=true a missing
one fails, never skips. ``ARBKIT_UPDATE_SCREENSHOTS=1`` also writes the screenshots of
docs/operations.md into docs/img/.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

from arbkit.core import types as T
from arbkit.data.synth import dump_config
from arbkit.data.universe import generate_universe
from arbkit.monitor.alerts import AlertManager, AlertRules, Webhook
from arbkit.monitor.control import send_control
from arbkit.monitor.session import SessionMonitor
from arbkit.monitor.web import serve_node
from arbkit.venues.normalize import Quote
from tests.cli_harness import cli
from tests.conftest import _server_missing
from tests.integration.test_monitor_alerts import Receiver

pytestmark = pytest.mark.redis
ROOT = Path(__file__).resolve().parents[2]
TAG = uuid.uuid4().hex[:8]
TOKEN = "tok-" + uuid.uuid4().hex
SHOTS = os.environ.get("ARBKIT_UPDATE_SCREENSHOTS") == "1"
N_PER_SYMBOL = 12_000  # quotes per symbol and venue pair: ~300 s of data, ~8 round trips


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what: str, check: Any, timeout_s: float = 30.0, every_s: float = 0.1) -> Any:
    t_end = time.monotonic() + timeout_s
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > t_end:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(every_s)


def http_json(url: str, data: dict | None = None, headers: dict | None = None) -> tuple[int, Any]:
    req = urllib.request.Request(url, data=None if data is None else json.dumps(data).encode(),
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


# ---------------------------------------------------------------------------------- source
class GatedReplay:
    """Recorded quotes in two phases: the first at once, the second after ``release``; then
    quiet until stopped (a session whose numbers hold still while they are compared).
    ``stats()`` has FeedSet's shape per instrument (age from the wall clock)."""

    def __init__(self, queue: asyncio.Queue, arrays: Any, cut: int) -> None:
        ev = arrays.events
        q = ev[ev["kind"] == T.EV_QUOTE]
        self.phases = [q[:cut], q[cut:]]
        self.keys = arrays.inst_keys
        self.queue = queue
        self.release = threading.Event()
        self.sent = 0
        self.last_ns = 0
        self._stop = False
        self.feeds = {k: {"state": "live", "channel": "bbo", "messages": 0, "rest_polls": 0,
                          "last_recv_ns": None, "reconnects": 0, "silences": 0, "gaps": 0,
                          "crossed": 0, "dropped": 0, "stale": 0, "garbage": 0, "recreated": 0,
                          "lag_s": None, "errors": []} for k in self.keys}

    async def run(self) -> None:
        for i, chunk in enumerate(self.phases):
            while i == 1 and not self.release.is_set() and not self._stop:
                await asyncio.sleep(0.02)
            for k in range(chunk.shape[0]):
                if self._stop:
                    return
                if k % 512 == 0:
                    await asyncio.sleep(0)
                e = chunk[k]
                key = self.keys[int(e["inst"])]
                self.queue.put_nowait(Quote(key, int(e["ts_recv"]), int(e["ts_exch"]),
                                            float(e["bid_px"]), float(e["bid_qty"]),
                                            float(e["ask_px"]), float(e["ask_qty"])))
                f = self.feeds[key]
                f["messages"] += 1
                f["last_recv_ns"] = time.time_ns()
                f["lag_s"] = (int(e["ts_recv"]) - int(e["ts_exch"])) / 1e9
                self.last_ns = int(e["ts_recv"])
                self.sent += 1
        while not self._stop:
            await asyncio.sleep(0.05)

    def stop(self) -> None:
        self._stop = True

    def stats(self) -> dict[str, dict]:
        now = time.time_ns()
        return {k: {**f, "errors": list(f["errors"]),
                    "age_s": None if f["last_recv_ns"] is None else (now - f["last_recv_ns"]) / 1e9}
                for k, f in self.feeds.items()}


# ---------------------------------------------------------------------------------- fixtures
@dataclasses.dataclass
class Live:
    node: Any
    source: GatedReplay
    url: str
    session: str
    redis_url: str
    receiver: Receiver
    data: Path
    config: Path
    tmp: Path
    cli_port: int
    prom: str = ""


@pytest.fixture(scope="module")
def live(tmp_path_factory, redis_url) -> Any:
    from arbkit.engine.backtest import prepare
    from arbkit.runtime.node import NodeOptions, PaperNode
    from arbkit.store import open_store
    from arbkit.store.redis import SessionStore

    tmp = tmp_path_factory.mktemp("monitor-live")
    df, cfg = generate_universe({"BTC": "always-win", "ETH": "always-win"},
                                n_events=N_PER_SYMBOL, depth=1)
    # risk limits on but far away: their use is exported, they never bind
    cfg = dataclasses.replace(cfg, risk=dataclasses.replace(
        cfg.risk, max_symbol_notional=1e6, max_gross_exposure=1e7, daily_loss_limit=1e6,
        max_drawdown=1e6))
    data, config = tmp / "quotes.parquet", tmp / "config.toml"
    df.write_parquet(data)
    config.write_text(dump_config(cfg))
    arrays = prepare(data, cfg).arrays
    session = f"mon-{TAG}"
    store = SessionStore(redis_url, session)
    store.clean(force=True)
    results = open_store(path=tmp / "results.duckdb")
    receiver = Receiver()
    holder: dict[str, GatedReplay] = {}

    def factory(queue: asyncio.Queue, skip: int) -> GatedReplay:
        holder["src"] = GatedReplay(queue, arrays, cut=N_PER_SYMBOL)  # half of the quotes
        return holder["src"]

    def data_clock() -> int:  # the data's time, as an emulator's clock: controls are
        # stamped just after the last quote, so they never move the kernel's clock far
        return holder["src"].last_ns if "src" in holder else 0

    node = PaperNode(cfg, store=store, results=results, record_dir=tmp / "rec", clock=data_clock,
                     source_factory=factory,
                     options=NodeOptions(session=session, heartbeat_ms=None, checkpoint_s=0.3,
                                         status_s=0.2))
    alerts = AlertManager([Webhook("json", receiver.url + "/arbkit")], min_interval_s=0,
                          rules=AlertRules(max_drawdown_ratio=1e-12))
    node.monitor = SessionMonitor(alerts=alerts)
    port = free_port()
    thread = threading.Thread(target=lambda: asyncio.run(
        serve_node(node, f"127.0.0.1:{port}", token=TOKEN)), daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    wait_for("the session's first status", lambda: node.monitor.status.get("quotes"), 60)
    # an operator's control in the first phase: a guard-log row (reason "control") to export
    send_control(store, "resume", by="fixture", via="api")
    lv = Live(node, holder["src"], url, session, redis_url, receiver, data, config, tmp,
              free_port())
    try:
        yield lv
    finally:
        node.stop()
        thread.join(30)
        results.close()
        receiver.close()
        store.clean(force=True)


def quiet(lv: Live, phase: int) -> dict:
    """Wait until the source's phase is fed, every closed round trip is counted (a checkpoint
    drained it) and two status ticks followed: the numbers hold still from then on."""
    src, node = lv.source, lv.node
    wait_for(f"phase {phase} fed", lambda: src.sent == sum(p.shape[0] for p in src.phases[:phase])
             and node.monitor.status.get("quotes") == src.sent, 60)
    c0 = node.checkpoints
    wait_for("a checkpoint after the last quote",
             lambda: node.checkpoints >= c0 + 2 and int(node.session.state.glob[0]["n_trades"]) == 0)
    t0 = node.monitor.status["updated_at"]
    wait_for("two status ticks", lambda: node.monitor.status["updated_at"] > t0 + 0.3)
    assert node.monitor.errors == 0, node.monitor.last_error
    return node.monitor.status


@pytest.fixture(scope="module")
def prom(live: Live, tmp_path_factory) -> str:
    exe = shutil.which("prometheus")
    if exe is None:
        _server_missing("Prometheus", "not on PATH; run `bash scripts/prometheus.sh`")
    tmp = tmp_path_factory.mktemp("prometheus")
    port = free_port()
    live_port = urllib.parse.urlsplit(live.url).port
    (tmp / "prometheus.yml").write_text(json.dumps({  # JSON is YAML
        "global": {"scrape_interval": "1s", "scrape_timeout": "900ms",
                   "evaluation_interval": "1s"},
        "rule_files": [str(ROOT / "deploy" / "prometheus" / "alerts.yml")],
        "scrape_configs": [{"job_name": "arbkit", "static_configs": [
            {"targets": [f"127.0.0.1:{live_port}", f"127.0.0.1:{live.cli_port}"]}]}]}))
    log = open(tmp / "prometheus.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([exe, f"--config.file={tmp / 'prometheus.yml'}",
                             f"--storage.tsdb.path={tmp / 'data'}",
                             f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            with urllib.request.urlopen(base + "/-/ready", timeout=2) as r:
                return r.status == 200
        except OSError:
            if proc.poll() is not None:
                raise AssertionError("prometheus exited: " + (tmp / "prometheus.log").read_text()[-2000:]) from None
            return False

    try:
        wait_for("Prometheus ready", ready, 30, 0.2)
        live.prom = base
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def promql(base: str, query: str) -> list[dict]:
    code, out = http_json(f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": query}))
    assert code == 200 and out["status"] == "success", (query, out)
    return out["data"]["result"]


def one(base: str, query: str) -> float:
    res = promql(base, query)
    assert len(res) == 1, (query, res)
    return float(res[0]["value"][1])


# ---------------------------------------------------------------------------------- Prometheus
def test_prometheus_scrapes_the_session_and_returns_its_exact_values(
        live: Live, prom: str, cli_paper: Any) -> None:  # cli_paper: booting meanwhile
    st = quiet(live, 1)
    s = f'session="{live.session}"'
    assert st["trades"] >= 3 and st["routes"][0]["trades"] >= 1 and st["routes"][1]["trades"] >= 1
    # wait for a scrape of the still state, then every value must be the session's, exactly
    wait_for("Prometheus to scrape the still session",
             lambda: promql(prom, f"arbkit_trades_total{{{s}}} == {st['trades']}")
             and promql(prom, f"arbkit_events_total{{{s},kind=\"quote\"}} == {st['quotes']}"), 30)
    want = {f"arbkit_equity{{{s}}}": st["equity"], f"arbkit_net_pnl{{{s}}}": st["net_pnl"],
            f"arbkit_trades_total{{{s}}}": st["trades"], f"arbkit_wins_total{{{s}}}": st["wins"],
            f"arbkit_win_rate{{{s}}}": st["win_rate"], f"arbkit_drawdown{{{s}}}": st["drawdown"],
            f"arbkit_equity_peak{{{s}}}": st["equity_peak"],
            f"arbkit_drawdown_ratio{{{s}}}": st["drawdown_ratio"],
            f"arbkit_gross_exposure{{{s}}}": st["gross_exposure"],
            f"arbkit_kill_switch_engaged{{{s}}}": 0, f"arbkit_reconciliation_failed{{{s}}}": 0,
            f"arbkit_halted{{{s},reason=\"none\"}}": 1}
    for r in st["routes"]:
        lab = f'{s},route="{r["route"]}",symbol="{r["symbol"]}"'
        want.update({f"arbkit_route_net_pnl{{{lab}}}": r["net_pnl"],
                     f"arbkit_route_trades_total{{{lab}}}": r["trades"],
                     f"arbkit_route_wins_total{{{lab}}}": r["wins"],
                     f"arbkit_route_entries_total{{{lab}}}": r["entries"],
                     f"arbkit_route_open_exposure{{{lab}}}": r["open_exposure"],
                     f"arbkit_route_position{{{lab},leg=\"a\"}}": r["pos_a"],
                     f"arbkit_guard_skips_total{{{lab},reason=\"busy\"}}": r["skips"]["busy"],
                     f"arbkit_route_state{{{lab},state=\"{r['state']}\"}}": 1})
    for status, n in st["orders"].items():
        want[f"arbkit_orders_total{{{s},status=\"{status}\"}}"] = n
    for u in st["risk"]:
        want[f"arbkit_risk_limit_use_ratio{{{s},limit=\"{u['limit']}\",scope=\"{u['scope']}\"}}"] = u["use"]
    for key, f in st["feeds"].items():
        venue, _, symbol = key.partition(":")
        want[f"arbkit_feed_messages_total{{{s},venue=\"{venue}\",symbol=\"{symbol}\"}}"] = f["messages"]
        want[f"arbkit_feed_lag_seconds{{{s},venue=\"{venue}\",symbol=\"{symbol}\"}}"] = f["lag_s"]
    got = {q: one(prom, q) for q in want}
    assert got == {q: float(v) for q, v in want.items()}
    assert {u["limit"] for u in st["risk"]} == {"gross_cap", "symbol_cap", "daily_loss",
                                                "max_drawdown"}
    # histograms: the samples the node timed, as many in Prometheus as the session observed
    text = urllib.request.urlopen(live.url + "/metrics", timeout=5).read().decode()
    count = float(next(ln.split()[-1] for ln in text.splitlines()
                       if ln.startswith(f'arbkit_decision_latency_seconds_count{{{s}}}')))
    assert count >= 2  # one sample per batch the node took off its queue
    assert one(prom, f"arbkit_decision_latency_seconds_count{{{s}}}") == count
    assert one(prom, f'arbkit_store_write_seconds_count{{{s},store="journal"}}') >= 1
    assert one(prom, f'arbkit_store_write_seconds_count{{{s},store="results"}}') >= 2
    assert len(promql(prom, f"arbkit_feed_age_seconds{{{s}}}")) == 4
    assert one(prom, f'up{{instance="{urllib.parse.urlsplit(live.url).netloc}"}}') == 1
    # arbkit's own alert rule (drawdown > 1e-12 here) fired and posted to the receiver
    assert one(prom, f'arbkit_alerts_firing{{{s},rule="drawdown"}}') in (0.0, 1.0)
    assert promql(prom, f'arbkit_alerts_sent_total{{{s},rule="drawdown",channel="json"}} >= 1')
    assert any(b.get("rule") == "drawdown" for p, b in live.receiver.posts if p == "/arbkit")
    # the alert rules are loaded and evaluate without error against these series
    code, rules = http_json(prom + "/api/v1/rules")
    loaded = [r for g in rules["data"]["groups"] for r in g["rules"]]
    assert len(loaded) == 10 and all(r["health"] == "ok" for r in loaded), loaded
    assert all(r["lastEvaluation"] > "2000" for r in loaded)
    code, alerts = http_json(prom + "/api/v1/alerts")
    mine = {a["labels"]["alertname"] for a in alerts["data"]["alerts"]
            if a["labels"].get("session") == live.session}
    assert mine <= {"ArbkitDrawdownHigh"}, mine  # a healthy session: nothing else pending


def grafana_queries() -> list[tuple[str, str]]:
    d = json.loads((ROOT / "deploy" / "grafana" / "arbkit.json").read_text())
    return [(p["title"], t["expr"]) for p in d["panels"] for t in p["targets"]]


def test_every_grafana_panel_query_returns_data(live: Live, prom: str) -> None:
    quiet(live, 1)
    session = f"mon-{TAG}"
    queries = {(title, expr.replace("$session", session).replace("$__rate_interval", "1m"))
               for title, expr in grafana_queries()}
    t_end = time.monotonic() + 10
    while True:
        empty = sorted((title, q) for title, q in queries if not promql(prom, q))
        if not empty or time.monotonic() > t_end:
            break
        time.sleep(0.5)
    assert not empty, empty
    assert len(queries) >= 25


# ---------------------------------------------------------------------------------- Chromium
class Browser:
    """Headless Chromium (Debian's) with the DevTools protocol on a local port."""

    def __init__(self, tmp: Path) -> None:
        from arbkit.report.browser import FLAGS, find_chromium

        exe = find_chromium()
        if exe is None:
            _server_missing("chromium", "not installed; run `bash scripts/chromium.sh`")
        self.port = free_port()
        self.profile = tempfile.mkdtemp(prefix="arbkit-cdp-", dir=tmp)
        self.proc = subprocess.Popen(
            [exe, *FLAGS, f"--user-data-dir={self.profile}", f"--remote-debugging-port={self.port}",
             "--remote-allow-origins=*", "--window-size=1440,1000", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        wait_for("chromium's DevTools port", self._targets, 30, 0.2)

    def _targets(self) -> list | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/json/list", timeout=2) as r:
                return json.loads(r.read())
        except OSError:
            return None

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class Page:
    """One tab over the DevTools websocket (aiohttp)."""

    def __init__(self, ws: Any) -> None:
        self.ws, self.n = ws, 0

    @classmethod
    async def open(cls, http: Any, browser: Browser, incognito: bool = False) -> Page:
        if incognito:  # a new browser context: no token in its sessionStorage
            root = json.loads(urllib.request.urlopen(
                f"http://127.0.0.1:{browser.port}/json/version", timeout=5).read())
            bws = await http.ws_connect(root["webSocketDebuggerUrl"], max_msg_size=0)
            b = cls(bws)
            ctx = (await b.send("Target.createBrowserContext"))["browserContextId"]
            tid = (await b.send("Target.createTarget", url="about:blank",
                                browserContextId=ctx))["targetId"]
            await bws.close()
            target = next(t for t in browser._targets() if t["id"] == tid)
        else:
            target = next(t for t in browser._targets() if t["type"] == "page")
        return cls(await http.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0))

    async def send(self, method: str, **params: Any) -> dict:
        self.n += 1
        await self.ws.send_json({"id": self.n, "method": method, "params": params})
        while True:
            msg = await asyncio.wait_for(self.ws.receive_json(), 30)
            if msg.get("id") == self.n:
                if "error" in msg:
                    raise AssertionError(f"{method}: {msg['error']}")
                return msg["result"]

    async def js(self, expr: str) -> Any:
        r = await self.send("Runtime.evaluate", expression=expr, returnByValue=True,
                            awaitPromise=True)
        if "exceptionDetails" in r:
            raise AssertionError(f"{expr}: {r['exceptionDetails']}")
        return r["result"].get("value")

    async def until(self, what: str, expr: str, timeout_s: float = 20.0) -> Any:
        t_end = time.monotonic() + timeout_s
        while time.monotonic() < t_end:
            got = await self.js(expr)
            if got:
                return got
            await asyncio.sleep(0.1)
        raise AssertionError(f"page: timed out waiting for {what} ({expr})")

    async def goto(self, url: str) -> None:
        await self.send("Page.navigate", url=url)
        await self.until("the page to load", "document.readyState === 'complete'")

    async def shot(self, path: Path) -> None:
        data = (await self.send("Page.captureScreenshot", format="png",
                                captureBeyondViewport=True))["data"]
        path.write_bytes(base64.b64decode(data))


@pytest.fixture(scope="module")
def browser(tmp_path_factory) -> Any:
    b = Browser(tmp_path_factory.mktemp("chromium"))
    yield b
    b.close()


def in_page(browser: Browser, flow: Any) -> Any:
    import aiohttp

    async def go() -> Any:
        async with aiohttp.ClientSession() as http:
            page = await Page.open(http, browser)
            try:
                return await flow(page, http)
            finally:
                await page.ws.close()
    return asyncio.run(go())


READ = """(() => {
  const v = (el) => el ? el.dataset.v : undefined;
  const kpi = {};
  for (const el of document.querySelectorAll('.kpi .v')) kpi[el.id.slice(2)] = el.dataset.v;
  const routes = [...document.querySelectorAll('#routes tbody tr')].map((tr) => {
    const o = {};
    for (const td of tr.querySelectorAll('td[data-f]')) o[td.dataset.f] = td.dataset.v;
    o.button = tr.querySelector('button').dataset.control;
    o.disabled = tr.querySelector('button').disabled;
    return o;
  });
  return {kpi, routes, guards: [...document.querySelectorAll('#guards tbody tr')].map((t) => t.dataset.guard),
          trades: document.querySelectorAll('#trades tbody tr').length,
          points: Number(document.getElementById('chart').dataset.points || 0),
          access: document.getElementById('b-access').textContent, search: location.search,
          html: document.documentElement.outerHTML};
})()"""


def status_json(lv: Live) -> dict:
    p = cli("status", "--json", "--redis", lv.redis_url)
    assert p.code == 0, p.err
    out = json.loads(p.out)[lv.session]
    assert out["alive"]
    return out["status"]


def num(v: str | None) -> float | None:
    return None if v in (None, "") else float(v)


def test_the_page_loads_and_its_numbers_match_arbkit_status_json(live: Live, browser: Browser,
                                                                  tmp_path: Path) -> None:
    quiet(live, 1)

    async def flow(page: Page, http: Any) -> dict:
        await page.goto(f"{live.url}/?token={TOKEN}")
        await page.until("the routes", "document.querySelectorAll('#routes tbody tr').length === 2")
        await page.until("the chart", "Number(document.getElementById('chart').dataset.points) > 10")
        await page.until("the controls", "!document.querySelector('.sym-toggle').disabled")
        await page.shot(tmp_path / "dashboard.png")
        return await page.js(READ)

    seen = in_page(browser, flow)
    st = status_json(live)
    for k in ("equity", "net_pnl", "drawdown", "drawdown_ratio", "trades", "win_rate",
              "gross_exposure", "quotes", "decide_us_p99"):
        assert num(seen["kpi"][k]) == st[k], k
    assert len(seen["routes"]) == len(st["routes"]) == 2
    for got, want in zip(seen["routes"], st["routes"], strict=True):
        assert got["route"] == want["route"] and got["symbol"] == want["symbol"]
        assert got["state"] == want["state"] and got["entries_on"] == "on"
        for k in ("pos_a", "pos_b", "entries", "trades", "win_rate", "net_pnl", "best_edge_bps",
                  "threshold_bps"):
            assert num(got[k]) == want[k], (want["route"], k)
        assert got["feed_age_s"] and float(got["feed_age_s"]) >= 0
        assert not got["disabled"]
    assert seen["trades"] == min(20, st["trades"]) and seen["points"] > 10
    assert seen["access"] == "controls" and seen["search"] == ""  # the token left the URL
    assert TOKEN not in seen["html"]
    assert (tmp_path / "dashboard.png").stat().st_size > 20_000
    if SHOTS:
        shutil.copy(tmp_path / "dashboard.png", ROOT / "docs" / "img" / "operations-dashboard.png")


def test_without_the_token_the_page_is_read_only(live: Live, browser: Browser) -> None:
    import aiohttp

    async def go() -> dict:
        async with aiohttp.ClientSession() as http:
            page = await Page.open(http, browser, incognito=True)
            try:
                await page.goto(live.url + "/")
                await page.until("the routes", "document.querySelectorAll('#routes tbody tr').length === 2")
                await page.until("whoami", "document.getElementById('b-access').textContent.includes('no token')")
                return await page.js(READ)
            finally:
                await page.ws.close()

    seen = asyncio.run(go())
    assert all(r["disabled"] for r in seen["routes"])
    assert seen["access"] == "read-only (no token)"
    assert http_json(live.url + "/api/control", {"control": "stop"})[0] == 401
    assert http_json(live.url + "/api/control", {"control": "stop"},
                     {"X-Arbkit-Token": "wrong"})[0] == 401
    assert http_json(live.url + "/api/whoami")[1] == {"controls": True, "authorized": False}
    code, out = http_json(live.url + "/api/control", {"control": "symbol_off:DOGE"},
                          {"X-Arbkit-Token": TOKEN})
    assert code == 400 and "trades BTC, ETH" in out["error"]  # checked by the control layer
    req = urllib.request.Request(live.url + "/api/status", headers={"Host": "evil.example"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=5)
    assert e.value.code == 421  # DNS rebinding: a foreign Host is refused


def test_a_click_turns_a_symbol_off_and_the_kernel_stops_entering_on_it(
        live: Live, browser: Browser, tmp_path: Path) -> None:
    before = quiet(live, 1)
    eth = next(r for r in before["routes"] if r["symbol"] == "ETH")
    btc = next(r for r in before["routes"] if r["symbol"] == "BTC")

    async def click(page: Page, http: Any) -> None:
        await page.goto(f"{live.url}/?token={TOKEN}")
        await page.until("the ETH button", "!!document.querySelector("
                         "'button[data-control=\"symbol_off:ETH\"]:not([disabled])')")
        await page.js("document.querySelector('button[data-control=\"symbol_off:ETH\"]').click()")
        await page.until("ETH off on the page", "[...document.querySelectorAll('#routes tbody tr')]"
                         ".some((tr) => tr.dataset.symbol === 'ETH' && "
                         "tr.querySelector('[data-f=entries_on]').dataset.v === 'off')")

    in_page(browser, click)
    store = live.node.store
    audit = store.audit_log(50)
    req = [a for a in audit if a.get("control") == "symbol_off:ETH" and a.get("requested")]
    assert req and req[-1]["via"] == "web" and req[-1]["by"].startswith("web@127.0.0.1")
    assert any(a.get("control") == "symbol_off:ETH" and a.get("applied") for a in audit)
    live.source.release.set()  # the second half of the data: entries to make, or to skip
    after = quiet(live, 2)
    eth2 = next(r for r in after["routes"] if r["symbol"] == "ETH")
    btc2 = next(r for r in after["routes"] if r["symbol"] == "BTC")
    assert eth2["off"] and eth2["entries"] == eth["entries"]  # no entry on ETH since
    assert eth2["skips"].get("symbol_off", 0) > 0
    assert btc2["entries"] > btc["entries"] and not btc2["off"]  # BTC kept trading
    assert after["guards"].get("symbol_off", 0) >= 1 and after["guards"].get("control", 0) >= 1
    rows = [(g["guard"], g["route"], g["detail"]) for g in after["recent_guards"]]
    assert ("symbol_off", eth["route"], "") in rows and ("control", "portfolio",
                                                          "symbol_off ETH") in rows

    async def look(page: Page, http: Any) -> dict:
        await page.goto(f"{live.url}/?token={TOKEN}")
        await page.until("the guard rows", "document.querySelectorAll('#guards tbody tr').length > 1")
        await page.until("the audit rows", "document.querySelectorAll('#audit tbody tr').length > 1")
        await page.shot(tmp_path / "symbol-off.png")
        return await page.js(READ)

    seen = in_page(browser, look)
    row = next(r for r in seen["routes"] if r["symbol"] == "ETH")
    assert row["entries_on"] == "off" and num(row["skipped_symbol_off"]) == eth2["skips"]["symbol_off"]
    assert row["button"] == "symbol_on:ETH" and "symbol_off" in seen["guards"]
    if SHOTS:
        shutil.copy(tmp_path / "symbol-off.png", ROOT / "docs" / "img" / "operations-symbol-off.png")


def test_the_kill_switch_from_the_cli_fires_the_prometheus_alert_and_an_arbkit_webhook(
        live: Live, prom: str) -> None:
    os.environ["USER"], user = "ops-test", os.environ.get("USER")
    try:
        p = cli("ctl", "kill", "--session", live.session, "--redis", live.redis_url)
    finally:
        os.environ.pop("USER") if user is None else os.environ.update(USER=user)
    assert p.code == 0 and f"session {live.session}: kill sent" in p.out, p.err
    wait_for("the kernel's kill", lambda: live.node.monitor.status.get("kill_switch"), 10)

    def firing() -> list:
        code, out = http_json(prom + "/api/v1/alerts")
        return [a for a in out["data"]["alerts"] if a["labels"]["alertname"] ==
                "ArbkitKillSwitchEngaged" and a["state"] == "firing"
                and a["labels"].get("session") == live.session]

    alert = wait_for("ArbkitKillSwitchEngaged firing in Prometheus", firing, 20, 0.25)[0]
    assert alert["annotations"]["summary"] == f"arbkit {live.session}: kill switch engaged"
    assert wait_for("arbkit's kill_switch webhook", lambda: [
        b for path, b in live.receiver.posts if b.get("rule") == "kill_switch"], 10)
    audit = live.node.store.audit_log(10)
    assert any(a.get("control") == "kill" and a.get("via") == "cli" and a.get("by") == "ops-test"
               for a in audit)
    st = live.node.monitor.status
    assert st["halt_reason"] == "kill" and st["health"]["checks"]["halt"] == "kill"


# ---------------------------------------------------------------------------------- the CLI
@dataclasses.dataclass
class CliPaper:
    proc: subprocess.Popen
    session: str
    results: Path
    tmp: Path
    env: dict


@pytest.fixture(scope="module")
def cli_paper(live: Live, tmp_path_factory) -> Any:
    """``arbkit paper --emulator --http`` as a user runs it; started with the first test of
    the module (it boots while the in-process session is tested), checked by the last."""
    tmp = tmp_path_factory.mktemp("cli-paper")
    session = f"emu-{TAG}"
    env = {**os.environ, "ARBKIT_CONTROL_TOKEN": TOKEN, "USER": "ops-test"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "arbkit", "paper", "--config", str(live.config), "--emulator",
         str(live.data), "--speed", "5", "--session", session, "--redis", live.redis_url,
         "--results", str(tmp / "results.duckdb"), "--record-dir", str(tmp / "rec"),
         "--no-view", "--json", "--checkpoint-s", "0.5", "--http",
         f"127.0.0.1:{live.cli_port}"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        yield CliPaper(proc, session, tmp / "results.duckdb", tmp, env)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=30)
        from arbkit.store.redis import SessionStore

        SessionStore(live.redis_url, session).clean(force=True)


def test_arbkit_paper_http_on_the_emulator_then_ctl_and_reset(live: Live, prom: str,
                                                              cli_paper: CliPaper) -> None:
    proc, session, tmp_path = cli_paper.proc, cli_paper.session, cli_paper.tmp
    base = f"http://127.0.0.1:{live.cli_port}"

    def healthy() -> bool:
        if proc.poll() is not None:
            raise AssertionError(proc.stderr.read())
        try:
            return http_json(base + "/health")[0] == 200
        except OSError:
            return False

    wait_for("the CLI session's /health", healthy, 60, 0.2)
    s = f'session="{session}"'
    feeds = wait_for("Prometheus to scrape its four feeds", lambda: len(
        promql(prom, f"arbkit_feed_messages_total{{{s}}} > 0")) == 4 and promql(
        prom, f"arbkit_feed_messages_total{{{s}}} > 0"), 30, 0.25)
    assert {(f["metric"]["venue"], f["metric"]["symbol"]) for f in feeds} == {
        ("A", "BTC-USDT"), ("B", "BTC-USDT"), ("A", "ETH-USDT"), ("B", "ETH-USDT")}
    assert one(prom, f'up{{instance="127.0.0.1:{live.cli_port}"}}') == 1
    assert promql(prom, f'arbkit_feed_state{{{s},state="live"}} == 1')
    st = status_json(Live(**{**live.__dict__, "session": session}))
    assert [r["symbol"] for r in st["routes"]] == ["BTC", "ETH"] and st["health"]["ready"]
    typo = cli("ctl", "symbol", "eth", "off", "--session", session + "x", "--redis",
               live.redis_url)  # a mistyped name: refused, nothing written
    assert typo.code == 1 and "no such session" in typo.err and session in typo.err, typo.err
    from arbkit.store.redis import SessionStore as _S

    assert _S(live.redis_url, session + "x").audit_log(5) == []
    ctl = cli("ctl", "symbol", "eth", "off", "--session", session, "--redis", live.redis_url)
    assert ctl.code == 0 and "symbol_off:ETH sent" in ctl.out, ctl.err
    from arbkit.store.redis import SessionStore

    store = SessionStore(live.redis_url, session)
    wait_for("the CLI control applied", lambda: any(
        a.get("control") == "symbol_off:ETH" and a.get("applied") for a in store.audit_log(20)))
    t0 = time.monotonic()
    reset = cli("reset", "--session", session, "--redis", live.redis_url, "--backup-dir",
                tmp_path / "bk")
    assert reset.code == 0, reset.err
    assert f"session {session}: stopped;" in reset.out and "results store" in reset.out
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err  # shut down cleanly by the control, not killed
    report = json.loads(out)
    assert report["quotes"] > 0 and not report["interrupted"]
    assert time.monotonic() - t0 < 30
    assert "dashboard http://127.0.0.1:" in err and TOKEN not in err + out + reset.out
    assert store.meta() is None and store.status() is None and store.audit_log(5) == []
    backups = sorted((tmp_path / "bk").iterdir())
    audit_file = next(p for p in backups if p.name.endswith(".audit.jsonl"))
    lines = [json.loads(x) for x in audit_file.read_text().splitlines()]
    assert [(a["control"], a.get("via")) for a in lines if a.get("requested")] == [
        ("symbol_off:ETH", "cli"), ("shutdown", "reset")]
    who = os.environ.get("USER", "cli")  # the in-process CLI runs as this user
    assert all(a["by"] == who for a in lines if a.get("requested"))
    assert any(a["control"] == "shutdown" and a.get("applied") for a in lines)
    assert any(p.name.endswith(".jsonl") and not p.name.endswith(".audit.jsonl") for p in backups)
    from arbkit.store import open_store

    with open_store(path=cli_paper.results) as rs:  # the results store is left intact
        assert rs.frame("equity", report["run_id"]).height > 0
