"""Alerts sent by arbkit itself: rules on the session's status, posted to webhooks
(Slack- or Telegram-shaped JSON, or plain JSON) with rate limiting.

These complement the Prometheus rules (``deploy/prometheus/alerts.yml``): they work without a
Prometheus server, but cannot tell that the session itself is down (Prometheus can).

Rules (thresholds from :class:`AlertRules`, or the environment, see :func:`from_env`):

==================  ==========================================================================
rule                fires while
==================  ==========================================================================
``drawdown``        drawdown / peak equity > ``max_drawdown_ratio``, now or at any equity sample
                    since the last check (a dip that recovered between two status ticks still
                    fires once, then resolves)
``feed_stale``      a feed's last quote is older than ``feed_stale_s`` (or its state is down)
``feed_errors``     the feeds noted more than ``feed_errors_per_min`` error lines in the last
                    minute
``kill_switch``     the kill switch is engaged
``halted``          a running guard halted trading (daily loss, drawdown)
``reconciliation``  the last reconciliation with the venues failed (live sessions)
==================  ==========================================================================

A rule sends one message when it starts firing and one when it resolves. Rate limits: one
message per rule per ``min_interval_s`` (a flapping rule is summarised, not repeated), and at
most ``max_per_minute`` messages in all; what they hold back is counted as suppressed
(``arbkit_alerts_suppressed_total``). Webhook URLs carry secrets: they are never logged nor
shown (a webhook is named by its kind and host).

Test a webhook: ``python -m arbkit.monitor.alerts test slack=https://hooks.slack.com/...``.
"""

from __future__ import annotations

import asyncio
import math
import os
import sys
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from arbkit.errors import ConfigError

WEBHOOKS_ENV = "ARBKIT_ALERT_WEBHOOKS"
KINDS = ("slack", "telegram", "json")
RULES = ("drawdown", "feed_stale", "feed_errors", "kill_switch", "halted", "reconciliation")


@dataclass(frozen=True, kw_only=True)
class AlertRules:
    """Thresholds of arbkit's own alert rules (module doc)."""

    max_drawdown_ratio: float = 0.05
    feed_stale_s: float = 30.0
    feed_errors_per_min: float = 5.0


@dataclass(frozen=True)
class Webhook:
    """One receiver: ``kind`` (slack, telegram, json) and its URL (a secret: never shown).

    Telegram: ``https://api.telegram.org/bot<TOKEN>/sendMessage?chat_id=<ID>``; the chat id
    goes into the JSON body.
    """

    kind: str
    url: str

    @property
    def name(self) -> str:
        """Safe to print: the kind and the host only."""
        return f"{self.kind} webhook ({urlsplit(self.url).hostname or '?'})"

    @staticmethod
    def parse(spec: str) -> Webhook:
        """``kind=URL`` (``slack=https://...``); a bare URL is Slack-shaped when its host is
        hooks.slack.com, Telegram's when it is api.telegram.org, else plain JSON."""
        kind, sep, url = spec.strip().partition("=")
        if not sep or kind.strip().lower() not in KINDS:
            kind, url = "", spec.strip()
        host = urlsplit(url).hostname or ""
        if not url.startswith(("http://", "https://")) or not host:
            raise ConfigError(f"{WEBHOOKS_ENV}: a webhook ({kind or 'url'}) is not an http(s) "
                              "URL; give kind=URL with kind slack, telegram or json")
        kind = kind.strip().lower() or ("slack" if host.endswith("slack.com") else "telegram"
                                        if host == "api.telegram.org" else "json")
        return Webhook(kind, url)

    def request(self, alert: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """(URL to post to, JSON body) for ``alert``."""
        text = alert["text"]
        if self.kind == "slack":
            return self.url, {"text": text, "blocks": [
                {"type": "section", "text": {"type": "mrkdwn", "text": text}}]}
        if self.kind == "telegram":
            parts = urlsplit(self.url)
            query = dict(parse_qsl(parts.query))
            chat = query.pop("chat_id", None)
            url = urlunsplit(parts._replace(query=urlencode(query)))
            return url, {"chat_id": chat, "text": text, "disable_web_page_preview": True}
        return self.url, dict(alert)


def parse_webhooks(text: str | None) -> list[Webhook]:
    """Webhooks from ``ARBKIT_ALERT_WEBHOOKS``: comma- or space-separated ``kind=URL``."""
    return [Webhook.parse(s) for s in (text or "").replace(",", " ").split() if s.strip()]


class AlertManager:
    """Evaluates the rules on every status and posts what changed (module doc).

    Parameters
    ----------
    webhooks : receivers (none: rules are evaluated and exported, nothing is sent).
    rules : thresholds.
    min_interval_s : at most one message per rule in this many seconds.
    max_per_minute : at most this many messages in all per minute.
    clock : monotonic seconds (tests pass a fake one).
    timeout_s : per webhook post.

    Examples
    --------
    >>> am = AlertManager([Webhook.parse("json=http://127.0.0.1:9/hook")])
    >>> am.evaluate({"session": "s", "drawdown_ratio": 0.0})["firing"]
    []
    """

    def __init__(self, webhooks: list[Webhook] | None = None, *, rules: AlertRules | None = None,
                 min_interval_s: float = 300.0, max_per_minute: int = 10,
                 clock: Callable[[], float] = time.monotonic, timeout_s: float = 5.0) -> None:
        self.webhooks = list(webhooks or [])
        self.rules = rules or AlertRules()
        self.min_interval_s = float(min_interval_s)
        self.max_per_minute = int(max_per_minute)
        self.clock = clock
        self.timeout_s = timeout_s
        self.firing: dict[str, str] = {}  # rule -> text while it fires
        self.last_sent: dict[str, float] = {}
        self.last_state: dict[str, str] = {}  # rule -> the state the receivers were last told
        self.recent: deque[float] = deque()  # send times within the last minute
        self.sent: Counter[str] = Counter()  # "rule/channel"
        self.suppressed: Counter[str] = Counter()
        self.failed: Counter[str] = Counter()
        self.errors: deque[str] = deque(maxlen=8)  # last failures, one safe line each
        self.pending: dict[str, dict] = {}  # a rule's latest change held back by its interval
        self._errors_seen: deque[tuple[float, int]] = deque()
        self._tasks: set[asyncio.Task] = set()

    # ---- rules -----------------------------------------------------------------------------
    def check(self, st: dict[str, Any]) -> dict[str, str]:
        """The rules firing on status ``st``: rule -> one line saying why."""
        r, now, out = self.rules, self.clock(), {}
        dd = st.get("drawdown_ratio")
        deep = st.get("drawdown_ratio_deepest")  # between ticks: a dip that already recovered
        if isinstance(dd, int | float) and dd > r.max_drawdown_ratio:
            out["drawdown"] = (f"drawdown {dd:.2%} of peak equity (limit "
                               f"{r.max_drawdown_ratio:.2%}); equity {st.get('equity', 0):,.2f}")
        elif isinstance(deep, int | float) and deep > r.max_drawdown_ratio:
            out["drawdown"] = (f"drawdown reached {deep:.2%} of peak equity since the last check "
                               f"(limit {r.max_drawdown_ratio:.2%}); now {_pct(dd)}, equity "
                               f"{st.get('equity', 0):,.2f}")
        feeds = st.get("feeds") or {}
        started = st.get("started_at")
        young = isinstance(started, int | float) and time.time() - started < r.feed_stale_s

        def quiet(f: dict) -> bool:
            if f.get("age_s") is None and young:
                return False  # connecting: no quote yet, and the session is younger than
                # the limit (a start is not an outage)
            return f.get("state") == "down" or (isinstance(f.get("age_s"), int | float)
                                                and f["age_s"] > r.feed_stale_s)

        stale = [f"{k} ({'down' if f.get('state') == 'down' else _age(f.get('age_s'))})"
                 for k, f in feeds.items() if quiet(f)]
        if stale:
            out["feed_stale"] = f"feeds stale for > {r.feed_stale_s:g} s: {', '.join(stale)}"
        total = sum(int(f.get("errors_total", 0) or 0) for f in feeds.values())
        self._errors_seen.append((now, total))
        while self._errors_seen and now - self._errors_seen[0][0] > 60.0:
            self._errors_seen.popleft()
        per_min = total - self._errors_seen[0][1]
        if per_min > r.feed_errors_per_min:
            out["feed_errors"] = (f"{per_min} feed error lines in the last minute (limit "
                                  f"{r.feed_errors_per_min:g})")
        if st.get("kill_switch"):
            out["kill_switch"] = "kill switch engaged: positions flattened, trading halted"
        if st.get("halt_reason") in ("daily_loss", "drawdown"):
            out["halted"] = f"trading halted by the {st['halt_reason']} guard"
        if (st.get("reconciliation") or {}).get("failed"):
            out["reconciliation"] = "reconciliation with the venues failed"
        return out

    def evaluate(self, st: dict[str, Any]) -> dict[str, Any]:
        """Check the rules, post what changed (rate-limited); returns the alerts summary the
        metrics export (rules, firing, sent, suppressed, failed)."""
        now = self.clock()
        firing = self.check(st)
        session = str(st.get("session", "?"))
        for rule, text in firing.items():
            if rule not in self.firing:
                self._queue(rule, {"state": "firing", "text": text})
        for rule in list(self.firing):
            if rule not in firing:
                self._queue(rule, {"state": "resolved", "text": f"resolved: {self.firing[rule]}"})
        self.firing = firing
        for rule, change in list(self.pending.items()):
            if now - self.last_sent.get(rule, -math.inf) < self.min_interval_s:
                continue
            while self.recent and now - self.recent[0] > 60.0:
                self.recent.popleft()
            if len(self.recent) >= self.max_per_minute:
                continue  # stays pending: sent when the minute's budget allows
            del self.pending[rule]
            self.last_sent[rule] = now
            self.last_state[rule] = change["state"]
            self.recent.append(now)
            self._post(self._alert(session, rule, change))
        return self.summary()

    def _queue(self, rule: str, change: dict) -> None:
        """Hold ``change`` until the rule's interval allows; a change that replaces one still
        held back is a flap: both are counted as suppressed when the rule is back where the
        receivers were last told."""
        held = self.pending.pop(rule, None)
        if held is not None:
            self.suppressed[rule] += 1
            if self.last_state.get(rule, "resolved") == change["state"]:
                self.suppressed[rule] += 1
                return
        self.pending[rule] = change

    def summary(self) -> dict[str, Any]:
        return {"rules": list(RULES), "firing": sorted(self.firing),
                "sent": dict(self.sent), "suppressed": dict(self.suppressed),
                "failed": dict(self.failed), "errors": list(self.errors),
                "webhooks": [w.name for w in self.webhooks]}

    # ---- sending -------------------------------------------------------------------------
    def _alert(self, session: str, rule: str, change: dict) -> dict[str, Any]:
        mark = "🔴" if change["state"] == "firing" else "✅"
        return {"session": session, "rule": rule, "state": change["state"],
                "text": f"{mark} arbkit {session}: {change['text']}",
                "ts": time.time()}

    def _post(self, alert: dict[str, Any]) -> None:
        if not self.webhooks:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            asyncio.run(self.deliver(alert))
            return
        task = loop.create_task(self.deliver(alert))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def deliver(self, alert: dict[str, Any]) -> int:
        """Post ``alert`` to every webhook; returns how many took it (2xx)."""
        import aiohttp

        ok = 0
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            for w in self.webhooks:
                url, body = w.request(alert)
                try:
                    async with http.post(url, json=body) as resp:
                        if 200 <= resp.status < 300:
                            ok += 1
                            self.sent[f"{alert['rule']}/{w.kind}"] += 1
                            continue
                        why = f"HTTP {resp.status}"
                except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                    why = type(exc).__name__
                self.failed[w.kind] += 1
                self.errors.append(f"{w.name}: {why}")
        return ok

    async def send_test(self, session: str, by: str = "?") -> int:
        """One test message to every webhook (not rate-limited); returns how many took it."""
        alert = {"session": session, "rule": "test", "state": "test",
                 "text": f"🧪 arbkit {session}: test alert (sent by {by})", "ts": time.time()}
        return await self.deliver(alert)

    async def drain(self) -> None:
        """Wait for the posts in flight (tests, and a session that ends)."""
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


def from_env(env: dict[str, str] | None = None) -> AlertManager:
    """An :class:`AlertManager` from the environment: ``ARBKIT_ALERT_WEBHOOKS`` (``kind=URL``
    list), ``ARBKIT_ALERT_MAX_DRAWDOWN`` (ratio, 0.05), ``ARBKIT_ALERT_FEED_STALE_S`` (30),
    ``ARBKIT_ALERT_FEED_ERRORS_PER_MIN`` (5), ``ARBKIT_ALERT_MIN_INTERVAL_S`` (300),
    ``ARBKIT_ALERT_MAX_PER_MINUTE`` (10)."""
    env = dict(os.environ if env is None else env)

    def num(name: str, default: float) -> float:
        raw = env.get(name, "")
        try:
            v = float(raw) if raw.strip() else default
        except ValueError:
            raise ConfigError(f"{name}={raw!r}: not a number") from None
        if not (v > 0 and math.isfinite(v)):
            raise ConfigError(f"{name}={raw!r}: must be > 0")
        return v

    rules = AlertRules(max_drawdown_ratio=num("ARBKIT_ALERT_MAX_DRAWDOWN", 0.05),
                       feed_stale_s=num("ARBKIT_ALERT_FEED_STALE_S", 30.0),
                       feed_errors_per_min=num("ARBKIT_ALERT_FEED_ERRORS_PER_MIN", 5.0))
    return AlertManager(parse_webhooks(env.get(WEBHOOKS_ENV)), rules=rules,
                        min_interval_s=num("ARBKIT_ALERT_MIN_INTERVAL_S", 300.0),
                        max_per_minute=int(num("ARBKIT_ALERT_MAX_PER_MINUTE", 10)))


def _pct(v: Any) -> str:
    return f"{v:.2%}" if isinstance(v, int | float) else "n/a"


def _age(v: Any) -> str:
    return f"{v:.0f} s" if isinstance(v, int | float) else "no quote"


def main(argv: list[str] | None = None) -> int:
    """``python -m arbkit.monitor.alerts test [kind=URL ...]`` (default: the environment's)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] != "test":
        print("usage: python -m arbkit.monitor.alerts test [kind=URL ...]", file=sys.stderr)
        return 2
    try:
        hooks = parse_webhooks(" ".join(args[1:])) if args[1:] else from_env().webhooks
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if not hooks:
        print(f"error: no webhook: give kind=URL or set {WEBHOOKS_ENV}", file=sys.stderr)
        return 1
    am = AlertManager(hooks)
    ok = asyncio.run(am.send_test("test", by=os.environ.get("USER", "cli")))
    for line in am.errors:
        print(f"failed: {line}", file=sys.stderr)
    print(f"test alert: {ok} of {len(hooks)} webhook(s) took it")
    return 0 if ok == len(hooks) else 1


if __name__ == "__main__":
    raise SystemExit(main())
