"""A Session owns the kernel state of one configuration, for every driver: the array backtest,
the day-by-day catalog reader, the grid sweep, and paper/live trading.

- ``feed(events, flush=...)``: hand events to the one loop (``core.loop.run_chunk``);
  growing the output buffers when the kernel asks.
- ``drain()``: hand the output rows written since the last drain to the caller (a store) and
  reuse the buffers, so memory stays flat over days. The kernel never reads its output
  buffers back, so draining never changes a result.
- ``snapshot()`` / ``Session.restore()``: every byte of kernel state (and the few Python-side
  counters) in one blob; restoring it and feeding the same events gives the same rows, bit
  for bit (``tests/unit/test_session.py``).
- ``status()``: what an operator's view shows per route.
- ``finish()``: decide on the last timestamp, settle what is in flight, mark open round trips.

The backtest's ``Runner`` is this class.
"""

from __future__ import annotations

import io
import json
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np

from arbkit.config import OFF, Config
from arbkit.config.model import AUTO
from arbkit.core import types as T
from arbkit.core.loop import ROOM, finish, run_chunk, start
from arbkit.data.events import EventArrays
from arbkit.engine.state import BUFFERS, KernelState, build_state, grow, route_problems
from arbkit.errors import ConfigError, EngineError

# Orders written while the clock and the event index stand still: past this, the kernel is in a
# retry loop at one instant (a bug), and the run stops with an error instead of growing its
# buffers until the machine runs out of memory.
STUCK_ORDERS = 1_000_000
AUTO_GAP_S = 300.0
_COUNT = {"fills": "n_fills", "olog": "n_orders", "trades": "n_trades", "equity": "n_equity",
          "legs": "n_legs", "guards": "n_guard"}


# Called once, just before a Session's first kernel call, then cleared: the CLI's "compiling
# the kernel" notice (cli/compiling.py) waits for it, so a command that fails on its inputs
# before any kernel runs prints its one error line and nothing else.
FIRST_CALL_HOOKS: list[Callable[[], None]] = []


def _first_call() -> None:
    while FIRST_CALL_HOOKS:
        FIRST_CALL_HOOKS.pop()()


class Session:
    """Kernel state for one configuration, and the calls every driver makes.

    ``kinds`` names each instrument's source table (``quotes``, ``quote_bars``, ``bars``): bar
    data runs in bar mode (an order fills at the next bar) and sets the data-gap limit when
    ``run.max_gap_s = "auto"``.
    """

    def __init__(self, cfg: Config, arrays: EventArrays, capacity: int = 4096,
                 signal: Any = None, kinds: dict[str, str] | None = None) -> None:
        problems = route_problems(cfg)
        refused = [p for r, p in problems if not cfg.route_strategy(r).allow_infeasible]
        if refused:
            raise ConfigError(
                "infeasible strategy: " + "; ".join(refused)
                + " (fix the config, or set strategy.allow_infeasible = true to run anyway)"
            )
        self.cfg = cfg
        self.arrays = arrays
        self.problems = [p for _, p in problems]
        self.kinds = dict(kinds or {})
        bars = {k: self.kinds.get(k, "quotes") != "quotes" for k in arrays.inst_keys}
        self.gap_s = gap_limit_s(cfg, arrays, bars)
        self.state: KernelState = build_state(
            cfg, arrays.inst_keys, arrays.n_levels, arrays.use_exch, capacity, bars=bars,
            gap_s=self.gap_s)
        self.finished = False
        self.kernel = run_chunk
        self.signal = signal
        if signal is not None:  # a user entry signal: its own copy of the loop (plugin.py)
            from arbkit.core.plugin import kernel_with_signal

            self.kernel = kernel_with_signal(signal)
            self.state.route["plugin"] = 1
        self.n_fed = 0
        self.started = False
        self.venue: Callable[[Session], Any] | None = None  # an EXTERNAL venue (set_external)
        self._inbox: deque[np.ndarray] = deque()
        self._dispatching = False
        self.drained = {name: 0 for name in BUFFERS}  # rows handed out by drain() so far

    # ---- feeding ------------------------------------------------------------------------
    def feed(self, events: np.ndarray, depth: np.ndarray | None = None, *,
             flush: bool = False) -> None:
        """Process a chunk (any size, including one event) of the time-sorted event array.

        ``depth`` is the chunk's depth array (``events["depth_row"]`` indexes it); by default
        the one of the arrays the session was built with. ``flush``: the chunk's last
        timestamp is complete, decide on it now (paper/live, when their queue is drained);
        otherwise that decision waits for the next chunk (core/loop.py).
        """
        n = events.shape[0]
        if n == 0 and not flush:
            return
        self.n_fed += n
        if depth is None:
            depth = self.arrays.depth
        if n and not self.started:  # (once: a paper session feeds one event per call)
            start(self.state, int(events[0]["ts_recv"]))
            self.started = True
        f = 1 if flush else 0
        if FIRST_CALL_HOOKS:
            _first_call()
        status, k = self.kernel(self.state, events, depth, 0, f)
        if status != T.S_DONE:
            self._run(events, depth, f, status, k)

    def _run(self, events: np.ndarray, depth: np.ndarray, flush: int, status: int = -1,
             k: int = 0) -> None:
        """Call the kernel until the chunk is done, growing the buffers when it asks
        (``status``/``k``: a first call's result, already made)."""
        spot, base = (-1, -1), 0
        while True:
            if status < 0:
                status, k = self.kernel(self.state, events, depth, k, flush)
            if status == T.S_DONE:
                return
            if status == T.S_OUTBOX:  # orders for an EXTERNAL venue: out before going on
                self._outbox_ready()
                status = -1
                continue
            g = self.state.glob[0]
            here = (k, int(g["now"]))
            if here != spot:
                spot, base = here, int(g["n_orders"])
            elif int(g["n_orders"]) - base > STUCK_ORDERS:
                raise EngineError(
                    f"engine stuck at ts={here[1]} (event {k}): {int(g['n_orders']) - base} orders "
                    "written without the clock advancing; this is a bug, please report it with "
                    "the data and config")
            # the largest room one step asks for (has_room in loop.run_chunk)
            self.state = grow(self.state, extra=ROOM * self.state.orders.shape[0])
            status = -1

    def finish(self) -> None:
        """Decide on the last timestamp, settle in-flight orders and mark open round trips at
        the end of data."""
        if self.finished:
            return
        self._run(np.zeros(0, T.EVENT_DTYPE), self.arrays.depth, 1)
        self.state = grow(self.state, extra=64 * (len(self.state.route) + len(self.state.orders)))
        finish(self.state)
        self.finished = True

    # ---- the run's span -------------------------------------------------------------------
    @property
    def first_ts(self) -> int | None:
        g = self.state.glob[0]
        return int(g["t_first"]) if g["started"] == 1 else None

    @property
    def last_ts(self) -> int | None:
        g = self.state.glob[0]
        return int(g["t_last"]) if g["started"] == 1 else None

    # ---- draining -------------------------------------------------------------------------
    def drain(self) -> dict[str, np.ndarray]:
        """The output rows written since the last drain (copies), one array per buffer
        (``fills``, ``olog``, ``trades``, ``equity``, ``legs``, ``guards``); the buffers are
        emptied for reuse. Rows keep their ids (``oid``, ``trade_id``): a store can write them
        idempotently."""
        g = self.state.glob[0]
        out = {}
        for name in BUFFERS:
            n = int(g[_COUNT[name]])
            out[name] = getattr(self.state, name)[:n].copy()
            g[_COUNT[name]] = 0
            self.drained[name] += n
        return out

    # ---- snapshot / restore ---------------------------------------------------------------
    def snapshot(self) -> bytes:
        """Every array of the kernel state and the session's counters, as one blob."""
        if self.signal is not None:
            raise ConfigError("a session with a user signal function cannot be snapshotted "
                              "(the function is code, not state); run it without --resume")
        buf = io.BytesIO()
        meta = {"config_hash": self.cfg.config_hash(), "inst_keys": self.arrays.inst_keys,
                "n_levels": self.arrays.n_levels, "use_exch": self.arrays.use_exch,
                "kinds": self.kinds, "gap_s": self.gap_s, "n_fed": self.n_fed,
                "drained": self.drained, "finished": self.finished, "version": 1}
        np.savez(buf, __meta__=np.frombuffer(json.dumps(meta).encode(), np.uint8),
                 **{name: np.asarray(arr) for name, arr in zip(self.state._fields, self.state)})
        return buf.getvalue()

    @classmethod
    def restore(cls, cfg: Config, blob: bytes) -> Session:
        """The session a ``snapshot()`` blob holds, for ``cfg`` (refused when the config
        differs from the one the snapshot was taken with)."""
        with np.load(io.BytesIO(blob)) as z:
            meta = json.loads(bytes(z["__meta__"]).decode())
            arrays = {name: z[name] for name in KernelState._fields}
        if meta["config_hash"] != cfg.config_hash():
            raise ConfigError("the saved session was run with another config (hash "
                              f"{meta['config_hash']}, this one {cfg.config_hash()}); resume it "
                              "with its own preset, or start a new session (--clean)")
        ev = EventArrays(np.zeros(0, T.EVENT_DTYPE), np.zeros((0, 4, max(0, meta["n_levels"] - 1))),
                         list(meta["inst_keys"]), meta["n_levels"], dict(meta["use_exch"]), {}, 0)
        self = cls.__new__(cls)
        self.cfg, self.arrays, self.kinds = cfg, ev, dict(meta["kinds"])
        self.problems = [p for _, p in route_problems(cfg)]
        self.gap_s = float(meta["gap_s"])
        self.state = KernelState(**arrays)
        self.finished = bool(meta["finished"])
        self.kernel, self.signal = run_chunk, None
        self.n_fed = int(meta["n_fed"])
        self.started = bool(self.state.glob[0]["started"])
        self.drained = {k: int(v) for k, v in meta["drained"].items()}
        # (the EXTERNAL venue is the runtime's to set again: set_external)
        self.venue, self._inbox, self._dispatching = None, deque(), False
        return self

    # ---- an EXTERNAL venue (live) ---------------------------------------------------------
    def set_external(self, keys: list[str] | None = None,
                     venue: Callable[[Session], Any] | None = None) -> None:
        """Orders on these instruments (all when None) go to a real venue: the kernel puts them
        in its outbox instead of matching them, and books the venue's reports (``report_event``
        rows fed back) with the same fill function the simulator uses (core/orders.py).

        ``venue(session)`` is called the moment orders enter the outbox, before the kernel
        applies anything later (the kernel pauses: S_OUTBOX); it takes them (``outbox``,
        ``take``) and returns the reports already known (an iterable of ``report_event`` rows,
        possibly none: a live venue answers later, through ``feed``). Those are fed at once,
        in order, each as its own event; orders they cause call ``venue`` again. Without
        ``venue`` the orders wait in the outbox for the driver to poll after ``feed``."""
        self.venue = venue
        keys = list(self.arrays.inst_keys) if keys is None else keys
        unknown = [k for k in keys if k not in self.arrays.inst_keys]
        if unknown:
            raise ConfigError(f"external venue: unknown instruments {unknown} "
                              f"(known: {self.arrays.inst_keys})")
        for k in keys:
            self.state.inst[self.arrays.inst_keys.index(k)]["ext"] = T.VENUE_EXTERNAL

    def _outbox_ready(self) -> None:
        if self.venue is None:
            return
        self._inbox.extend(self.venue(self) or ())
        if self._dispatching:  # (a report fed below caused more orders: queued behind it)
            return
        self._dispatching = True
        try:
            while self._inbox:
                ev = self._inbox.popleft()
                self._run(ev, self.arrays.depth, 0)
        finally:
            self._dispatching = False

    def outbox(self) -> list[dict[str, Any]]:
        """Orders the kernel sent to an EXTERNAL venue that the runtime has not taken yet
        (oldest first). ``take(oid)`` marks one taken once its intent is journaled."""
        return self._ext_orders(0)

    def working_intents(self) -> list[dict[str, Any]]:
        """The intents (as ``outbox`` gives them) of the orders an EXTERNAL venue holds: taken,
        no final report yet (what a restarted runtime must resolve with its venue)."""
        return self._ext_orders(1)

    def _ext_orders(self, out: int) -> list[dict[str, Any]]:
        res = []
        st = self.state
        for slot in range(st.orders.shape[0]):
            o = st.orders[slot]
            if (o["active"] == 1 and o["matched"] == 0 and o["out"] == out
                    and st.inst[o["inst"]]["ext"] == T.VENUE_EXTERNAL):
                res.append({"oid": int(o["oid"]), "inst": self.arrays.inst_keys[int(o["inst"])],
                            "side": int(o["side"]), "qty": float(o["qty"]),
                            "limit_px": float(o["limit_px"]), "purpose": int(o["purpose"]),
                            "route": int(o["route"]), "trade_id": int(o["trade_id"]),
                            "t_send": int(o["t_send"])})
        res.sort(key=lambda d: d["oid"])
        return res

    def take(self, oid: int) -> None:
        """The runtime took order ``oid`` from the outbox (it is on its way to the venue)."""
        o = self.state.orders
        hit = np.nonzero((o["active"] == 1) & (o["oid"] == oid))[0]
        if hit.size:
            o[hit[0]]["out"] = 1

    def working(self) -> list[int]:
        """Ids of the orders an EXTERNAL venue holds (taken, no final report yet)."""
        st = self.state
        return sorted(int(o["oid"]) for o in st.orders
                      if o["active"] == 1 and o["matched"] == 0 and o["out"] == 1)

    @staticmethod
    def report_event(ts: int, oid: int, filled: float, px: float, fee: float,
                     status: int = 0, reason: int = 0, levels: int = 1) -> np.ndarray:
        """One EV_ORDER event: a venue's report on order ``oid`` received at ``ts`` (``filled``
        this report's quantity at average ``px``, ``fee`` in the quote currency; ``status`` a
        final ST_* or 0 while it is still working, ``reason`` an RJ_* for a reject; ``levels``
        the venue trades a fill was made of)."""
        e = np.zeros(1, T.EVENT_DTYPE)
        e["ts_recv"] = ts
        e["ts_exch"] = ts
        e["kind"] = T.EV_ORDER
        e["inst"] = levels if filled > 0 else reason
        e["depth_row"] = oid
        e["bid_qty"] = filled
        e["bid_px"] = px if filled > 0 else 0.0
        e["ask_qty"] = fee
        e["ask_px"] = float(status)
        return e

    # ---- status ---------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """Per route: state, direction, positions, round trips, wins, realised net PnL and
        the last edge seen; the kernel clock and the account's equity now."""
        from arbkit.core.ledger import equity_now

        st = self.state
        g = st.glob[0]
        eq, gross = equity_now(st.glob, st.inst, st.book_px)
        routes = []
        for r, rc in enumerate(self.cfg.routes):
            rt = st.route[r]
            routes.append({
                "route": rc.label, "state": T.ROUTE_STATE_TEXT[int(rt["state"])],
                "dir": int(rt["dir"]), "pos_a": float(rt["pos_a"]), "pos_b": float(rt["pos_b"]),
                "entries": int(rt["n_entries"]),
                "best_edge_bps": float(rt["best_miss_bps"] + rt["thr_entry_bps"]),
                "threshold_bps": float(rt["thr_entry_bps"]),
            })
        return {"now_ns": int(g["now"]), "events": self.n_fed, "equity": float(eq),
                "gross_exposure": float(gross), "halt": int(g["halt"]),
                "trades_written": int(g["n_trades"]) + self.drained["trades"], "routes": routes}


def gap_limit_s(cfg: Config, arrays: EventArrays, bars: dict[str, bool]) -> float:
    """``run.max_gap_s`` in seconds (0 = off). ``"auto"``: 300 s, or three bar intervals of
    the slowest bar instrument when that is longer (its median step in the data at hand)."""
    v = cfg.run.max_gap_s
    if v == OFF:
        return 0.0
    if v != AUTO:
        return float(v)
    gap = AUTO_GAP_S
    ev = arrays.events
    for i, key in enumerate(arrays.inst_keys):
        if not bars.get(key):
            continue
        head = ev[:200_000]
        ts = head["ts_recv"][(head["inst"] == i) & (head["kind"] == T.EV_QUOTE)]
        if ts.shape[0] >= 2:
            gap = max(gap, 3.0 * float(np.median(np.diff(ts))) / 1e9)
    return gap
