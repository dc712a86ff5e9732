"""Result frames and aggregate metrics (every formula is written out in docs/metrics.md)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl

from arbkit.core import types as T
from arbkit.metrics.breakdown import (
    account_change,
    fill_notionals,
    lines,
    portfolio_sums,
    route_frame,
    symbol_frame,
    treasury,
    venue_frame,
)

NS_PER_DAY = 86_400_000_000_000
MIN_DAYS_FOR_RATIOS = 30
# summary metrics that count things (the frame holds every value as a float)
COUNT_METRICS = frozenset({"events", "trades", "entries", "entries_unfilled", "open_at_end",
                           "days", "opportunities_seen", "opportunities_taken", "routes",
                           "guard_events", "legging_incidents", "transfers"})


def is_count(metric: str) -> bool:
    """True for a summary metric that counts (``trades``, ``exits_*``, ``skipped_*``...)."""
    return metric in COUNT_METRICS or metric.startswith(("exits_", "skipped_"))


def _labels(frame: pl.DataFrame, col: str, table: tuple[str, ...], out: str) -> pl.DataFrame:
    """The text of each code in ``col`` (a vectorised lookup: no Python call per row)."""
    if col not in frame.columns:
        return frame
    if not frame.height:
        return frame.with_columns(pl.lit(None, pl.String).alias(out))
    names = np.asarray(table, dtype=object)[frame.get_column(col).to_numpy()]
    return frame.with_columns(pl.Series(out, names, dtype=pl.String))


def label_frames(frames: dict[str, pl.DataFrame], inst_keys: list[str],
                 route_labels: list[str] | None = None) -> dict[str, pl.DataFrame]:
    keys = tuple(inst_keys)
    names = tuple(route_labels or [])
    frames = {k: _labels(v, "route", names, "route_name") if names and k != "guards" else v
              for k, v in frames.items()}  # guards: guard_frame names routes and wallets
    fills = _labels(frames["fills"], "inst", keys, "instrument")
    fills = _labels(fills, "purpose", T.PURPOSE_TEXT, "purpose_text")
    orders = _labels(frames["olog"], "inst", keys, "instrument")
    orders = _labels(orders, "status", T.ORDER_STATUS_TEXT, "status_text")
    orders = _labels(orders, "reason", T.REJECT_TEXT, "reject_reason")
    orders = _labels(orders, "purpose", T.PURPOSE_TEXT, "purpose_text")
    trades = _labels(frames["trades"], "exit_reason", T.EXIT_REASON_TEXT, "exit_reason_text")
    return {"fills": fills, "orders": orders, "trades": trades,
            "equity": frames["equity"], "legs": frames["legs"], "guards": frames["guards"]}


def daily_returns(equity: pl.DataFrame, capital: float) -> np.ndarray:
    """Daily returns on start-of-day equity (UTC days).

    Days with market data but no trade are included (return 0); days with no market data at all
    (a gap between recordings) are not, so a 16-month hole does not become 480 flat days.
    """
    if equity.height == 0:
        return np.zeros(0)
    ts = equity.get_column("ts").to_numpy()
    eq = equity.get_column("equity").to_numpy()
    day = ts // NS_PER_DAY
    # the samples are in time order: a day's last sample is where the day changes next
    last_idx = np.append(np.flatnonzero(day[1:] != day[:-1]), day.shape[0] - 1)
    closes = eq[last_idx]
    starts = np.concatenate([[capital], closes[:-1]])
    return closes / starts - 1.0


def drawdown(equity: pl.DataFrame) -> tuple[float, float]:
    """(max drawdown in money, as a fraction of the running peak)."""
    if equity.height == 0:
        return 0.0, 0.0
    eq = equity.get_column("equity").to_numpy()
    peak = np.maximum.accumulate(eq)
    dd = peak - eq
    k = int(np.argmax(dd))
    return float(dd[k]), float(dd[k] / peak[k]) if peak[k] > 0 else 0.0


def ratios(rets: np.ndarray) -> tuple[float, float, str]:
    """Sharpe and Sortino ×√365 on daily returns; NaN with a note below 30 days."""
    if rets.size < MIN_DAYS_FOR_RATIOS:
        return math.nan, math.nan, f"{rets.size} day(s) of data < {MIN_DAYS_FOR_RATIOS}: not computed"
    sd = float(np.std(rets, ddof=1))
    down = rets[rets < 0]
    dsd = float(np.sqrt(np.mean(np.minimum(rets, 0.0) ** 2))) if down.size else 0.0
    mean = float(np.mean(rets))
    sharpe = mean / sd * math.sqrt(365) if sd > 0 else math.nan
    sortino = mean / dsd * math.sqrt(365) if dsd > 0 else math.nan
    return sharpe, sortino, ""


def trade_stats(closed: pl.DataFrame) -> dict[str, float]:
    n = closed.height
    if n == 0:
        return {"win_rate": math.nan, "avg_r": math.nan, "expectancy": math.nan,
                "profit_factor": math.nan}
    net = closed.get_column("net_pnl").to_numpy()
    wins, losses = net[net > 0].sum(), -net[net < 0].sum()
    return {
        "win_rate": float((net > 0).mean()),
        "avg_r": float(closed.get_column("r_multiple").mean()),
        "expectancy": float(net.mean()),
        "profit_factor": float(wins / losses) if losses > 0 else math.inf if wins > 0 else math.nan,
    }


def summarize(trades, fills, equity, legs, route, skips, capital, meta,
              symbols: pl.DataFrame, cv: np.ndarray) -> tuple[dict, list[str]]:
    closed = trades.filter(pl.col("is_open") == 0)
    notes: list[str] = []
    port = portfolio_sums(symbols)  # additive figures: the sum of the symbols, exactly
    m: dict[str, float] = {"events": meta.get("events", 0), "trades": port["trades"],
                           "entries": port["entries"],
                           "entries_unfilled": int(route["n_unfilled"].sum()),
                           "open_at_end": port["open_at_end"]}
    for code, name in enumerate(T.EXIT_REASON_TEXT):
        if code in (T.X_NONE, T.X_OPEN_AT_END, T.X_SCALE_OUT):
            continue
        m[f"exits_{name}"] = closed.filter(pl.col("exit_reason") == code).height
    m.update(trade_stats(closed))
    for name in ("net_pnl", "price_pnl", "slippage", "fees", "fx_pnl", "funding", "gross_pnl",
                 "legging_cost", "open_net_pnl_mid"):
        m[name] = port[name]
    m["final_equity"] = float(equity.get_column("equity")[-1]) if equity.height else capital
    dd, dd_pct = drawdown(equity)
    m["max_drawdown"], m["max_drawdown_pct"] = dd, dd_pct
    rets = daily_returns(equity, capital)
    m["days"] = int(rets.size)
    m["sharpe"], m["sortino"], note = ratios(rets)
    if note:
        notes.append(f"sharpe/sortino: {note}")
    total_ret = m["final_equity"] / capital - 1.0
    years = max(rets.size, 1) / 365.0
    m["calmar"] = (total_ret / years) / dd_pct if dd_pct > 0 and rets.size >= MIN_DAYS_FOR_RATIOS else math.nan
    fx = fills.get_column("fx").to_numpy() if fills.height else np.zeros(0)
    m["turnover"] = float((fill_notionals(fills, cv) * fx).sum()) / capital  # reference ccy
    m["fee_share"] = m["fees"] / m["price_pnl"] if m["price_pnl"] > 0 else math.nan
    span = meta.get("span_ns", 0)
    held = held_in_market(closed, meta.get("market_gaps", []))
    m["time_in_market"] = float(held) / span if span > 0 else 0.0
    m["opportunities_seen"] = int(skips.sum())
    m["opportunities_taken"] = int(skips[:, T.SK_TAKEN].sum())
    for code, name in enumerate(T.SKIP_TEXT):
        if code != T.SK_TAKEN:
            m[f"skipped_{name}"] = int(skips[:, code].sum())
    # one route: its threshold; several: the lowest (each route's is in res.routes)
    m["entry_threshold_bps"] = float(route["thr_entry_bps"].min())
    k = int(np.argmax(route["best_miss_bps"]))  # the route whose edge came nearest
    best = float(route["best_miss_bps"][k])
    m["best_clean_edge_bps"] = (best + float(route["thr_entry_bps"][k]) if math.isfinite(best)
                                else math.nan)
    m["nearest_miss_bps"] = max(0.0, -best) if math.isfinite(best) else math.nan
    m["routes"] = int(route.shape[0])
    m["guard_events"] = int(meta.get("guard_events", 0))
    incidents = legs.filter(pl.col("closes") == 0) if legs.height else legs
    m["legging_incidents"] = incidents.height
    m["naked_residual_qty"] = (float(incidents.get_column("residual_qty").sum())
                               if incidents.height else 0.0)
    notes += too_good_checks(closed, rets)
    return m, notes


def held_in_market(closed: pl.DataFrame, gaps: list[tuple[int, int]]) -> int:
    """Time the closed round trips were held while the market was quoting: their holding
    periods less the market-wide silences longer than run.max_gap_s (``gaps``: (start, end)),
    which the run's span leaves out too (a data-gap exit comes inside one)."""
    if closed.height == 0:
        return 0
    entry = closed.get_column("entry_ts").to_numpy()
    exit_ = closed.get_column("exit_ts").to_numpy()
    held = int((exit_ - entry).sum())
    for lo, hi in gaps:
        held -= int(np.clip(np.minimum(exit_, hi) - np.maximum(entry, lo), 0, None).sum())
    return held


def too_good_checks(closed: pl.DataFrame, rets: np.ndarray) -> list[str]:
    """Results that look too good (or too bad) to be true are flagged, never celebrated."""
    notes: list[str] = []
    n = closed.height
    if n >= 10:
        net = closed.get_column("net_pnl").to_numpy()
        if (net > 0).all():
            notes.append(f"CHECK: 100% win rate over {n} trades: treat as a bug until proven "
                         "otherwise (expected only for the synthetic always-win scenario)")
        if (net < 0).all():
            notes.append(f"CHECK: 0% win rate over {n} trades: costs may exceed the edge, or "
                         "the exit rules never let a winner close")
        if np.std(net) < 1e-9 * max(1.0, float(np.abs(net).mean())):
            notes.append(f"CHECK: constant PnL per trade ({net[0]:.6g}) over {n} trades")
    if rets.size >= 30 and (rets >= 0).all() and (rets > 0).any():
        notes.append(f"CHECK: no losing day in {rets.size} days")
    return notes


def build_result(runner: Any, meta: dict[str, Any]):
    from arbkit.engine.backtest import BacktestResult, state_frames
    from arbkit.engine.state import wallet_names

    st = runner.state
    meta = dict(meta)
    g = st.glob[0]
    # the market data's span, less its silent stretches (run.max_gap_s)
    meta["span_ns"] = (int(g["t_last"]) - int(g["t_first"]) - int(g["gaps_ns"])
                       if g["started"] == 1 else 0)
    meta["gaps_ns"] = int(g["gaps_ns"])
    meta["max_gap_s"] = runner.gap_s
    gl = st.guards[: int(g["n_guard"])]
    gl = gl[gl["code"] == T.G_MARKET_GAP]
    meta["market_gaps"] = [(int(r["ts"]), int(r["ts"]) + round(float(r["value"]) * 1e9))
                           for r in gl]
    meta["guard_events"] = int(st.glob[0]["n_guard"])
    frames = label_frames(state_frames(st), runner.arrays.inst_keys,
                          [r.label for r in runner.cfg.routes])
    routes = route_frame(runner.cfg, frames["trades"], st.route, st.skips)
    symbols = symbol_frame(routes)
    m, notes = summarize(frames["trades"], frames["fills"], frames["equity"], frames["legs"],
                         st.route, st.skips, runner.cfg.run.capital, meta, symbols,
                         st.inst["cv"])
    if len(runner.cfg.routes) > 1:  # a too-good route hides inside a mixed portfolio
        closed = frames["trades"].filter(pl.col("is_open") == 0)
        for r, rc in enumerate(runner.cfg.routes):
            notes += [f"route {rc.label}: {n}" for n in
                      too_good_checks(closed.filter(pl.col("route") == r), np.zeros(0))]
    notes = [n for n in meta.get("data_notes", [])
             if n.startswith(("bar mode", "no funding series"))] + notes
    if meta.get("dropped_rows"):
        notes.append(f"{meta['dropped_rows']} data rows belong to instruments not in the config "
                     "and were ignored")
    if runner.problems:
        notes += [f"INFEASIBLE (run anyway): {p}" for p in runner.problems]
    meta["notes"] = notes
    wallets = wallet_names(runner.cfg, runner.arrays.inst_keys)
    keys = runner.arrays.inst_keys
    tre, tre_per = treasury(runner.cfg, keys, st.inst, st.book_px)
    m["treasury_pnl"] = tre  # what holding balances did (docs/metrics.md)
    m.update(lines(st.inst, st.book_px))  # funding_other, transfer_pnl
    # rebalancing fees ([transfers]): in the equity, in no round trip
    m["transfer_cost"] = transfer_cost(st)
    m["transfers"] = int((frames["guards"]["code"] == T.G_TRANSFER).sum()) \
        if frames["guards"].height else 0
    m["account_pnl"] = account_change(runner.cfg, keys, st.inst, st.book_px)
    explained = (m["net_pnl"] + m["open_net_pnl_mid"] + tre + m["funding_other"]
                 + m["transfer_pnl"])
    m["identity_gap"] = m["account_pnl"] - explained
    scale = max(runner.cfg.run.capital, abs(m["account_pnl"]), abs(explained),
                m["turnover"] * runner.cfg.run.capital)
    m["identity_gap_rel"] = abs(m["identity_gap"]) / scale
    if m["identity_gap_rel"] > 1e-9:
        notes.append(f"CHECK: the account identity is off by {m['identity_gap']:.6g} "
                     f"({m['identity_gap_rel']:.2e} relative): account PnL "
                     f"{m['account_pnl']:.6g} vs trades + treasury + funding + transfers "
                     f"{explained:.6g}; this is a bug, please report it")
    k = int(np.argmax(st.route["best_miss_bps"]))
    rt = st.route[k]
    meta["nearest_miss"] = {"route": runner.cfg.routes[k].label,
                            "bps_below_threshold": float(-rt["best_miss_bps"]),
                            "ts_ns": int(rt["best_miss_ts"]), "dir": int(rt["best_miss_dir"])}
    summary = pl.DataFrame({"metric": list(m.keys()), "value": [float(v) for v in m.values()]})
    opp = pl.DataFrame({"reason": list(T.SKIP_TEXT), "count": st.skips.sum(axis=0).tolist()})
    return BacktestResult(
        trades=frames["trades"], fills=frames["fills"], orders=frames["orders"],
        equity=frames["equity"], legs=frames["legs"], opportunities=opp, summary=summary,
        config=runner.cfg, meta=meta, routes=routes, symbols=symbols,
        venues=venue_frame(runner.arrays.inst_keys, st.inst, st.book_px, frames["fills"])
        .with_columns(pl.Series("treasury_pnl", tre_per, pl.Float64)),
        guards=guard_frame(frames["guards"], runner.cfg, wallets),
        wallets=wallet_frame(wallets, st.wallet),
    )


def transfer_cost(st: Any) -> float:
    """Transfer fees in the reference currency, valued as the equity values them at the end:
    coins at the owner instrument's last mid and FX, cash at its last FX (what was paid is
    not held any more, so its value now is what the account lacks)."""
    total = 0.0
    for w in st.wallet[st.wallet["fees"] > 0.0]:
        i = int(w["owner"])
        rec = st.inst[i]
        if w["owner_base"] == 1:
            total += w["fees"] * 0.5 * (st.book_px[i, T.BID, 0] + st.book_px[i, T.ASK, 0]) \
                * rec["fx"]
        else:
            total += w["fees"] * rec["fx"]
    return float(total)


def wallet_frame(names: list[str], wallet: np.ndarray) -> pl.DataFrame:
    """Spot wallets at the end: start, now, in flight to it (core/wallet.py)."""
    return pl.DataFrame({
        "wallet": names, "start": wallet["bal0"].tolist(),
        "end": (wallet["bal0"] + wallet["bal"]).tolist(),
        "in_transit": wallet["incoming"].tolist(), "transfers_in": wallet["n_in"].tolist(),
        "fees_paid": wallet["fees"].tolist(), "shared": (wallet["shared"] == 1).tolist()},
        schema={"wallet": pl.String, "start": pl.Float64, "end": pl.Float64,
                "in_transit": pl.Float64, "transfers_in": pl.Int64, "fees_paid": pl.Float64,
                "shared": pl.Boolean})


def guard_frame(guards: pl.DataFrame, cfg: Any, wallets: list[str] | None = None) -> pl.DataFrame:
    """The guard log with the guard's and the route's names (a transfer row's ``route`` is the
    receiving wallet: named by the wallet)."""
    labels = [r.label for r in cfg.routes]
    wallets = wallets or []

    def name(row: dict) -> str:
        if row["code"] in (T.G_TRANSFER, T.G_TRANSFER_IN):
            return wallets[row["route"]]
        return labels[row["route"]] if row["route"] >= 0 else "portfolio"

    return guards.sort("ts", maintain_order=True).with_columns(
        pl.struct("code", "route").map_elements(name, return_dtype=pl.String)
        .alias("route_name"),
        pl.col("code").map_elements(T.guard_text, return_dtype=pl.String).alias("guard"),
    ) if guards.height else guards.with_columns(pl.lit(None, pl.String).alias("route_name"),
                                                pl.lit(None, pl.String).alias("guard"))
