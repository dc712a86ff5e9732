"""Stress scenarios: each one a transform of a config or of prepared event arrays.

A scenario takes the config and the prepared arrays of one window (and the baseline run on
them, to know when positions were open) and returns the changed pair, or says why it does not
apply to this preset. Nothing here runs the kernel; ``engine/stress.py`` does.

- ``baseline``: the preset as it is.
- ``fees_x2``: every instrument's taker fee x2.
- ``slippage_x2``: every book size (the touch and each depth level) halved and the slippage
  bounds (``max_slippage_bps``, ``unwind_max_slippage_bps``, ``chase_max_slippage_bps``) x2.
  Slippage here is not a parameter but measured (fill VWAP vs the touch at decision): an order
  walking a book half as deep goes about twice as far (on a uniform book exactly twice), and
  the doubled bound lets it. On L1-only data the halved touch shows as smaller or partial
  fills rather than worse prices.
- ``latency_x3``: order, jitter and acknowledgement latency of every instrument x3.
- ``quote_noise``: every quote's prices (both sides and every depth level, so no book is
  crossed) moved by one seeded normal draw of ``noise_bps`` standard deviation.
- ``flash_crash``: one venue's prices (every level) x (1 - ``crash_pct`` %) for ``crash_s``
  seconds, then back (the next quote after the window is the recorded one).
- ``venue_outage``: one venue's quotes removed for ``outage_s`` seconds: the kernel's data-gap
  handling (``run.max_gap_s``) closes what it holds there and blocks entries.
- ``fx_stale``: the FX updates of every series the routes use removed for ``fx_stale_s``
  seconds (the last rate stays in force; ``[[fx]] max_age_s`` decides whether entries stop).
  n/a without an FX route.
- ``funding_spike``: one funding payment of ``funding_spike_bps`` on a perpetual, signed so
  the position held pays it (longs pay a positive rate). n/a without a perpetual.

Where it happens (which venue, when) is seeded: the crash, the outage and the funding spike
start halfway through a round trip of the baseline picked with the seed (so they hit an open
position; the stressed run is identical to the baseline until then), or at a seeded quote of
the venue when the baseline never traded. ``venue`` pins the venue.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from arbkit.config import Config
from arbkit.config.load import from_dict
from arbkit.core import types as T
from arbkit.engine.backtest import BacktestResult, Prepared
from arbkit.errors import ConfigError

S = 1_000_000_000
SCENARIOS = ("baseline", "fees_x2", "slippage_x2", "latency_x3", "quote_noise", "flash_crash",
             "venue_outage", "fx_stale", "funding_spike")
SLIP_KEYS = ("max_slippage_bps", "unwind_max_slippage_bps", "chase_max_slippage_bps")


@dataclass(frozen=True)
class StressParams:
    """How hard each scenario hits (defaults are the documented ones)."""

    seed: int = 0
    noise_bps: float = 1.0
    crash_pct: float = 10.0
    crash_s: float = 60.0
    outage_s: float = 600.0
    fx_stale_s: float = 3600.0
    funding_spike_bps: float = 100.0
    venue: str | None = None


@dataclass
class Applied:
    """A scenario's config and arrays, and one line saying what was done."""

    cfg: Config
    prep: Prepared
    detail: str


class NotApplicable(Exception):
    """The scenario does not apply to this preset (the reason is the message)."""


def check_names(names: list[str]) -> list[str]:
    """The scenario names, checked; ``baseline`` always runs first."""
    bad = [n for n in names if n not in SCENARIOS]
    if bad:
        raise ConfigError(f"--scenarios: unknown scenario {bad[0]!r}; use any of "
                          f"{', '.join(SCENARIOS)} (comma-separated)")
    return ["baseline"] + [n for n in SCENARIOS if n in names and n != "baseline"]


def apply(name: str, cfg: Config, prep: Prepared, base: BacktestResult, params: StressParams,
          rng: np.random.Generator) -> Applied:
    """Scenario ``name`` on one window; raises ``NotApplicable`` with the reason."""
    if name == "baseline":
        return Applied(cfg, prep, "the preset as it is")
    return _FUNCS[name](_Ctx(cfg, prep, base, params, rng))


@dataclass
class _Ctx:
    cfg: Config
    prep: Prepared
    base: BacktestResult
    p: StressParams
    rng: np.random.Generator

    @property
    def ev(self) -> np.ndarray:
        return self.prep.arrays.events

    def venues(self) -> list[str]:
        """Venues of the routes' instruments, in config order."""
        out: list[str] = []
        for rc in self.cfg.routes:
            for key in (rc.a, rc.b):
                v = self.cfg.instrument(key).venue
                if v not in out:
                    out.append(v)
        return out

    def insts_of(self, venue: str) -> np.ndarray:
        keys = self.prep.arrays.inst_keys
        return np.array([i for i, k in enumerate(keys) if self.cfg.instrument(k).venue == venue],
                        dtype=np.int64)


def _cfg(cfg: Config, name: str, *, inst: dict[str, float] | None = None,
         strategy: dict[str, float] | None = None) -> Config:
    """``cfg`` with instrument fields and strategy fields (also route overrides) multiplied;
    infeasible routes allowed to run (a stressed cost may make the entry unreachable: that
    shows as no trades, with a note)."""
    d = cfg.to_dict()
    for i in d["instruments"]:
        for k, f in (inst or {}).items():
            i[k] = i[k] * f
    s = dict(d["strategy"])
    for k, f in (strategy or {}).items():
        s[k] = s[k] * f
    s["allow_infeasible"] = True
    d["strategy"] = s
    for r in d["routes"]:
        r["strategy"] = {k: (v * strategy[k] if strategy and k in strategy else v)
                         for k, v in (r.get("strategy") or {}).items()}
        if r["strategy"]:
            r["strategy"]["allow_infeasible"] = True
    return from_dict(d, source=f"<stress {name}>")


def _with(prep: Prepared, events: np.ndarray, depth: np.ndarray | None = None) -> Prepared:
    arrays = dataclasses.replace(prep.arrays, events=events,
                                 depth=prep.arrays.depth if depth is None else depth)
    return dataclasses.replace(prep, arrays=arrays, cache_entry=None)


def _scale_prices(prep: Prepared, ev: np.ndarray, mask: np.ndarray, f: np.ndarray | float,
                  qty: bool = False) -> np.ndarray:
    """Multiply the prices (or, ``qty``, the sizes) of the masked events, every depth level
    too; returns the changed depth array (``ev`` is changed in place)."""
    cols = (("bid_qty", "ask_qty"), (1, 3)) if qty else (("bid_px", "ask_px"), (0, 2))
    f = np.broadcast_to(np.asarray(f, dtype=np.float64), mask.shape)[mask]
    for c in cols[0]:
        ev[c][mask] = ev[c][mask] * f
    depth = prep.arrays.depth
    rows = ev["depth_row"][mask]
    has = rows >= 0
    if depth.size and has.any():
        depth = depth.copy()
        for c in cols[1]:
            depth[rows[has], c] *= f[has][:, None]
    return depth


def _quotes(ev: np.ndarray, insts: np.ndarray | None = None) -> np.ndarray:
    m = ev["kind"] == T.EV_QUOTE
    return m if insts is None else m & np.isin(ev["inst"], insts)


def _fees(c: _Ctx) -> Applied:
    return Applied(_cfg(c.cfg, "fees_x2", inst={"taker_fee_bps": 2.0}), c.prep,
                   "taker fees x2: " + ", ".join(f"{i.key} {2 * i.taker_fee_bps:g} bps"
                                                 for i in c.cfg.instruments))


def _slippage(c: _Ctx) -> Applied:
    ev = c.ev.copy()
    depth = _scale_prices(c.prep, ev, _quotes(ev), 0.5, qty=True)
    s = c.cfg.strategy
    return Applied(_cfg(c.cfg, "slippage_x2", strategy={k: 2.0 for k in SLIP_KEYS}),
                   _with(c.prep, ev, depth),
                   f"book sizes / 2 (every level); slippage bounds x2 (entry "
                   f"{2 * s.max_slippage_bps:g}, unwind {2 * s.unwind_max_slippage_bps:g}, "
                   f"chase {2 * s.chase_max_slippage_bps:g} bps)")


def _latency(c: _Ctx) -> Applied:
    keys = {"order_latency_ms": 3.0, "order_latency_jitter_ms": 3.0, "ack_latency_ms": 3.0}
    return Applied(_cfg(c.cfg, "latency_x3", inst=keys), c.prep,
                   "order/ack latency x3: " + ", ".join(
                       f"{i.key} {3 * i.order_latency_ms:g}/{3 * i.ack_latency_ms:g} ms"
                       for i in c.cfg.instruments))


def _noise(c: _Ctx) -> Applied:
    ev = c.ev.copy()
    m = _quotes(ev)
    f = np.ones(ev.shape[0])
    f[m] = 1.0 + c.rng.standard_normal(int(m.sum())) * c.p.noise_bps * 1e-4
    depth = _scale_prices(c.prep, ev, m, f)
    return Applied(c.cfg, _with(c.prep, ev, depth),
                   f"every quote moved by N(0, {c.p.noise_bps:g} bps), both sides and levels "
                   f"together ({int(m.sum()):,} quotes, seed {c.p.seed})")


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / S, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _hit(c: _Ctx, perp_only: bool = False, lasts_s: float = 0.0) -> tuple[str, int, int, str]:
    """(venue, instant, instrument index, how it was picked): halfway through a seeded round
    trip of the baseline (the long leg's venue, or ``venue``), else a seeded quote. Round
    trips whose halfway point leaves ``lasts_s`` of data after it are preferred."""
    tr = c.base.trades
    keys = c.prep.arrays.inst_keys
    cands = []
    for row in tr.iter_rows(named=True) if tr.height else []:
        rc = c.cfg.routes[int(row["route"])]
        legs = (rc.a, rc.b) if int(row["dir"]) == 1 else (rc.b, rc.a)  # (long, short)
        for key in legs:
            inst = c.cfg.instrument(key)
            if perp_only and inst.kind == "spot":
                continue
            if c.p.venue not in (None, inst.venue):
                continue
            end = int(row["exit_ts"]) if not row["is_open"] else int(c.ev["ts_recv"][-1])
            t = int(row["entry_ts"]) + max(0, end - int(row["entry_ts"])) // 2
            cands.append((inst.venue, t, keys.index(key), f"halfway through baseline trade "
                          f"{row['trade_id']} ({'long' if key == legs[0] else 'short'} "
                          f"{key})"))
            break  # the long leg first: a crash there hurts the position
    fits = [x for x in cands if x[1] + lasts_s * S <= int(c.ev["ts_recv"][-1])]
    if fits or cands:
        pick = (fits or cands)[int(c.rng.integers(len(fits or cands)))]
        left = (int(c.ev["ts_recv"][-1]) - pick[1]) / S
        return pick if fits else (*pick[:3], f"{pick[3]}; the data ends {left:.0f} s later")
    venues = [v for v in c.venues() if c.p.venue in (None, v)]
    if perp_only:
        venues = [v for v in venues if any(c.cfg.instrument(k).kind != "spot"
                                           for k in keys if k.startswith(v + ":"))]
    if not venues:
        raise NotApplicable(f"venue {c.p.venue!r} is not in the preset's routes (venues: "
                            f"{', '.join(c.venues())})")
    v = venues[int(c.rng.integers(len(venues)))]
    insts = c.insts_of(v)
    if perp_only:
        insts = np.array([i for i in insts if c.cfg.instrument(keys[i]).kind != "spot"])
    idx = np.flatnonzero(_quotes(c.ev, insts))
    if idx.size == 0:
        raise NotApplicable(f"venue {v} has no quote in the window")
    lo, hi = int(idx.size * 0.1), max(int(idx.size * 0.9), int(idx.size * 0.1) + 1)
    k = int(idx[lo + int(c.rng.integers(hi - lo))])
    return v, int(c.ev["ts_recv"][k]), int(c.ev["inst"][k]), "a seeded quote (the baseline " \
        "made no trade)"


def _crash(c: _Ctx) -> Applied:
    v, t0, _, how = _hit(c, lasts_s=c.p.crash_s)
    t1 = t0 + round(c.p.crash_s * S)
    ev = c.ev.copy()
    ts = ev["ts_recv"]
    m = _quotes(ev, c.insts_of(v)) & (ts >= t0) & (ts < t1)
    depth = _scale_prices(c.prep, ev, m, 1.0 - c.p.crash_pct / 100.0)
    return Applied(c.cfg, _with(c.prep, ev, depth),
                   f"{v} prices -{c.p.crash_pct:g}% from {_iso(t0)} UTC for {c.p.crash_s:g} s "
                   f"({int(m.sum()):,} quotes; {how})")


def _outage(c: _Ctx) -> Applied:
    v, t0, _, how = _hit(c, lasts_s=c.p.outage_s)
    t1 = t0 + round(c.p.outage_s * S)
    ts = c.ev["ts_recv"]
    m = _quotes(c.ev, c.insts_of(v)) & (ts >= t0) & (ts < t1)
    return Applied(c.cfg, _with(c.prep, c.ev[~m]),
                   f"{v} silent from {_iso(t0)} UTC for {c.p.outage_s:g} s ({int(m.sum()):,} "
                   f"quotes removed; {how})")


def _fx_stale(c: _Ctx) -> Applied:
    used = sorted({k for i in c.cfg.instruments for k in [_fx_index(c.cfg, i.quote)]
                   if k is not None})
    if not used:
        raise NotApplicable("no FX route (every leg is quoted in the reference currency "
                            f"{c.cfg.run.reference_ccy})")
    ev = c.ev
    ts = ev["ts_recv"]
    q = np.flatnonzero(ev["kind"] == T.EV_QUOTE)
    fx = (ev["kind"] == T.EV_FX) & np.isin(ev["inst"], used)
    if q.size:
        fx &= ts >= ts[q[0]]  # not the rates in force at the window's start
    idx = np.flatnonzero(fx)
    if idx.size == 0:
        raise NotApplicable("no FX update inside the window (a daily series on a short span):"
                            " the rate is already unchanged throughout")
    t0 = int(ts[idx[int(c.rng.integers(idx.size))]])
    t1 = t0 + round(c.p.fx_stale_s * S)
    m = fx & (ts >= t0) & (ts < t1)
    names = ", ".join(c.cfg.fx[k].symbol for k in used)
    return Applied(c.cfg, _with(c.prep, ev[~m]),
                   f"FX {names} not updated from {_iso(t0)} UTC for {c.p.fx_stale_s:g} s "
                   f"({int(m.sum())} updates removed)")


def _fx_index(cfg: Config, ccy: str) -> int | None:
    conv = cfg.fx_for(ccy)
    return None if conv is None else conv[0]


def _funding(c: _Ctx) -> Applied:
    from arbkit.data.carry import insert

    keys = c.prep.arrays.inst_keys
    perps = [k for k in keys if c.cfg.instrument(k).kind != "spot"]
    if not perps:
        raise NotApplicable("no perpetual in the preset (spot legs pay no funding)")
    v, t, i, how = _hit(c, perp_only=True)
    long = _held_long(c, i, t)
    rate = (1.0 if long in (True, None) else -1.0) * c.p.funding_spike_bps * 1e-4
    ev = c.ev
    before = np.flatnonzero((ev["kind"] == T.EV_QUOTE) & (ev["inst"] == i)
                            & (ev["ts_recv"] <= t))
    if before.size == 0:
        raise NotApplicable(f"{keys[i]} has no quote before the spike")
    last = ev[before[-1]]
    extra = np.zeros(1, T.EVENT_DTYPE)
    extra["ts_recv"] = extra["ts_exch"] = t
    extra["inst"] = i
    extra["kind"] = T.EV_FUNDING
    extra["bid_px"] = rate
    extra["ask_px"] = 0.5 * (last["bid_px"] + last["ask_px"])
    extra["depth_row"] = -1
    side = {True: "held long: it pays", False: "held short: it pays", None: "no position"}[long]
    return Applied(c.cfg, _with(c.prep, insert(ev, extra)),
                   f"one funding payment of {rate * 1e4:+g} bps on {keys[i]} at {_iso(t)} UTC "
                   f"({side}; {how})")


def _held_long(c: _Ctx, i: int, t: int) -> bool | None:
    """Whether the baseline held instrument ``i`` long at ``t`` (None: not held)."""
    key = c.prep.arrays.inst_keys[i]
    end_all = int(c.ev["ts_recv"][-1])
    for row in c.base.trades.iter_rows(named=True) if c.base.trades.height else []:
        end = end_all if row["is_open"] else int(row["exit_ts"])
        if not int(row["entry_ts"]) <= t <= end:
            continue
        rc = c.cfg.routes[int(row["route"])]
        if key in (rc.a, rc.b):
            return (key == rc.a) == (int(row["dir"]) == 1)
    return None


_FUNCS: dict[str, Any] = {
    "fees_x2": _fees, "slippage_x2": _slippage, "latency_x3": _latency,
    "quote_noise": _noise, "flash_crash": _crash, "venue_outage": _outage,
    "fx_stale": _fx_stale, "funding_spike": _funding,
}
