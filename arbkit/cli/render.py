"""Rich rendering of a backtest summary (the CLI's only presentation code)."""

from __future__ import annotations

import math

from rich.console import Console
from rich.table import Table

SECTIONS = {
    "Trades": ["events", "entries", "entries_unfilled", "trades", "open_at_end", "exits_converge",
               "exits_take_profit", "exits_stop_loss", "exits_time", "exits_reversal",
               "exits_entry_legged", "win_rate", "avg_r", "expectancy", "profit_factor"],
    "PnL (reference currency)": ["net_pnl", "price_pnl", "slippage", "fees", "fx_pnl", "funding",
                                 "open_net_pnl_mid", "legging_cost", "transfers",
                                 "transfer_cost", "final_equity", "treasury_pnl",
                                 "account_pnl"],
    "Risk": ["max_drawdown", "max_drawdown_pct", "sharpe", "sortino", "calmar", "days",
             "turnover", "fee_share", "time_in_market", "legging_incidents",
             "naked_residual_qty"],
    "Opportunities": ["entry_threshold_bps", "best_clean_edge_bps", "nearest_miss_bps",
                      "opportunities_seen", "opportunities_taken", "skipped_crossed_book", "skipped_stale_quote",
                      "skipped_sanity", "skipped_busy", "skipped_cooldown", "skipped_depth",
                      "skipped_balance", "skipped_min_notional", "skipped_stale_fx",
                      "skipped_symbol_cap", "skipped_gross_cap", "skipped_venue_imbalance",
                      "skipped_slippage", "skipped_same_jump", "skipped_loss_streak",
                      "skipped_rate_limit", "skipped_halted", "guard_events"],
}
PCT = {"win_rate", "max_drawdown_pct", "time_in_market", "fee_share"}


def _fmt(name: str, v: float) -> str:
    if isinstance(v, float) and math.isnan(v):
        return "n/a"
    if isinstance(v, float) and math.isinf(v):
        return "inf"
    if name in PCT:
        return f"{v * 100:.2f}%"
    if float(v).is_integer() and abs(v) < 1e15 and name not in ("net_pnl", "fees"):
        return f"{int(v):,}"
    return f"{v:,.4f}"


def print_summary(res) -> None:
    console = Console()
    vals = {r["metric"]: r["value"] for r in res.summary.to_dicts()}
    label = res.config.run.label
    title = f"arbkit backtest — {label + ' — ' if label else ''}{res.meta.get('source', '')}"
    table = Table(title=title, show_header=True, header_style="bold")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for section, names in SECTIONS.items():
        table.add_row(f"[bold cyan]{section}[/]", "")
        for name in names:
            if name in vals:
                table.add_row("  " + name, _fmt(name, vals[name]))
    console.print(table)
    if getattr(res, "routes", None) is not None and res.routes.height > 1:
        console.print(_routes_table(res.routes))
    best = vals.get("best_clean_edge_bps", float("nan"))
    if vals.get("trades", 0) == 0 and vals.get("opportunities_taken", 0) == 0 and best != best:
        console.print("[yellow]no trades[/]: no clean moment was ever seen (both legs quoting, "
                      "fresh and uncrossed at once); see the notes below")
    elif vals.get("trades", 0) == 0 and vals.get("opportunities_taken", 0) == 0:
        console.print(
            f"[yellow]no trades[/]: the best edge on clean data was "
            f"{vals.get('best_clean_edge_bps', float('nan')):.2f} bps, "
            f"{vals.get('nearest_miss_bps', float('nan')):.2f} bps short of the entry threshold "
            f"{vals.get('entry_threshold_bps', float('nan')):.2f} bps (entry_bps - exit_bps + fees "
            "of four fills + latency allowance)"
        )
    for note in res.meta.get("notes", []):
        console.print(f"[yellow]note[/]: {note}")


def _routes_table(routes) -> Table:
    """Per-route figures of a multi-route run (the summary above is their portfolio)."""
    t = Table(title="per route (the summary is the portfolio: its PnL is the sum of these)",
              header_style="bold")
    cols = [("route", "route"), ("trades", "trades"), ("win_rate", "win %"),
            ("net_pnl", "net PnL"), ("fees", "fees"), ("entry_threshold_bps", "thr bps"),
            ("best_clean_edge_bps", "best edge bps"), ("opportunities_seen", "seen"),
            ("opportunities_taken", "taken")]
    for _, head in cols:
        t.add_column(head, justify="left" if head == "route" else "right")
    for r in routes.to_dicts():
        t.add_row(*(str(r[c]) if c == "route" else _fmt(c, r[c]) for c, _ in cols))
    return t
