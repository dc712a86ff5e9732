"""The live terminal view of a session (rich): per route its state, last edge, position,
round trips, win rate, net PnL and its legs' feed age and lag; refreshed on each status."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table


class SessionView:
    def __init__(self, name: str, console: Console | None = None) -> None:
        self.name = name
        self.console = console or Console(stderr=True)
        self.live = Live(self._table({}), console=self.console, refresh_per_second=4,
                         transient=False)

    def start(self) -> None:
        self.live.start()

    def stop(self) -> None:
        self.live.stop()

    def update(self, st: dict[str, Any]) -> None:
        self.live.update(self._table(st))

    def _table(self, st: dict[str, Any]) -> Table:
        p50, p99 = st.get("decide_us_p50"), st.get("decide_us_p99")
        lat = f"decide p50/p99 {p50:.0f}/{p99:.0f} µs" if p50 is not None else ""
        t = Table(title=f"paper session {self.name}: {st.get('quotes', 0):,} quotes, "
                        f"{st.get('trades', 0)} round trips, net {st.get('net_pnl', 0.0):,.2f}"
                        f"  {lat}", expand=False)
        for col in ("route", "state", "best edge bps", "thr bps", "pos a", "pos b", "trades",
                    "win", "net PnL", "feed age s", "lag s"):
            t.add_column(col, justify="left" if col in ("route", "state") else "right")
        feeds = st.get("feeds", {})
        for r in st.get("routes", []):
            legs = r["route"].split("~")
            ages = [feeds.get(k, {}).get("age_s") for k in legs]
            lags = [feeds.get(k, {}).get("lag_s") for k in legs]
            wr = r.get("win_rate")
            t.add_row(r["route"], r["state"], _f(r.get("best_edge_bps")),
                      _f(r.get("threshold_bps")), _f(r.get("pos_a"), 4), _f(r.get("pos_b"), 4),
                      str(r.get("trades", 0)), "" if wr is None else f"{wr:.0%}",
                      _f(r.get("net_pnl"), 4), _f(_max(ages), 2), _f(_max(lags), 3))
        return t


def _max(xs: list) -> float | None:
    xs = [x for x in xs if isinstance(x, int | float)]
    return max(xs) if xs else None


def _f(x: Any, nd: int = 1) -> str:
    return "" if not isinstance(x, int | float) or x != x else f"{x:,.{nd}f}"
