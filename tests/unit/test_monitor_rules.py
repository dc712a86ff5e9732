"""deploy/: the Prometheus alert rules pass ``promtool check rules`` and their unit tests
(``promtool test rules``), the compose stack's Prometheus config is valid, and the Grafana
dashboard queries only metrics arbkit exports (each returns data in
tests/integration/test_monitor_live.py). promtool comes from ``bash scripts/prometheus.sh``;
under CI=true a missing promtool fails, never skips."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from arbkit.monitor.metrics import METRICS
from tests.conftest import _server_missing

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
PROM = DEPLOY / "prometheus"
NAMES = {m.name for m in METRICS}


def promtool(*args: str) -> subprocess.CompletedProcess:
    exe = shutil.which("promtool")
    if exe is None:
        _server_missing("promtool", "not on PATH; run `bash scripts/prometheus.sh`")
    return subprocess.run([exe, *args], cwd=PROM, capture_output=True, text=True, timeout=60)


def metric_names(expr: str) -> set[str]:
    """The arbkit_* metric names a PromQL expression reads (histogram series to their name)."""
    return {re.sub(r"_(bucket|sum|count)$", "", n) if n.endswith(("_bucket", "_sum", "_count"))
            and re.sub(r"_(bucket|sum|count)$", "", n) in NAMES else n
            for n in re.findall(r"\barbkit_[a-z_]+", expr)}


def test_promtool_checks_the_alert_rules() -> None:
    p = promtool("check", "rules", "alerts.yml")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "SUCCESS: 10 rules found" in p.stdout


def test_promtool_unit_tests_of_the_alert_rules_pass() -> None:
    p = promtool("test", "rules", "alerts_test.yml")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "SUCCESS" in p.stdout


def test_the_compose_prometheus_config_is_valid_and_loads_the_rules() -> None:
    p = promtool("check", "config", "prometheus.yml")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "1 rule files found" in p.stdout


def test_every_rule_reads_metrics_arbkit_exports_and_every_alert_is_unit_tested() -> None:
    rules = yaml.safe_load((PROM / "alerts.yml").read_text())["groups"][0]["rules"]
    tested = (PROM / "alerts_test.yml").read_text()
    required = {"ArbkitSessionDown", "ArbkitDrawdownHigh", "ArbkitFeedStale", "ArbkitFeedErrors",
                "ArbkitKillSwitchEngaged", "ArbkitReconciliationFailed"}
    assert required <= {r["alert"] for r in rules}
    for r in rules:
        assert metric_names(r["expr"]) <= NAMES, (r["alert"], metric_names(r["expr"]) - NAMES)
        assert f"alertname: {r['alert']}\n" in tested, f"{r['alert']} has no promtool test"
        assert r["annotations"]["summary"] and r["labels"]["severity"] in ("page", "warning")


def dashboard() -> dict:
    return json.loads((DEPLOY / "grafana" / "arbkit.json").read_text())


def test_the_grafana_dashboard_is_valid_json_over_arbkit_metrics_only() -> None:
    d = dashboard()
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids)) >= 20
    ds = yaml.safe_load((DEPLOY / "grafana" / "provisioning" / "datasources" /
                         "prometheus.yml").read_text())["datasources"][0]
    assert [v["name"] for v in d["templating"]["list"]] == ["session"]
    used: set[str] = set()
    for p in d["panels"]:
        assert p["title"] and p["targets"], p
        assert p["datasource"]["uid"] == ds["uid"]
        g = p["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24 and g["h"] > 0
        for t in p["targets"]:
            assert t["datasource"]["uid"] == ds["uid"] and t["refId"]
            names = metric_names(t["expr"])
            assert names and names <= NAMES, (p["title"], names - NAMES)
            assert 'session=~"$session"' in t["expr"], p["title"]
            used |= names
    # the figures the issue names are all on the dashboard
    for name in ("arbkit_route_net_pnl", "arbkit_route_trades_total", "arbkit_route_win_rate",
                 "arbkit_route_open_exposure", "arbkit_risk_limit_use_ratio", "arbkit_net_pnl",
                 "arbkit_equity", "arbkit_drawdown", "arbkit_guard_skips_total",
                 "arbkit_feed_age_seconds", "arbkit_feed_lag_seconds", "arbkit_feed_errors_total",
                 "arbkit_feed_reconnects_total", "arbkit_decision_latency_seconds",
                 "arbkit_orders_total", "arbkit_store_write_seconds"):
        assert name in used, name


def test_the_compose_file_has_every_service_with_a_health_check_and_volumes() -> None:
    c = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    services = c["services"]
    assert {"redis", "postgres", "prometheus", "grafana", "arbkit"} <= set(services)
    for name, s in services.items():
        assert "healthcheck" in s, f"{name}: no health check"
        assert s["healthcheck"]["test"], name
    for name in ("redis", "postgres", "prometheus", "grafana"):
        assert any(":" in str(v) for v in services[name].get("volumes", [])), name
    assert set(c["volumes"]) >= {"redis-data", "pg-data", "prometheus-data", "grafana-data"}
    arb = services["arbkit"]
    assert "--http" in " ".join(map(str, arb["command"])) and "--emulator" in " ".join(
        map(str, arb["command"]))
    for dep in ("redis", "postgres"):
        assert arb["depends_on"][dep]["condition"] == "service_healthy"
    mounts = " ".join(services["prometheus"]["volumes"])
    assert "./prometheus" in mounts and "./grafana/arbkit.json" in " ".join(
        services["grafana"]["volumes"])


@pytest.mark.parametrize("path", ["deploy/grafana/provisioning/dashboards/arbkit.yml",
                                  "deploy/grafana/provisioning/datasources/prometheus.yml"])
def test_grafana_provisioning_files_parse(path: str) -> None:
    assert yaml.safe_load((ROOT / path).read_text())["apiVersion"] == 1
