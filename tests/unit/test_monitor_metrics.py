"""arbkit.monitor.metrics: the exposition a status turns into, and docs/operations.md lists
every metric (and only those)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from arbkit.monitor.metrics import METRICS, SessionMetrics, split_key

ROOT = Path(__file__).resolve().parents[2]


def status() -> dict:
    return {
        "session": "s1", "mode": "paper", "run_id": "r1", "config_hash": "abc",
        "updated_at": 4_102_444_800.0, "started_at": 4_102_444_000.0, "up_within_s": 1e12,
        "quotes": 100, "heartbeats": 3, "controls": 1, "equity": 1005.5, "equity_peak": 1010.0,
        "drawdown": 4.5, "drawdown_ratio": 4.5 / 1010.0, "gross_exposure": 12.0,
        "net_pnl": 5.5, "trades": 4, "wins": 3, "win_rate": 0.75, "halt_reason": "stop",
        "kill_switch": False, "decide_us_p50": 2.0, "decide_us_p99": 30.0, "queue_depth": 0,
        "guards": {"symbol_off": 2, "control": 1}, "orders": {"filled": 8, "rejected": 1},
        "risk": [{"limit": "gross_cap", "scope": "", "value": 12.0, "cap": 100.0, "use": 0.12}],
        "reconciliation": {"state": "n/a", "failed": False},
        "health": {"ready": True},
        "routes": [{"route": "ETH a~b", "symbol": "ETH", "legs": ["A:ETH", "B:ETH"],
                    "state": "open", "pos_a": 0.5, "pos_b": -0.5, "entries": 5, "trades": 4,
                    "wins": 3, "net_pnl": 5.5, "win_rate": 0.75, "best_edge_bps": float("nan"),
                    "threshold_bps": 8.5, "off": True, "open_exposure": 12.0,
                    "skips": {"symbol_off": 7, "busy": 2}}],
        "feeds": {"A:ETH": {"state": "live", "age_s": 0.25, "lag_s": None, "messages": 60,
                            "reconnects": 1, "errors_total": 2, "gaps": 1, "garbage": 0},
                  "replay": {"state": "live", "messages": 40}},
        "alerts": {"rules": ["drawdown", "kill_switch"], "firing": ["drawdown"],
                   "sent": {"drawdown/slack": 1}, "suppressed": {"drawdown": 2},
                   "failed": {"slack": 1}},
    }


def values(m: SessionMetrics) -> dict[tuple, float]:
    out = {}
    for fam in text_string_to_metric_families(m.render().decode()):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_a_status_becomes_the_documented_series_with_their_labels() -> None:
    m = SessionMetrics()
    m.update({**status(), "samples": {"decision_s": [0.0002, 0.003],
                                      "write_s": [("journal", 0.001), ("results", 0.02)]}})
    v = values(m)
    s = ("session", "s1")
    route = (("route", "ETH a~b"), s, ("symbol", "ETH"))
    assert v[("arbkit_equity", (s,))] == 1005.5
    assert v[("arbkit_trades_total", (s,))] == 4  # a counter, read from the status
    assert v[("arbkit_route_trades_total", route)] == 4
    assert v[("arbkit_route_win_rate", route)] == 0.75
    assert v[("arbkit_route_symbol_off", route)] == 1
    assert ("arbkit_route_edge_bps", route) not in v  # NaN is left out, never exported
    assert v[("arbkit_route_state", (*route[:2], ("state", "open"), route[2]))] == 1
    assert v[("arbkit_route_state", (*route[:2], ("state", "flat"), route[2]))] == 0
    assert v[("arbkit_guard_skips_total", (("reason", "symbol_off"), *route))] == 7
    assert v[("arbkit_route_position", (("instrument", "B:ETH"), ("leg", "b"), *route))] == -0.5
    assert v[("arbkit_halted", (("reason", "stop"), s))] == 1
    assert v[("arbkit_halted", (("reason", "kill"), s))] == 0
    assert v[("arbkit_orders_total", (s, ("status", "rejected")))] == 1
    assert v[("arbkit_guard_events_total", (("reason", "symbol_off"), s))] == 2
    assert v[("arbkit_risk_limit_use_ratio", (("limit", "gross_cap"), ("scope", ""), s))] == 0.12
    feed = (s, ("symbol", "ETH"), ("venue", "A"))
    assert v[("arbkit_feed_age_seconds", feed)] == 0.25
    assert ("arbkit_feed_lag_seconds", feed) not in v
    assert v[("arbkit_feed_errors_total", feed)] == 2
    assert v[("arbkit_feed_incidents_total", (("kind", "gaps"), *feed))] == 1
    assert v[("arbkit_feed_messages_total", (s, ("symbol", ""), ("venue", "replay")))] == 40
    assert v[("arbkit_events_total", (("kind", "control"), s))] == 1
    assert v[("arbkit_kernel_decide_seconds", (("quantile", "0.99"), s))] == pytest.approx(30e-6)
    assert v[("arbkit_session_up", (s,))] == 1
    assert v[("arbkit_session_ready", (s,))] == 1
    assert v[("arbkit_decision_latency_seconds_count", (s,))] == 2
    assert v[("arbkit_decision_latency_seconds_bucket", (("le", "0.00025"), s))] == 1
    assert v[("arbkit_store_write_seconds_count", (s, ("store", "results")))] == 1
    assert v[("arbkit_alerts_firing", (("rule", "drawdown"), s))] == 1
    assert v[("arbkit_alerts_firing", (("rule", "kill_switch"), s))] == 0
    assert v[("arbkit_alerts_sent_total", (("channel", "slack"), ("rule", "drawdown"), s))] == 1
    assert v[("arbkit_reconciliation_failed", (s,))] == 0
    info = (("config_hash", "abc"), ("mode", "paper"), ("run_id", "r1"), s)
    assert v[("arbkit_session_info", info)] == 1


def test_a_status_that_stopped_ticking_reads_as_down_and_histograms_keep_counting() -> None:
    m = SessionMetrics()
    st = {**status(), "updated_at": 1.0, "up_within_s": 5.0}
    m.update({**st, "samples": {"decision_s": [0.01]}})
    m.update({**st, "samples": {"decision_s": [0.02]}})
    v = values(m)
    assert v[("arbkit_session_up", (("session", "s1"),))] == 0
    assert v[("arbkit_decision_latency_seconds_count", (("session", "s1"),))] == 2


def test_two_sessions_in_one_process_never_clash_and_nothing_is_shown_before_a_status() -> None:
    a, b = SessionMetrics(), SessionMetrics()
    assert b"arbkit_equity" not in a.render()
    a.update(status())
    b.update({**status(), "session": "s2"})
    assert b'session="s2"' in b.render() and b'session="s2"' not in a.render()
    shared = CollectorRegistry()
    SessionMetrics(shared).update(status())
    assert any(f.name == "arbkit_equity" for f in shared.collect())  # a registry given is used


def test_instrument_keys_split_into_venue_and_symbol() -> None:
    assert split_key("binance_spot:BTCUSDT") == ("binance_spot", "BTCUSDT")
    assert split_key("replay") == ("replay", "")


def test_docs_list_every_metric_with_its_labels_and_nothing_else() -> None:
    text = (ROOT / "docs" / "operations.md").read_text()
    rows = dict(re.findall(r"^\| `(arbkit_[a-z_]+)` \| [a-z]+ \| ([^|]*) \|", text, re.M))
    names = {m.name for m in METRICS}
    assert set(rows) == names, (sorted(names - set(rows)), sorted(set(rows) - names))
    for m in METRICS:
        labels = {x.strip(" `") for x in rows[m.name].split(",") if x.strip()}
        assert labels == set(m.labels), (m.name, labels, m.labels)
