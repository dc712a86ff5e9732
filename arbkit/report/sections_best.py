"""Report sections about the best trial's re-run: equity, symbols, exit reasons, trades."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl

from arbkit.metrics.breakdown import ADDITIVE
from arbkit.report import figures
from arbkit.report.markup import img, para, section, table
from arbkit.report.stats import sharpe_moments, trade_returns
from arbkit.report.study import StudyReport

EQUITY_METRICS = ("final_equity", "net_pnl", "max_drawdown", "max_drawdown_pct", "days",
                  "sharpe", "sortino", "calmar", "time_in_market", "open_at_end")
SYMBOL_COLS = ("base", "routes", "entries", "trades", "wins", "win_rate", "net_pnl",
               "price_pnl", "slippage", "fees", "fx_pnl", "funding", "legging_cost",
               "open_at_end", "open_net_pnl_mid", "opportunities_seen", "opportunities_taken")
ROUTE_COLS = ("route", "base", "trades", "win_rate", "net_pnl", "fees", "entry_threshold_bps",
              "nearest_miss_bps")
OPTIONAL_COLS = ("fx_pnl", "funding", "legging_cost", "open_net_pnl_mid")  # hidden when all 0
SUMMED = ("routes", "entries", "trades", "wins", *ADDITIVE, "open_at_end", "open_net_pnl_mid",
          "opportunities_seen", "opportunities_taken")


def _summary_value(res: Any, name: str) -> Any:
    hit = res.summary.filter(pl.col("metric") == name) if res.summary.height else res.summary
    return float(hit.get_column("value")[0]) if hit.height else None


def equity(rep: StudyReport) -> str:
    title = "Equity and drawdown of the best trial"
    eq = rep.best.equity
    if eq.height == 0:
        return section("equity", title, para("The best trial's re-run wrote no equity samples "
                                             "(no market data in its span)."))
    test = rep.best_test.equity if rep.best_test is not None else None
    header = ["metric", "train"] + (["test"] if rep.best_test is not None else [])
    rows = []
    for m in EQUITY_METRICS:
        cells = [m, _summary_value(rep.best, m)]
        if rep.best_test is not None:
            cells.append(_summary_value(rep.best_test, m))
        rows.append(cells)
    text = (f"Trial #{rep.best_number} re-run on the train window"
            + (" and, in orange, on the test window" if test is not None and test.height else "")
            + f". Equity is marked to mid (capital {rep.best.config.run.capital:,.0f}); "
            "drawdown is the fall from the running peak, in money.")
    body = para(text) + img(figures.equity(eq, test), "equity and drawdown") + table(header, rows)
    return section("equity", title, body)


def symbols(rep: StudyReport) -> str:
    title = "Per symbol"
    sym, routes = rep.best.symbols, rep.best.routes
    if sym.height == 0 and routes.height == 0:
        return section("symbols", title,
                       para("The best trial's re-run has no per-symbol or per-route frame."))
    parts = []
    if sym.height:
        cols = [c for c in SYMBOL_COLS if c in sym.columns]
        zero = [c for c in OPTIONAL_COLS if c in cols and not sym.get_column(c).abs().sum()]
        cols = [c for c in cols if c not in zero]
        rows = [list(r) for r in sym.select(cols).sort("base").iter_rows()]
        rows.append(_total_row(sym, cols))
        text = "Additive figures of the portfolio are the sums over the symbols (last row)."
        if zero:
            text += f" Columns that are 0 for every symbol are left out: {', '.join(zero)}."
        parts.append(para(text))
        parts.append(table(cols, rows, highlight={len(rows) - 1}, cls="wide"))
    if routes.height and (sym.height == 0 or routes.height > sym.height):
        cols = [c for c in ROUTE_COLS if c in routes.columns]
        parts.append("<h3>Per route</h3>")
        parts.append(table(cols, [list(r) for r in routes.select(cols).iter_rows()], cls="wide"))
    return section("symbols", title, "\n".join(parts))


def _total_row(frame: pl.DataFrame, cols: list[str]) -> list[Any]:
    out: list[Any] = []
    for c in cols:
        if c in SUMMED:
            vals = frame.get_column(c).to_list()
            out.append(math.fsum(vals) if frame.schema[c].is_float() else int(sum(vals)))
        elif c == "win_rate" and "wins" in cols and "trades" in cols:
            n = int(frame.get_column("trades").sum())
            out.append(int(frame.get_column("wins").sum()) / n if n else math.nan)
        else:
            out.append("all" if c == cols[0] else None)
    return out


def exit_reasons(rep: StudyReport) -> str:
    title = "Exit reasons"
    tr = rep.best.trades
    if tr.height == 0:
        return section("exit-reasons", title,
                       para("The best trial made no round trip: there is no exit to count."))
    reason = "exit_reason_text" if "exit_reason_text" in tr.columns else "exit_reason"
    g = (tr.with_columns(pl.col(reason).cast(pl.String).alias("reason"),
                         ((pl.col("exit_ts") - pl.col("entry_ts")) / 1e9).alias("hold_s"))
         .group_by("reason")
         .agg(pl.len().alias("count"), pl.col("net_pnl").sum().alias("net_pnl"),
              pl.col("net_pnl").mean().alias("mean"), (pl.col("net_pnl") > 0).mean().alias("win"),
              pl.col("hold_s").mean().alias("hold_s"))
         .sort(["count", "reason"], descending=[True, False]))
    total = tr.height
    rows = [[r["reason"], r["count"], r["count"] / total, r["net_pnl"], r["mean"], r["win"],
             r["hold_s"]] for r in g.iter_rows(named=True)]
    png = figures.exit_pnl(g.get_column("reason").to_list(), g.get_column("net_pnl").to_list(),
                           g.get_column("count").to_list())
    text = (f"{total} round trips of the best trial by the rule that closed them "
            "(open_at_end: still open at the end of data, marked at the touch net of closing "
            "fees).")
    body = para(text) + img(png, "net PnL by exit reason") + table(
        ["exit reason", "round trips", "share", "net PnL", "mean net PnL", "win rate",
         "mean hold (s)"], rows)
    return section("exit-reasons", title, body)


def trade_distribution(rep: StudyReport) -> str:
    title = "Trade distribution"
    tr = rep.best.trades
    closed = tr.filter(pl.col("is_open") == 0) if tr.height else tr
    if closed.height == 0:
        return section("trade-distribution", title,
                       para("The best trial closed no round trip: no distribution to show."))
    net = closed.get_column("net_pnl").to_numpy()
    m = sharpe_moments(trade_returns(closed))
    dev = net - net.mean()
    sd0 = float(np.sqrt(np.mean(dev**2)))
    rows = [("closed round trips", int(net.size)), ("mean net PnL", float(net.mean())),
            ("median", float(np.median(net))),
            ("sd", float(np.std(net, ddof=1)) if net.size > 1 else math.nan),
            ("min", float(net.min())), ("max", float(net.max())),
            ("share > 0", float((net > 0).mean())),
            ("skewness", float(np.mean(dev**3)) / sd0**3 if sd0 > 0 else math.nan),
            ("kurtosis (normal = 3)", float(np.mean(dev**4)) / sd0**4 if sd0 > 0 else math.nan),
            ("per-trade Sharpe of net PnL / entry notional", m.sr)]
    body = (para("Net PnL per closed round trip of the best trial (train window).")
            + img(figures.trade_hist(net), "histogram of net PnL per round trip")
            + table(["statistic", "value"], rows))
    return section("trade-distribution", title, body)
