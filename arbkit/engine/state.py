"""Build the kernel's state arrays from a Config, and grow output buffers on demand."""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction
from typing import NamedTuple

import numpy as np

from arbkit.config import OFF, Config, InstrumentConfig
from arbkit.core import types as T
from arbkit.errors import ConfigError

MS = 1_000_000
S = 1_000_000_000


class KernelState(NamedTuple):
    """Everything the numba loop reads and writes (numba takes a namedtuple of arrays)."""

    inst: np.ndarray
    fx: np.ndarray
    route: np.ndarray
    orders: np.ndarray
    glob: np.ndarray
    book_px: np.ndarray
    book_qty: np.ndarray
    book_taken: np.ndarray
    book_n: np.ndarray
    inst_route_ptr: np.ndarray
    inst_route_idx: np.ndarray
    skips: np.ndarray
    risk: np.ndarray
    venues: np.ndarray
    fills: np.ndarray
    olog: np.ndarray
    trades: np.ndarray
    equity: np.ndarray
    legs: np.ndarray
    guards: np.ndarray
    wallet: np.ndarray
    dirty: np.ndarray  # instruments updated at the pending timestamp (loop.decide_group)


BUFFERS = ("fills", "olog", "trades", "equity", "legs", "guards")


def entry_threshold_bps(cfg: Config, r: int = 0) -> float:
    """entry_bps - exit_bps + fees of four fills + latency allowance (BRIEF §5), route ``r``.

    With converge disabled the trade is assumed to close at a closing edge of 0 bps.
    """
    s = cfg.route_strategy(r)
    exit_bps = 0.0 if s.exit_bps == OFF else float(s.exit_bps)
    return s.entry_bps - exit_bps + fees4_bps(cfg, r) + s.latency_allowance_bps


def fees4_bps(cfg: Config, r: int = 0) -> float:
    a, b = cfg.instrument(cfg.routes[r].a), cfg.instrument(cfg.routes[r].b)
    return 2.0 * (a.taker_fee_bps + b.taker_fee_bps)


def feasibility(cfg: Config) -> list[str]:
    """Reasons a route can never trade profitably by construction (empty = all feasible)."""
    return [p for _, p in route_problems(cfg)]


def route_problems(cfg: Config) -> list[tuple[int, str]]:
    """``feasibility`` with the route of each problem (its ``allow_infeasible`` decides)."""
    problems: list[tuple[int, str]] = []
    for r, route in enumerate(cfg.routes):
        where = f"route {route.label}: " if len(cfg.routes) > 1 else ""
        problems += [(r, where + p) for p in _route_feasibility(cfg, r)]
    return problems


def _route_feasibility(cfg: Config, r: int) -> list[str]:
    s = cfg.route_strategy(r)
    problems: list[str] = []
    thr = entry_threshold_bps(cfg, r)
    if thr >= s.sanity_max_edge_bps:
        problems.append(
            f"entry threshold {thr:.2f} bps (entry_bps - exit_bps + fees of 4 fills "
            f"{fees4_bps(cfg, r):.2f} + latency allowance) is at or above sanity_max_edge_bps "
            f"{s.sanity_max_edge_bps}: every qualifying edge would be rejected as a data fault"
        )
    if s.entry_bps < 0:
        problems.append(
            f"entry_bps {s.entry_bps} is negative: the target capture of a round trip is a "
            "loss, so every trade is meant to lose")
    elif thr < fees4_bps(cfg, r):
        problems.append(
            f"entry threshold {thr:.2f} bps (entry_bps {s.entry_bps} - exit_bps "
            f"{s.exit_bps} + fees of 4 fills {fees4_bps(cfg, r):.2f} + latency allowance) is "
            f"below the fees of the round trip ({fees4_bps(cfg, r):.2f} bps): entries on edges "
            "that do not pay their own fees, betting on the spread crossing to exit_bps; lower "
            "exit_bps or raise entry_bps")
    if s.stop_loss_bps != OFF and float(s.stop_loss_bps) <= fees4_bps(cfg, r):
        problems.append(
            f"stop_loss_bps {s.stop_loss_bps} sits inside the round-trip cost "
            f"{fees4_bps(cfg, r):.2f} bps: the stop fires on moves smaller than the fees"
        )
    a, b = cfg.instrument(cfg.routes[r].a), cfg.instrument(cfg.routes[r].b)
    can_ab = b.shortable or _holds_base(cfg, b)  # direction +1 sells b
    can_ba = a.shortable or _holds_base(cfg, a)
    if not (can_ab or can_ba):
        problems.append(
            f"both legs are spot with no inventory ({a.key}, {b.key}): neither direction can "
            "sell; set initial_base on a venue or use a perpetual leg"
        )
    return problems


def _holds_base(cfg: Config, ic: InstrumentConfig) -> bool:
    w = cfg.wallet(ic.venue)
    return (w.balances.get(ic.base, 0.0) if w else ic.initial_base) > 0


def _inst_record(rec: np.void, ic: InstrumentConfig, use_exch: bool, bar: bool) -> None:
    rec["kind"] = {"spot": T.KIND_SPOT, "linear_perp": T.KIND_LINEAR_PERP,
                   "inverse_perp": T.KIND_INVERSE_PERP}[ic.kind]
    rec["cv"] = ic.contract_value
    rec["use_exch"] = 1 if use_exch else 0
    rec["fee_rate"] = ic.taker_fee_bps * 1e-4
    rec["lot"] = ic.lot
    rec["tick"] = ic.tick
    rec["min_notional"] = ic.min_notional
    rec["lat_ns"] = round(ic.order_latency_ms * MS)
    rec["jitter_ns"] = round(ic.order_latency_jitter_ms * MS)
    rec["ack_ns"] = round(ic.ack_latency_ms * MS)
    rec["match_timeout_ns"] = round(ic.exch_match_timeout_ms * MS)
    rec["bar"] = 1 if bar else 0
    rec["mid0"] = np.nan
    rec["fx0"] = 1.0  # (NaN until the first rate for a leg quoted in another currency)
    rec["cash0"], rec["cash"] = ic.initial_quote, 0.0
    rec["pos0"], rec["pos"] = ic.initial_base, 0.0
    rec["fx"], rec["fx_id"], rec["fx_inv"] = 1.0, -1, 0
    rec["fee_in_base"] = 1 if ic.fee_ccy == "received" and ic.kind == "spot" else 0


def common_lot(lot_a: float, lot_b: float) -> float:
    """The smallest quantity that is a whole number of lots on both venues (BRIEF §4: both legs
    are rounded to a common lot): the least common multiple of the two decimal lot sizes, e.g.
    0.002 and 0.005 -> 0.01 (``max`` would give 0.005, not a whole number of 0.002 lots)."""
    fa, fb = Fraction(Decimal(repr(lot_a))), Fraction(Decimal(repr(lot_b)))
    num = math.lcm(fa.numerator * fb.denominator, fb.numerator * fa.denominator)
    return float(Fraction(num, fa.denominator * fb.denominator))


def _flag(value: float | str) -> tuple[int, float]:
    return (0, 0.0) if value == OFF else (1, float(value))


def _route_record(rec: np.void, cfg: Config, r: int, ia: int, ib: int) -> None:
    s = cfg.route_strategy(r)
    a, b = cfg.instrument(cfg.routes[r].a), cfg.instrument(cfg.routes[r].b)
    rec["inst_a"], rec["inst_b"] = ia, ib
    rec["thr_entry_bps"] = entry_threshold_bps(cfg, r)
    rec["conv_on"], rec["exit_bps"] = _flag(s.exit_bps)
    rec["tp_on"], rec["tp_bps"] = _flag(s.take_profit_bps)
    rec["sl_on"], rec["sl_bps"] = _flag(s.stop_loss_bps)
    hold_on, hold_s = _flag(s.max_hold_s)
    rec["hold_on"], rec["hold_ns"] = hold_on, round(hold_s * S)
    rec["rev_on"] = 1 if s.reversal else 0
    stale_on, stale_ms = _flag(s.max_quote_age_ms)
    rec["stale_on"], rec["stale_ns"] = stale_on, round(stale_ms * MS)
    rec["sanity_bps"] = s.sanity_max_edge_bps
    rec["notional"] = s.notional
    rec["slip"] = s.max_slippage_bps * 1e-4
    rec["force_slip"] = max(s.unwind_max_slippage_bps, s.max_slippage_bps) * 1e-4
    rec["cooldown_ns"] = round(s.cooldown_after_stop_s * S)
    # an inverse leg's lot is in contracts: the route's lot (base units) is the other leg's
    rec["lot"] = (b.lot if a.kind == "inverse_perp" else a.lot if b.kind == "inverse_perp"
                  else common_lot(a.lot, b.lot))
    rec["fees4_bps"] = fees4_bps(cfg, r)
    rec["r_unit_bps"] = float(s.stop_loss_bps) if s.stop_loss_bps != OFF else max(fees4_bps(cfg, r), 1.0)
    rec["unwind_retries"] = s.unwind_retries
    rec["best_miss_bps"] = -np.inf
    rec["best_miss_dir"] = 0
    ref = cfg.run.reference_ccy
    rec["fx_route"] = int(a.quote != ref or b.quote != ref)
    rec["legging"] = {"unwind": T.LEG_UNWIND, "chase": T.LEG_CHASE, "hold": T.LEG_HOLD}[s.legging]
    rec["chase_retries"] = s.chase_retries
    rec["chase_slip"] = s.chase_max_slippage_bps * 1e-4
    rec["scale_on"], rec["scale_bps"] = _flag(s.scale_out_bps)
    rec["scale_frac"] = s.scale_out_fraction
    rec["anchor_on"] = 1 if s.anchor == "ewma" else 0
    rec["anchor_tau_ns"] = s.anchor_halflife_s * S / math.log(2.0)
    rec["anchor_warm_ns"] = round(s.anchor_warmup_s * S)
    rec["fixed_qty"] = 0.0 if s.qty == OFF else float(s.qty)
    rec["naked_leg"] = -1


def build_state(cfg: Config, inst_keys: list[str], depth: int, use_exch: dict[str, bool],
                capacity: int = 4096, bars: dict[str, bool] | None = None,
                gap_s: float | None = None) -> KernelState:
    """Allocate and initialise kernel state for ``cfg`` over instruments ``inst_keys``.

    ``bars`` names the instruments whose data are bars (bar mode: orders fill at the next
    bar); ``gap_s`` is the data-gap limit in force (``run.max_gap_s`` resolved against the
    data: ``engine.backtest.gap_limit_s``)."""
    n_inst = len(inst_keys)
    inst = np.zeros(n_inst, T.INST_DTYPE)
    bars = bars or {}
    for i, key in enumerate(inst_keys):
        _inst_record(inst[i], cfg.instrument(key), use_exch.get(key, False),
                     bars.get(key, False))
    route = np.zeros(len(cfg.routes), T.ROUTE_DTYPE)
    legs: list[tuple[int, int]] = []
    for r, rc in enumerate(cfg.routes):
        try:
            ia, ib = inst_keys.index(rc.a), inst_keys.index(rc.b)
        except ValueError as exc:
            raise ConfigError(f"route {rc.label}: leg not among loaded instruments {inst_keys}: "
                              f"{exc}") from None
        _route_record(route[r], cfg, r, ia, ib)
        legs += [(r, ia), (r, ib)]
    ptr = np.zeros(n_inst + 1, np.int64)
    # routes of each instrument, in route order (the order they are evaluated on its updates)
    idx_lists = [[r for r, leg in legs if leg == i] for i in range(n_inst)]
    ptr[1:] = np.cumsum([len(x) for x in idx_lists])
    # unsigned route indices: no negative-index wrap-around on the per-event path (types.py)
    idx = np.array([r for x in idx_lists for r in x], np.uint32)
    venue_names = sorted({k.split(":", 1)[0] for k in inst_keys})
    for i, key in enumerate(inst_keys):
        inst[i]["venue_id"] = venue_names.index(key.split(":", 1)[0])
    bases = sorted({cfg.instrument(rc.a).base for rc in cfg.routes})
    for r, rc in enumerate(cfg.routes):
        route[r]["base_id"] = bases.index(cfg.instrument(rc.a).base)
        route[r]["last_block"] = -1
        route[r]["signal_ts"] = np.iinfo(np.int64).min // 2
        route[r]["sig_first"] = np.iinfo(np.int64).min // 2
    glob = np.zeros(1, T.GLOB_DTYPE)
    glob[0]["seed"] = np.uint64(cfg.run.seed)
    glob[0]["capital"] = cfg.run.capital
    glob[0]["day"] = -1
    glob[0]["day_start_eq"] = glob[0]["peak_eq"] = cfg.run.capital
    glob[0]["running_guards"] = int(cfg.risk.daily_loss_limit != OFF
                                    or cfg.risk.max_drawdown != OFF)
    glob[0]["sample_ns"] = max(1, round(cfg.run.equity_interval_s * S))
    glob[0]["next_wakeup"] = np.iinfo(np.int64).max
    glob[0]["next_sample"] = np.iinfo(np.int64).max
    glob[0]["pend_t"] = -1
    if gap_s is None:  # without the data at hand, "auto" is its quotes value (300 s)
        g = cfg.run.max_gap_s
        gap_s = 0.0 if g == OFF else 300.0 if g == "auto" else float(g)
    glob[0]["gap_ns"] = round(gap_s * S)
    d = max(1, depth)
    book_px = np.full((n_inst, 2, d), np.nan)
    fx = np.zeros(len(cfg.fx), T.FX_DTYPE)
    for k, fc in enumerate(cfg.fx):
        fx[k]["max_age_ns"] = 0 if fc.max_age_s == OFF else round(float(fc.max_age_s) * S)
        fx[k]["rate"] = np.nan
    for i, key in enumerate(inst_keys):
        conv = cfg.fx_for(cfg.instrument(key).quote)
        if conv is not None:  # NaN until the series' first rate: nothing trades before it
            inst[i]["fx_id"], inst[i]["fx_inv"], inst[i]["fx"] = conv[0], int(conv[1]), np.nan
            inst[i]["fx0"] = np.nan
    return KernelState(
        inst=inst, fx=fx, route=route, orders=np.zeros(4 * len(route), T.ORDER_DTYPE), glob=glob,
        book_px=book_px, book_qty=np.zeros((n_inst, 2, d)),
        book_taken=np.zeros((n_inst, 2, d)), book_n=np.zeros((n_inst, 2), np.int64),
        inst_route_ptr=ptr, inst_route_idx=idx, skips=np.zeros((len(route), T.N_SKIP), np.int64),
        risk=_risk(cfg), venues=np.zeros(len(venue_names), T.VENUE_DTYPE),
        fills=np.zeros(capacity, T.FILL_DTYPE), olog=np.zeros(capacity, T.ORDER_LOG_DTYPE),
        trades=np.zeros(capacity, T.TRADE_DTYPE), equity=np.zeros(capacity, T.EQUITY_DTYPE),
        legs=np.zeros(capacity, T.LEG_DTYPE), guards=np.zeros(capacity, T.GUARD_DTYPE),
        wallet=_wallets(cfg, inst_keys, inst, glob), dirty=np.zeros(max(1, n_inst), np.int64),
    )


def _wallet_name(cfg: Config, key: str, ccy: str) -> str:
    """``venue:CCY`` for a ``[[wallets]]`` venue's shared wallet, else ``venue:symbol:CCY``."""
    venue = cfg.instrument(key).venue
    return f"{venue}:{ccy}" if cfg.wallet(venue) else f"{key}:{ccy}"


def wallet_names(cfg: Config, inst_keys: list[str]) -> list[str]:
    """Label of each kernel wallet, in the kernel's order (spot instruments' quote, then base)."""
    names: list[str] = []
    for key in inst_keys:
        ic = cfg.instrument(key)
        if ic.kind == "spot":
            names += [n for n in (_wallet_name(cfg, key, ic.quote), _wallet_name(cfg, key, ic.base))
                      if n not in names]
    return names


def _wallets(cfg: Config, inst_keys: list[str], inst: np.ndarray, glob: np.ndarray) -> np.ndarray:
    """Spot wallets (core/wallet.py): one per venue and currency for ``[[wallets]]`` venues,
    else a pair per instrument. The first instrument using a shared wallet owns it: its
    ``cash0`` / ``pos0`` carry the starting balance (once, for the treasury line), the other
    users' are 0."""
    names = wallet_names(cfg, inst_keys)
    ccys = sorted({c for i in cfg.instruments for c in (i.base, i.quote)})
    out = np.zeros(len(names), T.WALLET_DTYPE)
    out["owner"] = -1
    t = cfg.transfers
    below = 0.0 if t.rebalance_below == OFF else float(t.rebalance_below)
    glob[0]["xfer_on"] = int(below > 0.0)
    glob[0]["xfer_fee_bps"] = t.fee_bps
    glob[0]["xfer_delay_ns"] = round(t.delay_s * S)
    for i, key in enumerate(inst_keys):
        ic = cfg.instrument(key)
        inst[i]["w_quote"] = inst[i]["w_base"] = -1
        if ic.kind != "spot":
            continue
        shared = cfg.wallet(ic.venue)
        for ccy, field, start0 in (("quote", "cash0", ic.initial_quote),
                                   ("base", "pos0", ic.initial_base)):
            ccy = getattr(ic, ccy)
            w = names.index(_wallet_name(cfg, key, ccy))
            inst[i]["w_" + ("quote" if field == "cash0" else "base")] = w
            rec = out[w]
            owner = rec["owner"] < 0
            start = shared.balances.get(ccy, 0.0) if shared else start0
            if owner:
                rec["owner"] = i
                rec["owner_base"] = int(field == "pos0")
                rec["bal0"] = start
                rec["ccy"] = ccys.index(ccy)
                rec["shared"] = int(shared is not None)
                rec["floor"] = below * start if shared is not None else 0.0
                rec["fee_fixed"] = t.fee_fixed.get(ccy, 0.0)
            if shared is not None:  # (an instrument's own wallet keeps its initial balances)
                inst[i][field] = start if owner else 0.0
    return out


def _risk(cfg: Config) -> np.ndarray:
    """The [risk] limits as the kernel reads them: +inf / 0 where a guard is off."""
    rk = np.zeros(1, T.RISK_DTYPE)
    r = cfg.risk

    def cap(v: float | str) -> float:
        return np.inf if v == OFF else float(v)

    rk[0]["symbol_cap"] = cap(r.max_symbol_notional)
    rk[0]["gross_cap"] = cap(r.max_gross_exposure)
    rk[0]["imbalance_cap"] = cap(r.max_venue_imbalance)
    rk[0]["daily_loss"] = cap(r.daily_loss_limit)
    rk[0]["max_dd"] = cap(r.max_drawdown)
    rk[0]["slip_bps"] = cap(r.max_entry_slippage_bps)
    rk[0]["jump_routes"] = r.same_jump_routes
    rk[0]["jump_ns"] = round(r.same_jump_window_ms * MS)
    rk[0]["streak"] = r.loss_streak
    rk[0]["streak_ns"] = round(r.loss_streak_cooldown_s * S)
    rk[0]["rate"] = cap(r.max_orders_per_s)
    return rk


def grow(state: KernelState, extra: int = 0) -> KernelState:
    """Double every output buffer that is more than half full (or has < ``extra`` room)."""
    g = state.glob[0]
    counts = {"fills": g["n_fills"], "olog": g["n_orders"], "trades": g["n_trades"],
              "equity": g["n_equity"], "legs": g["n_legs"], "guards": g["n_guard"]}
    changes = {}
    for name in BUFFERS:
        buf = getattr(state, name)
        n = int(counts[name])
        if n * 2 >= buf.shape[0] or buf.shape[0] - n < extra:
            new = np.zeros(max(buf.shape[0] * 2, n + extra + 16), buf.dtype)
            new[:n] = buf[:n]
            changes[name] = new
    return state._replace(**changes) if changes else state
