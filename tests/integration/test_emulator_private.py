"""The emulator's private (trading) API driven by the real ccxt client (4.5, async REST and
ccxt.pro): signed requests, IOC orders by client id, queries, balances, my trades, cancels,
the user-data stream (listenKey websocket and ccxt.pro's websocket API), and every injected
fault of Binance's awkward parts. The emulator's own order records are the ground truth.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import aiohttp
import ccxt
import pytest

from arbkit.venues.emulator import FaultConfig, run_emulator
from tests.integration.private_venue import (
    ASK0,
    BID0,
    KEY,
    account_config,
    pro_client,
    run_with,
)

IOC = {"timeInForce": "IOC"}


@pytest.fixture(autouse=True)
def no_emulator_left_behind() -> Iterator[None]:
    yield
    left = [t.name for t in threading.enumerate() if t.name == "arbkit-emulator"]
    assert not left, f"emulator threads still running: {left}"


def ioc(cid: str) -> dict:
    return {**IOC, "newClientOrderId": cid}


# --------------------------------------------------------------------------- signed REST


def test_ioc_order_walks_the_book_and_every_query_agrees_with_the_venue_records() -> None:
    with run_emulator(account_config()) as emu:
        async def body(ex: Any) -> dict:
            order = await ex.create_order("BTC/USDT", "limit", "buy", 1.5, 30001.5,
                                          ioc("ak-t1.1.0"))
            by_cid = await ex.fetch_order(None, "BTC/USDT", {"origClientOrderId": "ak-t1.1.0"})
            trades = await ex.fetch_my_trades("BTC/USDT")
            balance = await ex.fetch_balance()
            return {"order": order, "by_cid": by_cid, "trades": trades, "balance": balance}

        got = run_with(emu, body)
        (rec,) = emu.account.orders()
    order = got["order"]
    assert order["clientOrderId"] == "ak-t1.1.0" and order["status"] == "closed"
    assert order["filled"] == 1.5 and order["average"] == pytest.approx((ASK0 + 30001.5 * 0.5)
                                                                         / 1.5)
    assert [(t["price"], t["amount"]) for t in got["trades"]] == [(ASK0, 1.0), (30001.5, 0.5)]
    assert [int(t["id"]) for t in got["trades"]] == [f.trade_id for f in rec.fills]
    assert got["by_cid"]["id"] == str(rec.order_id) and got["by_cid"]["filled"] == 1.5
    assert rec.status == "FILLED" and rec.executed_qty == Decimal("1.5") and rec.answer == "sent"
    cost = Decimal("30000.5") + Decimal("30001.5") * Decimal("0.5")
    fee = (cost * Decimal("0.001")).quantize(Decimal("1e-8"))
    assert got["balance"]["BTC"]["free"] == 3.5
    assert Decimal(str(got["balance"]["USDT"]["free"])) == Decimal("100000") - cost - fee
    assert emu.account.balance("USDT").free == Decimal("100000") - cost - fee


def test_ioc_beyond_the_limit_expires_partly_filled_and_nothing_filled_expires_empty() -> None:
    with run_emulator(account_config()) as emu:
        async def body(ex: Any) -> tuple[dict, dict]:
            part = await ex.create_order("BTC/USDT", "limit", "sell", 2.0, BID0, ioc("p1"))
            none = await ex.create_order("BTC/USDT", "limit", "buy", 0.1, 29000.0, ioc("p2"))
            return part, none

        part, none = run_with(emu, body)
        recs = {o.client_order_id: o for o in emu.account.orders()}
    assert part["status"] == "expired" and part["filled"] == 1.0  # only the touch was in limit
    assert recs["p1"].status == "EXPIRED" and recs["p1"].executed_qty == 1
    assert none["status"] == "expired" and none["filled"] == 0 and not recs["p2"].fills


def test_open_orders_and_cancel_by_client_id() -> None:
    with run_emulator(account_config()) as emu:
        async def body(ex: Any) -> tuple[list, dict, list]:
            await ex.create_order("BTC/USDT", "limit", "buy", 0.1, 29000.0,
                                  {"timeInForce": "GTC", "newClientOrderId": "rest-1"})
            open_now = await ex.fetch_open_orders("BTC/USDT")
            cancelled = await ex.cancel_order(None, "BTC/USDT", {"origClientOrderId": "rest-1"})
            return open_now, cancelled, await ex.fetch_open_orders("BTC/USDT")

        open_now, cancelled, after = run_with(emu, body)
        assert emu.account.balance("USDT").locked == 0
        (rec,) = emu.account.orders()
    assert [o["clientOrderId"] for o in open_now] == ["rest-1"]
    assert cancelled["status"] == "canceled" and after == [] and rec.status == "CANCELED"


def test_signature_secret_and_recv_window_are_checked() -> None:
    with run_emulator(account_config()) as emu:
        async def wrong_secret(ex: Any) -> None:
            with pytest.raises(ccxt.AuthenticationError, match="-1022"):
                await ex.fetch_balance()

        run_with(emu, wrong_secret, secret="not-the-secret")

        async def stale(ex: Any) -> None:
            # ccxt signs with milliseconds() - options["timeDifference"]; recvWindow from options
            ex.options["recvWindow"] = 5000
            ex.options["timeDifference"] = 6000  # signed 6 s ago
            with pytest.raises(ccxt.InvalidNonce, match="-1021"):
                await ex.fetch_balance()
            ex.options["recvWindow"] = 10_000  # a wider window lets the same age through
            await ex.fetch_balance()
            ex.options["timeDifference"] = -5000  # a clock ahead of the venue's
            with pytest.raises(ccxt.InvalidNonce, match="-1021"):
                await ex.fetch_balance()

        run_with(emu, stale)
        assert emu.account.orders() == []


def test_filters_and_balance_refusals_book_nothing() -> None:
    with run_emulator(account_config(balances={"USDT": "100"})) as emu:
        async def body(ex: Any) -> None:
            with pytest.raises(ccxt.ExchangeError, match="-1013"):  # 0.0001 x 30000 < 5
                await ex.create_order("BTC/USDT", "limit", "buy", 0.0001, 30000.0, ioc("f1"))
            with pytest.raises(ccxt.InsufficientFunds):
                await ex.create_order("BTC/USDT", "limit", "buy", 0.1, ASK0, ioc("f2"))
            raw = ex.privatePostOrder({"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT",
                                       "timeInForce": "IOC", "quantity": "0.001",
                                       "price": "30000.555", "newClientOrderId": "f3"})
            with pytest.raises(ccxt.ExchangeError, match="PRICE_FILTER"):
                await raw

        run_with(emu, body)
        assert emu.account.orders() == []


def test_a_client_id_is_refused_while_open_and_accepted_again_once_closed() -> None:
    with run_emulator(account_config()) as emu:
        async def body(ex: Any) -> None:
            gtc = {"timeInForce": "GTC", "newClientOrderId": "dup-1"}
            await ex.create_order("BTC/USDT", "limit", "buy", 0.1, 29000.0, gtc)
            with pytest.raises(ccxt.InvalidOrder, match="Duplicate order sent"):
                await ex.create_order("BTC/USDT", "limit", "buy", 0.1, 29000.0, gtc)
            await ex.create_order("BTC/USDT", "limit", "buy", 0.1, ASK0, ioc("dup-2"))
            await ex.create_order("BTC/USDT", "limit", "buy", 0.1, ASK0, ioc("dup-2"))
            found = await ex.fetch_order(None, "BTC/USDT", {"origClientOrderId": "dup-2"})
            assert found["id"] == str(emu.account.orders_by_client_id("dup-2")[-1].order_id)

        run_with(emu, body)
        assert emu.account.duplicate_client_ids() == {"dup-2": 2}  # the venue booked both IOCs


def test_lookup_of_an_order_never_booked_is_a_definite_no_such_order() -> None:
    with run_emulator(account_config()) as emu:
        async def body(ex: Any) -> None:
            with pytest.raises(ccxt.OrderNotFound, match="-2013"):
                await ex.fetch_order(None, "BTC/USDT", {"origClientOrderId": "never"})

        run_with(emu, body)


# --------------------------------------------------------------------------- user-data stream


async def _listen_key_events(emu: Any, n: int, action: Any) -> list[dict]:
    """Open a listenKey stream, run ``action``, return the first ``n`` events."""
    async with aiohttp.ClientSession(headers={"X-MBX-APIKEY": KEY}) as http:
        async with http.post(f"{emu.http_url}/api/v3/userDataStream") as resp:
            key = (await resp.json())["listenKey"]
        async with http.put(f"{emu.http_url}/api/v3/userDataStream",
                            params={"listenKey": key}) as resp:
            assert resp.status == 200
        async with http.ws_connect(f"{emu.ws_url}/ws/{key}") as ws:
            await action()
            out = []
            while len(out) < n:
                msg = await asyncio.wait_for(ws.receive(), 3)
                out.append(json.loads(msg.data))
            return out


def test_listen_key_stream_sends_execution_reports_and_account_positions() -> None:
    with run_emulator(account_config()) as emu:
        async def body(ex: Any) -> list[dict]:
            async def place() -> None:
                await ex.create_order("BTC/USDT", "limit", "buy", 1.5, 30001.5, ioc("ws-1"))

            return await _listen_key_events(emu, 4, place)

        events = run_with(emu, body)
    assert [(e["e"], e.get("x"), e.get("X")) for e in events] == [
        ("executionReport", "NEW", "NEW"),
        ("executionReport", "TRADE", "PARTIALLY_FILLED"),
        ("executionReport", "TRADE", "FILLED"),
        ("outboundAccountPosition", None, None)]
    assert {e["c"] for e in events[:3]} == {"ws-1"}
    assert [e["l"] for e in events[1:3]] == ["1.00000000", "0.50000000"]
    assert len({e["t"] for e in events[1:3]}) == 2
    balances = {b["a"]: b["f"] for b in events[3]["B"]}
    assert balances["BTC"] == "3.50000000"


def test_user_stream_faults_send_events_twice_and_out_of_order() -> None:
    faults = FaultConfig(user_event_duplicate_every=2, user_event_reorder_every=3)
    with run_emulator(account_config(faults=faults)) as emu:
        async def body(ex: Any) -> list[dict]:
            async def place() -> None:
                await ex.create_order("BTC/USDT", "limit", "buy", 1.5, 30001.5, ioc("f-1"))

            return await _listen_key_events(emu, 6, place)

        events = run_with(emu, body)
        stats = emu.stats()
    kinds = [(e["e"], e.get("x"), e.get("t")) for e in events]
    # 1: NEW, 2: TRADE a (sent twice), 3: TRADE b (held back), 4: position (twice), then b
    new, a, a2, pos, pos2, b = kinds
    assert new[1] == "NEW" and a == a2 and a[1] == "TRADE" and pos == pos2
    assert pos[0] == "outboundAccountPosition" and b[1] == "TRADE" and b[2] == a[2] + 1
    assert stats.user_events_duplicated == 2 and stats.user_events_reordered == 1


def test_ccxt_pro_watch_orders_and_my_trades_see_every_fill() -> None:
    """ccxt.pro 4.5 subscribes through the websocket API; a watch call wakes on the next
    event only, so what arrived between calls is read from its caches (as the feeds do)."""
    with run_emulator(account_config()) as emu:
        async def body(ex: Any) -> tuple[list, list]:
            trades_task = asyncio.create_task(ex.watch_my_trades("BTC/USDT"))
            orders_task = asyncio.create_task(ex.watch_orders("BTC/USDT"))
            await asyncio.sleep(0.3)  # the websocket API subscription is in place
            await ex.create_order("BTC/USDT", "limit", "sell", 1.5, 29998.5, ioc("pro-1"))
            _, orders = await asyncio.wait_for(asyncio.gather(trades_task, orders_task), 3)
            for _ in range(30):
                if sum(t["amount"] for t in ex.myTrades) >= 1.5:
                    break
                await asyncio.sleep(0.05)
            return list(ex.myTrades), list(ex.orders) or orders

        trades, orders = run_with(emu, body)
        (rec,) = emu.account.orders()
    assert sorted(int(t["id"]) for t in trades) == [f.trade_id for f in rec.fills]
    assert orders[-1]["clientOrderId"] == "pro-1" and orders[-1]["status"] == "closed"


def test_user_stream_drop_and_forced_disconnect_close_the_sockets() -> None:
    with run_emulator(account_config(faults=FaultConfig(drop_user_stream_after_events=2))) \
            as emu:
        async def body(ex: Any) -> aiohttp.WSMsgType:
            async with aiohttp.ClientSession(headers={"X-MBX-APIKEY": KEY}) as http:
                async with http.post(f"{emu.http_url}/api/v3/userDataStream") as resp:
                    key = (await resp.json())["listenKey"]
                async with http.ws_connect(f"{emu.ws_url}/ws/{key}") as ws:
                    await ex.create_order("BTC/USDT", "limit", "buy", 1.5, 30001.5, ioc("d-1"))
                    kinds = []
                    while True:
                        msg = await asyncio.wait_for(ws.receive(), 3)
                        if msg.type != aiohttp.WSMsgType.TEXT:
                            break
                        kinds.append(json.loads(msg.data)["e"])
                    assert len(kinds) == 2
                async with http.ws_connect(f"{emu.ws_url}/ws/{key}") as ws:
                    await asyncio.sleep(0.1)
                    assert emu.disconnect_all() >= 1
                    msg = await asyncio.wait_for(ws.receive(), 3)
                    return msg.type

        assert run_with(emu, body) in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        assert emu.stats().user_stream_drops == 1


def test_user_stream_drops_once_per_venue_or_on_every_connection() -> None:
    from arbkit.venues.emulator.faults import FaultState

    once = FaultState(FaultConfig(drop_user_stream_after_events=3))
    assert [once.should_drop_user_stream(n) for n in (2, 3, 3, 4)] == [False, True, False, False]
    every = FaultState(FaultConfig(drop_user_stream_after_events=3, drop_user_stream_repeat=True))
    assert [every.should_drop_user_stream(n) for n in (2, 3, 3, 4)] == [False, True, True, True]


# --------------------------------------------------------------------------- order faults


def _fault_outcome(kind: str, **fault_kw: Any) -> tuple[type[Exception], list, float]:
    """Send one IOC order through ``kind``: what ccxt raised, the venue's records, seconds."""
    with run_emulator(account_config(faults=FaultConfig(**fault_kw))) as emu:
        emu.faults.fail_next_orders(kind)

        async def body(ex: Any) -> tuple[type[Exception], float]:
            t0 = time.monotonic()
            try:
                await ex.create_order("BTC/USDT", "limit", "buy", 0.5, ASK0, ioc("flt-1"))
            except ccxt.BaseError as exc:
                return type(exc), time.monotonic() - t0
            raise AssertionError(f"{kind}: the order went through without an error")

        err, took = run_with(emu, body, timeout_ms=700)
        return err, emu.account.orders(), took


@pytest.mark.parametrize(("kind", "error", "booked", "answer"), [
    ("hang_after_accept", ccxt.RequestTimeout, True, "lost"),
    ("drop_after_accept", ccxt.NetworkError, True, "lost"),
    ("unknown_booked", ccxt.RequestTimeout, True, "unknown"),  # -1007 with HTTP 408
    ("unknown_not_booked", ccxt.RequestTimeout, False, None),
    ("server_error_booked", ccxt.ExchangeNotAvailable, True, "unknown"),
    ("server_error_not_booked", ccxt.ExchangeNotAvailable, False, None),
    ("reject", ccxt.ExchangeError, False, None),  # -2010 "Market is closed." MarketClosed
    ("rate_limit", ccxt.DDoSProtection, False, None),  # HTTP 429 first, -1015 in the text
    ("ban", ccxt.DDoSProtection, False, None),
])
def test_order_fault_what_ccxt_raises_and_what_the_venue_booked(
        kind: str, error: type[Exception], booked: bool, answer: str | None) -> None:
    err, orders, took = _fault_outcome(kind, order_hang_s=2.0)
    assert issubclass(err, error), (kind, err)
    assert [o.answer for o in orders] == ([answer] if booked else [])
    if booked:
        assert orders[0].client_order_id == "flt-1" and orders[0].status == "FILLED"
    if kind == "hang_after_accept":
        assert 0.6 < took < 1.5  # ccxt's own timeout, not the emulator's hang


def test_rate_limits_carry_retry_after_and_a_ban_lasts() -> None:
    with run_emulator(account_config(faults=FaultConfig(retry_after_s=7))) as emu:
        async def body(ex: Any) -> None:
            emu.faults.fail_next_orders("rate_limit")
            with pytest.raises(ccxt.DDoSProtection, match="-1015"):
                await ex.create_order("BTC/USDT", "limit", "buy", 0.5, ASK0, ioc("r-1"))
            assert ex.last_response_headers["Retry-After"] == "7"
            emu.faults.fail_next_orders("ban")
            with pytest.raises(ccxt.DDoSProtection, match="banned"):
                await ex.create_order("BTC/USDT", "limit", "buy", 0.5, ASK0, ioc("r-2"))
            with pytest.raises(ccxt.DDoSProtection):  # the whole API, for Retry-After
                await ex.fetch_open_orders("BTC/USDT")

        run_with(emu, body)
        assert emu.account.orders() == [] and emu.stats().http_418_sent >= 1


def test_partial_fill_fault_gives_a_share_of_the_book() -> None:
    with run_emulator(account_config(faults=FaultConfig(partial_fill_ratio=0.4))) as emu:
        emu.faults.fail_next_orders("partial_fill")

        async def body(ex: Any) -> dict:
            return await ex.create_order("BTC/USDT", "limit", "buy", 1.0, ASK0, ioc("pf-1"))

        order = run_with(emu, body)
        (rec,) = emu.account.orders()
    assert order["filled"] == 0.4 and order["status"] == "expired" and rec.executed_qty == Decimal(
        "0.4")


def test_an_order_placed_by_hand_is_listed_as_open_at_the_venue() -> None:
    with run_emulator(account_config()) as emu:
        emu.account.place_by_hand("BTCUSDT", "BUY", "0.1", "29000")

        async def body(ex: Any) -> list:
            return await ex.fetch_open_orders("BTC/USDT")

        (got,) = run_with(emu, body)
    assert got["clientOrderId"].startswith("web_") and got["status"] == "open"


def test_the_client_helper_signs_with_the_test_key() -> None:
    with run_emulator(account_config()) as emu:
        ex = pro_client(emu)
        assert ex.apiKey == KEY
        asyncio.run(ex.close())
