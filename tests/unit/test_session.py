"""The Session every driver uses: draining output rows and snapshot/restore never change a
result, bit for bit (what paper/live sessions rely on to run for days and survive a crash)."""

from __future__ import annotations

import numpy as np
import pytest

from arbkit.core import types as T
from arbkit.data.events import build_events
from arbkit.data.synth import generate
from arbkit.engine.session import Session
from arbkit.engine.state import BUFFERS

pytestmark = pytest.mark.nojit


@pytest.fixture(scope="module")
def market():
    frame, cfg = generate("always-win", n_events=40_000)
    return cfg, build_events(frame, [i.key for i in cfg.instruments])


def whole(cfg, arrays) -> dict[str, np.ndarray]:
    s = Session(cfg, arrays)
    s.feed(arrays.events)
    s.finish()
    return s.drain()


def test_draining_every_few_events_changes_no_row(market) -> None:
    cfg, arrays = market
    want = whole(cfg, arrays)
    assert want["trades"].shape[0] >= 10
    s = Session(cfg, arrays, capacity=64)
    got = {k: [] for k in BUFFERS}
    ev = arrays.events
    for lo in range(0, ev.shape[0], 777):
        s.feed(ev[lo:lo + 777])
        for k, rows in s.drain().items():
            got[k].append(rows)
    s.finish()
    for k, rows in s.drain().items():
        got[k].append(rows)
    for k in BUFFERS:
        assert np.concatenate(got[k]).tobytes() == want[k].tobytes(), k
    assert s.drained["trades"] == want["trades"].shape[0]


@pytest.mark.parametrize("cut", [1, 2_345, 20_001, 39_999])
def test_a_restored_snapshot_goes_on_exactly_as_the_session_that_never_stopped(market,
                                                                              cut) -> None:
    cfg, arrays = market
    want = whole(cfg, arrays)
    ev = arrays.events
    s = Session(cfg, arrays)
    s.feed(ev[:cut])
    first = s.drain()
    blob = s.snapshot()
    del s
    r = Session.restore(cfg, blob)
    r.feed(ev[cut:], arrays.depth)  # (a restored session has no arrays of its own)
    r.finish()
    rest = r.drain()
    for k in BUFFERS:
        got = np.concatenate([first[k], rest[k]])
        assert got.tobytes() == want[k].tobytes(), k


def test_a_snapshot_is_refused_for_another_config(market) -> None:
    import dataclasses

    from arbkit.errors import ConfigError

    cfg, arrays = market
    s = Session(cfg, arrays)
    s.feed(arrays.events[:100])
    other = dataclasses.replace(cfg, strategy=dataclasses.replace(cfg.strategy, entry_bps=99.0))
    with pytest.raises(ConfigError, match="another config"):
        Session.restore(other, s.snapshot())


def test_status_reports_every_route(market) -> None:
    cfg, arrays = market
    s = Session(cfg, arrays)
    s.feed(arrays.events[:5000], flush=True)
    st = s.status()
    assert st["events"] == 5000 and len(st["routes"]) == 1
    assert st["routes"][0]["state"] in T.ROUTE_STATE_TEXT
