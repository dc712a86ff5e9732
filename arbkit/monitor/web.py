"""The session's HTTP server (aiohttp, in a thread of its own with its own asyncio loop, so
it answers while the session's loop waits: a Redis outage ridden through): ``/metrics``,
``/health``, the dashboard page and its JSON API.

==========================  =====================================================================
path                        serves
==========================  =====================================================================
``GET /``                   the dashboard (one self-contained page: no CDN, inline JS and SVG)
``GET /metrics``            Prometheus text exposition (``arbkit_*``)
``GET /health``             readiness and liveness as JSON; 200 when ready, else 503
``GET /health/live``        200 while the session's loop ticks (its last status is fresh), or
                            waits for a Redis that stopped answering (within its bound)
``GET /health/ready``       200 when started, every feed fresh, reconciliation not failed and
                            Redis answering
``GET /api/status``         the enriched status (what ``arbkit status --json`` shows)
``GET /api/history``        the equity curve and drawdown for the chart
``GET /api/audit``          the last audit entries (who did what, when)
``GET /api/whoami``         whether the request carries the control token
``POST /api/control``       ``{"control": "symbol_off:ETH"}`` etc.; needs the token
``POST /api/test-alert``    one test alert to the configured webhooks; needs the token
==========================  =====================================================================

Read-only without a token. Controls need the token of ``ARBKIT_CONTROL_TOKEN`` in the
``X-Arbkit-Token`` header (or ``Authorization: Bearer``); with no token configured controls
are off. The token is compared in constant time and never logged (the access log is off:
a query string may carry it). Requests whose ``Host`` is not the address served are refused
(DNS rebinding), unless the server listens on all interfaces.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import math
import os
import threading
import time
from typing import Any

from aiohttp import web

from arbkit.errors import ArbkitError, ConfigError
from arbkit.monitor.control import send_control
from arbkit.monitor.metrics import CONTENT_TYPE
from arbkit.monitor.page import PAGE

TOKEN_ENV = "ARBKIT_CONTROL_TOKEN"
LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")


def parse_http(spec: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8787`` for IPv6) as (host, port); port 0 picks a free one.

    Examples
    --------
    >>> parse_http("127.0.0.1:8787")
    ('127.0.0.1', 8787)
    >>> parse_http(":8787")
    ('127.0.0.1', 8787)
    """
    host, sep, port = str(spec).strip().rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"--http {spec!r}: give HOST:PORT, e.g. 127.0.0.1:8787")
    host = host.strip("[]") or "127.0.0.1"
    return host, int(port)


class MonitorServer:
    """Serves a :class:`~arbkit.monitor.session.SessionMonitor` over HTTP.

    Examples
    --------
    >>> server = MonitorServer(node.monitor, "127.0.0.1", 8787)   # doctest: +SKIP
    >>> await server.start(); server.url                           # doctest: +SKIP
    'http://127.0.0.1:8787/'
    """

    def __init__(self, monitor: Any, host: str = "127.0.0.1", port: int = 8787, *,
                 token: str | None = None) -> None:
        self.monitor = monitor
        self.host, self.port = host, port
        self._token = (token if token is not None else os.environ.get(TOKEN_ENV, "")) or ""
        self.runner: web.AppRunner | None = None
        self.node_loop: asyncio.AbstractEventLoop | None = None  # the session's (test alerts)
        self._loop: asyncio.AbstractEventLoop | None = None  # the server thread's
        self._thread: threading.Thread | None = None
        metrics = getattr(monitor, "metrics", None)
        if metrics is not None:  # /metrics' up/ready as /health says them now
            metrics.health_now = self._health
        self.app = web.Application(middlewares=[self._guard])
        r = self.app.router
        r.add_get("/", self.page)
        r.add_get("/metrics", self.metrics)
        r.add_get("/health", self.health)
        r.add_get("/health/live", self.live)
        r.add_get("/health/ready", self.ready)
        r.add_get("/api/status", self.api_status)
        r.add_get("/api/history", self.api_history)
        r.add_get("/api/audit", self.api_audit)
        r.add_get("/api/whoami", self.whoami)
        r.add_post("/api/control", self.control)
        r.add_post("/api/test-alert", self.test_alert)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    @property
    def controls_on(self) -> bool:
        return bool(self._token)

    async def start(self) -> None:
        self.runner = web.AppRunner(self.app, access_log=None)  # a query may carry the token
        await self.runner.setup()
        site = web.TCPSite(self.runner, self.host, self.port, reuse_address=True)
        try:
            await site.start()
        except OSError as exc:
            await self.runner.cleanup()
            raise ConfigError(f"--http {self.host}:{self.port}: cannot listen "
                              f"({exc.strerror or exc}); pick another port") from None
        if self.port == 0:  # a free port was picked: say which
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    def start_thread(self, timeout_s: float = 30.0) -> None:
        """Serve from a thread of its own (its own event loop); returns once listening, or
        raises what ``start`` raised (a port in use: one line)."""
        box: dict[str, BaseException] = {}
        listening = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self.start())
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                box["error"] = exc
                listening.set()
                loop.close()
                return
            listening.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(self.stop())
                loop.close()

        self._thread = threading.Thread(target=run, name="arbkit-http", daemon=True)
        self._thread.start()
        if not listening.wait(timeout_s):
            raise ConfigError(f"--http {self.host}:{self.port}: the server did not start "
                              f"within {timeout_s:g} s")
        if "error" in box:
            self._thread.join()
            self._thread = None
            raise box["error"]

    def stop_thread(self, timeout_s: float = 10.0) -> None:
        """Stop the server thread (its connections closed); idempotent."""
        thread, loop, self._thread = self._thread, self._loop, None
        if thread is None or loop is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout_s)

    # ---- middleware: Host check, JSON errors ---------------------------------------------
    @web.middleware
    async def _guard(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if self.host not in ("0.0.0.0", "::", ""):
            host = (request.host or "").rsplit(":", 1)[0] if not (request.host or "").startswith(
                "[") else (request.host or "").split("]")[0] + "]"
            if host not in {self.host, f"[{self.host}]", *LOOPBACK}:
                return _json({"error": f"host {host!r} is not served here"}, 421)
        try:
            return await handler(request)
        except ArbkitError as exc:
            return _json({"error": " ".join(str(exc).split())}, 400)

    def _authorized(self, request: web.Request) -> bool:
        if not self._token:
            return False
        given = request.headers.get("X-Arbkit-Token", "")
        auth = request.headers.get("Authorization", "")
        if not given and auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        given = given or request.query.get("token", "")
        return hmac.compare_digest(given.encode(), self._token.encode())

    # ---- handlers ---------------------------------------------------------------------------
    async def page(self, request: web.Request) -> web.Response:
        return web.Response(text=PAGE, content_type="text/html", charset="utf-8",
                            headers={"Cache-Control": "no-store",
                                     "Content-Security-Policy": "default-src 'self'; "
                                     "script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                                     "img-src 'self' data:",
                                     "Referrer-Policy": "no-referrer"})

    async def metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=self.monitor.metrics.render(),
                            headers={"Content-Type": CONTENT_TYPE})

    def _health(self) -> dict[str, Any]:
        st = self.monitor.status
        h = dict(st.get("health") or {"ready": False, "checks": {"session_started": False}})
        h["checks"] = dict(h.get("checks") or {})
        age = time.time() - float(st.get("updated_at") or 0.0)
        h["live"] = bool(st) and age <= float(st.get("up_within_s", 5.0))
        down = self._redis_down_s()
        h["checks"]["redis_ok"] = down is None
        if down is not None:  # the session's loop waits for it (by design, within its bound)
            h["checks"]["redis_down_s"] = round(down, 1)
            h["live"] = bool(st)
        h["ready"] = bool(h.get("ready")) and h["live"] and down is None
        h["last_status_age_s"] = round(age, 3) if st else None
        h["session"] = st.get("session")
        return h

    def _redis_down_s(self) -> float | None:
        """Seconds since the session's Redis stopped answering, None while it answers."""
        node = getattr(self.monitor, "node", None)
        outage = getattr(getattr(node, "store", None), "outage", None)
        if outage is None or getattr(outage, "since", None) is None:
            return None
        return float(outage.down_s())

    async def health(self, request: web.Request) -> web.Response:
        h = self._health()
        return _json(h, 200 if h["ready"] else 503)

    async def live(self, request: web.Request) -> web.Response:
        h = self._health()
        return _json({"live": h["live"], "last_status_age_s": h["last_status_age_s"]},
                     200 if h["live"] else 503)

    async def ready(self, request: web.Request) -> web.Response:
        h = self._health()
        return _json({"ready": h["ready"], "checks": h.get("checks")},
                     200 if h["ready"] else 503)

    async def api_status(self, request: web.Request) -> web.Response:
        return _json(self.monitor.status)

    async def api_history(self, request: web.Request) -> web.Response:
        return _json(self.monitor.history())

    async def api_audit(self, request: web.Request) -> web.Response:
        node = self.monitor.node
        if node is None:
            return _json([])
        return _json((await asyncio.to_thread(node.store.audit_log, 30))[::-1])

    async def whoami(self, request: web.Request) -> web.Response:
        return _json({"controls": self.controls_on, "authorized": self._authorized(request)})

    async def control(self, request: web.Request) -> web.Response:
        denied = self._deny(request)
        if denied is not None:
            return denied
        body = await _body(request)
        entry = await asyncio.to_thread(send_control, self.monitor.node.store,
                                        str(body.get("control", "")), by=_who(request, body),
                                        via="web")
        return _json(entry)

    async def test_alert(self, request: web.Request) -> web.Response:
        denied = self._deny(request)
        if denied is not None:
            return denied
        alerts = self.monitor.alerts
        if alerts is None or not alerts.webhooks:
            return _json({"error": "no webhook configured (ARBKIT_ALERT_WEBHOOKS)"}, 400)
        test = alerts.send_test(self.monitor.status.get("session", "?"),
                                by=_who(request, await _body(request)))
        loop = self.node_loop
        if loop is None or loop is asyncio.get_running_loop():
            sent = await test
        else:  # the alert manager's client lives on the session's loop
            sent = await asyncio.wait_for(
                asyncio.wrap_future(asyncio.run_coroutine_threadsafe(test, loop)), 30)
        return _json({"sent": sent})

    def _deny(self, request: web.Request) -> web.Response | None:
        if self.monitor.node is None:
            return _json({"error": "the session has not started yet"}, 503)
        if not self._token:
            return _json({"error": f"controls are off: start the session with {TOKEN_ENV} set"},
                         403)
        if not self._authorized(request):
            return _json({"error": "a valid control token is needed (X-Arbkit-Token)"}, 401)
        return None


async def serve_node(node: Any, http: str, *, token: str | None = None,
                     announce: Any = None) -> Any:
    """Run ``node`` (a ``PaperNode`` with a ``monitor``) with its HTTP server on ``http``
    (``HOST:PORT``) in a thread of its own; the server stops when the session does.

    ``announce(server)`` is called once the session is open (the CLI prints the URL, never
    the token); a start that is refused never announces it.
    """
    host, port = parse_http(http)
    server = MonitorServer(node.monitor, host, port, token=token)
    server.node_loop = asyncio.get_running_loop()
    server.start_thread()
    try:
        if announce is not None:  # once the session opened: a refused start says only why
            node.on_open = lambda: announce(server)
        return await node.run()
    finally:
        server.stop_thread()


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except ValueError:
        raise ConfigError("the request body is not JSON") from None
    if not isinstance(body, dict):
        raise ConfigError("the request body must be a JSON object")
    return body


def _who(request: web.Request, body: dict[str, Any]) -> str:
    name = str(body.get("by") or request.headers.get("X-Arbkit-User") or "web")
    peer = request.remote or "?"
    return f"{' '.join(name.split())[:40]}@{peer}"


def _json(obj: Any, status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(_safe(obj), separators=(",", ":")), status=status,
                        content_type="application/json", headers={"Cache-Control": "no-store"})


def _safe(obj: Any) -> Any:
    """JSON without NaN/inf (null) and with numpy scalars as Python numbers."""
    if isinstance(obj, dict):
        return {str(k): _safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_safe(v) for v in obj]
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if hasattr(obj, "item") and not isinstance(obj, str | bytes):
        return _safe(obj.item())
    return obj
