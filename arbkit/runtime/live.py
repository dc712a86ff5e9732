"""A live session: the paper node with the kernel's venue set to EXTERNAL.

Everything a paper session does (feeds → queue → ``Session.feed``, journal, checkpoints,
resume, controls, monitor) stays; what changes is who matches the orders:

- the kernel puts its orders in its outbox and pauses (``S_OUTBOX``); the node's venue callback
  takes them, **writes every event that led to them to the Redis journal first**, then hands
  each intent to the execution client (``venues.execution``), which makes the intent durable
  and sends it with a client order id derived from (session, order number);
- the client's reports (acks, fills, partial fills, rejects, cancels) come back on the node's
  queue and are fed to the kernel as ``EV_ORDER`` events — stamped, journaled and recorded like
  quotes, so a recorded live session replays to the same fills, bit for bit;
- on ``--resume`` the journal is replayed *without sending anything* (the kernel's orders of
  that stretch are already in the client's intent journal, or were never sent), then the
  orders the kernel still believes open are resolved with the venue (``recover``): the client
  looks each up by its client id; an intent it never journaled was never sent and ends as
  cancelled with nothing filled;
- ``max_notional``: a hard cap per order on top of the preset's limits: an intent above it is
  never sent; the kernel gets a reject (``over_live_cap``) and unwinds as for any reject.

The execution client protocol (``Execution``) is what the node needs; ``venues/execution.py``
implements it through ccxt, tests implement it in-process.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from arbkit.core import types as T
from arbkit.engine.session import Session
from arbkit.runtime import faultpoints
from arbkit.runtime.clock import monotonic_s
from arbkit.runtime.node import PaperNode

# a report: (ts_ns, oid, filled, px, fee, status, reason, levels): ``filled`` this report's
# quantity at average ``px``, ``fee`` its quote-currency value, ``status`` final ST_* or 0 while
# working, ``reason`` RJ_* of a reject, ``levels`` the venue trades the fill was made of
Report = tuple[int, int, float, float, float, int, int, int]
SOURCES = 64  # execution clients a node can have (a report event's ``ts_exch`` = seq*64+source)


class Execution(Protocol):
    async def start(self, on_report: Any) -> None:
        """Connect; reconcile with the venue (raise on disagreement); then deliver every report
        through ``on_report(report, seq, source)`` (called in the node's event loop; ``seq``
        the report's number in the journal of its ``source`` (0-63: one per venue client),
        increasing, 0 when it keeps none)."""

    def submit(self, intent: dict[str, Any]) -> None:
        """Journal ``intent`` durably, then send it (in the background; never blocks)."""

    async def recover(self, intents: list[dict[str, Any]], after: dict[int, int]) -> None:
        """After a restart: deliver again every report of each source after ``after[source]``
        (the last one the node's journal holds) — before any report made since ``start``,
        which an implementation holds back until then (and until ``release()`` on a fresh
        start) — then resolve each intent the kernel still believes open (an intent no
        client journaled was never sent: a cancelled report)."""

    async def close(self) -> None: ...


@dataclass(frozen=True)
class ReportItem:
    """A venue report on the node's queue (beside the feeds' quotes)."""

    report: Report
    ts_recv_ns: int
    seq: int = 0  # its number in the journal of the client it came from (0: none)
    source: int = 0  # that client (one per venue)


class LiveNode(PaperNode):
    """Runs one live session (module doc). ``execution``: an ``Execution`` client."""

    mode = "live"

    def __init__(self, cfg: Any, *, execution: Execution, max_notional: float | None = None,
                 settle_s: float = 5.0, **kw: Any) -> None:
        super().__init__(cfg, **kw)
        self.settle_s = settle_s  # once the feeds end: how long to wait for open orders
        self._settle_t: float | None = None
        self.execution = execution
        self.max_notional = max_notional
        self._replaying = False
        self._fresh: set[int] | None = set()
        self._queued: dict[int, int] = {}  # per source: the last report put on the queue
        self.n_report_dups = 0
        self.n_reports = 0
        self.n_sent = 0
        self.n_capped = 0
        self.report_seq: dict[int, int] = {}  # per source: the last report the journal holds
        self.halt_reason: str | None = None  # the execution halted mid-session (why)
        self.on_halt: Any = None  # ``on_halt(reason)``: the CLI says it once
        if hasattr(execution, "on_halt"):
            execution.on_halt = self._on_halt

    async def run(self) -> Any:
        faultpoints.hit("node.run")
        try:
            return await super().run()
        finally:
            await self.execution.close()

    # ---- the kernel's venue ------------------------------------------------------------
    def _attach(self) -> None:
        self.session.set_external(venue=self._venue)

    def _venue(self, sess: Session) -> list[np.ndarray]:
        intents = sess.outbox()
        for it in intents:
            sess.take(it["oid"])
        if self._replaying:  # sent before the crash (the client's journal knows), or never
            return []
        self.flush_journal()  # the events that led to these orders are durable first
        faultpoints.hit("node.flushed")
        for it in intents:
            if self.max_notional is not None and it["qty"] * it["limit_px"] > self.max_notional:
                # refused here, never sent: the refusal is an event like a venue's (queued,
                # journaled, recorded), so a replay books it at the same place
                self.n_capped += 1
                self._on_report((0, it["oid"], 0.0, 0.0, 0.0, T.ST_REJECTED, T.RJ_LIMIT, 0), 0)
                continue
            self.n_sent += 1
            self.execution.submit(it)
            faultpoints.hit("node.submitted")
        return []

    def _settled(self) -> bool:
        if not self.session.working():
            return True
        now = monotonic_s()
        if self._settle_t is None:
            self._settle_t = now
        return now - self._settle_t >= self.settle_s

    def _on_report(self, report: Report, seq: int = 0, source: int = 0) -> None:
        assert self.queue is not None
        if seq:  # a client's reports come in its journal's order: one seen again is dropped
            if seq <= max(self._queued.get(source, 0), self.report_seq.get(source, 0)):
                self.n_report_dups += 1
                return
            self._queued[source] = seq
        # received now on the session's clock (a client's own stamps may be on another: the
        # wall, while an emulator replays data time); in a replay (no heartbeats: the clock
        # is the data's) just after the event before it
        ts = self.stamper.clock() if self.options.heartbeat_ms is not None else 0
        self.queue.put_nowait(ReportItem(tuple(report), ts, int(seq), int(source)))

    def open(self) -> None:
        if not self.options.resume and self.store.meta() is None:
            # a session cleared by `arbkit reset` (or its keys removed) whose execution
            # journal is still there: its orders' client ids are taken (a lookup by client id
            # would find the old orders), so the name is never started afresh
            taken = getattr(self.execution, "journal_exists", None)
            if callable(taken) and taken():
                from arbkit.errors import ConfigError

                raise ConfigError(
                    f"session {self.options.session!r}: an execution journal of an earlier "
                    "live session of that name is in Redis (its orders' client ids are "
                    "taken; `arbkit reset` keeps it on purpose): start a new session with "
                    "--session NAME")
        super().open()

    def _on_halt(self, venue: str, reason: str) -> None:
        """The execution halted at ``venue`` (something there it does not know): the kernel
        stops entering (a ``stop`` control, journaled like an operator's, so a replay does
        the same); positions are left as they are; the status, /health and the alerts say
        why (``reconciliation``)."""
        from arbkit.monitor.control import send_control

        self.halt_reason = f"{venue}: {reason}"
        try:
            send_control(self.store, "stop", by=f"execution halt at {venue}", via="execution")
        except Exception as exc:  # noqa: BLE001 - the execution refuses orders anyway
            self.halt_reason += f" (the stop control could not be sent: {exc})"
        if self.on_halt is not None:
            self.on_halt(self.halt_reason)

    async def _ready(self) -> None:
        faultpoints.hit("node.opened")  # the snapshot restored and the journal replayed
        await self.execution.start(self._on_report)
        if self.resumed_from is not None:
            await self.execution.recover(self.session.working_intents(), self.report_seq)
        elif hasattr(self.execution, "release"):  # (reports held while it reconciled)
            self.execution.release()
        faultpoints.hit("node.ready")

    def checkpoint(self) -> None:
        faultpoints.hit("node.checkpoint")
        super().checkpoint()

    # ---- events ------------------------------------------------------------------------
    def _encode(self, batch: list) -> np.ndarray:
        rows = np.zeros(len(batch), T.EVENT_DTYPE)
        for j, item in enumerate(batch):
            ts = self.stamper.stamp(item.ts_recv_ns)
            if isinstance(item, ReportItem):
                _, oid, filled, px, fee, status, reason, levels = item.report
                rows[j] = Session.report_event(ts, oid, filled, px, fee, status, reason,
                                               levels)[0]
                # (exactly once across a restart: recover) its source and number
                rows[j]["ts_exch"] = item.seq * SOURCES + item.source
                self._saw(item.source, item.seq)
                self.n_reports += 1
                faultpoints.hit("node.report")
            else:
                rec = rows[j]
                rec["ts_recv"] = ts
                rec["ts_exch"] = ts if item.ts_exch_ns is None else item.ts_exch_ns
                rec["inst"] = self.index[item.key]
                rec["kind"] = T.EV_QUOTE
                rec["bid_px"], rec["bid_qty"] = item.bid_px, item.bid_qty
                rec["ask_px"], rec["ask_qty"] = item.ask_px, item.ask_qty
                rec["depth_row"] = -1
        return rows

    def _feed(self, rows: np.ndarray) -> None:
        """As the paper node's, with the journal written ahead: the rows are in the pending
        journal before the kernel sees them, so the venue callback can make them durable
        before any order they cause is sent."""
        from arbkit.runtime import encode

        t_in = monotonic_s()
        seqs = np.arange(self.seq + 1, self.seq + 1 + rows.shape[0], dtype=np.int64)
        self._journal += zip(seqs.tolist(), encode.to_bytes(rows), strict=True)
        self.seq = int(seqs[-1])
        self.session.feed(rows, flush=True)
        if self._fresh is not None:  # until every instrument has a quote of this start
            self._fresh.update(rows["inst"][rows["kind"] == T.EV_QUOTE].tolist())
            if len(self._fresh) == len(self.keys):
                self._fresh = None
                faultpoints.hit("node.quoted")
        t_out = monotonic_s()
        self.decide_us.append((t_out - t_in) * 1e6 / rows.shape[0])
        self.decide_s.append(t_out - t_in)
        self._count(rows)
        self.recording.add(seqs, rows)
        o = self.options
        if len(self._journal) >= o.journal_max or t_out - self._journal_t >= o.journal_ms / 1e3:
            self.flush_journal()

    def _counts(self) -> dict[str, int]:
        return {f"report_seq_{k}": v for k, v in self.report_seq.items()}

    def _resume(self, meta: dict[str, Any]) -> None:
        counts = meta.get("counts_at_snapshot") or {}
        self.report_seq = {int(k.rsplit("_", 1)[1]): int(v) for k, v in counts.items()
                           if k.startswith("report_seq_")}
        super()._resume(meta)

    def _replay(self, page: list[tuple[int, bytes]]) -> None:
        self._replaying = True
        try:
            super()._replay(page)
        finally:
            self._replaying = False
        from arbkit.runtime import encode

        rows = encode.from_bytes([p for _, p in page])
        rep = rows[rows["kind"] == T.EV_ORDER]
        for code in rep["ts_exch"].tolist():
            self._saw(int(code) % SOURCES, int(code) // SOURCES)

    def _saw(self, source: int, seq: int) -> None:
        if seq > self.report_seq.get(source, 0):
            self.report_seq[source] = seq

    def status(self) -> dict[str, Any]:
        st = super().status()
        st.update(mode="live", orders_sent=self.n_sent, reports=self.n_reports,
                  capped=self.n_capped, working=len(self.session.working()))
        rec = getattr(self.execution, "reconciliation", None)
        if callable(rec):
            st["reconciliation"] = rec()
        return st


def replay_recording(path: Any, cfg: Any) -> dict[str, np.ndarray]:
    """The output rows of a recorded live session fed again to a fresh kernel: its orders are
    taken and never sent; the recorded reports book them (tests: replay parity)."""
    from arbkit.runtime.recording import load_recording

    _, arrays = load_recording(path)
    s = Session(cfg, arrays, kinds={k: "quotes" for k in arrays.inst_keys})

    def venue(sess: Session) -> list:
        for it in sess.outbox():
            sess.take(it["oid"])
        return []

    s.set_external(venue=venue)
    s.feed(arrays.events, flush=True)
    s.finish()
    return s.drain()
