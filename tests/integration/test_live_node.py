"""The live node (runtime/live.py) with an in-process venue: orders leave through the outbox,
reports come back through the queue as journaled events, a recording replays to the same
rows, a restart sends nothing twice, and the hard cap refuses without sending.

The venue here fills like the simulator (the kernel's own book, as tests/unit/test_external.py)
and answers on the next turn of the event loop; the ccxt execution client against the
emulator's private API is tested in tests/integration/test_execution.py.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import numpy as np
import pytest

from arbkit.config import load_config
from arbkit.core import types as T
from arbkit.core.book import take
from arbkit.data.synth import write_scenario
from arbkit.engine.backtest import prepare
from arbkit.runtime.clock import wall_ns
from arbkit.runtime.live import LiveNode, replay_recording
from arbkit.runtime.node import NodeOptions
from arbkit.runtime.replay import ReplaySource
from arbkit.store import open_store
from arbkit.store.redis import SessionStore

pytestmark = pytest.mark.redis
TAG = uuid.uuid4().hex[:10]


class SimVenue:
    """An in-process venue matching each order at the book the kernel holds when it is sent;
    reports arrive on a later turn of the loop. ``sent`` lists every order id it received."""

    def __init__(self, silent_after: int | None = None, journal: list | None = None,
                 lost_after: int | None = None) -> None:
        self.silent_after = silent_after  # orders after this many are never answered
        # the client's own journal of reports (seq, report), shared across a "restart";
        # reports after ``lost_after`` are journaled but never reach the node (it died first)
        self.journal = [] if journal is None else journal
        self.lost_after = lost_after
        self.redelivered = 0
        self.node: LiveNode | None = None
        self.sent: list[int] = []
        self.recovered: list[int] = []
        self.on_report = None

    async def start(self, on_report) -> None:
        self.on_report = on_report

    def submit(self, it: dict) -> None:
        assert self.node is not None
        self.sent.append(it["oid"])
        if self.silent_after is not None and len(self.sent) > self.silent_after:
            return
        rep = self._fill(it)
        self.journal.append((len(self.journal) + 1, rep))
        if self.lost_after is not None and len(self.journal) > self.lost_after:
            return
        asyncio.get_running_loop().call_soon(self.on_report, rep, len(self.journal))

    def _fill(self, it: dict) -> tuple:
        st = self.node.session.state
        i = self.node.keys.index(it["inst"])
        inst = st.inst[i]
        if inst["has_quote"] == 0 or inst["crossed"] == 1:
            return (0, it["oid"], 0.0, 0.0, 0.0, T.ST_REJECTED, T.RJ_VENUE, 0)
        side = T.ASK if it["side"] == T.BUY else T.BID
        filled, px, levels = take(st, i, side, it["qty"], it["limit_px"], inst["lot"])
        if filled <= 0:
            return (0, it["oid"], 0.0, 0.0, 0.0, T.ST_CANCELLED, 0, 0)
        status = T.ST_FILLED if filled >= it["qty"] - 1e-6 * inst["lot"] else T.ST_PARTIAL
        return (0, it["oid"], filled, px, filled * px * inst["fee_rate"], status, 0, levels)

    async def recover(self, intents: list[dict], after: dict[int, int]) -> None:
        known = set()
        for seq, rep in self.journal:
            known.add(rep[1])
            if seq > after.get(0, 0):  # journaled by the client, never seen by the node
                self.redelivered += 1
                self.on_report(rep, seq)
        for it in intents:
            if it["oid"] in known:
                continue
            # never sent in this venue's life: nothing filled
            self.recovered.append(it["oid"])
            self.on_report((0, it["oid"], 0.0, 0.0, 0.0, T.ST_CANCELLED, 0, 0))

    async def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def scenario(tmp_path_factory) -> tuple[Path, Path]:
    out = tmp_path_factory.mktemp("live-data")
    write_scenario("always-win", out, n_events=30_000)
    return out / "quotes.parquet", out / "config.toml"


def _node(data: Path, cfg_path: Path, tmp: Path, redis_url: str, name: str, venue: SimVenue,
          **kw) -> tuple[LiveNode, object]:
    cfg = load_config(cfg_path)
    arrays = prepare(data, cfg).arrays
    results = open_store(path=tmp / "results.duckdb")
    kw.setdefault("settle_s", 0.3)
    node = LiveNode(cfg, execution=venue, store=SessionStore(redis_url, f"{name}-{TAG}"),
                    results=results, record_dir=tmp / "rec" / name, clock=wall_ns,
                    source_factory=lambda q, skip: ReplaySource(q, arrays, skip, speed=None),
                    options=NodeOptions(session=f"{name}-{TAG}", checkpoint_s=0.05,
                                        heartbeat_ms=None, **kw.pop("options", {})), **kw)
    venue.node = node
    return node, results


def test_orders_go_out_once_and_a_recording_replays_to_the_same_rows(scenario, tmp_path,
                                                                     redis_url) -> None:
    data, cfg_path = scenario
    venue = SimVenue()
    node, results = _node(data, cfg_path, tmp_path, redis_url, "parity", venue)
    asyncio.run(node.run())
    node.finish()
    rep = node.report()
    assert rep.trades >= 2, rep  # (how many depends on when the reports arrive)
    assert len(venue.sent) == len(set(venue.sent)) == node.n_sent > 0  # each order once
    assert node.n_reports == len(venue.sent)
    assert not node.session.working()
    run_id = rep.run_id
    live = {k: results.frame(k, run_id) for k in ("trades", "fills")}
    results.close()
    again = replay_recording(tmp_path / "rec" / "parity", load_config(cfg_path))
    assert again["trades"].shape[0] == live["trades"].height
    assert again["fills"].shape[0] == live["fills"].height
    np.testing.assert_array_equal(again["trades"]["net_pnl"], live["trades"]["net_pnl"].to_numpy())
    np.testing.assert_array_equal(again["fills"]["px"], live["fills"]["px"].to_numpy())
    np.testing.assert_array_equal(again["fills"]["oid"], live["fills"]["oid"].to_numpy())


def test_a_hard_cap_refuses_without_sending(scenario, tmp_path, redis_url) -> None:
    data, cfg_path = scenario
    venue = SimVenue()
    node, results = _node(data, cfg_path, tmp_path, redis_url, "capped", venue,
                          max_notional=1.0)
    asyncio.run(node.run())
    node.finish()
    results.close()
    assert node.n_capped > 0 and venue.sent == []
    assert node.report().trades == 0  # nothing ever filled: no position, no round trip
    assert not node.session.working()


def test_a_restart_replays_without_sending_and_resolves_open_orders(scenario, tmp_path,
                                                                    redis_url) -> None:
    data, cfg_path = scenario
    first = SimVenue(silent_after=7)  # then the process "dies" with orders out, unanswered
    node, results = _node(data, cfg_path, tmp_path, redis_url, "restart", first)
    asyncio.run(node.run())
    results.close()
    open_before = node.session.working()
    assert len(first.sent) > 7 and open_before
    # the next process replays the journal, sends nothing again and asks the venue about the
    # orders still open (this venue never got them: cancelled, nothing filled)
    second = SimVenue()
    node2, results2 = _node(data, cfg_path, tmp_path, redis_url, "restart", second,
                            options={"resume": True})
    asyncio.run(node2.run())
    node2.finish()
    results2.close()
    assert node2.resumed_from is not None
    assert second.recovered == open_before
    assert not set(second.sent) & set(first.sent)  # nothing sent twice
    assert not node2.session.working()


def test_reports_the_node_never_journaled_are_delivered_again_exactly_once(
        scenario, tmp_path, redis_url) -> None:
    data, cfg_path = scenario
    shared: list = []
    first = SimVenue(journal=shared, lost_after=9)  # the node dies before it sees report 10+
    node, results = _node(data, cfg_path, tmp_path, redis_url, "lost", first)
    asyncio.run(node.run())
    results.close()
    assert len(shared) > 9 and node.report_seq == {0: 9}
    second = SimVenue(journal=shared)
    node2, results2 = _node(data, cfg_path, tmp_path, redis_url, "lost", second,
                            options={"resume": True})
    asyncio.run(node2.run())
    node2.finish()
    fills = results2.frame("fills", node2.run_id)
    results2.close()
    assert second.redelivered == len(shared) - 9
    assert not node2.session.working()
    assert fills["oid"].is_unique().all()  # one fill per order here: none booked twice
    assert set(fills["oid"].to_list()) <= {rep[1] for _, rep in shared}
