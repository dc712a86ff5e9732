"""The execution client against the emulator with the real ccxt client and a real Redis
(its own ``redis-server --appendonly yes --appendfsync always``): fills, partial fills,
every order fault without a duplicate or a lost order, a client killed mid-send, and
reconciliation that refuses to start on an order or position it does not know.

The emulator's own order records are the ground truth (:func:`assert_venue_agrees`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis

from arbkit.core import types as T
from arbkit.errors import ConfigError
from arbkit.venues import order_rules as R
from arbkit.venues.emulator import FaultConfig, run_emulator
from arbkit.venues.execution import KEY_ENV, SECRET_ENV, ExecOptions, ExecutionClient
from tests.integration.private_venue import ASK0, BID0, KEY, SECRET, account_config

INST = "binance_spot:BTCUSDT"
MARKETS = {INST: "BTC/USDT"}
ENV = {KEY_ENV: KEY, SECRET_ENV: SECRET}
FAST = ExecOptions(recv_window_ms=1000, clock_skew_ms=200, timeout_ms=800, check_every_s=0.1,
                   ack_timeout_s=0.4, open_orders_every_s=0.5, balances_every_s=0.5)
ROOT = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------- helpers


def intent(oid: int, side: int = 1, qty: float = 0.5, px: float | None = None) -> dict:
    return {"oid": oid, "inst": INST, "side": side, "qty": qty,
            "limit_px": px if px is not None else (ASK0 + 1 if side > 0 else BID0 - 1),
            "purpose": T.P_ENTRY, "route": 0, "trade_id": oid, "t_send": 0}


def client_for(http_url: str, r: Any, session: str, **kw: Any) -> ExecutionClient:
    kw.setdefault("options", FAST)
    return ExecutionClient(session=session, redis=r, markets=MARKETS, url=http_url, env=ENV,
                           **kw)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _redis_server(tmp: Path, fsync: str) -> tuple[subprocess.Popen, str]:
    if shutil.which("redis-server") is None:
        raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
    port = _free_port()
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                             "--dir", str(tmp), "--appendonly", "yes", "--appendfsync", fsync,
                             "--save", ""], stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    for _ in range(200):
        try:
            redis.Redis.from_url(url).ping()
            return proc, url
        except redis.ConnectionError:
            time.sleep(0.02)
    proc.kill()
    raise RuntimeError("redis-server did not start")


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    proc, url = _redis_server(tmp_path_factory.mktemp("redis"), "always")
    yield url
    proc.terminate()
    proc.wait(10)


class Run:
    """One client session in a test: its reports, alerts and client."""

    def __init__(self) -> None:
        self.reports: list[tuple] = []
        self.alerts: list[str] = []
        self.client: ExecutionClient | None = None

    def by_oid(self, oid: int) -> list[tuple]:
        return [r for r in self.reports if r[1] == oid]


def run_client(emu: Any, url: str, session: str,
               body: Callable[[ExecutionClient, Run], Awaitable[None]], *,
               timeout_s: float = 20.0, **kw: Any) -> Run:
    run = Run()

    async def main() -> None:
        r = aioredis.from_url(url)
        client = client_for(emu.http_url, r, session,
                            on_report=lambda seq, rep: run.reports.append(rep),
                            on_alert=run.alerts.append, **kw)
        run.client = client
        try:
            await asyncio.wait_for(_started(client, body, run), timeout_s)
        finally:
            await client.close()
            await r.aclose()

    asyncio.run(main())
    return run


async def _started(client: ExecutionClient, body: Any, run: Run) -> None:
    await client.start()
    await body(client, run)


async def until_done(client: ExecutionClient, *oids: int, timeout_s: float = 8.0) -> None:
    t0 = time.monotonic()
    while any(client.orders.get(o) is None or client.orders[o].state != "done" for o in oids):
        if time.monotonic() - t0 > timeout_s:
            states = {o: client.orders[o].state if o in client.orders else None for o in oids}
            raise AssertionError(f"orders not final after {timeout_s} s: {states}")
        await asyncio.sleep(0.05)


def assert_venue_agrees(emu: Any, run: Run, oids: list[int]) -> None:
    """Per order: at most one booked venue order, what the reports filled = what the venue
    executed, exactly one final report and it is the last."""
    venue = emu.account.orders()
    assert emu.account.duplicate_client_ids() == {}
    for oid in oids:
        mine = [o for o in venue if o.client_order_id.split(".")[1:2] == [str(oid)]]
        assert len(mine) <= 1, f"order {oid}: {len(mine)} orders at the venue (a duplicate)"
        reps = run.by_oid(oid)
        finals = [r for r in reps if r[5] != 0]
        assert len(finals) == 1 and reps[-1] is finals[0], reps
        executed = mine[0].executed_qty if mine else Decimal(0)
        assert Decimal(repr(sum(r[2] for r in reps))).quantize(Decimal("1e-8")) == executed
        fills = [f for o in mine for f in o.fills]
        assert sum(r[7] for r in reps) == len(fills)  # each venue trade reported once


@pytest.fixture(autouse=True)
def _log_capture(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)


# --------------------------------------------------------------------------- fills


def test_ioc_fills_are_reported_once_each_and_final_last(redis_url: str) -> None:
    with run_emulator(account_config()) as emu:
        async def body(c: ExecutionClient, run: Run) -> None:
            await c.submit(intent(1, qty=1.5, px=30001.5))
            await until_done(c, 1)
            for _ in range(100):  # the websocket's copies of the same trades arrive (under
                # load later than the REST answer: waited for, up to 5 s)
                if c.stats.trades_duplicate >= 2:
                    break
                await asyncio.sleep(0.05)

        run = run_client(emu, redis_url, "happy", body)
        assert_venue_agrees(emu, run, [1])
        (order,) = emu.account.orders()
    fills = [r for r in run.reports if r[2] > 0]
    assert sum(r[2] for r in fills) == 1.5 and sum(r[7] for r in fills) == 2
    vwap = sum(r[2] * r[3] for r in fills) / 1.5
    assert vwap == pytest.approx((ASK0 + 30001.5 * 0.5) / 1.5)
    assert sum(r[4] for r in fills) == pytest.approx(float(sum(f.commission for f in order.fills)))
    assert run.reports[-1][5] == T.ST_FILLED
    assert order.client_order_id == "akhappy.1.0" and order.time_in_force == "IOC"
    assert run.client is not None and run.client.stats.trades_duplicate >= 2  # ws + REST


def test_partial_and_empty_ioc_orders_end_partial_and_cancelled(redis_url: str) -> None:
    with run_emulator(account_config(faults=FaultConfig(partial_fill_ratio=0.4))) as emu:
        async def body(c: ExecutionClient, run: Run) -> None:
            await c.submit(intent(1, side=-1, qty=2.0, px=BID0))  # the touch has 1.0
            await c.submit(intent(2, qty=0.1, px=29000.0))  # below the ask: nothing
            emu.faults.fail_next_orders("partial_fill")
            await c.submit(intent(3, qty=1.0, px=ASK0 + 5))
            await until_done(c, 1, 2, 3)

        run = run_client(emu, redis_url, "partial", body)
        assert_venue_agrees(emu, run, [1, 2, 3])
    assert [run.by_oid(o)[-1][5] for o in (1, 2, 3)] == [T.ST_PARTIAL, T.ST_CANCELLED,
                                                          T.ST_PARTIAL]
    assert sum(r[2] for r in run.by_oid(1)) == 1.0 and sum(r[2] for r in run.by_oid(3)) == 0.4


def test_rounding_and_min_notional_refuse_locally_without_sending(redis_url: str) -> None:
    with run_emulator(account_config()) as emu:
        async def body(c: ExecutionClient, run: Run) -> None:
            await c.submit(intent(1, qty=0.0001))  # 0.0001 x 30001 = 3 < 5 USDT
            await c.submit(intent(2, qty=0.000004))  # below one lot (0.00001)
            await c.submit(intent(3, qty=0.123456789, px=30001.4999))
            await until_done(c, 1, 2, 3)

        run = run_client(emu, redis_url, "rounding", body)
        (order,) = emu.account.orders()
    assert [run.by_oid(o)[-1][5:7] for o in (1, 2)] == [(T.ST_REJECTED, R.RJ_FILTER)] * 2
    assert order.orig_qty == Decimal("0.12345") and order.price == Decimal("30001.49")


# --------------------------------------------------------------------------- faults


@pytest.mark.parametrize("kind", ["hang_after_accept", "drop_after_accept", "unknown_booked",
                                  "server_error_booked"])
def test_unclear_send_of_a_booked_order_resolves_by_lookup_without_resending(
        redis_url: str, kind: str) -> None:
    with run_emulator(account_config(faults=FaultConfig(order_hang_s=1.5))) as emu:
        emu.faults.fail_next_orders(kind)

        async def body(c: ExecutionClient, run: Run) -> None:
            await c.submit(intent(1))
            assert c.orders[1].state in ("unknown", "acked", "done")
            await until_done(c, 1)

        run = run_client(emu, redis_url, f"booked-{kind[:8]}", body)
        assert_venue_agrees(emu, run, [1])
        (order,) = emu.account.orders()
    assert order.answer in ("lost", "unknown") and run.reports[-1][5] == T.ST_FILLED
    assert run.client is not None and run.client.stats.resends == 0


@pytest.mark.parametrize("kind", ["unknown_not_booked", "server_error_not_booked"])
def test_unclear_send_never_booked_is_resent_only_after_its_recv_window(
        redis_url: str, kind: str) -> None:
    with run_emulator(account_config()) as emu:
        emu.faults.fail_next_orders(kind)

        async def body(c: ExecutionClient, run: Run) -> None:
            t0 = time.time()
            await c.submit(intent(1))
            await until_done(c, 1)
            (order,) = emu.account.orders()
            window = (FAST.recv_window_ms + FAST.clock_skew_ms) / 1000
            assert order.received_wall_s - t0 >= window  # not before the first can't land

        run = run_client(emu, redis_url, f"lost-{kind[:8]}", body)
        assert_venue_agrees(emu, run, [1])
        (order,) = emu.account.orders()
    assert order.client_order_id.endswith(".1") and run.reports[-1][5] == T.ST_FILLED


@pytest.mark.parametrize(("kind", "reason"), [("reject", R.RJ_VENUE),
                                              ("rate_limit", R.RJ_RATE_LIMIT),
                                              ("ban", R.RJ_RATE_LIMIT)])
def test_definite_refusals_are_rejected_and_rate_limits_pause_sending(
        redis_url: str, kind: str, reason: int) -> None:
    with run_emulator(account_config(faults=FaultConfig(retry_after_s=1))) as emu:
        emu.faults.fail_next_orders(kind)

        async def body(c: ExecutionClient, run: Run) -> None:
            await c.submit(intent(1))
            await c.submit(intent(2))  # within Retry-After of a rate limit: not sent
            await asyncio.sleep(1.1)
            await c.submit(intent(3))
            await until_done(c, 1, 2, 3)

        run = run_client(emu, redis_url, f"refused-{kind}", body)
        assert_venue_agrees(emu, run, [1, 2, 3])
    assert run.by_oid(1)[-1][5:7] == (T.ST_REJECTED, reason)
    limited = reason == R.RJ_RATE_LIMIT
    assert run.by_oid(2)[-1][5] == (T.ST_REJECTED if limited else T.ST_FILLED)
    assert run.by_oid(3)[-1][5] == T.ST_FILLED


def test_duplicated_and_reordered_user_events_are_applied_once(redis_url: str) -> None:
    faults = FaultConfig(user_event_duplicate_every=2, user_event_reorder_every=3)
    with run_emulator(account_config(faults=faults)) as emu:
        async def body(c: ExecutionClient, run: Run) -> None:
            for oid in range(1, 7):
                await c.submit(intent(oid, side=1 if oid % 2 else -1, qty=0.3))
            await until_done(c, *range(1, 7))
            await asyncio.sleep(0.5)

        run = run_client(emu, redis_url, "dupes", body)
        assert_venue_agrees(emu, run, list(range(1, 7)))
        assert emu.stats().user_events_duplicated > 0


def test_a_user_stream_drop_loses_no_fill(redis_url: str) -> None:
    with run_emulator(account_config()) as emu:
        async def body(c: ExecutionClient, run: Run) -> None:
            await asyncio.sleep(0.3)
            emu.drop_user_streams()
            for oid in range(1, 4):
                await c.submit(intent(oid, qty=0.2))
            await until_done(c, 1, 2, 3)

        run = run_client(emu, redis_url, "drop", body)
        assert_venue_agrees(emu, run, [1, 2, 3])


# --------------------------------------------------------------------------- crashes


def _child(emu: Any, url: str, session: str, oid: int, step: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "tests.integration.exec_child", emu.http_url,
                             url, session, str(oid), step], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("step", ["durable", "answered", "kill_while_hanging"])
def test_client_killed_mid_send_restarts_without_a_duplicate(redis_url: str, step: str) -> None:
    session = f"crash-{step[:6]}"
    with run_emulator(account_config(faults=FaultConfig(order_hang_s=20))) as emu:
        if step == "kill_while_hanging":
            emu.faults.fail_next_orders("hang_after_accept")
        child = _child(emu, redis_url, session, 7, step)
        if step == "kill_while_hanging":
            t0 = time.monotonic()
            while not emu.account.orders() and time.monotonic() - t0 < 15:
                time.sleep(0.02)
            child.send_signal(signal.SIGKILL)  # booked at the venue, the answer never read
        out, err = child.communicate(timeout=30)
        assert child.returncode in (137, -9), (out, err[-2000:])
        booked_before = len(emu.account.orders())
        assert booked_before == (0 if step == "durable" else 1)

        async def body(c: ExecutionClient, run: Run) -> None:
            assert c.state == "ready"
            await until_done(c, 7)

        async def journal(c: ExecutionClient, run: Run) -> None:
            run.reports = [rep for _, rep in await c.reports_after(0)]  # both lives

        run_client(emu, redis_url, session, body)
        run = run_client(emu, redis_url, session, journal)
        assert_venue_agrees(emu, run, [7])
        (order,) = emu.account.orders()
    assert run.reports[-1][5] == T.ST_FILLED and sum(r[2] for r in run.reports) == 0.5
    assert order.client_order_id == f"ak{session}.7.{1 if step == 'durable' else 0}"


# --------------------------------------------------------------------------- reconciliation


def test_reconciliation_halts_on_an_open_order_it_does_not_know(redis_url: str) -> None:
    with run_emulator(account_config()) as emu:
        emu.account.place_by_hand("BTCUSDT", "BUY", "0.1", "29000")

        async def body(c: ExecutionClient, run: Run) -> None:
            assert c.state == "halted"
            await c.submit(intent(1))

        run = run_client(emu, redis_url, "halt-open", body)
        assert len(emu.account.orders()) == 1  # the hand order alone: nothing sent, nothing fixed
    assert run.alerts and "unknown open order" in run.alerts[0]
    assert run.reports[-1][5:7] == (T.ST_REJECTED, R.RJ_HALTED)


def test_reconciliation_halts_on_a_position_it_does_not_know(redis_url: str) -> None:
    with run_emulator(account_config()) as emu:
        async def first(c: ExecutionClient, run: Run) -> None:
            await c.submit(intent(1))
            await until_done(c, 1)

        run_client(emu, redis_url, "halt-pos", first)

        async def again(c: ExecutionClient, run: Run) -> None:
            assert c.state == "ready"  # a clean restart agrees with the venue

        assert run_client(emu, redis_url, "halt-pos", again).alerts == []
        emu.account.place_by_hand("BTCUSDT", "SELL", "0.2")  # a market sell, filled

        async def third(c: ExecutionClient, run: Run) -> None:
            assert c.state == "halted"

        run = run_client(emu, redis_url, "halt-pos", third)
    assert any("unknown fill" in a for a in run.alerts)
    assert any("balance of BTC" in a for a in run.alerts)


def test_journal_refuses_a_redis_that_does_not_fsync_every_write(
        tmp_path: Path) -> None:
    proc, url = _redis_server(tmp_path, "everysec")
    try:
        with run_emulator(account_config()) as emu:
            with pytest.raises(ConfigError, match="appendfsync=everysec"):
                run_client(emu, url, "nofsync", lambda c, run: asyncio.sleep(0))
            assert emu.account.orders() == []
    finally:
        proc.terminate()
        proc.wait(10)


def test_missing_keys_are_one_clear_error() -> None:
    with pytest.raises(ConfigError, match="ARBKIT_BINANCE_SECRET not set"):
        ExecutionClient(session="s", redis=None, markets=MARKETS, env={KEY_ENV: "k"})


def test_no_key_or_secret_in_reports_journal_or_logs(redis_url: str,
                                                     caplog: pytest.LogCaptureFixture,
                                                     capfd: pytest.CaptureFixture) -> None:
    with run_emulator(account_config()) as emu:
        emu.faults.fail_next_orders("unknown_booked")

        async def body(c: ExecutionClient, run: Run) -> None:
            await c.submit(intent(1))
            await c.submit(intent(2, qty=0.0001))
            await until_done(c, 1, 2)

        run = run_client(emu, redis_url, "secrets", body)
    r = redis.Redis.from_url(redis_url)
    dump = [k for k in r.keys("*")]
    for k in list(dump):
        kind = r.type(k)
        dump += (r.hgetall(k).items() if kind == b"hash" else r.lrange(k, 0, -1)
                 if kind == b"list" else [r.get(k)] if kind == b"string" else [])
    out, err = capfd.readouterr()
    client = run.client
    text = " ".join(map(str, [dump, run.reports, run.alerts, caplog.text, out, err,
                              repr(client), client.stats if client else None]))
    assert len(dump) > 3 and "aksecrets.1.0" in text  # the journal was read
    for secret in (SECRET, KEY):
        assert secret not in text
