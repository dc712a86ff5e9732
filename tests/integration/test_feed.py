"""The paper/live market-data feeds (`arbkit.venues.feed`): the real ccxt.pro client against
local emulators (one per venue, `emulator.multi.run_venues`), with dropped, stalled, rate
limited, garbled and gapped streams. Nothing leaves 127.0.0.1.

Every emitted quote is mapped back to the replayed row it must equal (rows are unique over
the replayed span), which checks at once that quotes are real (no ghost levels, no invented
prices) and that they never go back in time.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import polars as pl
import pytest

from arbkit.config.model import InstrumentConfig
from arbkit.venues.emulator import FaultConfig
from arbkit.venues.emulator.multi import EmulatedVenues, run_venues
from arbkit.venues.feed import FeedSet, StreamSpec
from arbkit.venues.normalize import Quote, from_book, from_ticker, split_key
from tests.integration.test_emulator import LEVELS, quotes_frame

SPEED = 20.0  # 100 ms rows -> one every 5 ms of wall time
VENUES = ("venue_a", "venue_b")
SYMBOLS = {"BTCUSDT": ("BTC", 1.0), "ETHUSDT": ("ETH", 0.1)}  # price scale per symbol
N_ROWS = 4000  # 400 s of data = 20 s of wall time at 20x: more than any test needs


def _frame() -> pl.DataFrame:
    base = quotes_frame(N_ROWS, 100)
    px = [c for c in base.columns if "_px" in c]
    frames = []
    for k, venue in enumerate(VENUES):
        for symbol, (_, scale) in SYMBOLS.items():
            frames.append(base.with_columns(
                pl.lit(venue).alias("venue"), pl.lit(symbol).alias("symbol"),
                pl.col("ts_recv_ns") + k * 1_000_000,  # the venues do not tick in lockstep
                *[(pl.col(c) * scale + k * 0.25 * scale) for c in px]))
    return pl.concat(frames).sort("ts_recv_ns", maintain_order=True)


DATA = _frame()
INSTRUMENTS = [InstrumentConfig(venue=v, symbol=s, base=b, quote="USDT")
               for v in VENUES for s, (b, _) in SYMBOLS.items()]


def _rows() -> dict[str, dict[tuple, int]]:
    """Per instrument key: (touch + deeper levels) -> replayed row index."""
    out: dict[str, dict[tuple, int]] = {}
    for (venue, symbol), rows in DATA.group_by("venue", "symbol", maintain_order=True):
        book = {}
        for i, r in enumerate(rows.iter_rows(named=True)):
            levels = tuple(_r8(r[f"bid_px{s}"], r[f"bid_qty{s}"], r[f"ask_px{s}"],
                               r[f"ask_qty{s}"]) for s in ["", *(f"_{n}" for n in range(1, LEVELS))])
            book[levels] = i
        out[f"{venue}:{symbol}"] = book
    return out


def _r8(*xs: float) -> tuple[float, ...]:
    """As the wire carries them (the emulator writes 8 decimals)."""
    return tuple(round(x, 8) for x in xs)


ROWS = _rows()
TOPS = {k: {levels[0]: i for levels, i in rows.items()} for k, rows in ROWS.items()}


def row_of(q: Quote) -> int:
    """The replayed row a quote equals (its top only for a best bid/ask; every level of a
    book): KeyError if it equals none (an invented or ghost level)."""
    top = _r8(q.bid_px, q.bid_qty, q.ask_px, q.ask_qty)
    if not q.bids and not q.asks:
        return TOPS[q.key][top]
    deeper = tuple(_r8(b[0], b[1], a[0], a[1]) for b, a in zip(q.bids, q.asks, strict=True))
    return ROWS[q.key][(top, *deeper)]


def book_specs(venues: EmulatedVenues, keys: set[str] | None = None) -> list[StreamSpec]:
    return [dataclasses.replace(s, channel="book", levels=LEVELS) for s in venues.specs
            if keys is None or s.key in keys]


@pytest.fixture(scope="module", autouse=True)
def warm_ccxt() -> None:
    import ccxt.pro  # noqa: F401 - a cold import takes seconds: not inside a timed test


@pytest.fixture(autouse=True)
def no_emulator_left_behind() -> Iterator[None]:
    yield
    left = [t.name for t in threading.enumerate() if t.name == "arbkit-emulator"]
    assert not left, f"emulator threads still running: {left}"


class Run:
    """A FeedSet running in this test's event loop, with what it queued and how."""

    def __init__(self, specs: list[StreamSpec], clock: Callable[[], int] = time.time_ns,
                 **kw: Any) -> None:
        self.queue: asyncio.Queue = asyncio.Queue()
        self.feeds = FeedSet(specs, self.queue, clock, **kw)
        self.queued: list[Quote] = []
        self.quotes: list[tuple[float, Quote, bool]] = []  # (monotonic, quote, websocket)
        publish = self.feeds.publish

        def record(ks: Any, quote: Quote, *, websocket: bool) -> None:
            self.quotes.append((time.monotonic(), quote, websocket))
            publish(ks, quote, websocket=websocket)

        self.feeds.publish = record  # type: ignore[method-assign]
        self.task: asyncio.Task | None = None
        self.final: dict[str, dict] = {}

    def drain(self) -> None:
        while not self.queue.empty():
            self.queued.append(self.queue.get_nowait())

    async def until(self, cond: Callable[[], bool], timeout_s: float, step_s: float = 0.01
                    ) -> float:
        """Drain until ``cond()``; the seconds it took (fails after ``timeout_s``)."""
        t0 = time.monotonic()
        while not cond():
            assert time.monotonic() - t0 < timeout_s, f"timed out: {self.feeds.stats()}"
            await asyncio.sleep(step_s)
            self.drain()
        return time.monotonic() - t0

    async def sleep(self, s: float) -> None:
        end = time.monotonic() + s
        await self.until(lambda: time.monotonic() >= end, s + 5)

    def of(self, key: str) -> list[Quote]:
        return [q for _, q, _ in self.quotes if q.key == key]

    def stats(self, key: str) -> dict:
        return self.final.get(key) or self.feeds.stats()[key]


def feed_test(body: Callable[[Run], Awaitable[None]], specs: list[StreamSpec],
              **kw: Any) -> Run:
    async def main() -> Run:
        run = Run(specs, **kw)
        run.task = asyncio.create_task(run.feeds.run())
        try:
            await body(run)
            run.final = run.feeds.stats()  # before stop() sets every state to "down"
        finally:
            run.feeds.stop()
            await asyncio.wait_for(run.task, 10)
        run.drain()
        assert run.queued == [q for _, q, _ in run.quotes]  # everything published is queued
        return run

    return asyncio.run(main())


def assert_replayed_in_order(run: Run, key: str) -> None:
    quotes = run.of(key)
    rows = [row_of(q) for q in quotes]  # KeyError: a quote equal to no replayed row
    assert rows == sorted(rows), f"{key}: quotes went back in time"
    ts = [q.ts_recv_ns for q in quotes]
    assert all(b > a for a, b in zip(ts, ts[1:], strict=False)), f"{key}: receive times"


# --------------------------------------------------------------------------- flow


def test_two_venues_two_symbols_flow_and_equal_the_replayed_rows() -> None:
    async def body(run: Run) -> None:
        await run.until(lambda: all(len(run.of(k)) >= 30 for k in keys), 10)
        await run.sleep(0.3)

    with run_venues(DATA, INSTRUMENTS, SPEED) as venues:
        assert set(venues) == set(VENUES) and len(set(venues.values())) == 2
        assert [s.key for s in venues.specs] == [i.key for i in INSTRUMENTS]
        assert {s.symbol for s in venues.specs} == {"BTC/USDT", "ETH/USDT"}
        # venue_a on best bid/ask, venue_b on the order book (3 levels)
        specs = [s for s in venues.specs if s.key.startswith("venue_a")] + book_specs(
            venues, {s.key for s in venues.specs if s.key.startswith("venue_b")})
        keys = [s.key for s in specs]
        run = feed_test(body, specs)
        sent = {v: e.stats() for v, e in venues.emulators.items()}
    for key in keys:
        assert_replayed_in_order(run, key)
        st = run.stats(key)
        assert st["messages"] >= 30 and st["reconnects"] == 0 and st["silences"] == 0
        assert st["crossed"] == 0 and st["garbage"] == 0
    book = run.of("venue_b:ETHUSDT")
    assert all(len(q.bids) == len(q.asks) == LEVELS - 1 for q in book)
    assert any(q.ts_exch_ns is not None for q in book)  # depth diffs carry the event time
    assert all(q.ts_exch_ns is None for q in run.of("venue_a:BTCUSDT"))  # bookTicker: none
    assert all(s.ws_connections == 1 for s in sent.values())  # both symbols on one socket


def test_receive_times_strictly_increase_per_key_even_on_a_frozen_clock() -> None:
    frozen = 1_800_000_000 * 10**9

    async def body(run: Run) -> None:
        await run.until(lambda: all(len(run.of(k)) >= 20 for k in keys), 10)

    with run_venues(DATA, INSTRUMENTS[:2], SPEED) as venues:
        keys = [s.key for s in venues.specs]
        run = feed_test(body, venues.specs, clock=lambda: frozen)
    for key in keys:
        ts = [q.ts_recv_ns for q in run.of(key)]
        assert ts == list(range(frozen, frozen + len(ts)))  # one ns apart: ties bumped


# --------------------------------------------------------------------------- faults


def test_a_dropped_websocket_is_bridged_by_rest_polls_then_rebuilt_without_ghost_levels(
) -> None:
    key = "venue_b:BTCUSDT"

    async def body(run: Run) -> None:
        await run.until(lambda: run.stats(key)["reconnects"] >= 1, 10)
        n = run.stats(key)["messages"]
        await run.until(lambda: run.stats(key)["messages"] > n + 50, 10)

    faults = {"venue_b": FaultConfig(drop_ws_after_messages=300)}
    with run_venues(DATA, INSTRUMENTS, SPEED, faults) as venues:
        run = feed_test(body, book_specs(venues, {key}), poll_every_s=0.2)
        emu = venues.emulators["venue_b"].stats()
    assert emu.ws_drops == 1 and emu.ws_connections == 2
    st = run.stats(key)
    assert st["rest_polls"] >= 3 and st["reconnects"] == 1
    assert any("onnection closed" in e for e in st["errors"]), st["errors"]
    ws = [w for _, q, w in run.quotes if q.key == key]
    first_live = ws.index(True)  # (REST may answer first, while the socket is dialled)
    down = first_live + ws[first_live:].index(False)
    assert ws[down:].count(False) >= 3 and True in ws[down:]  # polled, then live again
    # quotes kept coming while the socket was down (>= 1 s backoff, polls every 0.2 s)
    times = [t for t, q, _ in run.quotes if q.key == key]
    assert max(b - a for a, b in zip(times, times[1:], strict=False)) < 0.6
    assert emu.rest_by_path["/api/v3/depth"] >= 2  # ccxt's snapshot per connect, and polls
    assert_replayed_in_order(run, key)  # every level of every book is a replayed level


def test_a_stalled_stream_is_detected_within_the_idle_timeout_and_polled_meanwhile() -> None:
    key = "venue_a:BTCUSDT"

    async def body(run: Run) -> None:
        await run.until(lambda: run.stats(key)["messages"] >= 50, 10)
        emu.stall_now(3.5)  # the open socket hangs (a redialled one is served)
        t_stall = time.monotonic()
        await run.until(lambda: run.stats(key)["silences"] >= 1, 5, step_s=0.005)
        detected.append(time.monotonic() - t_stall)
        await run.until(lambda: run.stats(key)["rest_polls"] >= 2, 5)
        await run.until(lambda: run.stats(key)["state"] == "live", 10)

    detected: list[float] = []
    with run_venues(DATA, INSTRUMENTS, SPEED) as venues:
        emu = venues.emulators["venue_a"]
        run = feed_test(body, [s for s in venues.specs if s.key == key], poll_every_s=0.2)
    assert 1.8 <= detected[0] < 2.5, f"stall detected after {detected[0]:.2f} s"
    print(f"stall detected after {detected[0]:.3f} s (idle_timeout_s=2.0)")
    st = run.stats(key)
    assert st["reconnects"] >= 1 and any("silent for" in e for e in st["errors"])
    assert_replayed_in_order(run, key)


def test_a_429_storm_backs_the_poller_off_and_the_feed_recovers() -> None:
    key = "venue_a:ETHUSDT"

    async def body(run: Run) -> None:
        await run.until(lambda: run.stats(key)["messages"] >= 30, 10)
        emu.faults.set(http_429_every=1)
        # every socket goes silent, redialled ones too: only REST could deliver, and it 429s
        emu.stall_now(4.0, new_connections=True)
        window.append(time.time())
        await run.sleep(3.5)
        window.append(time.time())
        states.append(run.stats(key)["state"])
        await run.until(lambda: run.stats(key)["state"] == "live", 10)
        emu.faults.clear()

    window: list[float] = []
    states: list[str] = []
    with run_venues(DATA, INSTRUMENTS, SPEED) as venues:
        emu = venues.emulators["venue_a"]
        run = feed_test(body, [s for s in venues.specs if s.key == key], idle_timeout_s=0.5,
                        poll_every_s=0.1)
        log = emu.stats().rest_log
    storm = [r for r in log if window[0] <= r.wall_s <= window[1]]
    polls = [r.wall_s for r in storm if r.path == "/api/v3/ticker/bookTicker"]
    # polling every 0.1 s for ~3 s would be ~30 requests; Retry-After (1 s) and the
    # exponential backoff leave a handful, further and further apart
    assert 1 <= len(polls) <= 6, polls
    assert all(b - a >= 0.9 for a, b in zip(polls, polls[1:], strict=False)), polls
    assert all(r.status == 429 for r in storm)
    assert states == ["down"]
    st = run.stats(key)
    assert any("DDoSProtection" in e and "rate limiting" in e for e in st["errors"])
    assert_replayed_in_order(run, key)


def test_garbage_frames_are_counted_and_never_stop_the_feed() -> None:
    key = "venue_b:ETHUSDT"

    async def body(run: Run) -> None:
        await run.until(lambda: run.stats(key)["garbage"] >= 10, 10)
        # a frame that looks like JSON but is cut: bare ccxt stops reading the socket
        emu.faults.set(garbage_every=4, garbage_payload='{"e":"depthUpdate",')
        n = run.stats(key)["messages"]
        await run.until(lambda: run.stats(key)["messages"] >= n + 100, 10)

    faults = {"venue_b": FaultConfig(garbage_every=3)}
    with run_venues(DATA, INSTRUMENTS, SPEED, faults) as venues:
        emu = venues.emulators["venue_b"]
        run = feed_test(body, book_specs(venues, {key}))
        sent = emu.stats().ws_garbage_sent
    st = run.stats(key)
    assert st["garbage"] >= 30 and st["garbage"] <= sent
    assert st["silences"] == 0 and st["reconnects"] == 0 and st["state"] == "live"
    assert any("unreadable websocket frame" in e for e in st["errors"])
    assert_replayed_in_order(run, key)


def test_a_sequence_gap_replaces_the_book_with_a_rest_snapshot() -> None:
    key = "venue_a:BTCUSDT"

    async def body(run: Run) -> None:
        await run.until(lambda: run.stats(key)["gaps"] >= 1, 10)
        await run.until(lambda: run.stats(key)["rest_polls"] >= 1, 5)
        n = run.stats(key)["messages"]
        await run.until(lambda: run.stats(key)["messages"] >= n + 30, 10)

    faults = {"venue_a": FaultConfig(depth_gap_after_messages=150)}
    with run_venues(DATA, INSTRUMENTS, SPEED, faults) as venues:
        run = feed_test(body, book_specs(venues, {key}), poll_every_s=0.2)
        emu = venues.emulators["venue_a"].stats()
    assert emu.ws_depth_gaps == 1 and emu.ws_connections == 1  # resubscribed, not redialled
    st = run.stats(key)
    assert st["gaps"] == 1 and st["state"] == "live"
    assert any("sequence gap" in e for e in st["errors"])
    ws = [w for _, q, w in run.quotes if q.key == key]
    first_live = ws.index(True)
    assert False in ws[first_live:]  # a REST snapshot went out between the gap and rebuild
    assert_replayed_in_order(run, key)


def test_the_exchange_object_is_recreated_after_repeated_silent_sessions() -> None:
    key = "venue_a:BTCUSDT"

    async def body(run: Run) -> None:
        await run.until(lambda: run.stats(key)["messages"] >= 20, 10)
        emu.stall_now(30.0, new_connections=True)
        await run.until(lambda: run.stats(key)["recreated"] >= 1, 15)
        n = run.stats(key)["rest_polls"]
        await run.until(lambda: run.stats(key)["rest_polls"] >= n + 3, 5)  # REST goes on

    with run_venues(DATA, INSTRUMENTS, SPEED) as venues:
        emu = venues.emulators["venue_a"]
        run = feed_test(body, [s for s in venues.specs if s.key == key], idle_timeout_s=0.2,
                        backoff_min_s=0.1, backoff_max_s=0.2, poll_every_s=0.2)
        connections = emu.stats().ws_connections
    st = run.stats(key)
    assert st["silences"] >= 4 and connections >= 5
    assert any("recreating the binance exchange object" in e for e in st["errors"])
    assert_replayed_in_order(run, key)


# --------------------------------------------------------------------------- pieces


def test_one_encoder_for_feeds_and_recorder() -> None:
    ob = {"bids": [[100.0, 1.0], [99.5, 2.0]], "asks": [[100.5, 3.0]], "timestamp": 1_000}
    q = from_book("binance_spot:BTC/USDT:USDT", ob, 7, levels=3)
    assert split_key(q.key) == ("binance_spot", "BTC/USDT:USDT")
    row = q.row(3)
    assert row["bid_px_1"] == 99.5 and row["ask_qty_1"] == 0.0 and row["ask_px_1"] != row[
        "ask_px_1"] and row["ts_exch_ns"] == 1_000_000_000 and row["venue"] == "binance_spot"
    assert from_book("k:x", {"bids": [], "asks": [[1.0, 1.0]]}, 7, 1) is None
    t = from_ticker("k:x", {"bid": 101.0, "bidVolume": None, "ask": 100.0, "askVolume": 1.0}, 9)
    assert t is not None and t.crossed and t.bid_qty == 0.0 and t.ts_exch_ns is None


def test_bad_specs_are_refused_before_anything_connects() -> None:
    from arbkit.errors import ConfigError

    with pytest.raises(ConfigError, match="channel"):
        StreamSpec("a:X", "binance", "X/USDT", channel="trades")
    with pytest.raises(ConfigError, match="channel='book'"):
        StreamSpec("a:X", "binance", "X/USDT", levels=5)
    spec = StreamSpec("a:X", "binance", "X/USDT")
    with pytest.raises(ConfigError, match="twice"):
        FeedSet([spec, spec], asyncio.Queue(), time.time_ns)
    with pytest.raises(ConfigError, match="both be BTCUSDT"):
        with run_venues(DATA, [INSTRUMENTS[0], dataclasses.replace(INSTRUMENTS[0],
                                                                   symbol="BTC-USDT")]):
            pass
    with pytest.raises(ConfigError, match="no quote rows for venue_c:BTCUSDT"):
        with run_venues(DATA, [dataclasses.replace(INSTRUMENTS[0], venue="venue_c")]):
            pass


def test_an_unknown_symbol_is_one_line_in_stats_and_the_others_flow() -> None:
    async def body(run: Run) -> None:
        await run.until(lambda: run.stats(good.key)["messages"] >= 10, 10)

    with run_venues(DATA, INSTRUMENTS[:1], SPEED) as venues:
        good = venues.specs[0]
        bad = dataclasses.replace(good, key="venue_a:DOGEUSDT", symbol="DOGE/USDT")
        run = feed_test(body, [good, bad])
    st = run.stats(bad.key)
    assert st["state"] == "down" and st["messages"] == 0
    assert len(st["errors"]) == 1 and "not a market of binance" in st["errors"][0]
