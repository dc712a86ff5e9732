"""Per-route, per-symbol and per-venue result frames (the portfolio figures are their sums).

Additive figures (PnL and its parts, fees, counts) of the portfolio equal the sum over routes
exactly: every round trip belongs to one route. Per-venue figures come from the venues'
balances (cash and inventory changed by trading, marked to mid at the end), so they add up to
the final equity minus the starting capital. Sharpe and drawdown are portfolio-only: they are
computed on the portfolio's own equity (docs/metrics.md).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl

from arbkit.core import types as T

ADDITIVE = ("net_pnl", "price_pnl", "slippage", "fees", "fx_pnl", "funding", "gross_pnl",
            "legging_cost")


def route_frame(cfg: Any, trades: pl.DataFrame, route: np.ndarray,
                skips: np.ndarray) -> pl.DataFrame:
    """One row per route: trades, PnL decomposition, threshold, opportunities, skips."""
    rows = []
    for r, rc in enumerate(cfg.routes):
        t = trades.filter(pl.col("route") == r)
        closed = t.filter(pl.col("is_open") == 0)
        opened = t.filter(pl.col("is_open") == 1)
        net = closed.get_column("net_pnl").to_numpy() if closed.height else np.zeros(0)
        rt = route[r]
        thr = float(rt["thr_entry_bps"])
        best = float(rt["best_miss_bps"])
        row: dict[str, Any] = {
            "route": rc.label, "a": rc.a, "b": rc.b, "base": cfg.instrument(rc.a).base,
            "entries": int(rt["n_entries"]), "trades": closed.height, "open_at_end": opened.height,
            "wins": int((net > 0).sum()),
            "win_rate": float((net > 0).mean()) if net.size else math.nan,
        }
        for col in ADDITIVE:
            row[col] = math.fsum(closed.get_column(col).to_list()) if closed.height else 0.0
        row["open_net_pnl_mid"] = (float(opened.get_column("net_pnl_mid").sum())
                                   if opened.height else 0.0)
        row["entry_threshold_bps"] = thr
        row["best_clean_edge_bps"] = best + thr if math.isfinite(best) else math.nan
        row["nearest_miss_bps"] = max(0.0, -best) if math.isfinite(best) else math.nan
        row["opportunities_seen"] = int(skips[r].sum())
        for code, name in enumerate(T.SKIP_TEXT):
            key = "opportunities_taken" if code == T.SK_TAKEN else f"skipped_{name}"
            row[key] = int(skips[r, code])
        rows.append(row)
    return pl.DataFrame(rows)


SUMMED = ("entries", "trades", "open_at_end", "wins", *ADDITIVE, "open_net_pnl_mid",
          "opportunities_seen", "opportunities_taken")


def symbol_frame(routes: pl.DataFrame) -> pl.DataFrame:
    """Routes summed by base asset (BTC, ETH, ...), in route order (plain left-to-right sums,
    so the portfolio total, summed over this frame the same way, equals it exactly)."""
    rows = []
    for base in routes.get_column("base").unique(maintain_order=True).to_list():
        g = routes.filter(pl.col("base") == base)
        row: dict[str, Any] = {"base": base, "routes": g.height}
        for col in SUMMED:
            row[col] = _ordered_sum(g.get_column(col).to_list())
        row["win_rate"] = row["wins"] / row["trades"] if row["trades"] else math.nan
        rows.append(row)
    return pl.DataFrame(rows)


def portfolio_sums(symbols: pl.DataFrame) -> dict[str, float]:
    """The portfolio's additive figures: the symbols' figures summed left to right."""
    return {col: _ordered_sum(symbols.get_column(col).to_list()) for col in SUMMED}


def _ordered_sum(values: list) -> Any:
    total = 0 if all(isinstance(v, int) for v in values) else 0.0
    for v in values:
        total += v
    return total


def fill_notionals(fills: pl.DataFrame, cv: np.ndarray) -> np.ndarray:
    """Each fill's notional in its quote currency: qty x price, or for an inverse perpetual
    (``cv[inst] > 0``, qty in contracts) qty x contract value."""
    if fills.height == 0:
        return np.zeros(0)
    unit = cv[fills.get_column("inst").to_numpy()]
    px = fills.get_column("px").to_numpy()
    return fills.get_column("qty").to_numpy() * np.where(unit > 0.0, unit, px)


def venue_frame(inst_keys: list[str], inst: np.ndarray, book_px: np.ndarray,
                fills: pl.DataFrame) -> pl.DataFrame:
    """Per instrument (venue:symbol): what trading changed on that venue, marked to mid."""
    notional = fill_notionals(fills, inst["cv"])
    rows = []
    for i, key in enumerate(inst_keys):
        venue, _, symbol = key.partition(":")
        rec = inst[i]
        mid = 0.5 * (book_px[i, T.BID, 0] + book_px[i, T.ASK, 0])
        pos = float(rec["pos"])
        mark = pos * mid if pos != 0.0 else 0.0
        mine = fills.get_column("inst").to_numpy() == i if fills.height else np.zeros(0, bool)
        rows.append({
            "venue": venue, "symbol": symbol, "fills": int(mine.sum()),
            "turnover": float(notional[mine].sum()),
            "fees": float(rec["fees"]), "cash_change": float(rec["cash"]),
            "position_change": pos, "contracts": float(rec["contracts"]),
            "position_mark_mid": mark,
            "pnl_mid": float(rec["cash"]) + mark,
        })
    return pl.DataFrame(rows)


def treasury(cfg, inst_keys: list[str], inst: np.ndarray, book_px: np.ndarray,
             first_mid: np.ndarray, first_fx: np.ndarray) -> tuple[float, list[float]]:
    """What the *initial* balances gained or lost by being held: the treasury line, which is
    also the buy-and-hold baseline (do nothing, keep the starting inventory and cash).

    Per instrument, in the reference currency: ``pos0 x (mid_end x fx_end - mid_start x
    fx_start)`` for the starting inventory (spot coins, or a starting perp position) and, for
    spot cash in a foreign quote currency, ``cash0 x (fx_end - fx_start)``. ``mid_start`` is
    the first quote's mid, ``fx_start`` the series' first rate. None of it is arbitrage PnL:
    the strategy's equity counts only what trading changed. Returns (total, per instrument).
    """
    per = []
    for i, key in enumerate(inst_keys):
        rec = inst[i]
        kind = cfg.instrument(key).kind
        mid_end = 0.5 * (book_px[i, T.BID, 0] + book_px[i, T.ASK, 0])
        fx_end, fx0, m0 = float(rec["fx"]), float(first_fx[i]), float(first_mid[i])
        v = 0.0
        pos0 = float(rec["pos0"])
        if pos0 != 0.0 and np.isfinite(mid_end * fx_end * m0 * fx0):
            v += pos0 * (mid_end * fx_end - m0 * fx0)
        if kind == "spot" and rec["fx_id"] >= 0 and np.isfinite(fx_end * fx0):
            v += float(rec["cash0"]) * (fx_end - fx0)
        per.append(v)
    return float(sum(per)), per
