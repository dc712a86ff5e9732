"""Measured paper sessions against the local emulators: the scaling benchmark and the soak.

A :class:`MeasuredNode` is a :class:`~arbkit.runtime.node.PaperNode` that also records, per
quote, the wall time from its receive stamp (the feed's clock, on the emulators' replay
timeline) to the node taking it off the queue (*queue lag*) and to the kernel's decision
(*receive → decision*), and samples RSS and CPU once per status tick.

:func:`run_measured` runs one session: one emulator per venue (background threads of this
process, the real ccxt client reading them over loopback), a fault schedule on the data
timeline (``("drop", t_ns)``: every market-data socket cut, as on a network drop;
``("disconnect", t_ns)``: every socket closed with code 1000, as Binance does at 24 h), then
the checks of a long run: the recording's backtest equals the session's stored trades, fills
and equity (replay parity, which also proves the buffers reached the store), and the account
identity of that backtest.

Used by ``benchmarks/bench_scale.py``, ``scripts/soak.py`` and ``tests/integration/test_soak.py``.
"""

from __future__ import annotations

import asyncio
import os
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from arbkit.runtime.node import NodeOptions, PaperNode

SYNTH_HZ = 40.0  # arbkit.data.synth: book updates per data second per symbol (both venues)


def rss_mib() -> float:
    """This process's resident set (MiB)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def cpu_s() -> float:
    """CPU seconds of this process (user + system, all threads)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def universe(n_symbols: int, *, span_s: float, events_per_symbol: int | None = None,
             seed: int = 7) -> tuple[pl.DataFrame, Any]:
    """Quotes of ``n_symbols`` synthetic ``normal`` symbols (``S00`` ...) on venues A and B.

    Without ``events_per_symbol`` the data runs at the synthetic market's own rate (40 book
    updates per data second per symbol: A ~25/s, B ~15/s) for ``span_s``; with it, that
    many updates per symbol are spread over ``span_s`` (timestamps stretched: a quieter market
    over a longer span, so an accelerated soak covers hours without millions of rows).
    """
    from arbkit.data.universe import generate_universe

    natural = int(span_s * SYNTH_HZ) + 50
    n = natural if events_per_symbol is None else int(events_per_symbol)
    spec = {f"S{k:02d}": "normal" for k in range(n_symbols)}
    df, cfg = generate_universe(spec, n_events=n, depth=1, seed=seed)
    df = df.drop("ts_exch_ns")
    if events_per_symbol is not None:
        t0 = int(df["ts_recv_ns"].min())
        k = span_s / ((int(df["ts_recv_ns"].max()) - t0) / 1e9)
        df = df.with_columns(((pl.col("ts_recv_ns") - t0).cast(pl.Float64) * k)
                             .cast(pl.Int64).alias("ts_recv_ns") + t0)
        # a stretched stream keeps its order; ties (none in synth's data) would stay ties
    return df.sort("ts_recv_ns", maintain_order=True), cfg


class Ring:
    """The newest ``n`` samples in a preallocated (and touched) float array: measuring adds
    no memory growth to the RSS being measured."""

    def __init__(self, n: int = 500_000) -> None:
        self.a = np.full(n, np.nan)
        self.i = 0

    def extend(self, xs: Any) -> None:
        for x in xs:
            self.a[self.i % self.a.size] = x
            self.i += 1

    def values(self) -> np.ndarray:
        return self.a[: min(self.i, self.a.size)]


class MeasuredNode(PaperNode):
    """A paper node that measures queue lag, receive → decision, RSS and CPU (module doc)."""

    def __init__(self, *args: Any, speed: float, data_clock: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.speed, self.data_clock = speed, data_clock
        self.queue_lag_ms = Ring()
        self.recv_decision_us = Ring()
        self.samples: list[dict[str, float]] = []
        self._pending_recv: list[int] = []
        self._decided_ns = 0
        self.t_first: float | None = None
        self._cpu0 = cpu_s()
        self._thread0 = time.thread_time()
        self._wall0 = time.monotonic()

    def _encode(self, batch: list) -> np.ndarray:
        now = self.data_clock()
        if self.t_first is None:
            self.t_first = time.monotonic()
        self._pending_recv = [q.ts_recv_ns for q in batch]
        self.queue_lag_ms.extend((now - t) / self.speed / 1e6 for t in self._pending_recv)
        return super()._encode(batch)

    def _feed(self, rows: np.ndarray) -> None:
        sess = self.session
        if not getattr(sess, "_measured", False):  # the decision: when the kernel call returns
            feed = sess.feed

            def timed(*a: Any, **kw: Any) -> Any:
                r = feed(*a, **kw)
                self._decided_ns = self.data_clock()
                return r

            sess.feed, sess._measured = timed, True
        super()._feed(rows)
        if self._pending_recv:
            now = self._decided_ns
            self.recv_decision_us.extend((now - t) / self.speed / 1e3
                                         for t in self._pending_recv)
            self._pending_recv = []

    def _status(self) -> None:
        super()._status()
        q = self.queue
        self.samples.append({"wall_s": time.monotonic() - self._wall0, "rss_mib": rss_mib(),
                             "cpu_s": cpu_s() - self._cpu0,
                             "loop_cpu_s": time.thread_time() - self._thread0,
                             "quotes": self.n_quotes, "data_ns": self.data_clock(),
                             "queue": q.qsize() if q is not None else 0})


@dataclass
class Measured:
    """What :func:`run_measured` saw (times in wall seconds unless named otherwise)."""

    n_symbols: int
    speed: float
    wall_s: float
    data_span_s: float
    quotes: int
    emulator_sent: int
    trades: int
    cpu_pct: float  # of one core, the whole process (node + ccxt + emulator threads)
    loop_cpu_pct: float  # the asyncio loop thread only (ccxt parsing + the node)
    rss_start_mib: float
    rss_warm_mib: float
    rss_end_mib: float
    rss_max_mib: float
    recv_decision_us: tuple[float, float]  # p50, p99
    decide_us: tuple[float, float]  # the kernel call, per event
    queue_lag_ms: tuple[float, float, float]  # p50, p99, max
    events_per_s: float
    connections: int  # websockets opened on all emulators
    forced: list[dict[str, Any]] = field(default_factory=list)
    feed_reconnects: int = 0
    feed_errors: int = 0
    parity: bool | None = None
    identity_gap: float | None = None
    identity_gap_rel: float | None = None
    rows_stored: dict[str, int] = field(default_factory=dict)
    rows_replayed: dict[str, int] = field(default_factory=dict)
    samples: list[dict[str, float]] = field(default_factory=list)

    @property
    def rss_growth(self) -> float:
        """End RSS over warm RSS, minus 1 (0.05 = 5 %)."""
        return self.rss_end_mib / self.rss_warm_mib - 1.0


def _pct(xs: Any, qs: tuple[float, ...]) -> tuple[float, ...]:
    a = np.fromiter(xs, float)
    return tuple(float(np.percentile(a, q)) for q in qs) if a.size else (float("nan"),) * len(qs)


def run_measured(df: pl.DataFrame, cfg: Any, *, speed: float, redis_url: str, results: str,
                 out: Path, faults: list[tuple[str, int]] = (), warmup_frac: float = 0.2,
                 check: bool = True, status_s: float = 1.0, checkpoint_s: float = 5.0,
                 tag: str = "soak") -> Measured:
    """One measured paper session on emulators serving ``df`` at ``speed`` (module doc)."""
    from arbkit.engine.backtest import prepare, run_prepared
    from arbkit.runtime.emulated import EmulatedSource
    from arbkit.store import open_store
    from arbkit.store.redis import SessionStore
    from arbkit.venues.emulator.multi import run_venues

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    # load (or, on a cold numba cache, compile: minutes) the kernel before the emulators' clock
    # starts, or the replay runs on while the node compiles and the faults land elsewhere
    run_prepared(cfg, prepare(df.head(2_000), cfg))
    data = out / "quotes.parquet"
    df.write_parquet(data)
    n_symbols = len(cfg.routes)
    t_lo, t_hi = int(df["ts_recv_ns"].min()), int(df["ts_recv_ns"].max())
    session = f"{tag}-{n_symbols}-{os.getpid()}-{int(time.time())}"
    store = SessionStore(redis_url, session)
    rstore = open_store(**({"url": results} if "://" in results else {"path": results}))
    rec = out / "recordings" / session
    forced: list[dict[str, Any]] = []
    rss0 = rss_mib()
    with run_venues(data, cfg, speed=speed) as venues:
        emus = list(venues.emulators.values())
        todo = sorted(faults, key=lambda f: f[1])

        async def faults_due() -> None:  # the fault schedule, on the data's clock
            while todo and venues.clock.now_ns() >= todo[0][1]:
                kind, at = todo.pop(0)
                before = sum(e.stats().ws_connections for e in emus)
                fn = "drop_now" if kind == "drop" else "disconnect_all"
                cut = sum(await asyncio.gather(*(asyncio.to_thread(getattr(e, fn))
                                                 for e in emus)))
                forced.append({"kind": kind, "data_s": (at - t_lo) / 1e9,
                               "cut": cut, "connections_before": before,
                               "wall": time.monotonic()})

        node = MeasuredNode(cfg, store=store, results=rstore, record_dir=rec,
                            clock=venues.clock.now_ns, speed=speed,
                            data_clock=venues.clock.now_ns,
                            source_factory=lambda q, skip: EmulatedSource(
                                venues, q, end_ns=t_hi, tail_ns=int(2e9 * speed),
                                every_s=0.05, tick=faults_due),
                            options=NodeOptions(session=session, checkpoint_s=checkpoint_s,
                                                status_s=status_s),
                            extra_meta={"soak": tag})
        t0 = time.monotonic()
        cpu0, th0 = cpu_s(), time.thread_time()
        report = asyncio.run(node.run())
        wall = time.monotonic() - t0
        cpu, loop_cpu = cpu_s() - cpu0, time.thread_time() - th0
        sent = sum(e.stats().ws_messages_sent for e in emus)
        conns = sum(e.stats().ws_connections for e in emus)
        node.finish()
        report = node.report()
    for f in forced:  # wall second of the session at which it was injected
        f["wall"] = round(f["wall"] - t0, 1)
    feeds = report.feed_stats
    active = wall - (node.t_first - t0) if node.t_first is not None else wall
    samples = node.samples
    warm_t = wall * warmup_frac
    warm = [s["rss_mib"] for s in samples if s["wall_s"] >= warm_t]
    win = max(1, len(warm) // 10)
    m = Measured(
        n_symbols=n_symbols, speed=speed, wall_s=wall, data_span_s=(t_hi - t_lo) / 1e9,
        quotes=report.quotes, emulator_sent=sent, trades=report.trades,
        cpu_pct=100 * cpu / wall, loop_cpu_pct=100 * loop_cpu / wall,
        rss_start_mib=rss0,
        rss_warm_mib=float(np.median(warm[:win])) if warm else float("nan"),
        rss_end_mib=float(np.median(warm[-win:])) if warm else float("nan"),
        rss_max_mib=max((s["rss_mib"] for s in samples), default=float("nan")),
        recv_decision_us=_pct(node.recv_decision_us.values(), (50, 99)),
        decide_us=_pct(node.decide_us, (50, 99)),
        queue_lag_ms=_pct(node.queue_lag_ms.values(), (50, 99, 100)),
        events_per_s=report.quotes / active,
        connections=conns, forced=forced,
        feed_reconnects=sum(int(v.get("reconnects", 0)) for v in feeds.values()),
        feed_errors=sum(len(v.get("errors", [])) for v in feeds.values()),
        samples=samples)
    if check:
        replay = run_prepared(cfg, prepare(rec, cfg))
        got = {k: rstore.frame(k, report.run_id) for k in ("trades", "fills", "equity")}
        m.parity = all(getattr(replay, k).select(got[k].columns).equals(got[k]) for k in got)
        m.rows_stored = {k: v.height for k, v in got.items()}
        m.rows_replayed = {k: getattr(replay, k).height for k in got}
        s = {r["metric"]: r["value"] for r in replay.summary.iter_rows(named=True)}
        m.identity_gap, m.identity_gap_rel = s["identity_gap"], s["identity_gap_rel"]
    rstore.close()
    store.clean(force=True)
    return m
