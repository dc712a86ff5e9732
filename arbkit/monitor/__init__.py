"""Operations: what an operator of a running session sees and does.

- :mod:`arbkit.monitor.session`: ``SessionMonitor``, the session's status enriched at every
  tick (the node calls ``monitor.tick(node, status)``);
- :mod:`arbkit.monitor.metrics`: ``SessionMetrics``, the ``arbkit_*`` Prometheus metrics;
- :mod:`arbkit.monitor.web`: ``MonitorServer`` / ``serve_node``: ``/metrics``, ``/health``
  and the dashboard page, in the node's asyncio loop;
- :mod:`arbkit.monitor.control`: ``send_control``, the one control layer behind
  ``arbkit ctl``, ``arbkit reset`` and the page (same checks, same audit entries);
- :mod:`arbkit.monitor.alerts`: arbkit's own alert rules and rate-limited webhooks;
- :mod:`arbkit.monitor.reset`: ``reset_session`` (``arbkit reset``).

docs/operations.md is the user's guide.
"""

from __future__ import annotations

from typing import Any

__all__ = ["AlertManager", "MonitorServer", "SessionMetrics", "SessionMonitor", "reset_session",
           "send_control", "serve_node"]

_WHERE = {"AlertManager": "alerts", "MonitorServer": "web", "serve_node": "web",
          "SessionMetrics": "metrics", "SessionMonitor": "session", "send_control": "control",
          "reset_session": "reset"}


def __getattr__(name: str) -> Any:  # lazy: the CLI imports this package on every paper run
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(f"arbkit.monitor.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'arbkit.monitor' has no attribute {name!r}")
