"""Rich rendering of a backtest summary (the CLI's only presentation code)."""

from __future__ import annotations

import math

from rich.console import Console
from rich.markup import escape
from rich.table import Table

SECTIONS = {
    "Trades": ["events", "entries", "entries_unfilled", "trades", "open_at_end", "exits_converge",
               "exits_take_profit", "exits_stop_loss", "exits_time", "exits_reversal",
               "exits_entry_legged", "exits_risk", "exits_kill", "exits_data_gap", "win_rate",
               "avg_r", "expectancy", "profit_factor"],
    "PnL (reference currency)": ["net_pnl", "gross_pnl", "price_pnl", "slippage", "fees",
                                 "fx_pnl", "funding", "open_net_pnl_mid", "legging_cost",
                                 "transfers", "transfer_cost", "final_equity", "treasury_pnl",
                                 "funding_other", "transfer_pnl", "account_pnl",
                                 "identity_gap", "identity_gap_rel"],
    "Risk": ["max_drawdown", "max_drawdown_pct", "sharpe", "sortino", "calmar", "days",
             "turnover", "fee_share", "time_in_market", "legging_incidents",
             "naked_residual_qty"],
    "Opportunities": ["routes", "entry_threshold_bps", "best_clean_edge_bps", "nearest_miss_bps",
                      "opportunities_seen", "opportunities_taken", "skipped_crossed_book",
                      "skipped_stale_quote", "skipped_sanity", "skipped_busy", "skipped_cooldown",
                      "skipped_depth", "skipped_balance", "skipped_min_notional",
                      "skipped_stale_fx", "skipped_symbol_cap", "skipped_gross_cap",
                      "skipped_venue_imbalance", "skipped_slippage", "skipped_same_jump",
                      "skipped_same_jump_wait", "skipped_loss_streak", "skipped_rate_limit",
                      "skipped_halted", "skipped_data_gap", "skipped_symbol_off",
                      "guard_events"],
}
# shown only when not 0 (or with --verbose): the reasons an opportunity was passed over, and
# the exits and lines most runs never have
IDLE_HIDDEN = ("skipped_", "exits_risk", "exits_kill", "exits_data_gap", "guard_events",
               "gross_pnl", "funding_other", "transfer_pnl", "identity_gap")
PCT = {"win_rate", "max_drawdown_pct", "time_in_market", "fee_share"}
# piped or redirected output: rich would wrap at 80 columns (cutting notes and titles in two
# for grep and logs); tables take only the width they need, so a wide console changes nothing
# else
PIPE_WIDTH = 1000


def console(*, stderr: bool = False) -> Console:
    """The CLI's console: a terminal's width on a terminal, no wrapping when piped."""
    c = Console(stderr=stderr)
    if not c.is_terminal:
        c = Console(stderr=stderr, width=PIPE_WIDTH, soft_wrap=True)
    return c


def _fmt(name: str, v: float) -> str:
    """A count as a whole number, every other figure with its section's decimals (so 0
    and 12.5 of one kind read alike: 0.0000, 12.5000)."""
    from arbkit.metrics.summary import is_count  # (not at CLI start-up: it loads numba)

    if isinstance(v, float) and math.isnan(v):
        return "n/a"
    if isinstance(v, float) and math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if name in PCT:
        return f"{v * 100:.2f}%"
    if is_count(name) and float(v).is_integer() and abs(v) < 1e15:
        return f"{int(v):,}"
    if name.endswith("_bps"):
        return f"{v:,.2f}"
    return f"{v:,.4f}"


def print_summary(res, *, verbose: bool = False) -> None:
    """The headline (did the strategy make money), the metric table and the notes. Skip
    counters that are 0 are left out unless ``verbose`` (a line says how many)."""
    con = console()
    vals = {r["metric"]: r["value"] for r in res.summary.to_dicts()}
    label = res.config.run.label
    con.print(f"[bold]arbkit backtest[/] — {escape(label + ' — ' if label else '')}"
              f"{escape(str(res.meta.get('source', '')))}", highlight=False)
    for line in headline(vals, res.config.run.reference_ccy):
        con.print(line, highlight=False)
    table = Table(show_header=True, header_style="bold")
    table.add_column("metric")
    table.add_column("value", justify="right")
    hidden = 0
    listed = {n for names in SECTIONS.values() for n in names}
    other = [n for n in vals if n not in listed]  # a metric added later is never lost
    for section, names in [*SECTIONS.items(), ("Other", other)]:
        rows = [n for n in names if n in vals
                and (verbose or not (n.startswith(IDLE_HIDDEN) and vals[n] == 0))]
        hidden += sum(n in vals for n in names) - len(rows)
        if rows:
            table.add_row(f"[bold cyan]{section}[/]", "")
        for name in rows:
            table.add_row("  " + name, _fmt(name, vals[name]))
    con.print(table)
    if hidden:
        con.print(f"({hidden} skip counters and rare lines are 0 and not shown; --verbose "
                  "shows every metric)", highlight=False)
    if getattr(res, "routes", None) is not None and res.routes.height > 1:
        con.print(_routes_table(res.routes))
    best = vals.get("best_clean_edge_bps", float("nan"))
    if vals.get("trades", 0) == 0 and vals.get("opportunities_taken", 0) == 0 and best != best:
        con.print("[yellow]no trades[/]: no clean moment was ever seen (both legs quoting, "
                  "fresh and uncrossed at once); see the notes below")
    elif vals.get("trades", 0) == 0 and vals.get("opportunities_taken", 0) == 0:
        con.print(
            f"[yellow]no trades[/]: the best edge on clean data was "
            f"{vals.get('best_clean_edge_bps', float('nan')):.2f} bps, "
            f"{vals.get('nearest_miss_bps', float('nan')):.2f} bps short of the entry threshold "
            f"{vals.get('entry_threshold_bps', float('nan')):.2f} bps (entry_bps - exit_bps + fees "
            "of four fills + latency allowance)"
        )
    for note in res.meta.get("notes", []):
        con.print(f"[yellow]note[/]: {escape(str(note))}", highlight=False)


def headline(vals: dict[str, float], ccy: str) -> list[str]:
    """Above the table: the strategy's result in one line, and which PnL line answers "did
    the strategy make money" (net_pnl) against the treasury line (holding the starting
    balances), which is not the strategy's doing."""
    def money(name: str) -> str:
        v = vals.get(name, math.nan)
        return "n/a" if not math.isfinite(v) else f"{v:+,.2f} {ccy}"

    trades = int(vals.get("trades", 0))
    win = vals.get("win_rate", math.nan)
    net = vals.get("net_pnl", math.nan)
    verdict = ("made money" if net > 0 else "lost money" if net < 0
               else "made nothing" if net == 0 else "has no result")
    first = (f"[bold]strategy {verdict}[/]: net PnL {money('net_pnl')} over {trades:,} closed "
             f"trade{'s' if trades != 1 else ''}"
             + (f", win rate {win * 100:.1f}%" if math.isfinite(win) else "")
             + f", max drawdown {vals.get('max_drawdown', math.nan):,.2f} {ccy}")
    second = (f"net_pnl is the strategy's answer (its round trips after fees, slippage, FX and "
              f"funding); treasury_pnl {money('treasury_pnl')} is the starting balances' "
              f"revaluation (what holding them did, not the strategy); account_pnl "
              f"{money('account_pnl')} is the whole account (both, plus open positions)")
    return [first, second]


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
