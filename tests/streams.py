"""Tiny scripted two-instrument streams for golden tests (hand-computable)."""

from __future__ import annotations

import polars as pl

from arbkit.config import Config, load_config_text
from arbkit.data.events import build_events
from arbkit.engine.backtest import BacktestResult, run_arrays
from arbkit.metrics.summary import build_result

S = 1_000_000_000
MS = 1_000_000

BASE = """
[run]
capital = 100000.0
equity_interval_s = 1.0
[[instruments]]
venue = "A"
symbol = "X"
kind = "{kind_a}"
taker_fee_bps = {fee_a}
lot = 0.001
tick = 0.01
order_latency_ms = {lat_a}
ack_latency_ms = {ack}
initial_quote = 1000000.0
initial_base = {inv_a}
[[instruments]]
venue = "B"
symbol = "X"
kind = "{kind_b}"
taker_fee_bps = {fee_b}
lot = 0.001
tick = 0.01
order_latency_ms = {lat_b}
ack_latency_ms = {ack}
initial_quote = 1000000.0
initial_base = {inv_b}
[route]
a = "A:X"
b = "B:X"
[strategy]
{strategy}
"""


def config(strategy: str, *, kind_a: str = "spot", kind_b: str = "linear_perp",
           fee_a: float = 1.0, fee_b: float = 1.0, lat_a: float = 0.0, lat_b: float = 0.0,
           ack: float = 0.0, inv_a: float = 0.0, inv_b: float = 0.0) -> Config:
    return load_config_text(BASE.format(
        strategy=strategy, kind_a=kind_a, kind_b=kind_b, fee_a=fee_a, fee_b=fee_b,
        lat_a=lat_a, lat_b=lat_b, ack=ack, inv_a=inv_a, inv_b=inv_b))


def frame(rows: list[tuple]) -> pl.DataFrame:
    """rows: (ts_ns, venue, bid, ask) or (ts_ns, venue, bid, ask, bid_qty, ask_qty)."""
    full = [r if len(r) == 6 else (*r, 5.0, 5.0) for r in rows]
    return pl.DataFrame(
        {
            "ts_recv_ns": [r[0] for r in full],
            "ts_exch_ns": pl.Series([None] * len(full), dtype=pl.Int64),
            "venue": [r[1] for r in full],
            "symbol": ["X"] * len(full),
            "bid_px": [float(r[2]) for r in full],
            "bid_qty": [float(r[4]) for r in full],
            "ask_px": [float(r[3]) for r in full],
            "ask_qty": [float(r[5]) for r in full],
        }
    )


def run(cfg: Config, rows: list[tuple], chunk: int | None = None) -> BacktestResult:
    arrays = build_events(frame(rows), [i.key for i in cfg.instruments])
    runner = run_arrays(cfg, arrays, chunk=chunk)
    return build_result(runner, {"events": len(arrays.events)})
