"""The real ccxt client (sync REST and ccxt.pro websockets) against the local Binance emulator.

Everything runs on 127.0.0.1 with a random free port. Data are small synthetic frames in the
catalog's canonical schema; the replay runs at 20x so a test takes well under a few seconds.
Book rows carry their update id (``FIRST_UPDATE_ID + row + 1``), which is how a test maps what
ccxt shows back to the replayed row it must equal.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import ccxt
import ccxt.pro
import polars as pl
import pytest

from arbkit.data.catalog import Catalog
from arbkit.errors import ConfigError, DataError
from arbkit.venues.emulator import (
    FIRST_UPDATE_ID,
    EmulatorConfig,
    EmulatorServer,
    EmulatorThread,
    FaultConfig,
    FaultState,
    MarketFeed,
    point_ccxt_at,
    run_emulator,
)

T = TypeVar("T")
MS = 1_000_000
S = 1_000_000_000
MIN = 60 * S
T0 = 1_699_999_980 * S  # a whole minute (2023-11-14 22:13:00 UTC)
SPEED = 20.0
LEVELS = 3


# --------------------------------------------------------------------------- data


def quotes_frame(n: int = 2000, step_ms: int = 100, levels: int = LEVELS) -> pl.DataFrame:
    """Book rows whose every level changes from row to row (so diffs are never empty)."""
    rows = []
    for i in range(n):
        mid = 30000 + ((i * 37) % 23) * 0.5
        ts = T0 + i * step_ms * MS
        row: dict[str, Any] = {"ts_recv_ns": ts, "ts_exch_ns": ts - 3 * MS,
                               "venue": "binance_spot", "symbol": "BTCUSDT"}
        for lvl in range(levels):
            sfx = "" if lvl == 0 else f"_{lvl}"
            row[f"bid_px{sfx}"] = mid - 0.5 - lvl
            row[f"bid_qty{sfx}"] = 1 + ((i * 13 + lvl * 5) % 17) / 4
            row[f"ask_px{sfx}"] = mid + 0.5 + lvl
            row[f"ask_qty{sfx}"] = 1 + ((i * 7 + lvl * 3) % 11) / 4
        rows.append(row)
    return pl.DataFrame(rows)


def bars_frame(n: int = 30) -> pl.DataFrame:
    return pl.DataFrame({
        "ts_open_ns": [T0 + i * MIN for i in range(n)],
        "ts_close_ns": [T0 + (i + 1) * MIN for i in range(n)],
        "venue": "binance_spot", "symbol": "BTCUSDT",
        "open": [100.0 + i for i in range(n)], "high": [102.5 + i for i in range(n)],
        "low": [99.0 + i for i in range(n)], "close": [101.0 + i for i in range(n)],
        "volume": [10.0 + i for i in range(n)],
    })


def trades_frame(n: int = 1000, step_ms: int = 150) -> pl.DataFrame:
    return pl.DataFrame({
        "ts_recv_ns": [T0 + i * step_ms * MS for i in range(n)],
        "ts_exch_ns": [T0 + i * step_ms * MS - 2 * MS for i in range(n)],
        "venue": "binance_spot", "symbol": "BTCUSDT",
        "price": [30000.0 + (i % 50) * 0.5 for i in range(n)],
        "qty": [0.001 * (1 + i % 7) for i in range(n)],
        "side": pl.Series([1 if i % 3 else -1 for i in range(n)], dtype=pl.Int8),
        "trade_id": [str(5_000_000 + i) for i in range(n)],
    })


def funding_frame(n: int = 6) -> pl.DataFrame:
    return pl.DataFrame({
        "ts_ns": [T0 + i * 8 * 3600 * S for i in range(n)],
        "venue": "binance_usdm", "symbol": "BTCUSDT",
        "rate": [0.0001 * (i - 2) for i in range(n)],
        "mark_px": [30000.0 + i for i in range(n)],
    })


QUOTES = quotes_frame()
TRADES = trades_frame()


def btc(**sources: Any) -> MarketFeed:
    return MarketFeed(symbol="BTCUSDT", base="BTC", quote="USDT", **sources)


def config(feed: MarketFeed | None = None, **kw: Any) -> EmulatorConfig:
    kw.setdefault("speed", SPEED)
    return EmulatorConfig(markets=[feed or btc(quotes=QUOTES, trades=TRADES)], **kw)


def levels(frame: pl.DataFrame, i: int, side: str, n: int = LEVELS) -> list[list[float]]:
    """Row ``i``'s top ``n`` levels of one side as ccxt lists them."""
    out = []
    for lvl in range(n):
        sfx = "" if lvl == 0 else f"_{lvl}"
        out.append([frame[i, f"{side}_px{sfx}"], frame[i, f"{side}_qty{sfx}"]])
    return out


def row_of(update_id: int) -> int:
    return update_id - FIRST_UPDATE_ID - 1


def sync_binance(emu: EmulatorThread) -> ccxt.binance:
    return point_ccxt_at(ccxt.binance({"timeout": 5000}), emu.http_url)


def run_pro(emu: EmulatorThread, body: Callable[[Any], Awaitable[T]],
            timeout_s: float = 10.0) -> T:
    """Run ``body(exchange)`` with a ccxt.pro binance pointed at ``emu``; always closed."""

    async def main() -> T:
        ex = point_ccxt_at(ccxt.pro.binance({"timeout": 5000}), emu.http_url, emu.ws_url)
        try:
            return await asyncio.wait_for(body(ex), timeout_s)
        finally:
            await ex.close()

    return asyncio.run(main())


@pytest.fixture(autouse=True)
def no_emulator_left_behind() -> Iterator[None]:
    yield
    left = [t.name for t in threading.enumerate() if t.name == "arbkit-emulator"]
    assert not left, f"emulator threads still running: {left}"


# --------------------------------------------------------------------------- REST (sync ccxt)


def test_load_markets_lists_spot_and_perpetual_with_binance_filters() -> None:
    feed = btc(quotes=QUOTES, funding=funding_frame())
    with run_emulator(config(feed, start_paused=True)) as emu:
        ex = sync_binance(emu)
        markets = ex.load_markets()
        assert set(markets) == {"BTC/USDT", "BTC/USDT:USDT"}
        spot = ex.market("BTC/USDT")
        assert spot["spot"] and spot["active"] and spot["id"] == "BTCUSDT"
        assert spot["precision"]["price"] == 0.01 and spot["precision"]["amount"] == 0.00001
        assert spot["limits"]["cost"]["min"] == 5.0
        assert ex.market("BTC/USDT:USDT")["swap"] and ex.market("BTC/USDT:USDT")["linear"]
        assert ex.fetch_time() == emu.clock.now_ms() == T0 // MS
        served = set(emu.stats().rest_by_path)
        assert served == {"/api/v3/exchangeInfo", "/fapi/v1/exchangeInfo", "/api/v3/time"}


def test_fetch_ohlcv_pages_through_exactly_the_closed_bars() -> None:
    bars = bars_frame(30)
    now = T0 + 20 * MIN + 30 * S  # 20 bars closed, the 21st still open
    with run_emulator(config(btc(bars=bars), start_ns=now, start_paused=True)) as emu:
        ex = sync_binance(emu)
        got: list[list[float]] = []
        since = T0 // MS
        while True:
            page = ex.fetch_ohlcv("BTC/USDT", "1m", since=since, limit=7)
            if not page:
                break
            got += page
            since = page[-1][0] + 60_000
        closed = bars.filter(pl.col("ts_close_ns") <= now)
        want = [[r["ts_open_ns"] // MS, r["open"], r["high"], r["low"], r["close"], r["volume"]]
                for r in closed.iter_rows(named=True)]
        assert got == want and len(got) == 20
        assert emu.stats().rest_by_path["/api/v3/klines"] == 4  # 7 + 7 + 6 + an empty page
        assert ex.fetch_ohlcv("BTC/USDT", "1m") == want  # no since: the latest closed bars
        emu.clock.seek(now + MIN)  # one more bar closes
        assert len(ex.fetch_ohlcv("BTC/USDT", "1m", since=T0 // MS)) == 21


def test_fetch_ohlcv_coarser_interval_aggregates_closed_bars() -> None:
    bars = bars_frame(30)
    now = T0 + 30 * MIN
    with run_emulator(config(btc(bars=bars), start_ns=now, start_paused=True)) as emu:
        got = sync_binance(emu).fetch_ohlcv("BTC/USDT", "5m", since=0, limit=100)
    five = 5 * MIN
    want = (bars.group_by((pl.col("ts_open_ns") // five * five).alias("t"), maintain_order=True)
            .agg(pl.col("open").first(), pl.col("high").max(), pl.col("low").min(),
                 pl.col("close").last(), pl.col("volume").sum())
            .filter(pl.col("t") + five <= now))  # Binance 5m bars align to the epoch
    assert got == [[r[0] // MS, *r[1:]] for r in want.iter_rows()]


def test_fetch_order_book_is_the_latest_row_at_or_before_now() -> None:
    with run_emulator(config(start_ns=T0 + 500 * 100 * MS, start_paused=True)) as emu:
        ex = sync_binance(emu)
        book = ex.fetch_order_book("BTC/USDT")
        assert book["nonce"] == FIRST_UPDATE_ID + 501  # rows 0..500 are visible
        assert book["bids"] == levels(QUOTES, 500, "bid")
        assert book["asks"] == levels(QUOTES, 500, "ask")
        assert ex.fetch_order_book("BTC/USDT", limit=1)["bids"] == levels(QUOTES, 500, "bid", 1)
        emu.clock.seek(T0 + 700 * 100 * MS - 1)  # 1 ns before row 700
        assert row_of(ex.fetch_order_book("BTC/USDT")["nonce"]) == 699
        emu.clock.resume()  # and while the replay runs
        for _ in range(5):
            before = emu.clock.now_ns()
            book = ex.fetch_order_book("BTC/USDT")
            after = emu.clock.now_ns()
            i = row_of(book["nonce"])
            assert QUOTES[i, "ts_recv_ns"] <= after and QUOTES[i + 1, "ts_recv_ns"] > before
            assert book["bids"] == levels(QUOTES, i, "bid")
            assert book["asks"] == levels(QUOTES, i, "ask")


def test_fetch_bids_asks_and_trades_list_only_past_rows() -> None:
    now = T0 + 30 * S
    with run_emulator(config(start_ns=now, start_paused=True)) as emu:
        ex = sync_binance(emu)
        top = ex.fetch_bids_asks(["BTC/USDT"])["BTC/USDT"]
        i = 300  # quotes every 100 ms: row 300 is at T0 + 30 s
        assert (top["bid"], top["bidVolume"], top["ask"], top["askVolume"]) == (
            QUOTES[i, "bid_px"], QUOTES[i, "bid_qty"], QUOTES[i, "ask_px"], QUOTES[i, "ask_qty"])
        trades = ex.fetch_trades("BTC/USDT", limit=5)  # aggTrades, ccxt's default
        past = TRADES.filter(pl.col("ts_recv_ns") <= now).tail(5)
        assert [t["id"] for t in trades] == past["trade_id"].to_list()
        assert [t["price"] for t in trades] == past["price"].to_list()
        assert [t["side"] for t in trades] == ["buy" if s == 1 else "sell" for s in past["side"]]
        assert [t["timestamp"] for t in trades] == (past["ts_exch_ns"] // MS).to_list()
        raw = ex.publicGetTrades({"symbol": "BTCUSDT", "limit": 2})
        assert [r["id"] for r in raw] == [int(x) for x in past["trade_id"].tail(2)]


def test_funding_rate_history_lists_only_past_funding() -> None:
    funding = funding_frame(6)
    now = T0 + 17 * 3600 * S  # events at 0 h, 8 h and 16 h have happened
    feed = btc(quotes=QUOTES, funding=funding)
    with run_emulator(config(feed, start_ns=now, start_paused=True)) as emu:
        hist = sync_binance(emu).fetch_funding_rate_history("BTC/USDT:USDT", since=T0 // MS)
    assert [h["timestamp"] for h in hist] == [(T0 + k * 8 * 3600 * S) // MS for k in range(3)]
    assert [h["fundingRate"] for h in hist] == pytest.approx([-0.0002, -0.0001, 0.0])
    assert all(h["symbol"] == "BTC/USDT:USDT" for h in hist)


def test_http_429_raises_ddos_protection_and_the_next_call_succeeds() -> None:
    with run_emulator(config(start_paused=True)) as emu:
        ex = sync_binance(emu)
        ex.load_markets()
        emu.faults.fail_next_rest()
        # ccxt's binance.handle_errors maps status 429 to DDoSProtection before it reads the
        # body, so Binance's code -1003 (RateLimitExceeded in its table) is never consulted
        with pytest.raises(ccxt.DDoSProtection) as err:
            ex.fetch_order_book("BTC/USDT")
        assert not isinstance(err.value, ccxt.RateLimitExceeded)
        assert isinstance(err.value, ccxt.NetworkError) and "-1003" in str(err.value)
        assert ex.last_response_headers["Retry-After"] == "1"
        assert ex.fetch_order_book("BTC/USDT")["nonce"] == FIRST_UPDATE_ID + 1
        emu.faults.set(http_429_every=2)  # every other request, counted server-wide
        outcomes = []
        for _ in range(4):
            try:
                ex.fetch_time()
                outcomes.append("ok")
            except ccxt.DDoSProtection:
                outcomes.append("429")
        assert sorted(outcomes) == ["429", "429", "ok", "ok"]
        assert outcomes[0] != outcomes[1]
        stats = emu.stats()
        assert stats.http_429_sent == 3
        assert [r.status for r in stats.rest_log].count(429) == 3


def test_ccxt_retries_a_429_when_max_retries_on_failure_is_set() -> None:
    with run_emulator(config(start_paused=True)) as emu:
        ex = sync_binance(emu)
        ex.load_markets()
        ex.options["maxRetriesOnFailure"] = 1
        emu.faults.fail_next_rest()
        assert ex.fetch_order_book("BTC/USDT")["nonce"] == FIRST_UPDATE_ID + 1
        assert emu.stats().rest_by_path["/api/v3/depth"] == 2


def test_rest_latency_is_added_to_every_answer() -> None:
    with run_emulator(config(start_paused=True, faults=FaultConfig(latency_ms=300))) as emu:
        ex = sync_binance(emu)
        t = time.perf_counter()
        ex.fetch_time()
        slow = time.perf_counter() - t
        emu.faults.set(latency_ms=0)
        t = time.perf_counter()
        ex.fetch_time()
        fast = time.perf_counter() - t
    assert slow >= 0.3 and fast < slow


def test_unknown_endpoints_and_bad_input_map_to_ccxt_exceptions() -> None:
    with run_emulator(config(start_paused=True)) as emu:
        ex = sync_binance(emu)
        with pytest.raises(ccxt.BadRequest, match="not served by the arbkit emulator"):
            ex.publicGetAvgPrice({"symbol": "BTCUSDT"})
        with pytest.raises(ccxt.BadSymbol):
            ex.publicGetDepth({"symbol": "DOGEUSDT"})
        with pytest.raises(ccxt.BadRequest, match="-1102"):
            ex.publicGetDepth({})
        with pytest.raises(ccxt.BadRequest, match="-1120"):
            ex.publicGetKlines({"symbol": "BTCUSDT", "interval": "7m"})
        with pytest.raises(ccxt.BadRequest, match="-1100"):
            ex.publicGetKlines({"symbol": "BTCUSDT", "interval": "1m", "startTime": "soon"})
        with pytest.raises(ccxt.BadRequest):  # sapi exists on Binance, not here
            ex.sapiGetSystemStatus()
        paths = emu.stats().rest_by_path
        assert paths["/api/v3/avgPrice"] == 1 and paths["/sapi/v1/system/status"] == 1


def test_catalog_stream_backs_a_market(tmp_path: Path) -> None:
    Catalog(tmp_path).add_quotes(QUOTES.head(300), name="synthetic")
    feed = btc(quotes=("binance_spot", "BTCUSDT"))
    now = T0 + 20 * S
    with run_emulator(config(feed, catalog_root=tmp_path, start_ns=now,
                             start_paused=True)) as emu:
        book = sync_binance(emu).fetch_order_book("BTC/USDT")
    assert row_of(book["nonce"]) == 200
    assert book["bids"] == levels(QUOTES, 200, "bid")


# --------------------------------------------------------------------------- websockets (ccxt.pro)


def test_watch_bids_asks_yields_the_replayed_best_bid_and_ask() -> None:
    async def body(ex: Any) -> list[dict]:
        return [(await ex.watch_bids_asks(["BTC/USDT"]))["BTC/USDT"] for _ in range(20)]

    with run_emulator(config()) as emu:
        tickers = run_pro(emu, body)
    ids = [t["info"]["u"] for t in tickers]
    assert ids == sorted(set(ids))
    for t in tickers:
        i = row_of(t["info"]["u"])
        assert (t["bid"], t["bidVolume"], t["ask"], t["askVolume"]) == (
            QUOTES[i, "bid_px"], QUOTES[i, "bid_qty"], QUOTES[i, "ask_px"], QUOTES[i, "ask_qty"])


def test_watch_order_book_top_levels_match_the_replayed_rows() -> None:
    async def body(ex: Any) -> list[tuple[int, list, list]]:
        out = []
        for _ in range(25):
            book = await ex.watch_order_book("BTC/USDT")
            # read nonce and levels together: no await in between, so they are consistent
            out.append((book["nonce"], book["bids"][:LEVELS], book["asks"][:LEVELS]))
            assert len(book["bids"]) == LEVELS  # vanished levels were removed (qty 0)
        return out

    with run_emulator(config()) as emu:
        books = run_pro(emu, body)
        assert emu.stats().rest_by_path["/api/v3/depth"] == 1  # one snapshot, then diffs
    nonces = [n for n, _, _ in books]
    assert nonces == sorted(set(nonces))
    for nonce, bids, asks in books:
        i = row_of(nonce)
        assert bids == levels(QUOTES, i, "bid") and asks == levels(QUOTES, i, "ask")


def test_watch_trades_yields_every_trade_in_order() -> None:
    async def body(ex: Any) -> list[dict]:
        got: list[dict] = []
        while len(got) < 30:
            got += await ex.watch_trades("BTC/USDT")
        return got

    with run_emulator(config()) as emu:
        trades = run_pro(emu, body)
    first = int(trades[0]["id"]) - 5_000_000
    want = TRADES.slice(first, len(trades))
    assert [t["id"] for t in trades] == want["trade_id"].to_list()
    assert [t["price"] for t in trades] == want["price"].to_list()
    assert [t["amount"] for t in trades] == want["qty"].to_list()
    assert [t["side"] for t in trades] == ["buy" if s == 1 else "sell" for s in want["side"]]
    assert [t["timestamp"] for t in trades] == (want["ts_exch_ns"] // MS).to_list()


def test_dropped_websocket_raises_network_error_then_the_next_watch_reconnects() -> None:
    """What ccxt.pro 4.5.90 does when the server cuts a connection.

    The pending watch is rejected with ``ccxt.NetworkError("Connection closed by remote
    server, closing code 1006")`` (1006: no close frame; ``drop_mode="close"`` gives 1011) and
    the client is discarded. The next watch call opens a new connection, subscribes again and
    continues from the replay's now: rows that passed while disconnected are not delivered.
    """

    async def body(ex: Any) -> tuple[list[int], list[str], list[int]]:
        before, errors, after = [], [], []
        while len(after) < 5:
            try:
                u = (await ex.watch_bids_asks(["BTC/USDT"]))["BTC/USDT"]["info"]["u"]
            except ccxt.NetworkError as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                continue
            (after if errors else before).append(u)
        return before, errors, after

    with run_emulator(config(faults=FaultConfig(drop_ws_after_messages=10))) as emu:
        before, errors, after = run_pro(emu, body)
        stats = emu.stats()
    assert errors == ["NetworkError: Connection closed by remote server, closing code 1006"]
    assert stats.ws_drops == 1 and stats.ws_connections == 2
    # a watch returns the latest update: under load two may arrive in one read, so <= 10
    assert 0 < len(before) <= 10 and before == sorted(set(before))
    assert after[0] > before[-1] and after == sorted(set(after))


def test_drop_with_no_watch_pending_reconnects_silently() -> None:
    """No future is waiting when the link dies, so ccxt has nothing to reject: the next watch
    reconnects without any error. A caller that polls must watch for gaps (update ids)."""

    async def body(ex: Any) -> tuple[int, int]:
        first = (await ex.watch_bids_asks(["BTC/USDT"]))["BTC/USDT"]["info"]["u"]
        assert await asyncio.to_thread(emu.drop_now, "close") == 1
        await asyncio.sleep(0.2)
        nxt = (await ex.watch_bids_asks(["BTC/USDT"]))["BTC/USDT"]["info"]["u"]
        return first, nxt

    with run_emulator(config()) as emu:
        first, nxt = run_pro(emu, body)
        stats = emu.stats()
    assert stats.ws_drops == 1 and stats.ws_connections == 2
    assert nxt - first > 20  # ~40 rows passed during the 0.2 s (20x, 100 ms rows)


def test_stalled_websocket_goes_quiet_then_delivers_everything_late() -> None:
    async def body(ex: Any) -> tuple[list[dict], float]:
        got: list[dict] = []
        gap = 0.0
        while len(got) < 40:
            t = time.perf_counter()
            got += await ex.watch_trades("BTC/USDT")
            gap = max(gap, time.perf_counter() - t)
        return got, gap

    faults = FaultConfig(stall_ws_s=0.4, stall_ws_after_messages=5)
    with run_emulator(config(faults=faults)) as emu:
        trades, gap = run_pro(emu, body)
        assert emu.stats().ws_stalls == 1
    assert gap >= 0.35
    ids = [int(t["id"]) for t in trades]
    assert ids == list(range(ids[0], ids[0] + len(ids)))  # nothing lost, only late


def test_garbage_frames_are_ignored_unless_they_look_like_json() -> None:
    """ccxt.pro 4.5.90 passes a non-JSON frame on as a string, and binance's handler ignores
    it (unless it contains both letters "a" and "b": then it is mistaken for a bookTicker and
    raises). A frame that starts like JSON but does not parse raises in ccxt's receive callback:
    the connection stays open but nothing is read from it any more, so watches hang silently
    (no exception). Venue code needs its own watchdog timeout for that."""

    async def collect(ex: Any) -> list[dict]:
        got: list[dict] = []
        while len(got) < 20:
            got += await ex.watch_trades("BTC/USDT")
        return got

    with run_emulator(config(faults=FaultConfig(garbage_every=3))) as emu:
        trades = run_pro(emu, collect)
        ids = [int(t["id"]) for t in trades]
        assert ids == list(range(ids[0], ids[0] + len(ids)))
        assert emu.stats().ws_garbage_sent >= 6

        emu.faults.set(garbage_payload='{"e":"trade",', garbage_every=2)

        async def hangs(ex: Any) -> bool:
            await ex.watch_trades("BTC/USDT")  # the first message arrives
            try:
                for _ in range(5):
                    await asyncio.wait_for(ex.watch_trades("BTC/USDT"), 0.5)
            except TimeoutError:
                return True
            return False

        assert run_pro(emu, hangs)


def test_raw_and_combined_streams_and_requests_with_a_plain_websocket_client() -> None:
    async def first_reply(ws: aiohttp.ClientWebSocketResponse, rid: int | None) -> dict:
        while True:
            msg = await ws.receive_json(timeout=2)
            if ("result" in msg or "error" in msg) and msg.get("id") == rid:
                return msg

    async def body(emu: EmulatorThread) -> None:
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(emu.ws_url + "/ws/btcusdt@trade") as ws:
                assert (await ws.receive_json(timeout=2))["e"] == "trade"
                await ws.send_json({"method": "LIST_SUBSCRIPTIONS", "id": 1})
                assert (await first_reply(ws, 1))["result"] == ["btcusdt@trade"]
                await ws.send_json({"method": "SUBSCRIBE", "params": ["ethusdt@trade"], "id": 2})
                assert (await first_reply(ws, 2))["error"]["code"] == 2
                await ws.send_json({"method": "UNSUBSCRIBE", "params": ["btcusdt@trade"],
                                    "id": 3})
                assert (await first_reply(ws, 3)) == {"result": None, "id": 3}
                await ws.send_str("not json")
                assert (await first_reply(ws, None))["error"]["code"] == 3
            url = emu.ws_url + "/stream?streams=btcusdt@bookTicker/btcusdt@depth@100ms"
            async with session.ws_connect(url) as ws:
                seen = {(await ws.receive_json(timeout=2))["stream"] for _ in range(6)}
                assert seen == {"btcusdt@bookTicker", "btcusdt@depth@100ms"}

    with run_emulator(config()) as emu:
        asyncio.run(body(emu))


# --------------------------------------------------------------------------- server life cycle


def test_server_shuts_down_cleanly_with_clients_connected() -> None:
    async def body(ex: Any) -> int:
        await ex.watch_order_book("BTC/USDT")
        port = emu.server.port
        await asyncio.to_thread(emu.stop)  # while ccxt is still subscribed
        with pytest.raises(ccxt.NetworkError):
            for _ in range(1000):  # messages already received are handed out first
                await ex.watch_order_book("BTC/USDT")
        return port

    emu = EmulatorThread(config()).start()
    port = run_pro(emu, body)
    emu.stop()  # idempotent
    with socket.socket() as s, pytest.raises(ConnectionRefusedError):
        s.connect(("127.0.0.1", port))


def test_async_server_runs_in_the_callers_event_loop() -> None:
    async def main() -> dict:
        async with EmulatorServer(config()) as emu:
            ex = point_ccxt_at(ccxt.pro.binance(), emu.http_url, emu.ws_url)
            try:
                return await asyncio.wait_for(ex.watch_trades("BTC/USDT"), 5)
            finally:
                await ex.close()

    trades = asyncio.run(main())
    assert trades and trades[0]["symbol"] == "BTC/USDT"


def test_every_ccxt_url_points_at_the_emulator() -> None:
    def urls(node: object) -> Iterator[str]:
        if isinstance(node, dict):
            for v in node.values():
                yield from urls(v)
        elif isinstance(node, str):
            yield node

    rest = point_ccxt_at(ccxt.binance(), "http://127.0.0.1:9")
    pro = point_ccxt_at(ccxt.pro.binance(), "http://127.0.0.1:9", "ws://127.0.0.1:9")
    for ex in (rest, pro):
        found = list(urls(ex.urls["api"]))
        assert found and all(u.startswith(("http://127.0.0.1:9/", "ws://127.0.0.1:9/"))
                             for u in found), found
    assert pro.urls["api"]["ws"]["spot"] == "ws://127.0.0.1:9/stream/ws"
    assert pro.urls["api"]["public"] == "http://127.0.0.1:9/api/v3"


def test_bad_configuration_is_refused_with_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="speed"):
        config(speed=0)
    with pytest.raises(ConfigError, match="twice"):
        EmulatorConfig(markets=[btc(quotes=QUOTES), btc(trades=TRADES)])
    with pytest.raises(ConfigError, match="base\\+quote"):
        MarketFeed(symbol="BTCUSD", base="BTC", quote="USDT", quotes=QUOTES)
    with pytest.raises(ConfigError, match="no data"):
        btc()
    with pytest.raises(ConfigError, match="known settings"):
        FaultState().set(drop_after=3)
    with pytest.raises(ConfigError, match="drop_mode"):
        FaultConfig(drop_mode="explode")
    two = pl.concat([QUOTES.head(5), QUOTES.head(5).with_columns(pl.lit("X").alias("venue"))])
    with pytest.raises(DataError, match="2 streams"):
        EmulatorThread(config(btc(quotes=two)))
    with pytest.raises(ConfigError, match="loopback"):
        point_ccxt_at(ccxt.binance(), "https://api.binance.com")
    with pytest.raises(ConfigError, match="base_ws_url"):
        point_ccxt_at(ccxt.pro.binance(), "http://127.0.0.1:1")
    with run_emulator(config(start_paused=True, start_ns=T0 + S)) as emu:
        with pytest.raises(ConfigError, match="only moves forward"):
            emu.clock.seek(T0)
