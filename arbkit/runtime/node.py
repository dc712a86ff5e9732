"""A paper session: live quotes -> the backtest's kernel (simulated venue) -> the stores.

One asyncio loop. A source (``venues.feed.FeedSet`` on ccxt websockets, or a replay) puts
quotes on a queue; each batch taken from it is stamped (strictly increasing receive times),
written to the Redis journal, fed to the kernel (``engine.session.Session``, ``flush=True``:
the queue is drained) and added to the recording. A quiet feed gets heartbeat events, so the
kernel's timers fire; operator controls (``arbkit ctl``) come from Redis as control events.

**Checkpoints** (every ``checkpoint_s``): the recording's pending events become a part; the
kernel's new output rows go to the results store (``append_rows``, idempotent from their row
number); then the kernel's snapshot goes to Redis with the journal number it follows, and the
journal before it is trimmed. **Resume** restores the last snapshot and replays the journal
after it: the state is exactly what the session had after the last journaled event, the
rows it writes again replace the same rows, and nothing is counted twice (the kill -9 test:
``tests/integration/test_paper.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from arbkit.config import Config
from arbkit.core import types as T
from arbkit.data.events import EventArrays
from arbkit.engine.session import Session
from arbkit.errors import ConfigError
from arbkit.runtime import encode
from arbkit.runtime.clock import Stamper, monotonic_s
from arbkit.runtime.recording import SessionRecording

JOURNAL_PAGE = 4096
DECIDE_KEPT = 100_000  # kernel-call samples kept (the newest): memory stays flat over days


@dataclass
class NodeOptions:
    """How a session runs. Times in wall seconds."""

    session: str
    checkpoint_s: float = 5.0
    heartbeat_ms: float | None = 100.0  # None: no heartbeats (a deterministic replay)
    status_s: float = 1.0
    controls_s: float = 0.2
    duration_s: float | None = None  # None: until stop()
    resume: bool = False
    max_batch: int = 10_000
    # group commit: the journal is written every journal_ms or journal_max events (a crash
    # loses at most that much market data, never state: resume replays what was journaled)
    journal_ms: float = 20.0
    journal_max: int = 512
    # a Redis that stops answering (a restart) is waited for this long, the loop paused (no
    # event is fed, no order sent); beyond it the session stops with one error line and
    # --resume continues it. None: $ARBKIT_REDIS_OUTAGE_S, else 30 s (store/redis.py)
    redis_outage_s: float | None = None


@dataclass
class NodeReport:
    """What a finished (or stopped) session did."""

    session: str
    run_id: str
    events: int
    quotes: int
    heartbeats: int
    controls: int
    trades: int
    wins: int
    net_pnl: float
    checkpoints: int
    resumed_from: int | None
    decide_us: list[float] = field(default_factory=list)  # per batch, per event (the newest
    # DECIDE_KEPT batches)
    feed_stats: dict[str, dict] = field(default_factory=dict)

    @property
    def win_rate(self) -> float:
        return self.wins / self.trades if self.trades else math.nan


class PaperNode:
    """Runs one paper session; see the module doc.

    ``source_factory(skip)`` builds the quote source (an object with ``run()``, ``stop()``
    and ``stats()``, putting quotes on the queue it was given): on a resume ``skip`` is the
    number of quotes the journal already holds (a replay source skips them; a live feed
    ignores it).
    """

    mode = "paper"

    def __init__(self, cfg: Config, *, store: Any, results: Any, record_dir: Path,
                 clock: Callable[[], int],
                 source_factory: Callable[[asyncio.Queue, int], Any],
                 options: NodeOptions, view: Any = None, extra_meta: dict | None = None) -> None:
        self.cfg = cfg
        self.store, self.results = store, results
        self.record_dir = Path(record_dir)
        self.options = options
        self.source_factory = source_factory
        self.view = view
        self.keys = [i.key for i in cfg.instruments]
        self.index = {k: i for i, k in enumerate(self.keys)}
        self.stamper = Stamper(clock)
        if hasattr(store, "outage_s"):  # the session store rides through a Redis restart
            from arbkit.store.redis import outage_bound_s

            store.outage_s = (outage_bound_s() if options.redis_outage_s is None
                              else float(options.redis_outage_s))
        self.extra_meta = dict(extra_meta or {})
        self.seq = -1
        self.n_quotes = self.n_heartbeats = self.n_controls = 0
        self.checkpoints = 0
        self.resumed_from: int | None = None
        self._stop = False
        self.interrupted = False
        # per batch, per event; bounded: a list of every batch grew ~30 MB per million
        # batches (≈ 2.6 GB a day at 1,000 batches/s) and made each status tick's percentile
        # slower as the session aged
        self.decide_us: deque[float] = deque(maxlen=DECIDE_KEPT)
        self.source: Any = None
        self.queue: asyncio.Queue | None = None
        # fault injection for the crash tests (tests/integration/test_paper.py): kill -9 this
        # process once journal entry N is written (or, with ..._BEFORE_JOURNAL, just before:
        # the kernel saw it, the journal did not), or inside checkpoint N between the results
        # store and the snapshot
        import os

        self._kill_at_seq = int(os.environ.get("ARBKIT_FAULT_KILL_AT_SEQ", "-1"))
        self._kill_in_ckpt = int(os.environ.get("ARBKIT_FAULT_KILL_IN_CHECKPOINT", "-1"))
        self._kill_before_journal = os.environ.get("ARBKIT_FAULT_KILL_BEFORE_JOURNAL") == "1"
        self._journal: list[tuple[int, bytes]] = []
        self._journal_t = 0.0
        self.agg = {"trades": 0, "wins": 0, "net_pnl": 0.0}
        self.route_agg = [{"trades": 0, "wins": 0, "net_pnl": 0.0} for _ in cfg.routes]
        # operations (arbkit.monitor): told of every status tick; samples in seconds of the
        # store writes by kind and of each batch from the queue to the kernel's decision
        self.monitor: Any = None
        self.on_open: Callable[[], Any] | None = None  # once the session is open (not refused)
        self.feeds_ended = False  # the session ended because its source did
        self.write_s: deque[tuple[str, float]] = deque(maxlen=4096)
        self.decide_s: deque[float] = deque(maxlen=4096)

    # ---- start: a new session, or the one in Redis -------------------------------------
    def _arrays(self) -> EventArrays:
        return EventArrays(np.zeros(0, T.EVENT_DTYPE), np.zeros((0, 4, 0)), list(self.keys), 1,
                           {k: False for k in self.keys}, {}, 0)

    def open(self) -> None:
        meta = self.store.meta()
        if self.options.resume:
            if meta is None:
                raise ConfigError(f"session {self.options.session!r}: nothing to resume in "
                                  "Redis; start it without --resume")
            self._resume(meta)
            return
        if meta is not None:
            fresh = ("start it over with --clean" if self.mode == "paper" else
                     "start a new session with --session NAME (a live session's name is in "
                     "its orders' client ids: never reused)")
            raise ConfigError(f"session {self.options.session!r} already exists in Redis "
                              f"(started {_when(meta.get('started_at'))}); --resume it, or "
                              f"{fresh}")
        self.session = Session(self.cfg, self._arrays(), kinds={k: "quotes" for k in self.keys})
        self._attach()
        self.session.feed(np.zeros(0, T.EVENT_DTYPE), flush=True)  # load the compiled kernel now
        self.run_id = self.results.open_session_run(
            self.cfg, kind="paper", study=self.options.session,
            extra={"record_dir": str(self.record_dir), **self.extra_meta})
        meta = {"session": self.options.session, "mode": self.mode, "run_id": self.run_id,
                "config_hash": self.cfg.config_hash(), "inst_keys": self.keys,
                "record_dir": str(self.record_dir), "started_at": self.stamper.clock(),
                **self.extra_meta}
        self.store.set_meta(meta)
        self.recording = SessionRecording(self.record_dir, self._recording_meta())

    def _recording_meta(self) -> dict[str, Any]:
        return {"session": self.options.session, "config_hash": self.cfg.config_hash(),
                "inst_keys": self.keys, "use_exch": {k: False for k in self.keys},
                "kinds": {k: "quotes" for k in self.keys}, **self.extra_meta}

    def _resume(self, meta: dict[str, Any]) -> None:
        if meta.get("config_hash") != self.cfg.config_hash():
            raise ConfigError(f"session {self.options.session!r} was started with another "
                              f"config (hash {meta.get('config_hash')}, this one "
                              f"{self.cfg.config_hash()}); resume it with its own preset")
        self.run_id = meta["run_id"]
        snap = self.store.load_snapshot()
        if snap is None:
            self.session = Session(self.cfg, self._arrays(),
                                   kinds={k: "quotes" for k in self.keys})
            self.seq = -1
        else:
            blob, self.seq = snap
            self.session = Session.restore(self.cfg, blob)
        self._attach()
        self.resumed_from = self.seq
        n = meta.get("counts_at_snapshot") or {}
        if snap is not None:
            self.n_quotes = int(n.get("quotes", 0))
            self.n_heartbeats = int(n.get("heartbeats", 0))
            self.n_controls = int(n.get("controls", 0))
        # events journaled but not yet in a recording part are recorded as they replay
        self.recording = SessionRecording(self.record_dir, self._recording_meta())
        page: list[tuple[int, bytes]] = []
        for item in self.store.journal(self.seq):
            page.append(item)
            if len(page) >= JOURNAL_PAGE:
                self._replay(page)
                page = []
        if page:
            self._replay(page)
        self.stamper.last = max(self.stamper.last, int(self.session.state.glob[0]["now"])
                                if self.seq >= 0 else -1)
        self._reload_aggregates()

    def _attach(self) -> None:
        """A new or restored kernel session is here (before any replay): a subclass wires its
        venue (runtime/live.py)."""

    async def _ready(self) -> None:
        """After ``open``, before the first event: a live node reconciles with its venues."""

    def _counts(self) -> dict[str, int]:
        """More counters a subclass keeps with each snapshot (read back by ``_resume``)."""
        return {}

    def _settled(self) -> bool:
        """Nothing more will come once the source ended (a live node waits for its venue)."""
        return True

    def _encode(self, batch: list) -> np.ndarray:
        """The kernel's rows for a batch taken from the queue (paper: quotes only)."""
        stamps = [self.stamper.stamp(q.ts_recv_ns) for q in batch]
        return encode.quote_rows(batch, self.index, stamps)

    def _replay(self, page: list[tuple[int, bytes]]) -> None:
        rows = encode.from_bytes([p for _, p in page])
        self._count(rows)
        self.session.feed(rows, flush=True)
        self.recording.add(np.array([q for q, _ in page], np.int64), rows)
        self.seq = page[-1][0]
        self.stamper.last = max(self.stamper.last, int(rows["ts_recv"][-1]))

    def _reload_aggregates(self) -> None:
        written = self.results.rows_written(self.run_id)
        if not written.get("trades"):
            return
        t = self.results.frame("trades", self.run_id)
        if t.height:
            closed = t.filter(pl.col("is_open") == 0)
            # rows the session will write again from its restored drain point replace these
            keep = closed.head(self.session.drained["trades"])
            self._add_trades(keep)

    def _count(self, rows: np.ndarray) -> None:
        k = rows["kind"]
        self.n_quotes += int((k == T.EV_QUOTE).sum())
        self.n_heartbeats += int((k == T.EV_HEARTBEAT).sum())
        self.n_controls += int((k == T.EV_CONTROL).sum())

    # ---- the loop ------------------------------------------------------------------------
    def stop(self) -> None:
        self._stop = True

    def interrupt(self) -> None:
        self.interrupted = True
        self._stop = True

    async def run(self) -> NodeReport:
        self.open()
        if self.on_open is not None:
            self.on_open()
        o = self.options
        queue: asyncio.Queue = asyncio.Queue()
        self.queue = queue
        await self._ready()
        self.source = self.source_factory(queue, self.n_quotes)
        feed_task = asyncio.create_task(self.source.run())
        import signal

        loop = asyncio.get_running_loop()
        loop.set_exception_handler(_quiet_venue_gone)
        try:  # Ctrl-C stops between batches: never inside one (journal, kernel and counters
            # stay in step for the checkpoint that follows)
            loop.add_signal_handler(signal.SIGINT, self.interrupt)
        except (NotImplementedError, RuntimeError, ValueError):
            pass
        t0 = monotonic_s()
        next_ckpt = t0 + o.checkpoint_s
        next_status = t0
        next_ctl = t0
        last_event = t0
        hb_s = None if o.heartbeat_ms is None else o.heartbeat_ms / 1000.0
        try:
            while not self._stop:
                now = monotonic_s()
                if o.duration_s is not None and now - t0 >= o.duration_s:
                    break
                if feed_task.done() and queue.empty() and self._settled():
                    self.feeds_ended = True  # the source ended (a replay ran out, or it failed)
                    break
                waits = [next_ckpt - now, next_ctl - now, 0.5]
                if hb_s is not None:
                    waits.append(last_event + hb_s - now)
                timeout = max(0.0, min(waits))
                batch: list = []
                try:
                    batch.append(await asyncio.wait_for(queue.get(), timeout))
                    while len(batch) < o.max_batch and not queue.empty():
                        batch.append(queue.get_nowait())
                except TimeoutError:
                    pass
                now = monotonic_s()
                rows = []
                if batch:
                    rows.append(self._encode(batch))
                    last_event = now
                elif hb_s is not None and now - last_event >= hb_s:
                    rows.append(encode.heartbeat(self.stamper.now()))
                    last_event = now
                if now >= next_ctl:
                    rows += self._controls()
                    next_ctl = now + o.controls_s
                if rows:
                    self._feed(np.concatenate(rows) if len(rows) > 1 else rows[0])
                if now >= next_ckpt:
                    self.checkpoint()
                    next_ckpt = monotonic_s() + o.checkpoint_s
                if now >= next_status:
                    self._status()
                    next_status = now + o.status_s
        finally:
            self.source.stop()
            feed_task.cancel()
            await asyncio.gather(feed_task, return_exceptions=True)
            import contextlib
            import signal

            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(signal.SIGINT)
        self.checkpoint()
        return self.report()

    def _controls(self) -> list[np.ndarray]:
        from arbkit.data.carry import control_event

        out = []
        for c in self.store.pop_controls():
            name = c.get("control", "")
            try:
                out.append(control_event(self.stamper.now(), name, self.cfg))
            except Exception as exc:  # noqa: BLE001 - a bad control is logged, never fatal
                self.store.audit({"control": name, "refused": str(exc)})
                continue
            self.store.audit({"control": name, "applied": True, "by": c.get("by", "?")})
        return out

    def _feed(self, rows: np.ndarray) -> None:
        t_in = monotonic_s()
        seqs = np.arange(self.seq + 1, self.seq + 1 + rows.shape[0], dtype=np.int64)
        self.session.feed(rows, flush=True)
        t_out = monotonic_s()
        self.decide_us.append((t_out - t_in) * 1e6 / rows.shape[0])
        self.decide_s.append(t_out - t_in)
        self._count(rows)
        self.recording.add(seqs, rows)
        self.seq = int(seqs[-1])
        self._journal += zip(seqs.tolist(), encode.to_bytes(rows), strict=True)
        o = self.options
        if len(self._journal) >= o.journal_max or t_out - self._journal_t >= o.journal_ms / 1e3:
            self.flush_journal()

    def flush_journal(self) -> None:
        """Write the pending journal entries (one pipelined call)."""
        if self._journal:
            first, last = self._journal[0][0], self._journal[-1][0]
            if self._kill_before_journal and first <= self._kill_at_seq <= last:
                _kill_self()  # (crash test: the kernel saw these events, the journal did not)
            with self._timed("journal"):
                self.store.append_many(self._journal)
            self._journal = []
            if first <= self._kill_at_seq <= last:
                _kill_self()  # (crash test: journaled, not yet in a checkpoint)
        self._journal_t = monotonic_s()

    # ---- checkpoints -------------------------------------------------------------------
    def checkpoint(self) -> None:
        """Recording part, output rows to the results store, then the snapshot (module doc)."""
        from arbkit.metrics.summary import guard_frame, label_frames

        self.flush_journal()  # nothing below may get ahead of the journal
        self.recording.flush()
        base = dict(self.session.drained)
        rows = self.session.drain()
        frames = {k: pl.from_numpy(v) if v.shape[0] else pl.from_numpy(v) for k, v in rows.items()}
        labeled = label_frames(frames, self.keys, [r.label for r in self.cfg.routes])
        labeled["guards"] = guard_frame(labeled["guards"], self.cfg)
        self._add_trades(labeled["trades"].filter(pl.col("is_open") == 0))
        out = {"trades": (base["trades"], labeled["trades"]),
               "fills": (base["fills"], labeled["fills"]),
               "equity": (base["equity"], labeled["equity"]),
               "guards": (base["guards"], labeled["guards"])}
        metrics = {**self.agg, "events": self.session.n_fed, "quotes": self.n_quotes,
                   "win_rate": (self.agg["wins"] / self.agg["trades"]
                                if self.agg["trades"] else None)}
        with self._timed("results"):
            self.results.append_rows(self.run_id, out, metrics=metrics,
                                     events=self.session.n_fed, n_trades=self.agg["trades"])
        if self.checkpoints == self._kill_in_ckpt:
            _kill_self()
        summary = {**self.agg, "at": datetime.now(UTC).isoformat(timespec="seconds")}
        if not self.session.finished:
            with self._timed("snapshot"):
                self.store.save_snapshot(self.session.snapshot(), self.seq)
            meta = self.store.meta() or {}
            meta["counts_at_snapshot"] = {"quotes": self.n_quotes,
                                          "heartbeats": self.n_heartbeats,
                                          "controls": self.n_controls, **self._counts()}
            meta["last_checkpoint"] = summary  # (`arbkit status` of a session that ended)
            self.store.set_meta(meta)
            if self.seq >= 0:
                self.store.trim(self.seq)
        else:
            meta = self.store.meta()
            if meta is not None:
                meta["last_checkpoint"] = summary
                self.store.set_meta(meta)
        self.checkpoints += 1

    def _add_trades(self, closed: pl.DataFrame) -> None:
        if closed.height == 0:
            return
        for r, net in zip(closed["route"].to_list(), closed["net_pnl"].to_list(), strict=True):
            for a in (self.agg, self.route_agg[r]):
                a["trades"] += 1
                a["wins"] += int(net > 0)
                a["net_pnl"] += float(net)

    def finish(self) -> None:
        """End the session: settle what is in flight, mark open round trips, write it all."""
        self.session.finish()
        self.checkpoint()

    # ---- status ------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        st = self.session.status()
        feeds = self.source.stats() if self.source is not None else {}
        for r, row in enumerate(st["routes"]):
            a = self.route_agg[r]
            row.update(trades=a["trades"], wins=a["wins"], net_pnl=a["net_pnl"],
                       win_rate=a["wins"] / a["trades"] if a["trades"] else None)
        st.update(session=self.options.session, seq=self.seq, quotes=self.n_quotes,
                  heartbeats=self.n_heartbeats, controls=self.n_controls, feeds=feeds,
                  trades=self.agg["trades"], net_pnl=self.agg["net_pnl"],
                  decide_us_p50=_pct(self.decide_us, 50), decide_us_p99=_pct(self.decide_us, 99))
        return st

    def _status(self) -> None:
        st = self.status()
        outage = getattr(self.store, "outage", None)
        if outage is not None:  # Redis outages ridden through (the status shows them after)
            st["redis"] = outage.stats()
        if self.monitor is not None:  # enriches st in place (arbkit.monitor.session)
            self.monitor.tick(self, st)
        with self._timed("heartbeat"):
            self.store.heartbeat(_jsonable(st), ttl_s=max(5.0, 5 * self.options.status_s))
        if self.view is not None:
            self.view.update(st)

    @contextlib.contextmanager
    def _timed(self, kind: str) -> Any:
        t = monotonic_s()
        yield
        self.write_s.append((kind, monotonic_s() - t))

    def open_routes(self) -> int:
        """Routes holding a position now (kernel view)."""
        if getattr(self, "session", None) is None:
            return 0
        return int((self.session.state.route["state"] != T.FLAT).sum())

    def report(self) -> NodeReport:
        return NodeReport(
            session=self.options.session, run_id=self.run_id, events=self.session.n_fed,
            quotes=self.n_quotes, heartbeats=self.n_heartbeats, controls=self.n_controls,
            trades=self.agg["trades"], wins=self.agg["wins"], net_pnl=self.agg["net_pnl"],
            checkpoints=self.checkpoints, resumed_from=self.resumed_from,
            decide_us=list(self.decide_us),
            feed_stats=self.source.stats() if self.source is not None else {})


def _kill_self() -> None:
    import os
    import signal

    os.kill(os.getpid(), signal.SIGKILL)


def _pct(xs: list[float], q: float) -> float | None:
    return float(np.percentile(xs, q)) if xs else None


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _when(ns: Any) -> str:
    """A session's start stamp (ns on its clock: the data's in a replay) as UTC text."""
    import datetime as _dt

    try:
        when = _dt.datetime.fromtimestamp(int(ns) / 1e9, _dt.UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return "?"
    return when.strftime("%Y-%m-%d %H:%M:%S UTC")


def _quiet_venue_gone(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """The loop's exception handler: a venue connection's future that failed after nobody
    waited for it any more (ccxt pro, a venue gone at the end of a session) is not news (the
    feeds already counted it); anything else goes to asyncio's default handler."""
    exc = context.get("exception")
    if "never retrieved" in str(context.get("message", "")):
        try:
            import ccxt

            network = isinstance(exc, ccxt.NetworkError | ConnectionError)
        except ImportError:  # pragma: no cover - ccxt is a dependency
            network = isinstance(exc, ConnectionError)
        if network:
            return
    loop.default_exception_handler(context)
