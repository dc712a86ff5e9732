"""A live session watched and controlled like a paper one (issues 15 and 16): ``arbkit live
--venues FILE --http HOST:PORT`` against Binance emulators in their own process, its Redis
with ``appendfsync always``, arbkit's webhook alerts going to a local receiver.

What is proved, from the outside:

- the session serves ``/health`` (ready once every venue reconciled and the feeds are fresh),
  ``/metrics`` (``mode="live"``, orders by status) and the dashboard's ``/api/status``, and
  takes a control from the page's API with the token (``symbol_off``, audited);
- an order placed at the venue by hand while it trades halts trading at once: every venue's
  execution refuses orders, the kernel stops entering (a ``stop`` control by the execution,
  audited), the status says why (``reconciliation``: failed, the reasons), ``/health`` is
  503 with ``reconciliation_ok`` false, ``arbkit_reconciliation_failed`` is 1, the
  ``reconciliation`` webhook fires, the command prints one ``alert:`` line, no order is sent
  at any venue after the halt, and the hand order is left as it is (never "fixed");
- Ctrl-C then ends it with exit 130 and no traceback;
- once the hand order is cancelled, ``--resume`` reconciles and is ready, still in ``stop``
  (the kernel's snapshot): no entry until ``arbkit ctl resume``, then it trades again.
"""

from __future__ import annotations

import asyncio
import json
import shlex
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from arbkit.runtime.crashsuite import (
    KEY,
    SECRET,
    fetch_all,
    make_market,
    start_redis,
    start_venues,
    stop_venues,
    suite_env,
    venue_exchange,
)
from tests.integration.test_execution import _free_port
from tests.integration.test_monitor_alerts import Receiver

pytestmark = pytest.mark.redis

TOKEN = "tok-live-ops-5b1f"
SESSION = "liveops"


def _get(url: str, token: str | None = None, data: dict | None = None) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["X-Arbkit-Token"] = token
    req = urllib.request.Request(url, data=None if data is None else json.dumps(data).encode(),
                                 headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            body = r.read().decode()
            return r.status, (json.loads(body) if body[:1] in "{[" else body)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())
    except (urllib.error.URLError, ConnectionError):
        return 0, None


def _wait(what: str, check: Any, timeout_s: float, proc: subprocess.Popen | None) -> Any:
    t_end = time.monotonic() + timeout_s
    while True:
        got = check()
        if got:
            return got
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"arbkit live ended while waiting for {what}: "
                                 f"{proc.communicate()[1][-3000:]}")
        if time.monotonic() > t_end:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(0.2)


def _venue_orders(vfile: Path, cfg_path: Path) -> dict[str, list[dict]]:
    """Every order at every venue, read with the ccxt client."""
    from arbkit.config import load_config

    cfg = load_config(cfg_path)

    async def read(venue: str) -> list[dict]:
        ex = venue_exchange(vfile, cfg_path, venue)
        try:
            await ex.load_markets()
            out: list[dict] = []
            for inst in cfg.instruments:
                if inst.venue == venue:
                    out += await fetch_all(ex.fetch_orders, f"{inst.base}/{inst.quote}")
            return out
        finally:
            await ex.close()

    return {v: asyncio.run(read(v)) for v in sorted({i.venue for i in cfg.instruments})}


def _place_by_hand(vfile: Path, cfg_path: Path, venue: str) -> dict:
    """A resting limit buy far under the market, as a person would place it on the venue's
    site (its own client id, not one of the session's)."""
    async def place() -> dict:
        ex = venue_exchange(vfile, cfg_path, venue)
        try:
            await ex.load_markets()
            book = await ex.fetch_order_book("BTC/USDT", 5)
            px = round(book["bids"][0][0] * 0.9, 1)
            return await ex.create_order("BTC/USDT", "limit", "buy", 0.01, px,
                                         {"newClientOrderId": "by-hand-1"})
        finally:
            await ex.close()

    return asyncio.run(place())


def _cancel_by_hand(vfile: Path, cfg_path: Path, venue: str, order_id: str) -> None:
    async def cancel() -> None:
        ex = venue_exchange(vfile, cfg_path, venue)
        try:
            await ex.load_markets()
            await ex.cancel_order(order_id, "BTC/USDT")
        finally:
            await ex.close()

    asyncio.run(cancel())


def test_a_live_session_serves_the_dashboard_and_halts_with_an_alert_on_an_order_by_hand(
        tmp_path: Path) -> None:
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed (bash scripts/services.sh installs it)")
    work = tmp_path
    quotes, cfg = make_market(work, routes=2, hours=0.5, seed=3)
    rproc, url = start_redis(work)
    vproc, vfile = start_venues(work, quotes, cfg, speed=10.0, fault_rate=0.0, seed=3)
    receiver = Receiver()
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    def start(*extra: str) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "arbkit", "live", "--config", str(cfg), "--venues",
             str(vfile), "--session", SESSION, "--redis", url, "--results",
             str(work / "results.duckdb"), "--record-dir", str(work / "rec"), "--checkpoint-s",
             "1", "--http", f"127.0.0.1:{port}", "--json", *extra],
            cwd=work, env=suite_env(ARBKIT_CONTROL_TOKEN=TOKEN, USER="ops-test",
                               ARBKIT_ALERT_WEBHOOKS=f"json={receiver.url}/hook",
                               ARBKIT_ALERT_MIN_INTERVAL_S="1"),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    proc = start()
    try:
        # ---- watched: ready, metrics, status; a control from the page's API
        _wait("/health ready", lambda: _get(base + "/health")[0] == 200, 120, proc)
        st = _wait("an order sent and filled", lambda: (lambda s: s if s and s.get(
            "orders_sent", 0) >= 2 and s.get("trades", 0) >= 1 else None)(
            _get(base + "/api/status")[1]), 60, proc)
        assert st["mode"] == "live"
        assert st["reconciliation"]["state"] == "ready" and not st["reconciliation"]["failed"]
        assert set(st["reconciliation"]["venues"].values()) == {"ready"}
        code, metrics = _get(base + "/metrics")
        assert code == 200 and 'arbkit_session_info{config_hash="' in metrics
        assert 'mode="live"' in metrics
        assert f'arbkit_reconciliation_failed{{session="{SESSION}"}} 0.0' in metrics
        assert f'arbkit_orders_total{{session="{SESSION}",status="filled"}}' in metrics
        assert _get(base + "/api/control", data={"control": "symbol_off:ETH"})[0] == 401
        code, entry = _get(base + "/api/control", TOKEN, {"control": "symbol_off:ETH"})
        assert code == 200 and entry["control"] == "symbol_off:ETH", entry
        _wait("ETH off in the kernel", lambda: any(
            r["symbol"] == "ETH" and r["off"]
            for r in (_get(base + "/api/status")[1] or {}).get("routes", [])), 10, proc)

        text = subprocess.run([sys.executable, "-m", "arbkit", "status", "--redis", url],
                              env=suite_env(), capture_output=True, text=True, timeout=60)
        line = text.stdout.splitlines()[0]
        print(text.stdout, end="")
        assert line.startswith(f"{SESSION} (live): running; round trips "), text.stdout
        assert "reconciliation ready" in line and ", ready" in line, line
        # ---- an order by hand at binance_a: trading halts, with an alert
        hand = _place_by_hand(vfile, cfg, "binance_a")

        def halted() -> dict | None:
            code, h = _get(base + "/health")
            return h if code == 503 and not h["checks"]["reconciliation_ok"] else None

        h = _wait("/health 503: reconciliation failed", halted, 20, proc)
        assert h["live"] is True and h["ready"] is False
        st = _get(base + "/api/status")[1]
        rec = st["reconciliation"]
        assert rec["failed"] and rec["state"] == "halted"
        assert rec["venues"] == {"binance_a": "halted", "binance_b": "halted"}
        assert any("binance_a" in r and "by-hand-1" in r for r in rec["reasons"]), rec
        _wait("the kernel in stop (no new entries)",
              lambda: (_get(base + "/api/status")[1] or {}).get("halt_reason") == "stop", 10,
              proc)
        audit = _get(base + "/api/audit")[1]
        assert any(a.get("control") == "stop" and a.get("via") == "execution"
                   and "binance_a" in a.get("by", "") for a in audit), audit
        _wait("the reconciliation webhook", lambda: [
            b for p, b in receiver.posts if b.get("rule") == "reconciliation"
            and b.get("state") == "firing"], 15, proc)
        metrics = _get(base + "/metrics")[1]
        assert f'arbkit_reconciliation_failed{{session="{SESSION}"}} 1.0' in metrics
        # nothing sent at any venue after the halt (the market goes on: it would have)
        before = _venue_orders(vfile, cfg)
        sent = _get(base + "/api/status")[1]["orders_sent"]
        time.sleep(4.0)
        after = _venue_orders(vfile, cfg)
        assert {v: len(o) for v, o in after.items()} == {v: len(o) for v, o in before.items()}
        assert _get(base + "/api/status")[1]["orders_sent"] == sent
        (mine,) = [o for o in after["binance_a"] if o["clientOrderId"] == "by-hand-1"]
        assert mine["id"] == hand["id"] and mine["status"] == "open"  # left as it is
        # ---- Ctrl-C: exit 130, one alert line said it, no traceback
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err[-3000:]
        assert "Traceback" not in err, err[-3000:]
        alerts = [ln for ln in err.splitlines() if ln.startswith("alert:")]
        print("\n".join(alerts))
        assert len(alerts) == 1 and "trading halted" in alerts[0] and "--resume" in alerts[0]
        assert KEY not in out + err and SECRET not in out + err
        ended = _wait("the heartbeat to expire", lambda: (lambda t: t if "not running" in t
                      else None)(subprocess.run(
                          [sys.executable, "-m", "arbkit", "status", "--redis", url],
                          env=suite_env(), capture_output=True, text=True, timeout=60).stdout),
                      20, None)
        print(ended, end="")
        assert f"{SESSION} (live): not running; at its last checkpoint" in ended, ended
        assert f"round trips {json.loads(out)['trades']}," in ended, (ended, out)
        # ---- the operator cancels the hand order, resumes: reconciled, still in stop (it
        # exits, never enters) until `arbkit ctl resume`; then it trades again
        _cancel_by_hand(vfile, cfg, "binance_a", hand["id"])
        # the resume command as the interrupted session printed it (every flag it ran with)
        (hint,) = [ln for ln in err.splitlines() if ln.startswith("interrupted:")]
        printed = shlex.split(hint.split("`")[1])
        assert printed[:2] == ["arbkit", "live"] and printed[-1] == "--resume", printed
        assert {"--config", "--venues", "--redis", "--http"} <= set(printed), printed
        # a fresh start of the same name is refused (the hint says --resume or a new name)
        again = subprocess.run([sys.executable, "-m", *printed[:-1]], cwd=work,
                               env=suite_env(), capture_output=True, text=True, timeout=60)
        assert again.returncode == 1 and again.stderr.count("\n") == 1, again.stderr
        assert "already exists" in again.stderr and "--session NAME" in again.stderr
        assert "--clean" not in again.stderr and "UTC" in again.stderr
        proc = subprocess.Popen(
            [sys.executable, "-m", *printed], cwd=work,
            env=suite_env(ARBKIT_CONTROL_TOKEN=TOKEN, USER="ops-test"),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _wait("/health ready after --resume", lambda: _get(base + "/health")[0] == 200, 60,
              proc)
        st = _get(base + "/api/status")[1]
        assert st["reconciliation"]["state"] == "ready" and st["halt_reason"] == "stop", st
        sent = st["orders_sent"]
        ctl = subprocess.run([sys.executable, "-m", "arbkit", "ctl", "resume", "--session",
                              SESSION, "--redis", url], env=suite_env(USER="ops-test"),
                             capture_output=True, text=True, timeout=60)
        assert ctl.returncode == 0, ctl.stderr
        _wait("entries again after ctl resume", lambda: (lambda s: s and s.get(
            "halt_reason") == "none" and s.get("orders_sent", 0) > sent)(
            _get(base + "/api/status")[1]), 30, proc)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 130 and "Traceback" not in err, err[-3000:]
        # `arbkit reset` clears the session, keeps its execution journal: the name is never
        # started afresh (its client order ids are taken)
        reset = subprocess.run([sys.executable, "-m", "arbkit", "reset", "--session", SESSION,
                                "--redis", url], cwd=work, env=suite_env(), capture_output=True,
                               text=True, timeout=60)
        assert reset.returncode == 0, reset.stderr
        again = subprocess.run([sys.executable, "-m", *printed[:-1]], cwd=work,
                               env=suite_env(), capture_output=True, text=True, timeout=60)
        assert again.returncode == 1 and again.stderr.count("\n") == 1, again.stderr
        assert "execution journal" in again.stderr and "--session NAME" in again.stderr
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        stop_venues(vproc, signal.SIGINT)
        rproc.terminate()
        rproc.wait(10)
        receiver.close()
