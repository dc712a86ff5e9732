"""What the operator's tools see of a running session: its status, enriched at every tick.

The node calls :meth:`SessionMonitor.tick` once per status tick (``PaperNode._status``, every
``status_s``) with the status it is about to publish. The monitor adds what an operator needs
and the kernel already knows: drawdown, skips by guard, risk-limit use, open exposure, orders
by status, guard events, the last trades and guard rows, the equity curve, feed error counts,
health; then it feeds the metrics and the alert rules. The dict is enriched *in place*, so
the heartbeat in Redis (``arbkit status --json``), ``/api/status`` and ``/metrics`` show the
same numbers.

Output rows (trades, guard log, equity samples, order log) are read where the kernel writes
them: rows still in its buffers at the tick, and rows a checkpoint drains in between (the
monitor wraps the session's ``drain`` once, so it sees them without another hook in the
node). A resumed session's earlier trades, guard rows and equity come from the results store
once, when the monitor attaches.
"""

from __future__ import annotations

import math
import time
from collections import Counter, deque
from datetime import UTC, datetime
from typing import Any

import numpy as np

from arbkit.core import types as T
from arbkit.monitor.control import shutdown_requested
from arbkit.monitor.metrics import SessionMetrics

HALT_TEXT = ("none", "daily_loss", "drawdown", "kill", "stop")
_COUNT = {"trades": "n_trades", "equity": "n_equity", "guards": "n_guard", "olog": "n_orders"}
FEED_STALE_S = 30.0
SHUTDOWN_POLL_S = 1.0  # a shutdown request is looked for at most this often (one Redis GET)


class SessionMonitor:
    """Enriches a session's status at every tick; holds the history the dashboard draws.

    Parameters
    ----------
    metrics : the Prometheus metrics to update (default a new :class:`SessionMetrics`).
    alerts : an ``arbkit.monitor.alerts.AlertManager`` (None: no webhooks).
    recent : trades and guard rows kept for the page.
    max_points : equity points kept for the chart (older ones are thinned, never the peak).
    feed_stale_s : a feed older than this is not fresh (``/health`` readiness).

    Examples
    --------
    >>> node.monitor = SessionMonitor()        # doctest: +SKIP
    >>> asyncio.run(node.run())                # doctest: +SKIP
    >>> node.monitor.status["drawdown"]        # doctest: +SKIP
    0.0
    """

    def __init__(self, *, metrics: SessionMetrics | None = None, alerts: Any = None,
                 recent: int = 20, max_points: int = 2000,
                 feed_stale_s: float = FEED_STALE_S) -> None:
        self.metrics = metrics if metrics is not None else SessionMetrics()
        self.alerts = alerts
        self.feed_stale_s = feed_stale_s
        self.status: dict[str, Any] = {}
        self.node: Any = None
        self.started = datetime.now(UTC)
        self.recent_trades: deque[dict] = deque(maxlen=recent)
        self.recent_guards: deque[dict] = deque(maxlen=recent)
        self.guard_counts: Counter[str] = Counter()
        self.order_counts: Counter[str] = Counter()
        self.cursor = dict.fromkeys(_COUNT, 0)
        self.equity = _Curve(max_points)
        self.feed_errors: dict[str, list] = {}  # key -> [count, last error lines seen]
        self.stop_reason: str | None = None
        self.errors = 0
        self.last_error: str | None = None
        self._tapped: Any = None
        self._shutdown_checked = -math.inf

    # ---- the tick ------------------------------------------------------------------------
    def tick(self, node: Any, st: dict[str, Any]) -> None:
        """Enrich ``st`` (the node's status, in place), update metrics and alerts.

        A failure here is counted (``errors``, ``last_error``) and never stops the session.
        """
        try:
            self._tick(node, st)
        except Exception as exc:  # noqa: BLE001 - monitoring must never stop trading
            self.errors += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            st["monitor_error"] = self.last_error

    def _tick(self, node: Any, st: dict[str, Any]) -> None:
        if self._tapped is not node.session:
            self._attach(node)
        sess = node.session
        for name in _COUNT:
            n = int(sess.state.glob[0][_COUNT[name]])
            base = int(sess.drained.get(name, 0))
            start = max(0, self.cursor[name] - base)
            if n > start:
                self._take(name, base + start, getattr(sess.state, name)[start:n])
        self._enrich(node, st)
        if self.alerts is not None:
            st["alerts"] = self.alerts.evaluate(st)
        samples = {"decision_s": _pop(getattr(node, "decide_s", None)),
                   "write_s": _pop(getattr(node, "write_s", None))}
        self.metrics.update({**st, "samples": samples})
        self.status = st
        self._check_shutdown(node)

    def history(self) -> dict[str, list]:
        """The equity curve for the chart: kernel times (ns), equity, drawdown."""
        ts, eq = self.equity.points()
        peak = np.maximum.accumulate(np.asarray(eq, float)) if eq else np.zeros(0)
        return {"ts_ns": ts, "equity": eq, "drawdown": (peak - np.asarray(eq, float)).tolist()}

    # ---- attach: tap the drain, backfill a resumed session ------------------------------
    def _attach(self, node: Any) -> None:
        self.node = node
        sess = node.session
        self._backfill(node)
        orig = sess.drain

        def drain() -> dict[str, np.ndarray]:
            base = dict(sess.drained)
            out = orig()
            for name in _COUNT:
                if name in out and out[name].shape[0]:
                    self._take(name, int(base.get(name, 0)), out[name])
            return out

        sess.drain = drain
        self._tapped = sess

    def _backfill(self, node: Any) -> None:
        """Rows a resumed session wrote before this process: from the results store."""
        sess, results = node.session, getattr(node, "results", None)
        run_id = getattr(node, "run_id", None)
        if results is None or run_id is None or getattr(node, "resumed_from", None) is None:
            return  # a new session has no history yet
        try:
            written = results.rows_written(run_id)
        except Exception:  # noqa: BLE001 - a history we cannot read leaves the page blank
            return
        for name in ("trades", "guards", "equity"):
            upto = min(int(written.get(name, 0)), int(sess.drained.get(name, 0)))
            if upto <= self.cursor[name]:
                continue
            frame = results.frame(name, run_id).head(upto)
            rows = np.zeros(frame.height, _dtype(name))
            for col in rows.dtype.names:
                if col in frame.columns:
                    rows[col] = frame[col].to_numpy()
            self._take(name, 0, rows)

    # ---- rows -> counters and recent lists ------------------------------------------------
    def _take(self, name: str, base: int, rows: np.ndarray) -> None:
        skip = max(0, self.cursor[name] - base)
        rows = rows[skip:]
        if rows.shape[0] == 0:
            return
        self.cursor[name] = base + skip + rows.shape[0]
        getattr(self, f"_take_{name}")(rows)

    def _take_trades(self, rows: np.ndarray) -> None:
        labels = self._labels()
        for r in rows[rows["is_open"] == 0][-self.recent_trades.maxlen:]:
            self.recent_trades.append({
                "trade_id": int(r["trade_id"]), "route": labels[int(r["route"])],
                "dir": int(r["dir"]), "qty": float(r["qty"]),
                "entry_ts_ns": int(r["entry_ts"]), "exit_ts_ns": int(r["exit_ts"]),
                "entry_edge_bps": float(r["entry_edge_bps"]),
                "exit_edge_bps": float(r["exit_edge_bps"]), "net_pnl": float(r["net_pnl"]),
                "fees": float(r["fees"]),
                "exit_reason": T.EXIT_REASON_TEXT[int(r["exit_reason"])]})

    def _take_guards(self, rows: np.ndarray) -> None:
        labels = self._labels()
        for r in rows:
            code, route = int(r["code"]), int(r["route"])
            guard = T.guard_text(code)
            self.guard_counts[guard] += 1
            detail = ""
            if code == T.G_CONTROL:
                ctl = T.CONTROL_TEXT[int(r["value"])] if 0 < r["value"] < len(T.CONTROL_TEXT) else "?"
                detail = ctl + (f" {self._base(int(r['limit']))}" if ctl.startswith("symbol_")
                                else "")
            where = labels[route] if 0 <= route < len(labels) and code not in (
                T.G_TRANSFER, T.G_TRANSFER_IN) else ("portfolio" if route < 0 else str(route))
            self.recent_guards.append({"ts_ns": int(r["ts"]), "guard": guard, "route": where,
                                       "value": _f(r["value"]), "limit": _f(r["limit"]),
                                       "detail": detail})

    def _take_equity(self, rows: np.ndarray) -> None:
        for ts, eq in zip(rows["ts"].tolist(), rows["equity"].tolist(), strict=True):
            self.equity.add(int(ts), float(eq))

    def _take_olog(self, rows: np.ndarray) -> None:
        st = rows["status"]
        for code in np.unique(st):
            self.order_counts[T.ORDER_STATUS_TEXT[int(code)]] += int((st == code).sum())

    # ---- the enriched status ---------------------------------------------------------------
    def _enrich(self, node: Any, st: dict[str, Any]) -> None:
        sess, cfg = node.session, node.cfg
        s = sess.state
        g = s.glob[0]
        self.equity.see(float(st.get("equity", math.nan)))
        peak = self.equity.peak
        eq = float(st.get("equity", math.nan))
        wins = int(getattr(node, "agg", {}).get("wins", 0))
        trades = int(st.get("trades", 0))
        halt = int(g["halt"])
        st.update(
            mode=(getattr(node, "extra_meta", {}) or {}).get("mode")
            or getattr(node, "mode", "paper"),
            run_id=getattr(node, "run_id", ""), config_hash=self._config_hash(cfg),
            updated_at=time.time(), started_at=self.started.timestamp(),
            up_within_s=max(5.0, 5 * float(getattr(node.options, "status_s", 1.0))),
            wins=wins, win_rate=wins / trades if trades else None,
            equity_peak=_f(peak), drawdown=_f(max(0.0, peak - eq)),
            drawdown_ratio=_f(max(0.0, peak - eq) / peak) if peak > 0 else None,
            drawdown_ratio_deepest=_f(self.equity.take_deepest()) if peak > 0 else None,
            halt_reason=HALT_TEXT[halt] if 0 <= halt < len(HALT_TEXT) else str(halt),
            kill_switch=halt == T.HALT_KILL,
            guards=dict(self.guard_counts), orders=dict(self.order_counts),
            risk=_risk(s, cfg, eq),
            reconciliation=st.get("reconciliation") or {"state": "n/a", "failed": False},
            recent_trades=list(self.recent_trades)[::-1],
            recent_guards=list(self.recent_guards)[::-1],
            queue_depth=_queue_depth(getattr(node, "source", None)),
            monitor_errors=self.errors)
        for r, row in enumerate(st.get("routes", [])):
            rc = cfg.routes[r]
            rt = s.route[r]
            row.update(symbol=cfg.instrument(rc.a).base, legs=[rc.a, rc.b], off=bool(rt["off"]),
                       open_exposure=_f(abs(float(rt["pos_a"])) * _mid(s, int(rt["inst_a"]))
                                        + abs(float(rt["pos_b"])) * _mid(s, int(rt["inst_b"]))),
                       skips={T.SKIP_TEXT[c]: int(n) for c, n in enumerate(s.skips[r])
                              if n and c != T.SK_TAKEN})
        for key, f in (st.get("feeds") or {}).items():
            f["errors_total"] = self._feed_errors(key, f.get("errors") or [])
        st["health"] = self._health(sess, st)

    def _feed_errors(self, key: str, lines: list[str]) -> int:
        """Error lines noted since the session started (the feed keeps only the last few)."""
        count, seen = self.feed_errors.get(key, [0, []])
        new = len(lines)
        for k in range(min(len(seen), len(lines)), 0, -1):  # the overlap of old tail, new head
            if seen[-k:] == lines[:k]:
                new = len(lines) - k
                break
        self.feed_errors[key] = [count + new, list(lines)]
        return count + new

    def _health(self, sess: Any, st: dict[str, Any]) -> dict[str, Any]:
        started = bool(getattr(sess, "started", False)) and not getattr(sess, "finished", False)
        stale = []
        for key, f in (st.get("feeds") or {}).items():
            age = f.get("age_s")
            if f.get("state") == "down" or (age is None and "age_s" in f) or (
                    age is not None and age > self.feed_stale_s):
                stale.append(key)
        failed = bool((st.get("reconciliation") or {}).get("failed"))
        return {"live": True, "ready": started and not stale and not failed,
                "checks": {"session_started": started, "feeds_fresh": not stale,
                           "stale_feeds": stale, "reconciliation_ok": not failed,
                           "halt": st.get("halt_reason", "none")}}

    def _check_shutdown(self, node: Any) -> None:
        now = time.monotonic()
        if now - self._shutdown_checked < SHUTDOWN_POLL_S:
            return
        self._shutdown_checked = now
        try:
            req = shutdown_requested(node.store.meta(), self.started)
        except Exception:  # noqa: BLE001 - a store hiccup must not stop the session
            return
        if req is not None and self.stop_reason is None:
            self.stop_reason = f"shutdown by {req.get('by', '?')} via {req.get('via', '?')}"
            node.store.audit({"control": "shutdown", "applied": True, "by": req.get("by", "?"),
                              "via": req.get("via", "?")})
            node.stop()

    # ---- helpers -------------------------------------------------------------------------
    def _config_hash(self, cfg: Any) -> str:
        if getattr(self, "_hash_of", None) is not cfg:
            self._hash_of, self._hash = cfg, cfg.config_hash()
        return self._hash

    def _labels(self) -> list[str]:
        return [r.label for r in self.node.cfg.routes]

    def _base(self, base_id: int) -> str:
        from arbkit.data.carry import base_ids

        bases = base_ids(self.node.cfg)
        return bases[base_id] if 0 <= base_id < len(bases) else str(base_id)


class _Curve:
    """Equity samples for the chart, thinned by halves past ``max_points``; the peak is exact."""

    def __init__(self, max_points: int) -> None:
        self.max_points = max(16, int(max_points))
        self.ts: list[int] = []
        self.eq: list[float] = []
        self.stride = 1
        self.n = 0
        self.peak = -math.inf
        self.deepest = 0.0  # the deepest drawdown / peak seen since ``take_deepest``

    def see(self, eq: float) -> None:
        if math.isfinite(eq):
            self.peak = max(self.peak, eq)
            if self.peak > 0:
                self.deepest = max(self.deepest, (self.peak - eq) / self.peak)

    def take_deepest(self) -> float:
        """The deepest drawdown ratio since the last call (equity samples and status ticks):
        a dip that recovered between two ticks is still seen."""
        out, self.deepest = self.deepest, 0.0
        return out

    def add(self, ts: int, eq: float) -> None:
        self.see(eq)
        self.n += 1
        if (self.n - 1) % self.stride:
            return
        self.ts.append(ts)
        self.eq.append(eq)
        if len(self.ts) >= self.max_points:
            self.ts, self.eq = self.ts[::2], self.eq[::2]
            self.stride *= 2

    def points(self) -> tuple[list[int], list[float]]:
        # (read from the HTTP server's thread while the session's may append or thin)
        ts, eq = self.ts, self.eq
        n = min(len(ts), len(eq))
        return list(ts[:n]), list(eq[:n])


def _pop(dq: Any) -> list:
    if not dq:
        return []
    out = list(dq)
    dq.clear()
    return out


def _f(x: Any) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def _dtype(name: str) -> np.dtype:
    return {"trades": T.TRADE_DTYPE, "guards": T.GUARD_DTYPE, "equity": T.EQUITY_DTYPE,
            "olog": T.ORDER_LOG_DTYPE}[name]


def _mid(s: Any, i: int) -> float:
    m = 0.5 * (s.book_px[i, T.BID, 0] + s.book_px[i, T.ASK, 0]) * s.inst[i]["fx"]
    return float(m) if math.isfinite(m) else 0.0


def _risk(s: Any, cfg: Any, eq: float) -> list[dict[str, Any]]:
    """Use of each risk limit that is on (value / cap)."""
    rk, g = s.risk[0], s.glob[0]
    out = []

    def use(limit: str, scope: str, value: float, cap: float) -> None:
        if math.isfinite(cap) and cap > 0 and math.isfinite(value):
            out.append({"limit": limit, "scope": scope, "value": value, "cap": cap,
                        "use": value / cap})

    gross = sum(abs(float(s.inst[i]["pos"])) * _mid(s, i) for i in range(s.inst.shape[0]))
    use("gross_cap", "", gross, float(rk["gross_cap"]))
    if math.isfinite(float(rk["symbol_cap"])):
        by_base: dict[str, float] = {}
        for r, rc in enumerate(cfg.routes):
            rt = s.route[r]
            base = cfg.instrument(rc.a).base
            by_base.setdefault(base, 0.0)
            if rt["state"] != T.FLAT:
                by_base[base] += float(rt["entry_notional"] if rt["entry_notional"] > 0
                                       else rt["notional"])
        for base, v in sorted(by_base.items()):
            use("symbol_cap", base, v, float(rk["symbol_cap"]))
    if int(g["running_guards"]) == 1:
        use("daily_loss", "", max(0.0, float(g["day_start_eq"]) - eq), float(rk["daily_loss"]))
        use("max_drawdown", "", max(0.0, float(g["peak_eq"]) - eq), float(rk["max_dd"]))
    return out


def _queue_depth(source: Any) -> int | None:
    for obj in (source, getattr(source, "feed", None)):
        q = getattr(obj, "queue", None)
        if q is not None and hasattr(q, "qsize"):
            return int(q.qsize())
    return None
