"""Regenerate docs/validation/portfolio.md from real runs.

    .venv/bin/python scripts/validate_portfolio.py > docs/validation/portfolio.md

Multi-symbol synthetic universes (seeded), every risk guard firing in a run, the FX traps,
funding, and the Upbit KRW-BTC vs Binance BTC/USDT route on the real candles of
``../shared/data/real/binance-upbit-btc-2025`` with the real Upbit USDT/KRW series of
``../shared/data/real/krw-fx``.
"""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import arbkit  # noqa: E402
from arbkit.config import RiskConfig, TransferConfig, WalletConfig, load_config  # noqa: E402
from arbkit.data.catalog import Catalog  # noqa: E402
from arbkit.data.importers.common import SHARED_REAL  # noqa: E402
from arbkit.data.importers.registry import ImportOptions, run_import  # noqa: E402
from arbkit.data.universe import generate_universe  # noqa: E402
from arbkit.errors import ArbkitError  # noqa: E402

WORK = Path(tempfile.mkdtemp(prefix="arbkit-validate-portfolio-"))
S = 1_000_000_000


def fmt(v: float) -> str:
    if isinstance(v, float) and math.isnan(v):
        return "n/a"
    if float(v).is_integer() and abs(v) < 1e12:
        return f"{int(v):,}"
    return f"{v:,.2f}"


def table(frame: pl.DataFrame, cols: list[str]) -> str:
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in frame.select(cols).to_dicts():
        out.append("| " + " | ".join(str(r[c]) if isinstance(r[c], str) else fmt(r[c])
                                     for c in cols) + " |")
    return "\n".join(out)


def universe_section() -> tuple[str, pl.DataFrame, object]:
    spec = {"BTC": "always-lose", "ETH": "always-win", "SOL": "normal", "XRP": "flat"}
    df, cfg = generate_universe(spec, n_events=40_000, depth=3)
    res = arbkit.backtest(df, cfg)
    cols = ["route", "trades", "wins", "net_pnl", "price_pnl", "slippage", "fees",
            "entry_threshold_bps", "best_clean_edge_bps", "opportunities_seen"]
    tot = {c: 0.0 for c in ("net_pnl", "fees", "trades")}
    for c in tot:
        for v in res.symbols[c].to_list():
            tot[c] += v
    same = all(res.metric(c) == tot[c] for c in tot)
    text = (f"Universe {', '.join(f'{b}={s}' for b, s in spec.items())} (40,000 rows per "
            f"symbol, seed 7), one run, {res.metric('events'):,.0f} events:\n\n"
            + table(res.routes, cols)
            + f"\n\nPortfolio: trades {res.metric('trades'):.0f}, net PnL "
              f"{res.metric('net_pnl'):,.4f}, fees {res.metric('fees'):,.4f}, max drawdown "
              f"{res.metric('max_drawdown'):,.2f} (from the portfolio equity itself). Portfolio "
              f"net PnL, fees and trades == the sum of the symbols, exactly: "
              f"{'✅ yes' if same else '❌ NO'}. Notes printed with the result: "
            + "; ".join(res.meta["notes"]))
    return text, df, cfg


GUARDS = [
    ("max_symbol_notional", dict(max_symbol_notional=9_000.0)),
    ("max_gross_exposure", dict(max_gross_exposure=15_000.0)),
    ("max_venue_imbalance", dict(max_venue_imbalance=5_000.0)),
    ("daily_loss_limit", dict(daily_loss_limit=100.0)),
    ("max_drawdown", dict(max_drawdown=80.0)),
    ("loss_streak", dict(loss_streak=3, loss_streak_cooldown_s=150.0)),
    ("max_orders_per_s", dict(max_orders_per_s=1.0)),
]


def guards_section(df: pl.DataFrame, cfg) -> str:
    two = df.filter(pl.col("symbol").is_in(["BTC-USDT", "ETH-USDT"]))
    cfg2 = dataclasses.replace(cfg, routes=cfg.routes[:2], instruments=cfg.instruments[:4])
    base = arbkit.backtest(two, cfg2)
    rows = ["| guard (setting) | trades (without: {}) | blocked | first guard-log row |".format(
        int(base.metric("trades"))), "|---|---:|---:|---|"]
    for name, kw in GUARDS:
        res = arbkit.backtest(two, dataclasses.replace(cfg2, risk=RiskConfig(**kw)))
        g = res.guards
        first = g.row(0, named=True) if g.height else None
        desc = ("none" if first is None else
                f"{first['guard']} on {first['route_name']} at +{(first['ts'] - two['ts_recv_ns'][0]) / S:.1f} s "
                f"(value {first['value']:,.2f}, limit {first['limit']:,.2f})")
        blocked = sum(res.metric(k) for k in res.summary["metric"].to_list()
                      if k.startswith("skipped_") and k not in ("skipped_busy",))
        setting = ", ".join(f"{k} = {v}" for k, v in kw.items())
        rows.append(f"| {name} ({setting}) | {res.metric('trades'):.0f} | {blocked:,.0f} | "
                    f"{desc} |")
    kill_at = int(base.trades["entry_ts"][5]) + S
    res = arbkit.backtest(two, cfg2, controls=[(kill_at, "kill")])
    rows.append(f"| kill switch (control at +{(kill_at - two['ts_recv_ns'][0]) / S:.1f} s) | "
                f"{res.metric('trades'):.0f} | {res.metric('skipped_halted'):,.0f} | "
                f"{res.guards.row(0, named=True)['guard']}; exits with reason kill: "
                f"{(res.trades['exit_reason_text'] == 'kill').sum()} |")
    return ("BTC (always loses) + ETH (always wins), each guard on its own "
            "(`tests/acceptance/test_guards.py` also has the control runs where each must not "
            "fire, the same-jump, slippage and midnight-reset cases):\n\n" + "\n".join(rows))


SAMPLE = ROOT / "data" / "samples" / "binance_btcusdt_spot_usdm.parquet"
STUDY = ROOT / "studies" / "binance_spot_usdm_hypothetical_fees.toml"


def inverse_section() -> str:
    """The shipped real Binance sample: spot vs the USD-M perp, and the same route with the
    perp leg turned into an inverse contract of 100 per contract (same prices, sizes in
    contracts). No real COIN-M recording is available here: the inverse book is derived."""
    quotes = pl.read_parquet(SAMPLE)
    inv = quotes.filter(pl.col("venue") == "binance_usdm").with_columns(
        pl.lit("binance_coinm_derived").alias("venue"), pl.lit("BTCUSD_PERP").alias("symbol"),
        (pl.col("bid_qty") * pl.col("bid_px") / 100.0).floor().alias("bid_qty"),
        (pl.col("ask_qty") * pl.col("ask_px") / 100.0).floor().alias("ask_qty"))
    lin_cfg = load_config(STUDY)
    perp = lin_cfg.instruments[1]
    inv_inst = dataclasses.replace(perp, venue="binance_coinm_derived", symbol="BTCUSD_PERP",
                                   kind="inverse_perp", contract_value=100.0, lot=1.0,
                                   min_notional=0.0)
    inv_cfg = dataclasses.replace(
        lin_cfg, instruments=(lin_cfg.instruments[0], inv_inst),
        routes=(dataclasses.replace(lin_cfg.routes[0], b=inv_inst.key),))
    lin = arbkit.backtest(quotes, lin_cfg)
    res = arbkit.backtest(pl.concat([quotes.filter(pl.col("venue") == "binance_spot"), inv])
                          .sort("ts_recv_ns", maintain_order=True), inv_cfg)
    rows = ["| metric | linear USD-M perp (real) | inverse, 100 per contract (derived) |",
            "|---|---:|---:|"]
    for m in ("trades", "win_rate", "net_pnl", "price_pnl", "slippage", "fees",
              "legging_incidents", "naked_residual_qty"):
        rows.append(f"| {m} | {fmt(lin.metric(m))} | {fmt(res.metric(m))} |")
    perp_fills = res.fills.filter(pl.col("instrument") == inv_inst.key)
    t = res.trades.filter(pl.col("is_open") == 0)
    ident = (t["net_pnl"] - (t["price_pnl"] - t["slippage"] - t["fees"] + t["fx_pnl"]
                             + t["funding"])).abs().max()
    whole = bool((perp_fills["qty"] == perp_fills["qty"].round()).all())
    return (
        "The shipped real sample (`data/samples/binance_btcusdt_spot_usdm.parquet`, two "
        "Binance BTCUSDT sessions, spot and USD-M) with the hypothetical-fees study "
        "(`studies/binance_spot_usdm_hypothetical_fees.toml`), and the same study with its perp "
        "leg turned into an **inverse** contract: same prices, book sizes converted to "
        "contracts of 100 (`floor(qty x px / 100)`), `contract_value = 100`, `lot = 1`. ⚠️ No "
        "real COIN-M recording is available here, so the inverse book is derived from the real "
        "USD-M one, and it stays quoted in USDT (its source's prices) rather than USD.\n\n"
        + "\n".join(rows)
        + f"\n\nAn inverse short of N contracts opened at P0 is a linear short of N x 100 / P0 "
          "coins (core/inverse.py), so the two runs should nearly agree; they differ by the "
          "whole-contract sizing (the spot leg matches the contracts' base-equivalent) and by "
          f"the fee basis. Inverse fills in whole contracts: {'✅' if whole else '❌'} "
          f"({perp_fills.height} fills, {fmt(float(perp_fills['qty'].sum()))} contracts); "
          f"`net = price - slippage - fees + fx + funding` on every closed trade: max error "
          f"{float(ident or 0.0):.2e}. Funding of inverse contracts is hand-checked in "
          "`tests/acceptance/test_inverse.py` (`-contracts x 100 / mark x rate` coins = "
          "`-contracts x 100 x rate` USD, whatever the mark).")


def wallets_section() -> str:
    """Shared per-venue wallets and rebalancing transfers on a 2-symbol synthetic universe."""
    spec = {"BTC": "normal", "ETH": "normal"}
    df, cfg = generate_universe(spec, n_events=40_000, depth=3, seed=11)
    own = arbkit.backtest(df, cfg)
    spot = [dataclasses.replace(i, initial_base=0.0, initial_quote=1e12)
            for i in cfg.instruments]
    def wallets(usdt: float) -> tuple[WalletConfig, ...]:
        return tuple(WalletConfig(venue=v, balances={"USDT": usdt, "BTC": 0.5, "ETH": 0.5})
                     for v in ("A", "B"))

    shared_cfg = dataclasses.replace(cfg, instruments=tuple(spot), wallets=wallets(50_000.0))
    shared = arbkit.backtest(df, shared_cfg)
    tight_cfg = dataclasses.replace(shared_cfg, wallets=wallets(12_000.0))
    tight = arbkit.backtest(df, tight_cfg)
    moved_cfg = dataclasses.replace(tight_cfg, transfers=TransferConfig(
        rebalance_below=0.5, delay_s=600.0, fee_bps=1.0,
        fee_fixed={"BTC": 0.0002, "ETH": 0.002, "USDT": 1.0}))
    moved = arbkit.backtest(df, moved_cfg)
    rows = ["| run | trades | mean entry notional | skipped for balance | transfers | "
            "transfer fees | transfer line | net PnL (trades) | final equity - capital | "
            "equity = trades + transfer line | account identity gap |", "|---|" + "---:|" * 10]
    for name, r in (("per-instrument balances (25,000 USDT + 0.5 coin each)", own),
                    ("one wallet per venue, same totals (50,000 USDT, 0.5 BTC, 0.5 ETH)", shared),
                    ("one wallet per venue, 12,000 USDT (two 10,000 entries cannot both fit)",
                     tight),
                    ("... + transfers (below 50%, 600 s, 1 bps + fixed)", moved)):
        trades_net = float(r.trades["net_pnl_mid"].sum()) if r.trades.height else 0.0
        gap = r.metric("final_equity") - cfg.run.capital
        ok = abs(gap - (trades_net + r.metric("transfer_pnl"))) < 1e-6
        notional = float(r.trades["entry_notional"].mean()) if r.trades.height else 0.0
        rows.append(f"| {name} | {r.metric('trades'):.0f} | {notional:,.0f} | "
                    f"{r.metric('skipped_balance'):,.0f} "
                    f"| {r.metric('transfers'):.0f} | {r.metric('transfer_cost'):,.4f} | "
                    f"{r.metric('transfer_pnl'):,.4f} | "
                    f"{trades_net:,.4f} | {gap:,.4f} | {'✅' if ok else '❌'} | "
                    f"{r.metric('identity_gap'):.1e} |")
    g = moved.guards.filter(pl.col("guard").str.starts_with("transfer")).head(6)
    first = ("\n\nFirst transfer rows of the last run (`res.guards`; `value` = amount, "
             "`limit` = fee, `route_name` = the receiving wallet):\n\n"
             + table(g.with_columns(((pl.col("ts") - df["ts_recv_ns"][0]) / S).alias("t_s")),
                     ["t_s", "guard", "route_name", "value", "limit"])) if g.height else \
        "\n\n❌ no transfer happened in this run."
    same = own.trades.drop("route_name").equals(shared.trades.drop("route_name"))
    return ("BTC and ETH on venues A and B (synthetic, seed 11, 40,000 rows per symbol), four "
            "ways to hold the balances:\n\n" + "\n".join(rows)
            + f"\n\nThe shared wallets with the same totals give the per-instrument run's trades "
              f"exactly: {'✅ yes' if same else '❌ no (the shared cash binds somewhere)'}. "
              "With 12,000 USDT per venue the second route's entries are cut to what the shared "
              "cash still pays for. ⚠️ In this run the refill rule hurts: it pays "
              f"{moved.metric('transfer_cost'):,.2f} in fees and moves cash away from the venue "
              "that needs it next, so later entries are smaller still; it models the cost and "
              "delay of rebalancing, it is not an optimised rebalancer." + first
            + "\n\nWallets at the end of the last run (`res.wallets`):\n\n"
            + table(moved.wallets, ["wallet", "start", "end", "in_transit", "transfers_in"]))


def krw_section() -> str:
    cat = Catalog(WORK / "krw")
    r = SHARED_REAL / "binance-upbit-btc-2025"
    for fmt_name, paths, opts in [
        ("ohlcv-csv", [r / "upbit_KRW-BTC_5m_chunked_20250528-20250823.csv.gz"],
         ImportOptions(venue="upbit", symbol="KRW-BTC", interval="5m")),
        ("ohlcv-csv", [r / "binance_BTCUSDT_5m_20250525-20250823.csv.gz"],
         ImportOptions(venue="binance", symbol="BTCUSDT", interval="5m")),
        ("upbit-fx", [], ImportOptions()),
    ]:
        for kind, frame in run_import(fmt_name, paths, opts):
            cat.add(kind, frame)
    cfg = load_config(ROOT / "studies/krw_usdt_premium.toml")
    res = arbkit.backtest(cat.root, cfg)
    # the premium itself, from the bars: Upbit close / FX vs Binance close, at common closes
    up = cat.read_table(__import__("arbkit.data.catalog", fromlist=["Selection"]).Selection(
        "bars", "upbit", "KRW-BTC")).frame.select("ts_close_ns", pl.col("close").alias("krw"))
    bn = cat.read_table(__import__("arbkit.data.catalog", fromlist=["Selection"]).Selection(
        "bars", "binance", "BTCUSDT")).frame.select("ts_close_ns", pl.col("close").alias("usdt"))
    fx = cat.read_table(__import__("arbkit.data.catalog", fromlist=["Selection"]).Selection(
        "fx", "upbit", "USDT/KRW")).frame.select(pl.col("ts_ns").alias("ts_close_ns"),
                                                  pl.col("rate"))
    prem = (up.join(bn, on="ts_close_ns").sort("ts_close_ns")
            .join_asof(fx.sort("ts_close_ns"), on="ts_close_ns")
            .with_columns(((pl.col("krw") / pl.col("rate") / pl.col("usdt") - 1) * 1e4)
                          .alias("premium_bps"))
            .with_columns(pl.from_epoch("ts_close_ns", time_unit="ns").dt.strftime("%Y-%m")
                          .alias("month")))
    monthly = prem.group_by("month").agg(
        pl.len().alias("bars"), pl.col("premium_bps").median().alias("median"),
        pl.col("premium_bps").quantile(0.05).alias("p5"),
        pl.col("premium_bps").quantile(0.95).alias("p95")).sort("month")
    t = res.trades
    cols = ["route_name", "trades", "win_rate", "net_pnl", "price_pnl", "fx_pnl", "fees",
            "slippage", "exits"]
    reasons = (t.filter(pl.col("is_open") == 0).group_by("exit_reason_text").len()
               .sort("exit_reason_text"))
    m = {k: res.metric(k) for k in ("trades", "win_rate", "net_pnl", "open_net_pnl_mid",
                                    "price_pnl", "fx_pnl", "fees", "slippage",
                                    "legging_incidents", "exits_data_gap", "skipped_data_gap",
                                    "skipped_stale_quote", "skipped_stale_fx",
                                    "opportunities_seen", "opportunities_taken",
                                    "final_equity", "treasury_pnl", "account_pnl",
                                    "identity_gap", "sharpe", "days", "time_in_market")}
    strat = res.metric("final_equity") - cfg.run.capital
    explained = res.metric("net_pnl") + res.metric("open_net_pnl_mid")
    t0, t1 = int(res.equity["ts"].min()), int(res.equity["ts"].max())
    q0 = int(min(up["ts_close_ns"].min(), bn["ts_close_ns"].min()))
    q1 = int(max(up["ts_close_ns"].max(), bn["ts_close_ns"].max()))
    anchors = t["entry_anchor_bps"].to_numpy() if t.height else np.zeros(0)
    del cols
    return "\n".join([
        "Data: Upbit KRW-BTC 5-minute bars (27 chunks of ~16.7 h with ~3-day holes, "
        "2025-05-28 .. 08-23) and Binance BTC/USDT 5-minute bars (dense), both real candles "
        "(`binance-upbit-btc-2025`). **FX: Upbit's own KRW-USDT daily close** (KRW per 1 USDT, "
        "`krw-fx/upbit_KRW-USDT_1d_*`), stamped at the end of its UTC day, so a day's premium "
        "is measured with the previous day's close: the FX is **USDT** (not USD: USDT on Upbit "
        "carries its own small premium over the bank USD/KRW rate) and **daily** (the premium "
        "below moves with the BTC price intraday but with the KRW/USDT rate only once a day; "
        "intraday FX moves show up as premium noise and as the FX effect of held positions). "
        "Bar mode with an ASSUMED 2 bps half spread and 10% of each bar's volume at the touch.",
        "",
        "The premium (Upbit close / FX / Binance close − 1, at common 5-minute closes, "
        f"{prem.height:,} bars):",
        "",
        table(monthly, ["month", "bars", "median", "p5", "p95"]),
        "",
        "The study (`studies/krw_usdt_premium.toml`): thresholds against an EWMA anchor of the "
        "premium (half-life 1 day, 1 day warm-up), entry 30 bps beyond it, fees 5 + 10 bps, "
        "stop 150 bps, time stop 2 days, `max_quote_age_ms` 10 min (the Upbit holes), "
        "`[[fx]] max_age_s` 26 h.",
        "",
        "| figure | value |", "|---|---:|",
        *[f"| {k} | {fmt(v)} |" for k, v in m.items()],
        "| anchor at entries, bps (min / median / max) | "
        + (f"{anchors.min():.1f} / {np.median(anchors):.1f} / {anchors.max():.1f}"
           if anchors.size else "n/a") + " |",
        "",
        "**Strategy, treasury and account side by side** (USDT): the trades' net PnL "
        f"{m['net_pnl']:,.2f} + the open round trip marked at mid {m['open_net_pnl_mid']:,.2f} "
        f"= {explained:,.2f}; the strategy's equity moved {strat:,.2f} "
        f"({'✅ equal' if abs(strat - explained) < 1e-6 else '❌ NOT equal'}). Holding the "
        f"starting balances (0.5 BTC and 100 M KRW on Upbit, 0.5 BTC and 100,000 USDT on "
        f"Binance) gained {m['treasury_pnl']:,.2f} (the treasury line: BTC and KRW moves); the "
        f"whole account: {m['account_pnl']:,.2f} = {explained:,.2f} + {m['treasury_pnl']:,.2f} "
        f"(identity gap {m['identity_gap']:.1e}).",
        "",
        f"The run's span is the market data's: equity samples from "
        f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime(t0 / 1e9))} to "
        f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime(t1 / 1e9))} UTC, the bars from "
        f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime(q0 / 1e9))} to "
        f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime(q1 / 1e9))} (the FX series runs 2024-06 "
        "to 2026-08: its rows outside are not used). Upbit's ~3-day holes are data gaps "
        f"(`max_gap_s` auto = 3 bars = 900 s): {m['exits_data_gap']:.0f} positions were closed "
        "at the last books when Upbit went silent instead of being carried across a hole, and "
        "entries wait until both legs quote again. Each decision sees both venues' bars of its "
        "close (one decision per timestamp), and orders fill at the next bar.",
        "",
        "Exit reasons: " + ", ".join(f"{r['exit_reason_text']} {r['len']}"
                                     for r in reasons.to_dicts()) + ".",
        "",
        "Notes printed with the result: " + "; ".join(res.meta["notes"]),
    ])


FX_TRAPS_NOTE = """See `tests/acceptance/test_fx_funding.py`, run in this page's CI:
- the KRW/USDT route decomposed by hand: the KRW spent came back (100,000 KRW each way), so
  the round trip's FX effect is 0 and its net is the price move −1.81 USDT; the 1 bn KRW
  wallet's move from 1000 to 980 KRW/USDT is the treasury line, counted once; a round trip
  that left 1,000 KRW has FX effect 1000 × (1/980 − 1/1000), and their later move is treasury;
  the account identity by hand (account = trades + treasury);
- stale FX blocks entries (`skipped_stale_fx`), the same data with fresh FX trades;
- a wrong constant FX (1,500 KRW/USDT for ~1,000) is caught by the sanity guard;
- an FX series equal to the legs' own price ratio is refused (`DataError`: "tracks the route's
  own price ratio ... premium zero by construction");
- a USD leg in a USDT run without a USDT/USD series is a config error (USD ≠ USDT);
- funding by hand: a short perp receives −(−10) × 100.2 × 0.0001 = +0.1002, then pays
  −(−10) × 100.1 × (−0.0003) = −0.3003; a rate after the exit meets no position; a long pays
  when the rate is positive; a perp without a funding series says so in the result's notes."""


def main() -> None:
    commit = subprocess.run("git rev-parse --short HEAD", shell=True, cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    t0 = time.time()
    uni_text, df, cfg = universe_section()
    print("# Validation: portfolio, risk guards, FX and funding (issue #4)\n")
    print(f"Generated by `.venv/bin/python scripts/validate_portfolio.py > "
          f"docs/validation/portfolio.md` at commit `{commit}` on "
          f"{time.strftime('%Y-%m-%d')}.\n")
    print(STATUS)
    print("## Many symbols in one run\n")
    print(uni_text)
    print("\n## Every risk guard firing in a run\n")
    print(guards_section(df, cfg))
    print("\n## The Korean premium: Upbit KRW-BTC vs Binance BTC/USDT on real candles\n")
    try:
        print(krw_section())
    except ArbkitError as exc:
        print(f"❌ the run failed: {exc}")
    print("\n## Inverse perpetuals on the real Binance sample\n")
    print(inverse_section())
    print("\n## Shared venue wallets and rebalancing transfers\n")
    print(wallets_section())
    print("\n## FX traps and funding\n")
    print(FX_TRAPS_NOTE)
    print(f"\n(generated in {time.time() - t0:.0f} s)")


STATUS = """## Status

| capability | status | evidence |
|---|---|---|
| many routes in one run, per-route / per-symbol / per-venue results, portfolio = sum of symbols exactly | ✅ | below; `tests/acceptance/test_portfolio.py` (each symbol's trades identical to its solo run; every symbol of a 5-symbol universe evaluated) |
| Sharpe and drawdown from the portfolio equity | ✅ | `test_risk_figures_come_from_the_portfolio_equity_itself` |
| routes across quote currencies through a recorded FX series with its own timestamps and staleness cutoff | ✅ | below; `tests/acceptance/test_fx_funding.py` |
| FX traps: wrong constant (sanity guard), stale (blocked, control trades), implied from the traded asset (refused), USD/USDT/USDC distinct | ✅ | `test_fx_funding.py` |
| funding of linear perps at funding times with the realised rate (sign, timing, by hand) | ✅ | `test_fx_funding.py` |
| inverse (contract-sized, coin-settled) perps: whole-contract sizing, harmonic fill price, coin fees and funding (`-contracts x cv / mark x rate` coins), by hand | ✅ ⚠️ coin amounts are valued in the quote currency when they happen (holding the coin PnL afterwards is not modelled); at most one inverse leg per route; no real COIN-M data here (derived book below) | below; `tests/acceptance/test_inverse.py`; `tests/property/test_inverse_wallets.py` (money identities and whole contracts on random streams) |
| per-venue balances: one wallet per venue and currency shared by its spot symbols (`[[wallets]]`), spot legs sell only what the wallet holds; fees in the received asset | ✅ ⚠️ perpetual margin is not modelled (no balance check on perps); venues without `[[wallets]]` keep per-instrument balances | below; `tests/acceptance/test_wallets.py`; property: a wallet holding one instrument's balances changes no output bit |
| transfer / rebalance cost and delay between venues (`[transfers]`) | ✅ ⚠️ one rule (refill below a fraction of the start from the richest venue), checked after fills; no currency conversion | below; `test_wallets.py` (amount, fee, arrival time, the transfer line by hand); property: equity = trades + transfer line exactly, no wallet overdrawn |
| treasury line (inventory revaluation) and a buy-and-hold baseline | ✅ `treasury_pnl` (the starting balances held from the first quote to the end, at mid and FX = the buy-and-hold baseline, plus closed round trips' leftover foreign cash after their close), per instrument in `res.venues` | `test_fx_funding.py` |
| the account identity on every run: account PnL = trades + open marks + treasury + funding + transfer lines | ✅ `identity_gap` on every run (a `CHECK:` note above 1e-9 relative); a hypothesis test with every feature on at once | `tests/property/test_all_features.py`; the KRW run below |
| legging policies unwind, chase, hold; scale-out exits; EWMA anchor | ✅ | `tests/acceptance/test_golden.py`, `test_strategy_options.py` |
| a user @njit signal in place of the built-in entry rule | ✅ ⚠️ one cold compile of the loop per process (~7 s, `benchmarks/bench_plugin.py`) | `tests/acceptance/test_strategy_options.py` |
| every risk guard: fires, and blocks/flattens as designed; a control where it does not | ✅ | below; `tests/acceptance/test_guards.py` |
| KRW/USDT route on real candles with real (daily) FX | ✅ runs; ⚠️ bar mode, daily FX, assumed spread | below |
| partial fills on one venue in a multi-symbol run leave no unreported naked exposure | ✅ | `tests/acceptance/test_portfolio.py` |
| scaling 2 → 50 symbols within 30% of the single-route throughput | see `docs/benchmarks.md` | `benchmarks/bench_portfolio.py` |
"""


if __name__ == "__main__":
    main()
