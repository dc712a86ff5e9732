"""An EXTERNAL venue (live trading): the kernel puts its orders in an outbox and books the
venue's reports with the fill function the simulator uses. A venue that fills exactly as the
simulator would gives the same rows, bit for bit: live and backtest share every line of money
code; only who matches the order differs."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from arbkit.core import types as T
from arbkit.core.book import take
from arbkit.core.orders import _balance_ok
from arbkit.data.events import build_events
from arbkit.data.synth import generate
from arbkit.engine.session import Session
from arbkit.engine.state import BUFFERS


def _instant(cfg):
    """No latency (a report comes back at the instant its order left) on one timeline: what a
    runtime sees when it feeds reports at the time they arrive."""
    insts = tuple(dataclasses.replace(i, order_latency_ms=0.0, ack_latency_ms=0.0)
                  for i in cfg.instruments)
    return dataclasses.replace(cfg, instruments=insts,
                               run=dataclasses.replace(cfg.run, timeline="recv"))


@pytest.fixture(scope="module", params=[("always-win", 30_000), ("flash-crash", 100_000)],
                ids=["always-win", "flash-crash"])
def market(request):
    scenario, n = request.param
    frame, cfg = generate(scenario, n_events=n)
    cfg = _instant(cfg)
    return cfg, build_events(frame, [i.key for i in cfg.instruments])


def _sim(cfg, arrays):
    s = Session(cfg, arrays)
    s.feed(arrays.events)
    s.finish()
    return s.drain()


def _venue_fill(s: Session, o: dict, t: int) -> np.ndarray:
    """A venue matching like the simulator (the kernel's own book and depth-taking)."""
    st = s.state
    i = s.arrays.inst_keys.index(o["inst"])
    inst = st.inst[i]
    if inst["has_quote"] == 0:
        return Session.report_event(t, o["oid"], 0.0, 0.0, 0.0, T.ST_REJECTED, T.RJ_NO_BOOK)
    if inst["crossed"] == 1:
        return Session.report_event(t, o["oid"], 0.0, 0.0, 0.0, T.ST_REJECTED, T.RJ_CROSSED)
    if inst["kind"] == T.KIND_SPOT and not _balance_ok(st, i, o["side"], o["qty"],
                                                       o["limit_px"], t):
        return Session.report_event(t, o["oid"], 0.0, 0.0, 0.0, T.ST_REJECTED, T.RJ_BALANCE)
    side_idx = T.ASK if o["side"] == T.BUY else T.BID
    filled, px, levels = take(st, i, side_idx, o["qty"], o["limit_px"], inst["lot"])
    if filled <= 0.0:
        return Session.report_event(t, o["oid"], 0.0, 0.0, 0.0, T.ST_CANCELLED)
    fee = filled * px * inst["fee_rate"]
    status = T.ST_FILLED if filled >= o["qty"] - 1e-6 * inst["lot"] else T.ST_PARTIAL
    return Session.report_event(t, o["oid"], filled, px, fee, status, levels=levels)


def _venue(split: bool, sent: list[int]):
    """The venue of ``_external`` (a callback for ``Session.set_external``)."""

    def venue(sess: Session) -> list:
        reports = []
        for o in sess.outbox():  # in the order sent
            sess.take(o["oid"])
            sent[0] += 1
            rep = _venue_fill(sess, o, o["t_send"])
            if split and rep[0]["bid_qty"] > 0:
                work = rep.copy()
                work["ask_px"] = 0.0
                reports.append(work)
                rep = Session.report_event(o["t_send"], o["oid"], 0.0, 0.0, 0.0,
                                           int(rep[0]["ask_px"]))
            reports.append(rep)
        return reports

    return venue


def _external(cfg, arrays, split: bool = False, chunks: int = 1):
    """The venue answers the moment the kernel hands an order out (S_OUTBOX): it matches at
    arrival as the simulator would, and its reports come back at the instant the order left
    (``split``: each fill as a working report, then the final one). ``chunks``: the events fed
    in that many pieces (cut anywhere, as a runtime's queue would)."""
    s = Session(cfg, arrays)
    sent = [0]
    venue = _venue(split, sent)
    s.set_external(venue=venue)
    for piece in np.array_split(arrays.events, chunks):
        s.feed(piece)
    assert not s.working() and not s.outbox()
    s.finish()
    return s.drain(), sent[0]


def test_an_external_venue_filling_like_the_simulator_gives_the_same_rows(market) -> None:
    cfg, arrays = market
    want = _sim(cfg, arrays)
    assert want["trades"].shape[0] >= 5
    got, sent = _external(cfg, arrays)
    assert sent == want["olog"].shape[0]
    for k in BUFFERS:
        if k == "olog":
            continue  # (its order-sent / acknowledged columns equal too: compared below)
        assert got[k].tobytes() == want[k].tobytes(), k
    assert got["olog"].tobytes() == want["olog"].tobytes()


def test_fed_in_pieces_the_rows_are_the_same(market) -> None:
    cfg, arrays = market
    want = _sim(cfg, arrays)
    got, _ = _external(cfg, arrays, chunks=7)
    for k in BUFFERS:
        assert got[k].tobytes() == want[k].tobytes(), k


def test_a_restored_session_takes_its_external_venue_again(market) -> None:
    """A live session resumed from its snapshot (the crash suite found a restored session
    without its venue callback: the first order after a resume raised)."""
    cfg, arrays = market
    want, _ = _external(cfg, arrays)
    s, sent = Session(cfg, arrays), [0]
    s.set_external(venue=_venue(False, sent))
    half = arrays.events.shape[0] // 2
    s.feed(arrays.events[:half])
    first = s.drain()
    r = Session.restore(cfg, s.snapshot())
    r.set_external(venue=_venue(False, sent))
    r.feed(arrays.events[half:], arrays.depth)
    assert sent[0] > 0 and not r.working()
    r.finish()
    rest = r.drain()
    for k in BUFFERS:
        got = np.concatenate([first[k], rest[k]])
        assert got.tobytes() == want[k].tobytes(), k


def test_a_fill_reported_in_two_messages_books_the_same_money(market) -> None:
    cfg, arrays = market
    want = _sim(cfg, arrays)
    got, _ = _external(cfg, arrays, split=True)
    assert got["trades"].shape[0] == want["trades"].shape[0]
    for col in ("net_pnl", "fees"):
        if col in want["trades"].dtype.names:
            np.testing.assert_array_equal(got["trades"][col], want["trades"][col])


def test_a_duplicate_or_unknown_report_is_never_booked_twice(market) -> None:
    cfg, arrays = market
    s = Session(cfg, arrays)
    s.set_external()
    ev = arrays.events
    k = 0
    while not s.outbox() and k < ev.shape[0]:
        s.feed(ev[k:k + 1], flush=True)
        k += 1
    o = s.outbox()[0]
    s.take(o["oid"])
    t = int(ev[k - 1]["ts_recv"])
    rep = _venue_fill(s, o, t)
    s.feed(rep, flush=True)
    before = {name: int(s.state.glob[0][c]) for name, c in
              (("fills", "n_fills"), ("olog", "n_orders"))}
    cash = s.state.inst["cash"].copy()
    s.feed(rep, flush=True)  # the same report again
    s.feed(Session.report_event(t, 10**9, 1.0, 100.0, 0.0, T.ST_FILLED), flush=True)  # unknown
    assert int(s.state.glob[0]["n_fills"]) == before["fills"]
    assert int(s.state.glob[0]["n_orders"]) == before["olog"]
    assert s.state.inst["cash"].tobytes() == cash.tobytes()


def test_orders_wait_in_the_outbox_and_are_not_matched_by_the_kernel(market) -> None:
    cfg, arrays = market
    s = Session(cfg, arrays)
    s.set_external()
    s.feed(arrays.events, flush=True)
    s.finish()
    out = s.drain()
    assert out["fills"].shape[0] == 0  # nothing was reported
    assert s.outbox() or s.working() or out["olog"].shape[0] == 0
