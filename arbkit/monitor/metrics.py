"""``arbkit_*`` Prometheus metrics of a session, from its status.

:class:`SessionMetrics` keeps the last status it was given (``update``) and renders it on
every scrape (a custom collector: values are read, never double counted, so a counter that
the session restored after a resume is exported as it is). Latency histograms are real
``prometheus_client`` histograms fed with the samples the status carries under ``samples``.

Every metric is listed in :data:`METRICS` (name, type, labels, meaning), the table
``docs/operations.md`` documents (``tests/unit/test_monitor_metrics.py`` checks both agree).
All carry the ``session`` label.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Histogram, disable_created_metrics, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

disable_created_metrics()  # no *_created series: noise for a session's own registry

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 0.01, 0.025,
                   0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
WRITE_BUCKETS = (1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                 1.0, 2.5, 5.0)
HALT_REASONS = ("none", "daily_loss", "drawdown", "kill", "stop")
ROUTE_STATES = ("flat", "entering", "open", "exiting", "unwinding")
FEED_STATES = ("live", "polling", "down")
FEED_INCIDENTS = ("gaps", "silences", "crossed", "dropped", "stale", "garbage", "recreated")


@dataclass(frozen=True)
class MetricSpec:
    name: str
    kind: str  # gauge | counter | histogram
    labels: tuple[str, ...]
    help: str


_R = ("session", "route", "symbol")
_F = ("session", "venue", "symbol")
METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("arbkit_session_info", "gauge", ("session", "mode", "run_id", "config_hash"),
               "1 while the session reports; its identity in the labels"),
    MetricSpec("arbkit_session_up", "gauge", ("session",),
               "1: the session's status is fresh (its loop ticks); 0: it stopped ticking"),
    MetricSpec("arbkit_session_ready", "gauge", ("session",),
               "1: started, every feed fresh, reconciliation not failed (as /health)"),
    MetricSpec("arbkit_last_status_timestamp_seconds", "gauge", ("session",),
               "Unix time of the last status tick"),
    MetricSpec("arbkit_session_start_timestamp_seconds", "gauge", ("session",),
               "Unix time this process started the session (or resumed it)"),
    MetricSpec("arbkit_events_total", "counter", ("session", "kind"),
               "Events fed to the kernel: quote, heartbeat, control"),
    # ---- per route / symbol
    MetricSpec("arbkit_route_net_pnl", "gauge", _R,
               "Net PnL of the route's closed round trips (reference currency)"),
    MetricSpec("arbkit_route_trades_total", "counter", _R, "Closed round trips of the route"),
    MetricSpec("arbkit_route_wins_total", "counter", _R,
               "Closed round trips with net PnL > 0"),
    MetricSpec("arbkit_route_win_rate", "gauge", _R,
               "wins / round trips (absent before the first round trip)"),
    MetricSpec("arbkit_route_entries_total", "counter", _R, "Entry decisions sent"),
    MetricSpec("arbkit_route_state", "gauge", (*_R, "state"),
               "1 for the route's current state (flat, entering, open, exiting, unwinding)"),
    MetricSpec("arbkit_route_symbol_off", "gauge", _R,
               "1: the operator turned the route's symbol off (no new entries)"),
    MetricSpec("arbkit_route_edge_bps", "gauge", _R,
               "Best entry edge seen on the route (bps of the reference mid)"),
    MetricSpec("arbkit_route_threshold_bps", "gauge", _R, "Entry threshold (bps)"),
    MetricSpec("arbkit_route_position", "gauge", (*_R, "leg", "instrument"),
               "Position of each leg as the strategy knows it (base units, signed)"),
    MetricSpec("arbkit_route_open_exposure", "gauge", _R,
               "|position| x mid of both legs (reference currency)"),
    MetricSpec("arbkit_guard_skips_total", "counter", (*_R, "reason"),
               "Entry opportunities a guard skipped, by guard (symbol_off, halted, busy, ...)"),
    MetricSpec("arbkit_risk_limit_use_ratio", "gauge", ("session", "limit", "scope"),
               "Use of each risk limit that is on: value / cap (gross_cap, symbol_cap per "
               "symbol, daily_loss, max_drawdown)"),
    # ---- portfolio
    MetricSpec("arbkit_net_pnl", "gauge", ("session",),
               "Net PnL of all closed round trips (reference currency)"),
    MetricSpec("arbkit_trades_total", "counter", ("session",), "Closed round trips"),
    MetricSpec("arbkit_wins_total", "counter", ("session",), "Closed round trips won"),
    MetricSpec("arbkit_win_rate", "gauge", ("session",), "wins / round trips"),
    MetricSpec("arbkit_equity", "gauge", ("session",),
               "Account equity marked to mid now (capital + what trading changed)"),
    MetricSpec("arbkit_equity_peak", "gauge", ("session",), "Highest equity seen"),
    MetricSpec("arbkit_drawdown", "gauge", ("session",), "equity_peak - equity"),
    MetricSpec("arbkit_drawdown_ratio", "gauge", ("session",), "drawdown / equity_peak"),
    MetricSpec("arbkit_gross_exposure", "gauge", ("session",),
               "Sum of |position| x mid over instruments (reference currency)"),
    MetricSpec("arbkit_halted", "gauge", ("session", "reason"),
               "1 for the running halt (none, daily_loss, drawdown, kill, stop)"),
    MetricSpec("arbkit_kill_switch_engaged", "gauge", ("session",),
               "1 once the kill switch (or a kill control) flattened and halted the session"),
    MetricSpec("arbkit_guard_events_total", "counter", ("session", "reason"),
               "Guard-log rows by guard: one per episode (symbol_off, drawdown, kill, control,"
               " market_gap, ...)"),
    MetricSpec("arbkit_orders_total", "counter", ("session", "status"),
               "Orders by final status (filled, partially_filled, cancelled, rejected, ...)"),
    MetricSpec("arbkit_reconciliation_failed", "gauge", ("session",),
               "1: the last reconciliation with the venues failed (live sessions; 0 in paper, "
               "which has nothing to reconcile)"),
    # ---- feeds
    MetricSpec("arbkit_feed_age_seconds", "gauge", _F,
               "Time since the instrument's last quote (source clock)"),
    MetricSpec("arbkit_feed_lag_seconds", "gauge", _F,
               "Receive time - exchange time of the last quote"),
    MetricSpec("arbkit_feed_state", "gauge", (*_F, "state"),
               "1 for the feed's state (live, polling, down)"),
    MetricSpec("arbkit_feed_messages_total", "counter", _F, "Quotes received"),
    MetricSpec("arbkit_feed_reconnects_total", "counter", _F, "Websocket reconnects"),
    MetricSpec("arbkit_feed_errors_total", "counter", _F,
               "Error lines the feed noted (each a venue error, a drop, a gap)"),
    MetricSpec("arbkit_feed_incidents_total", "counter", (*_F, "kind"),
               "Feed incidents by kind: gaps, silences, crossed, dropped, stale, garbage, "
               "recreated"),
    MetricSpec("arbkit_feed_queue_depth", "gauge", ("session",),
               "Quotes waiting in the session's queue at the status tick"),
    # ---- latency
    MetricSpec("arbkit_decision_latency_seconds", "histogram", ("session",),
               "Per batch of quotes: from the node taking it off its queue to the kernel's "
               "decision on it"),
    MetricSpec("arbkit_kernel_decide_seconds", "gauge", ("session", "quantile"),
               "Kernel time per event, p50 and p99 over the session"),
    MetricSpec("arbkit_store_write_seconds", "histogram", ("session", "store"),
               "Write latency: journal (Redis), snapshot (Redis), heartbeat (Redis), "
               "results (results store)"),
    MetricSpec("arbkit_redis_down_seconds", "gauge", ("session",),
               "Seconds since the session's Redis stopped answering (0 while it answers; the "
               "session waits up to ARBKIT_REDIS_OUTAGE_S, then stops)"),
    MetricSpec("arbkit_monitor_errors_total", "counter", ("session",),
               "Status ticks the monitor failed to enrich (never stops the session)"),
    # ---- alerts sent by arbkit itself
    MetricSpec("arbkit_alerts_firing", "gauge", ("session", "rule"),
               "1 while one of arbkit's own alert rules fires"),
    MetricSpec("arbkit_alerts_sent_total", "counter", ("session", "rule", "channel"),
               "Webhook alerts sent (channel: slack, telegram, json)"),
    MetricSpec("arbkit_alerts_suppressed_total", "counter", ("session", "rule"),
               "Alerts not sent because of the rate limit"),
    MetricSpec("arbkit_alerts_failed_total", "counter", ("session", "channel"),
               "Webhook posts that failed (receiver down, non-2xx)"),
)
SPECS = {m.name: m for m in METRICS}


class SessionMetrics(Collector):
    """The ``arbkit_*`` metrics of one session.

    Parameters
    ----------
    registry : where to register; default a new ``CollectorRegistry`` of its own (so two
        sessions, or two tests, in one process never clash).

    Examples
    --------
    >>> m = SessionMetrics()
    >>> m.update({"session": "s", "equity": 100.0, "trades": 2, "wins": 1, "routes": []})
    >>> b"arbkit_equity" in m.render()
    True
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.status: dict[str, Any] = {}
        # the HTTP server's view now (``/health``): up/ready while the status is not ticking
        self.health_now: Any = None
        self.decision = Histogram("arbkit_decision_latency_seconds",
                                  SPECS["arbkit_decision_latency_seconds"].help, ["session"],
                                  buckets=LATENCY_BUCKETS, registry=self.registry)
        self.writes = Histogram("arbkit_store_write_seconds",
                                SPECS["arbkit_store_write_seconds"].help, ["session", "store"],
                                buckets=WRITE_BUCKETS, registry=self.registry)
        self.registry.register(self)

    def update(self, status: dict[str, Any]) -> None:
        """Take a new status (a session's enriched status dict); its ``samples`` (decision
        latencies, store writes in seconds) go to the histograms."""
        name = str(status.get("session", ""))
        samples = status.get("samples") or {}
        for s in samples.get("decision_s", ()):
            self.decision.labels(name).observe(float(s))
        for store, s in samples.get("write_s", ()):
            self.writes.labels(name, str(store)).observe(float(s))
        self.status = {k: v for k, v in status.items() if k != "samples"}

    def render(self) -> bytes:
        """The text exposition of the registry (what ``/metrics`` serves)."""
        return generate_latest(self.registry)

    # ---- the collector -----------------------------------------------------------------
    def describe(self) -> Iterator[Metric]:
        return iter(())  # values appear with the first status; nothing to check up front

    def collect(self) -> Iterator[Metric]:
        st = self.status
        if not st:
            return
        fam = _Families()
        s = str(st.get("session", ""))
        _session(fam, s, st, self.health_now() if self.health_now is not None else None)
        for r in st.get("routes", []):
            _route(fam, s, r)
        _portfolio(fam, s, st)
        for key, f in (st.get("feeds") or {}).items():
            _feed(fam, s, key, f)
        _alerts(fam, s, st.get("alerts") or {})
        yield from fam.all()


class _Families:
    """Metric families by name, created on first use from :data:`METRICS`."""

    def __init__(self) -> None:
        self.fams: dict[str, Metric] = {}

    def add(self, name: str, labels: tuple, value: Any) -> None:
        if not _num(value):
            return
        if name not in self.fams:
            spec = SPECS[name]
            cls = CounterMetricFamily if spec.kind == "counter" else GaugeMetricFamily
            base = name[:-len("_total")] if spec.kind == "counter" else name
            self.fams[name] = cls(base, spec.help, labels=list(spec.labels))
        self.fams[name].add_metric([str(v) for v in labels], float(value))

    def all(self) -> Iterator[Metric]:
        yield from self.fams.values()


def _num(v: Any) -> bool:
    """A value Prometheus can take (None, NaN and infinities are left out)."""
    return isinstance(v, bool) or (isinstance(v, int | float) and math.isfinite(v))


def _session(fam: _Families, s: str, st: dict, now: dict | None = None) -> None:
    fam.add("arbkit_session_info", (s, st.get("mode", "paper"), st.get("run_id", ""),
                                    st.get("config_hash", "")), 1)
    if now is not None:  # the server's health now (a loop waiting for Redis is up, not ready)
        up, ready = bool(now.get("live")), bool(now.get("ready"))
        down = (now.get("checks") or {}).get("redis_down_s", 0.0)
    else:
        age = time.time() - float(st.get("updated_at") or 0.0)
        up = age <= float(st.get("up_within_s", 5.0))
        ready = bool((st.get("health") or {}).get("ready"))
        down = (st.get("redis") or {}).get("down_s", 0.0)
    fam.add("arbkit_session_up", (s,), 1 if up else 0)
    fam.add("arbkit_session_ready", (s,), 1 if ready else 0)
    fam.add("arbkit_redis_down_seconds", (s,), down)
    fam.add("arbkit_last_status_timestamp_seconds", (s,), st.get("updated_at"))
    fam.add("arbkit_session_start_timestamp_seconds", (s,), st.get("started_at"))
    for kind, key in (("quote", "quotes"), ("heartbeat", "heartbeats"), ("control", "controls")):
        fam.add("arbkit_events_total", (s, kind), st.get(key))
    for q in ("p50", "p99"):
        v = st.get(f"decide_us_{q}")
        fam.add("arbkit_kernel_decide_seconds", (s, "0." + q[1:]), None if v is None else v / 1e6)
    fam.add("arbkit_feed_queue_depth", (s,), st.get("queue_depth"))
    fam.add("arbkit_monitor_errors_total", (s,), st.get("monitor_errors", 0))


def _route(fam: _Families, s: str, r: dict) -> None:
    lab = (s, r.get("route", ""), r.get("symbol", ""))
    fam.add("arbkit_route_net_pnl", lab, r.get("net_pnl"))
    fam.add("arbkit_route_trades_total", lab, r.get("trades"))
    fam.add("arbkit_route_wins_total", lab, r.get("wins"))
    fam.add("arbkit_route_win_rate", lab, r.get("win_rate"))
    fam.add("arbkit_route_entries_total", lab, r.get("entries"))
    for state in ROUTE_STATES:
        fam.add("arbkit_route_state", (*lab, state), 1 if r.get("state") == state else 0)
    fam.add("arbkit_route_symbol_off", lab, 1 if r.get("off") else 0)
    fam.add("arbkit_route_edge_bps", lab, r.get("best_edge_bps"))
    fam.add("arbkit_route_threshold_bps", lab, r.get("threshold_bps"))
    legs = r.get("legs") or ["", ""]
    fam.add("arbkit_route_position", (*lab, "a", legs[0]), r.get("pos_a"))
    fam.add("arbkit_route_position", (*lab, "b", legs[1]), r.get("pos_b"))
    fam.add("arbkit_route_open_exposure", lab, r.get("open_exposure"))
    for reason, n in (r.get("skips") or {}).items():
        fam.add("arbkit_guard_skips_total", (*lab, reason), n)


def _portfolio(fam: _Families, s: str, st: dict) -> None:
    for name, key in (("arbkit_net_pnl", "net_pnl"), ("arbkit_trades_total", "trades"),
                      ("arbkit_wins_total", "wins"), ("arbkit_win_rate", "win_rate"),
                      ("arbkit_equity", "equity"), ("arbkit_equity_peak", "equity_peak"),
                      ("arbkit_drawdown", "drawdown"), ("arbkit_drawdown_ratio", "drawdown_ratio"),
                      ("arbkit_gross_exposure", "gross_exposure")):
        fam.add(name, (s,), st.get(key))
    halt = st.get("halt_reason", "none")
    for reason in HALT_REASONS:
        fam.add("arbkit_halted", (s, reason), 1 if halt == reason else 0)
    fam.add("arbkit_kill_switch_engaged", (s,), 1 if st.get("kill_switch") else 0)
    for reason, n in (st.get("guards") or {}).items():
        fam.add("arbkit_guard_events_total", (s, reason), n)
    for status, n in (st.get("orders") or {}).items():
        fam.add("arbkit_orders_total", (s, status), n)
    for u in st.get("risk") or []:
        fam.add("arbkit_risk_limit_use_ratio", (s, u["limit"], u.get("scope", "")), u.get("use"))
    rec = st.get("reconciliation") or {}
    fam.add("arbkit_reconciliation_failed", (s,), 1 if rec.get("failed") else 0)


def split_key(key: str) -> tuple[str, str]:
    """An instrument key ``venue:symbol`` as (venue, symbol); a source without one as (key, '')."""
    venue, _, symbol = str(key).partition(":")
    return venue, symbol


def _feed(fam: _Families, s: str, key: str, f: dict) -> None:
    lab = (s, *split_key(key))
    fam.add("arbkit_feed_age_seconds", lab, f.get("age_s"))
    fam.add("arbkit_feed_lag_seconds", lab, f.get("lag_s"))
    if f.get("state") in FEED_STATES:
        for state in FEED_STATES:
            fam.add("arbkit_feed_state", (*lab, state), 1 if f.get("state") == state else 0)
    fam.add("arbkit_feed_messages_total", lab, f.get("messages"))
    fam.add("arbkit_feed_reconnects_total", lab, f.get("reconnects", 0))
    fam.add("arbkit_feed_errors_total", lab, f.get("errors_total", 0))
    for kind in FEED_INCIDENTS:
        if kind in f:
            fam.add("arbkit_feed_incidents_total", (*lab, kind), f[kind])


def _alerts(fam: _Families, s: str, al: dict) -> None:
    for rule in al.get("rules", []):
        fam.add("arbkit_alerts_firing", (s, rule), 1 if rule in al.get("firing", []) else 0)
    for key, n in (al.get("sent") or {}).items():
        rule, _, channel = key.partition("/")
        fam.add("arbkit_alerts_sent_total", (s, rule, channel), n)
    for rule, n in (al.get("suppressed") or {}).items():
        fam.add("arbkit_alerts_suppressed_total", (s, rule), n)
    for channel, n in (al.get("failed") or {}).items():
        fam.add("arbkit_alerts_failed_total", (s, channel), n)
