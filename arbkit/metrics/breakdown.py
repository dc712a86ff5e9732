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


def _mid(book_px: np.ndarray, i: int) -> float:
    return 0.5 * (float(book_px[i, T.BID, 0]) + float(book_px[i, T.ASK, 0]))


def treasury(cfg, inst_keys: list[str], inst: np.ndarray,
             book_px: np.ndarray) -> tuple[float, list[float]]:
    """What balances gained or lost by being held: the treasury line (docs/metrics.md).

    Per instrument, in the reference currency at the end's mid and FX: the *starting*
    balances since the start (``pos0 x (mid x fx - mid0 x fx0)`` for the starting inventory,
    spot or perpetual, and ``cash0 x (fx - fx0)`` for spot cash in a foreign quote currency;
    ``mid0``/``fx0`` are the first mid and rate the kernel saw) plus what closed round trips
    left on the venue (their foreign cash and fee dust, ``conv_*``) since they closed. The
    starting part alone is the buy-and-hold baseline. Returns (total, per instrument)."""
    per = []
    for i, key in enumerate(inst_keys):
        rec = inst[i]
        kind = cfg.instrument(key).kind
        mid_end = _mid(book_px, i)
        fx_end, fx0, m0 = float(rec["fx"]), float(rec["fx0"]), float(rec["mid0"])
        v = 0.0
        pos0 = float(rec["pos0"])
        if pos0 != 0.0 and np.isfinite(mid_end * fx_end * m0 * fx0):
            v += pos0 * (mid_end * fx_end - m0 * fx0)
        if kind == "spot" and rec["fx_id"] >= 0 and np.isfinite(fx_end * fx0):
            v += float(rec["cash0"]) * (fx_end - fx0)
        v += _realised_since(rec, mid_end)
        per.append(v)
    return float(sum(per)), per


def _realised_since(rec: np.void, mid_end: float) -> float:
    """What closed round trips' leftovers on this venue did since they closed."""
    v = 0.0
    fx = float(rec["fx"])
    if rec["conv_q"] != 0.0:
        v += float(rec["conv_q"]) * fx
    if rec["conv_b"] != 0.0:
        v += float(rec["conv_b"]) * mid_end * fx
    if rec["conv_ref"] != 0.0:
        v -= float(rec["conv_ref"])
    return v


def lines(inst: np.ndarray, book_px: np.ndarray) -> dict[str, float]:
    """The account's lines that belong to no round trip, valued at the end: funding no round
    trip held a position for (``funding_other``), and transfers (``transfer_pnl``: their fees
    and the value of what they moved at the receiving venue's price less the sender's)."""
    fund = xfer = 0.0
    for i in range(inst.shape[0]):
        rec = inst[i]
        fx = float(rec["fx"])
        if rec["fund_free"] != 0.0:
            fund += float(rec["fund_free"]) * fx
        if rec["xfer_c"] != 0.0:
            xfer += float(rec["xfer_c"]) * fx
        if rec["xfer_p"] != 0.0:
            xfer += float(rec["xfer_p"]) * _mid(book_px, i) * fx
    return {"funding_other": fund, "transfer_pnl": xfer}


def account_change(cfg, inst_keys: list[str], inst: np.ndarray, book_px: np.ndarray) -> float:
    """What the whole account gained, straight from the venues' books: every instrument's
    balances at the end's mid and FX less the starting balances at the first mid and rate.
    Independent of the round trips' own ledgers, so ``account_change - (closed net + open
    marks + treasury + funding_other + transfer_pnl)`` (the identity gap) tests them."""
    total = 0.0
    for i, key in enumerate(inst_keys):
        rec = inst[i]
        kind = cfg.instrument(key).kind
        fx = float(rec["fx"])
        m = _mid(book_px, i)
        cash = float(rec["cash"]) + float(rec["xfer_c"])
        pos = float(rec["pos"]) + float(rec["xfer_p"])
        if cash != 0.0:
            total += cash * fx
        if pos != 0.0:
            total += pos * m * fx
        pos0 = float(rec["pos0"])
        if pos0 != 0.0 and np.isfinite(m * fx * float(rec["mid0"]) * float(rec["fx0"])):
            total += pos0 * (m * fx - float(rec["mid0"]) * float(rec["fx0"]))
        if kind == "spot" and rec["fx_id"] >= 0 and np.isfinite(fx * float(rec["fx0"])):
            total += float(rec["cash0"]) * (fx - float(rec["fx0"]))
    return total
