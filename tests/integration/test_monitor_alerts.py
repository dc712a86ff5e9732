"""arbkit's own alerts (arbkit.monitor.alerts) posted to a real local HTTP receiver:
Slack-, Telegram- and plain-JSON-shaped bodies, firing then resolved, the rate limits, a
receiver that fails (counted; the webhook's secret never shown), and the test command."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from arbkit.errors import ConfigError
from arbkit.monitor.alerts import AlertManager, AlertRules, Webhook, from_env, parse_webhooks

ROOT = Path(__file__).resolve().parents[2]


class Receiver:
    """A local webhook receiver: every POST's path and JSON body; ``fail`` paths answer 500."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, dict]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.posts.append((self.path, json.loads(body)))
                code = 500 if "fail" in self.path else 200
                self.send_response(code)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def run(am: AlertManager, statuses: list[dict], clock: Clock, step_s: float) -> None:
    async def go() -> None:
        for st in statuses:
            am.evaluate(st)
            await am.drain()
            clock.t += step_s
    asyncio.run(go())


def dd(ratio: float) -> dict:
    return {"session": "paper-best", "drawdown_ratio": ratio, "equity": 9_400.0}


def test_a_rule_that_fires_then_resolves_posts_slack_telegram_and_json_bodies(receiver) -> None:
    hooks = parse_webhooks(f"slack={receiver.url}/services/T0/B0/SECRETPATH, "
                           f"telegram={receiver.url}/botSECRET:TOKEN/sendMessage?chat_id=-1001 "
                           f"json={receiver.url}/hook")
    clock = Clock()
    am = AlertManager(hooks, rules=AlertRules(max_drawdown_ratio=0.05), min_interval_s=60,
                      clock=clock)
    run(am, [dd(0.01), dd(0.06), dd(0.07), dd(0.01)], clock, step_s=61)
    assert len(receiver.posts) == 6  # firing + resolved, to each of three receivers
    (p1, slack), (p2, tg), (p3, plain) = receiver.posts[:3]
    assert p1 == "/services/T0/B0/SECRETPATH" and slack["text"].startswith("🔴 arbkit paper-best")
    assert "drawdown 6.00% of peak equity (limit 5.00%)" in slack["text"]
    assert slack["blocks"][0]["text"]["type"] == "mrkdwn"
    assert p2 == "/botSECRET:TOKEN/sendMessage" and tg["chat_id"] == "-1001"  # id in the body
    assert tg["text"] == slack["text"] and tg["disable_web_page_preview"] is True
    assert plain["rule"] == "drawdown" and plain["state"] == "firing"
    assert plain["session"] == "paper-best"
    assert [b.get("state", "") for _, b in receiver.posts[3:] if "state" in b] == ["resolved"]
    assert receiver.posts[3][1]["text"].startswith("✅ arbkit paper-best: resolved: drawdown")
    assert am.summary()["sent"] == {"drawdown/slack": 2, "drawdown/telegram": 2,
                                    "drawdown/json": 2}


def test_a_dip_that_recovered_between_two_checks_still_fires_once_then_resolves(receiver) -> None:
    from arbkit.monitor.session import _Curve

    curve = _Curve(64)  # the monitor's curve: equity samples drained between two status ticks
    for k, eq in enumerate([10_000.0, 10_050.0, 9_400.0, 10_100.0]):  # -6.47 % and back
        curve.add(k, eq)
    deepest = curve.take_deepest()
    assert deepest == (10_050.0 - 9_400.0) / 10_050.0 and curve.take_deepest() == 0.0
    clock = Clock()
    am = AlertManager([Webhook("json", receiver.url + "/hook")], min_interval_s=0, clock=clock)
    run(am, [{**dd(0.0), "drawdown_ratio_deepest": deepest},
             {**dd(0.0), "drawdown_ratio_deepest": 0.0}], clock, step_s=1)
    (_, fired), (_, resolved) = receiver.posts
    assert fired["state"] == "firing" and resolved["state"] == "resolved"
    assert "drawdown reached 6.47% of peak equity since the last check (limit 5.00%)" \
        in fired["text"] and "now 0.00%" in fired["text"]


def test_a_flapping_rule_is_rate_limited_and_what_is_held_back_is_counted(receiver) -> None:
    clock = Clock()
    am = AlertManager([Webhook("json", receiver.url + "/hook")], min_interval_s=300,
                      clock=clock)
    # fires, resolves, fires, resolves ... every 10 s for 2 minutes
    run(am, [dd(0.06 if k % 2 == 0 else 0.0) for k in range(12)], clock, step_s=10)
    states = [b["state"] for _, b in receiver.posts]
    assert states == ["firing"]  # one message; the flaps within 300 s are held back
    assert am.summary()["suppressed"]["drawdown"] >= 10
    clock.t += 300  # the interval is over: the rule's state now (resolved) is sent once
    run(am, [dd(0.0)], clock, step_s=1)
    assert [b["state"] for _, b in receiver.posts] == ["firing", "resolved"]


def test_at_most_max_per_minute_messages_and_the_rest_wait(receiver) -> None:
    clock = Clock()
    am = AlertManager([Webhook("json", receiver.url + "/hook")], min_interval_s=0,
                      max_per_minute=2, clock=clock)
    bad = {"session": "s", "drawdown_ratio": 0.5, "kill_switch": True, "halt_reason": "drawdown",
           "reconciliation": {"failed": True}}
    run(am, [bad], clock, step_s=1)
    assert len(receiver.posts) == 2  # four rules fire; two go now
    clock.t += 61
    run(am, [bad], clock, step_s=1)
    assert sorted(b["rule"] for _, b in receiver.posts) == sorted(
        ["drawdown", "kill_switch", "halted", "reconciliation"])


def test_feed_rules_stale_and_error_rate() -> None:
    clock = Clock()
    am = AlertManager([], rules=AlertRules(feed_stale_s=30, feed_errors_per_min=5), clock=clock)
    feeds = {"A:BTC": {"state": "live", "age_s": 45.0, "errors_total": 0},
             "B:BTC": {"state": "down", "age_s": 1.0, "errors_total": 0}}
    got = am.check({"feeds": feeds})
    assert "A:BTC (45 s)" in got["feed_stale"] and "B:BTC (down)" in got["feed_stale"]
    clock.t += 30
    feeds["A:BTC"]["errors_total"] = 9
    assert "9 feed error lines in the last minute" in am.check({"feeds": feeds})["feed_errors"]
    clock.t += 61
    assert "feed_errors" not in am.check({"feeds": feeds})  # nothing new in the last minute


def test_feeds_still_connecting_at_the_start_are_not_stale() -> None:
    am = AlertManager([], rules=AlertRules(feed_stale_s=30))
    connecting = {"A:BTC": {"state": "down", "age_s": None}}
    assert "feed_stale" not in am.check({"feeds": connecting, "started_at": time.time() - 2})
    late = am.check({"feeds": connecting, "started_at": time.time() - 31})
    assert "A:BTC (down)" in late["feed_stale"]  # no quote 31 s after the start: stale
    gone = {"A:BTC": {"state": "down", "age_s": 3.0}}  # had quotes, went down: at once
    assert "A:BTC (down)" in am.check({"feeds": gone, "started_at": time.time() - 2})[
        "feed_stale"]


def test_a_failing_receiver_is_counted_and_its_secret_url_never_shown(receiver) -> None:
    clock = Clock()
    am = AlertManager([Webhook("slack", receiver.url + "/fail/T0/SECRETPATH")], clock=clock)
    run(am, [dd(0.2)], clock, step_s=1)
    s = am.summary()
    assert s["failed"] == {"slack": 1} and s["sent"] == {}
    assert s["errors"] == ["slack webhook (127.0.0.1): HTTP 500"]
    assert "SECRET" not in json.dumps(s)


def test_the_test_command_sends_one_test_alert(receiver) -> None:
    p = subprocess.run([sys.executable, "-m", "arbkit.monitor.alerts", "test",
                        f"json={receiver.url}/t", f"telegram={receiver.url}/bot1/sendMessage?chat_id=7"],
                       cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert "test alert: 2 of 2 webhook(s) took it" in p.stdout
    assert [b["state"] if "state" in b else b["chat_id"] for _, b in receiver.posts] == ["test", "7"]
    bad = subprocess.run([sys.executable, "-m", "arbkit.monitor.alerts", "test", "slack=ftp://x"],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and bad.stderr.startswith("error: ARBKIT_ALERT_WEBHOOKS")


def test_settings_come_from_the_environment_and_bad_ones_are_one_line() -> None:
    am = from_env({"ARBKIT_ALERT_WEBHOOKS": "https://hooks.slack.com/services/X",
                   "ARBKIT_ALERT_MAX_DRAWDOWN": "0.1", "ARBKIT_ALERT_MIN_INTERVAL_S": "60"})
    assert [w.kind for w in am.webhooks] == ["slack"] and am.rules.max_drawdown_ratio == 0.1
    assert am.min_interval_s == 60 and am.webhooks[0].name == "slack webhook (hooks.slack.com)"
    with pytest.raises(ConfigError, match="ARBKIT_ALERT_FEED_STALE_S='-1': must be > 0"):
        from_env({"ARBKIT_ALERT_FEED_STALE_S": "-1"})
