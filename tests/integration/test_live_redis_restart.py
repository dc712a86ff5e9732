"""`arbkit live --emulator` while its Redis is restarted (issue 15, failure suite): the Redis
server (its own, ``appendonly yes``, ``appendfsync always``, a temp folder) is stopped in the
middle of a trading session and started again on the same port and folder.

What is proved, from the outside (the CLI as a subprocess, its Redis, its stores):

- a restart of a few seconds is ridden through (SIGTERM, and SIGKILL): the command ends
  normally, it traded, its heartbeat says it saw one outage and how long, nothing on stderr
  is a traceback;
- nothing lost: the stored fills are what the session's recording replays to (order ids and
  prices), and every order the kernel booked a fill for is in the execution journal, done,
  its fills there equal to its fill reports;
- nothing sent twice: each order number has one client order id (one send) and at most one
  venue order, each report is in the journal once (one final report per order);
- beyond ``ARBKIT_REDIS_OUTAGE_S`` the command stops with one ``error:`` line (exit 1, no
  traceback), nothing sent meanwhile.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import redis as redis_lib

from arbkit.config import load_config
from arbkit.core import types as T
from arbkit.runtime.live import replay_recording
from arbkit.store import open_store
from tests.integration.test_execution import _free_port

pytestmark = pytest.mark.redis

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data/samples/rehearsal_binance_ab.parquet"
CFG = ROOT / "studies/live_rehearsal.toml"
KEY, SECRET = "restartKEY4e1b2c", "restartSECRET9d7a3f0e"
SESSION = "rr"


class Server:
    """A redis-server that can be stopped and started again on its port and folder."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.port = folder, _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None
        folder.mkdir(parents=True, exist_ok=True)
        self.start()

    def start(self) -> None:
        import shutil

        if shutil.which("redis-server") is None:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir",
             str(self.folder), "--appendonly", "yes", "--appendfsync", "always", "--save", ""],
            stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                redis_lib.Redis.from_url(self.url).ping()
                return
            except redis_lib.ConnectionError:  # incl. -LOADING while it reads its AOF
                time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def stop(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)
        self.proc.wait(10)
        self.proc = None

    def close(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)


@pytest.fixture
def server(tmp_path: Path) -> Any:
    s = Server(tmp_path / "redis")
    yield s
    s.close()


def _start(work: Path, url: str, duration_s: float, http: int | None = None,
           **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "arbkit", "live", "--config", str(CFG), "--emulator", str(DATA),
         "--speed", "60", "--duration-s", str(duration_s), "--session", SESSION, "--redis", url,
         "--results", str(work / "r.duckdb"), "--record-dir", str(work / "rec"), "--json",
         *(["--http", f"127.0.0.1:{http}"] if http else [])],
        cwd=work, env={**os.environ, "ARBKIT_BINANCE_KEY": KEY, "ARBKIT_BINANCE_SECRET": SECRET,
                       **env},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _status(url: str) -> dict | None:
    with redis_lib.Redis.from_url(url, socket_timeout=2) as r:
        raw = r.get(f"arbkit:session:{SESSION}:heartbeat")
    return None if raw is None else json.loads(raw)


def _wait_trading(url: str, proc: subprocess.Popen, timeout_s: float = 30) -> dict:
    """The session's heartbeat once its first order went out (the restart hits a session that
    trades)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        st = _status(url)
        if st and st.get("orders_sent", 0) >= 1:
            return st
        time.sleep(0.1)
    raise AssertionError(f"no order sent within {timeout_s} s: {st}")


def _exec_journal(url: str) -> dict[str, tuple[dict[int, dict], list[list]]]:
    """Every venue client's journal: order records by number, reports in order."""
    out = {}
    with redis_lib.Redis.from_url(url) as r:
        for key in r.scan_iter(f"arbkit:exec:{SESSION}.*:orders"):
            prefix = key.decode()[:-len("orders")]
            orders = {int(k): json.loads(v) for k, v in r.hgetall(key).items()}
            reports = [json.loads(x) for x in r.lrange(prefix + "reports", 0, -1)]
            out[prefix] = (orders, reports)
    return out


def _assert_nothing_sent_twice(journals: dict) -> set[int]:
    """One send per order number, one venue order, each report once; the oids journaled."""
    oids: set[int] = set()
    for prefix, (orders, reports) in journals.items():
        cids = [a["cid"] for rec in orders.values() for a in rec["attempts"]]
        assert len(cids) == len(set(cids)), prefix
        for oid, rec in orders.items():
            assert len(rec["attempts"]) <= 1, (prefix, oid, rec)  # never sent again
            mine = [rep for rep in reports if rep[1] == oid]
            finals = [rep for rep in mine if rep[5] != 0]
            assert len(finals) == (rec["state"] == "done"), (prefix, oid, mine)
            filled = sum(rep[2] for rep in mine)
            assert filled == pytest.approx(sum(t[0] for t in rec["trades"].values())), mine
            if rec["state"] != "done" or rec["final_status"] != T.ST_REJECTED:
                assert rec["venue_order_id"] is not None or not rec["attempts"], rec
        assert len({json.dumps(rep) for rep in reports}) == len(reports), prefix  # once each
        oids |= set(orders)
    return oids


def _health(port: int) -> tuple[int, dict]:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())
    except (urllib.error.URLError, OSError):
        return 0, {}


def _metric(port: int, name: str) -> float | None:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + "{"):
                return float(line.split()[-1])
    return None


def _run_with_restart(tmp_path: Path, server: Server, sig: int, down_s: float,
                      duration_s: float = 16) -> None:
    port = _free_port()
    proc = _start(tmp_path, server.url, duration_s=duration_s, http=port)
    seen: list[tuple[int, dict, float | None, float | None]] = []
    try:
        _wait_trading(server.url, proc)
        assert _health(port)[0] == 200
        server.stop(sig)
        t_end = time.monotonic() + down_s
        while time.monotonic() < t_end:  # the server answers while the session waits
            code, h = _health(port)
            seen.append((code, h, _metric(port, "arbkit_redis_down_seconds"),
                         _metric(port, "arbkit_session_up")))
            time.sleep(0.2)
        server.start()
        out, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    report = json.loads(out)
    assert report["trades"] >= 1, report
    # /health answered while the session waited for Redis: 503, live, redis_ok false
    assert seen and all(code in (200, 503) for code, *_ in seen), seen
    waiting = [(h, down, up) for code, h, down, up in seen
               if code == 503 and h["checks"].get("redis_ok") is False]
    assert waiting, seen
    assert all(h["live"] and not h["ready"] and h["checks"]["redis_down_s"] >= 0
               and down is not None and down > 0 and up == 1 for h, down, up in waiting), waiting
    st = _status(server.url)  # the last heartbeat (alive for 5 s after the end)
    assert st is not None and st["redis"]["outages"] >= 1, st
    assert st["redis"]["longest_outage_s"] >= 0.8 * down_s, st["redis"]  # (seen from its
    # first write after the stop to its first answer after the start)
    # nothing lost: stored fills = the recording replayed (the reports the session booked)
    with open_store(path=tmp_path / "r.duckdb") as store:
        fills = store.frame("fills", report["run_id"])
    again = replay_recording(tmp_path / "rec", load_config(CFG))
    assert fills.height >= 2 and again["fills"].shape[0] == fills.height
    np.testing.assert_array_equal(again["fills"]["oid"], fills["oid"].to_numpy())
    np.testing.assert_array_equal(again["fills"]["px"], fills["px"].to_numpy())
    # nothing sent twice, and every order the kernel booked is in the execution journal
    journaled = _assert_nothing_sent_twice(_exec_journal(server.url))
    assert set(fills["oid"].to_list()) <= journaled
    print(f"\nredis {signal.Signals(sig).name}, down {down_s} s: {st['redis']}, "
          f"trades {report['trades']}, fills {fills.height}, orders {len(journaled)}; "
          f"/health while down: {len(waiting)} of {len(seen)} answers 503 redis_ok false, "
          f"last {json.dumps(waiting[-1][0]['checks'])}, arbkit_redis_down_seconds "
          f"{waiting[-1][1]:.2f}")


def test_a_redis_restart_of_a_few_seconds_is_ridden_through(tmp_path: Path,
                                                            server: Server) -> None:
    _run_with_restart(tmp_path, server, signal.SIGTERM, down_s=3.0)


def test_a_redis_killed_and_restarted_is_ridden_through(tmp_path: Path, server: Server) -> None:
    _run_with_restart(tmp_path, server, signal.SIGKILL, down_s=1.0)


def test_redis_down_beyond_the_bound_stops_with_one_line(tmp_path: Path,
                                                         server: Server) -> None:
    proc = _start(tmp_path, server.url, duration_s=30, ARBKIT_REDIS_OUTAGE_S="2")
    try:
        _wait_trading(server.url, proc)
        server.stop(signal.SIGTERM)
        t0 = time.monotonic()
        out, err = proc.communicate(timeout=60)
        took = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert proc.returncode == 1 and len(lines) == 1, err[-3000:]
    assert lines[0].startswith("error: ") and "--resume" in lines[0], lines
    assert took < 15, took
    server.start()  # what was journaled before the outage is whole: nothing sent twice
    journaled = _assert_nothing_sent_twice(_exec_journal(server.url))
    assert journaled
    print(f"\nredis down for good: exit {proc.returncode} after {took:.1f} s: {lines[0]}")


def test_down_beyond_the_bound_then_resume_against_the_same_venues_loses_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The session stops (Redis gone longer than the bound: one line), Redis comes back,
    ``arbkit live --resume`` continues against the same venues (``arbkit emulator venues``, its
    own process): read back with ccxt, no order twice, no fill lost, every position equal."""
    from arbkit.runtime import crashsuite as cs

    monkeypatch.setenv("ARBKIT_REDIS_OUTAGE_S", "2")  # (the suite's processes inherit it)
    quotes, cfg = cs.make_market(tmp_path, routes=2, hours=0.5, seed=13)
    server = Server(tmp_path / "redis")
    vproc, vfile = cs.start_venues(tmp_path, quotes, cfg, 10.0, 0.0, 13)
    res = cs.SuiteResult(routes=2)
    try:
        proc = cs.start_live(tmp_path, cfg, vfile, server.url, False, None, None,
                        tmp_path / "first.log")
        try:
            deadline = time.monotonic() + 60
            while True:  # trading: orders went out and were answered
                assert proc.poll() is None, proc.communicate()[1][-3000:]
                with redis_lib.Redis.from_url(server.url, socket_timeout=2) as r:
                    raw = r.get(f"arbkit:session:{cs.SESSION}:heartbeat")
                st = json.loads(raw) if raw else {}
                if st.get("orders_sent", 0) >= 4 and st.get("reports", 0) >= 4:
                    break
                assert time.monotonic() < deadline, st
                time.sleep(0.1)
            server.stop(signal.SIGKILL)
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert proc.returncode == 1 and len(lines) == 1 and "--resume" in lines[0], err[-3000:]
        server.start()
        monkeypatch.delenv("ARBKIT_REDIS_OUTAGE_S")
        cs.final_run(tmp_path, cfg, vfile, server.url, 20.0, res)  # --resume, then reduce only
        assert not res.refused, res.refused
        cs.check_venue(tmp_path, vfile, res)
    finally:
        cs.stop_venues(vproc)
        server.close()
    print(f"\nredis down beyond the bound, then --resume: exit 1 with {lines[0]!r}; venue "
          f"{res.venue_orders} orders, {res.venue_trades} trades; session {res.session_fills} "
          f"fills, {res.session_trades} round trips; duplicates {res.duplicates}, lost fills "
          f"{res.lost_fills}, phantom {res.phantom_fills}, positions equal "
          f"{sum(abs(d) < 0.5 for d in res.position_diffs.values())}/{len(res.position_diffs)}")
    assert res.venue_trades >= 4 and res.session_trades >= 1
    assert res.duplicates == 0 and res.lost_fills == 0 and res.phantom_fills == 0
    assert res.unknown_venue_orders == 0
    assert len(res.position_diffs) == 4
    assert all(abs(d) < 0.5 for d in res.position_diffs.values()), res.position_diffs
