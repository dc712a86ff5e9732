"""Value checks of a loaded configuration: each problem is one ``ConfigError`` line."""

from __future__ import annotations

from dataclasses import fields

from arbkit.config.model import (
    CURRENCIES,
    FEE_CCYS,
    INSTRUMENT_KINDS,
    LEGGING_POLICIES,
    OFF,
    Config,
    RiskConfig,
    RouteConfig,
    StrategyConfig,
)
from arbkit.errors import ConfigError


def _check(cfg: Config, source: str) -> None:
    _check_reference(cfg, source)
    seen: set[str] = set()
    for i, inst in enumerate(cfg.instruments):
        w = f"{source}: instruments[{i}] ({inst.key})"
        if inst.key in seen:
            raise ConfigError(f"{w}: duplicate instrument; each venue:symbol appears once")
        seen.add(inst.key)
        if inst.kind not in INSTRUMENT_KINDS:
            raise ConfigError(f"{w}: kind = {inst.kind!r}; use one of {INSTRUMENT_KINDS}")
        if inst.fee_ccy not in FEE_CCYS:
            raise ConfigError(f"{w}: fee_ccy = {inst.fee_ccy!r}; use 'quote' or 'received' (a "
                              "spot buy pays its fee in the asset received, as on Binance)")
        if inst.fee_ccy == "received" and inst.kind != "spot":
            raise ConfigError(f"{w}: fee_ccy = 'received' is for spot instruments; a "
                              f"{inst.kind} pays fees in its settlement currency")
        if ":" in inst.venue:
            raise ConfigError(f"{w}: venue = {inst.venue!r}: ':' separates the venue from the "
                              "symbol in instrument keys (venue:symbol), so a venue name cannot "
                              f"hold one; rename it, e.g. {inst.venue.replace(':', '_')!r}, in "
                              "the config and the data alike")
        for name, why in (("taker_fee_bps", "fees are costs: a rebate is not modelled for "
                           "taker orders"),
                          ("order_latency_ms", "a delay in milliseconds; 0 = none"),
                          ("order_latency_jitter_ms", "a delay in milliseconds; 0 = none"),
                          ("ack_latency_ms", "a delay in milliseconds; 0 = none"),
                          ("exch_match_timeout_ms", "a delay in milliseconds"),
                          ("min_notional", "the venue's smallest order value; 0 = none"),
                          ("initial_base", "a starting balance; short positions are a "
                           "perpetual's, not a negative balance"),
                          ("initial_quote", "a starting balance")):
            v = getattr(inst, name)
            if not v >= 0:
                raise ConfigError(f"{w}: {name} = {v}; must be >= 0 ({why})")
        for name in ("tick", "lot"):
            if getattr(inst, name) <= 0:
                raise ConfigError(f"{w}: {name} = {getattr(inst, name)}; must be > 0")
        if inst.kind == "inverse_perp" and not inst.contract_value > 0:
            raise ConfigError(
                f"{w}: kind = 'inverse_perp' needs contract_value > 0 (quote currency per "
                f"contract, e.g. contract_value = 100 for BTCUSD_PERP); got "
                f"{'none' if inst.contract_value == 0 else inst.contract_value}")
        if inst.kind != "inverse_perp" and inst.contract_value != 0:
            raise ConfigError(f"{w}: contract_value = {inst.contract_value} is only for kind = "
                              f"'inverse_perp' (this one is {inst.kind!r}); remove it")
        if inst.kind == "inverse_perp" and (inst.lot < 1 or not float(inst.lot).is_integer()):
            raise ConfigError(f"{w}: lot = {inst.lot}; an inverse_perp's lot is a whole number "
                              "of contracts (set lot = 1, or the venue's contract step)")
        if inst.quote not in CURRENCIES:
            hint = (f"currency codes are upper case: quote = {inst.quote.upper()!r}"
                    if inst.quote.upper() in CURRENCIES else f"use one of {CURRENCIES}")
            raise ConfigError(f"{w}: quote = {inst.quote!r}; {hint}")
    labels: set[str] = set()
    for r, route in enumerate(cfg.routes):
        _check_route(cfg, r, route, source)
        if route.label in labels:
            raise ConfigError(f"{source}: routes[{r}] {route.label!r} appears twice; give each "
                              "route its own legs or name")
        labels.add(route.label)
        _check_strategy(cfg.route_strategy(r), f"{source}: routes[{r}] ({route.label})"
                        if route.strategy else source)
    _check_run(cfg, source)
    _check_wallets(cfg, source)


def _check_wallets(cfg: Config, source: str) -> None:
    venues = {i.venue for i in cfg.instruments}
    seen: set[str] = set()
    for k, w in enumerate(cfg.wallets):
        where = f"{source}: wallets[{k}] ({w.venue})"
        if w.venue not in venues:
            raise ConfigError(f"{where}: no instrument trades on venue {w.venue!r}; known "
                              f"venues: {', '.join(sorted(venues))}")
        if w.venue in seen:
            raise ConfigError(f"{where}: a second wallet for the venue; give one per venue")
        seen.add(w.venue)
        held = {c for i in cfg.instruments if i.venue == w.venue and i.kind == "spot"
                for c in (i.base, i.quote)}
        if not held:
            raise ConfigError(f"{where}: venue {w.venue!r} has no spot instrument; wallets hold "
                              "spot balances (perpetual margin is not modelled): remove it")
        for ccy, amount in w.balances.items():
            if ccy not in held:
                raise ConfigError(f"{where}: balances.{ccy}: no spot instrument on {w.venue} "
                                  f"trades {ccy}; its spot currencies are "
                                  f"{', '.join(sorted(held)) or 'none'}")
            if amount < 0:
                raise ConfigError(f"{where}: balances.{ccy} = {amount}; must be >= 0")
        for inst in cfg.instruments:
            if inst.venue == w.venue and inst.kind == "spot" and (
                    inst.initial_base != 0.0 or inst.initial_quote != 1e12):
                raise ConfigError(f"{where}: {inst.key} sets initial_base/initial_quote but its "
                                  "venue has a wallet; put its balances in wallets.balances")
    t = cfg.transfers
    if t.rebalance_below != OFF:
        if not 0.0 < float(t.rebalance_below) < 1.0:
            raise ConfigError(f"{source}: transfers.rebalance_below = {t.rebalance_below}; use "
                              "a fraction of the starting balance in (0, 1), e.g. 0.25")
        if len(cfg.wallets) < 2:
            raise ConfigError(f"{source}: [transfers] needs [[wallets]] on at least two venues "
                              "to move balances between")
    for name, v in [("delay_s", t.delay_s), ("fee_bps", t.fee_bps)] + [
            (f"fee_fixed.{c}", x) for c, x in t.fee_fixed.items()]:
        if v < 0:
            raise ConfigError(f"{source}: transfers.{name} = {v}; must be >= 0")
    known = {c for i in cfg.instruments for c in (i.base, i.quote)}
    for ccy in t.fee_fixed:
        if ccy not in known:
            raise ConfigError(f"{source}: transfers.fee_fixed.{ccy}: no instrument trades "
                              f"{ccy}; known currencies: {', '.join(sorted(known))}")


def _check_route(cfg: Config, r: int, route: RouteConfig, source: str) -> None:
    w = f"{source}: routes[{r}]"
    a, b = cfg.instrument(route.a), cfg.instrument(route.b)
    if a.key == b.key:
        raise ConfigError(f"{w}: a and b are both {a.key!r}; pick two markets")
    if a.base != b.base:
        raise ConfigError(f"{w}: legs trade {a.base} and {b.base}; use the same base")
    if a.kind == "inverse_perp" and b.kind == "inverse_perp":
        raise ConfigError(f"{w}: both legs are inverse_perp ({a.key}, {b.key}); a route takes "
                          "at most one inverse leg (pair it with a spot or linear leg)")
    for leg in (a, b):
        try:
            cfg.fx_for(leg.quote)
        except ConfigError as exc:
            raise ConfigError(f"{w}: {leg.key} is quoted in {leg.quote}: {exc}") from None
    unknown = sorted(set(route.strategy) - {f.name for f in fields(StrategyConfig)})
    if unknown:
        raise ConfigError(f"{w}: unknown key routes.strategy.{unknown[0]}; allowed keys are "
                          "those of [strategy]")


def _check_strategy(s: StrategyConfig, source: str) -> None:
    for name in ("notional", "max_slippage_bps", "unwind_max_slippage_bps"):
        if getattr(s, name) <= 0:
            raise ConfigError(f"{source}: strategy.{name} = {getattr(s, name)}; must be > 0")
    for name in ("latency_allowance_bps", "cooldown_after_stop_s", "sanity_max_edge_bps"):
        if getattr(s, name) < 0:
            raise ConfigError(f"{source}: strategy.{name} = {getattr(s, name)}; must be >= 0")
    for name in ("take_profit_bps", "stop_loss_bps", "max_hold_s", "max_quote_age_ms"):
        v = getattr(s, name)
        if v != OFF and v <= 0:
            raise ConfigError(f'{source}: strategy.{name} = {v}; must be > 0, or "off" to disable')
    if s.legging not in LEGGING_POLICIES:
        raise ConfigError(f"{source}: strategy.legging = {s.legging!r}; use one of "
                          f"{', '.join(LEGGING_POLICIES)}")
    if s.chase_retries < 1 or s.chase_max_slippage_bps <= 0:
        raise ConfigError(f"{source}: strategy.chase_retries >= 1 and chase_max_slippage_bps > 0 "
                          "needed")
    if not 0 < s.scale_out_fraction < 1:
        raise ConfigError(f"{source}: strategy.scale_out_fraction = {s.scale_out_fraction}; "
                          "must be in (0, 1) (the rest closes by the other rules)")
    if s.scale_out_bps != OFF and s.exit_bps != OFF and s.scale_out_bps >= s.exit_bps:
        raise ConfigError(f"{source}: strategy.scale_out_bps = {s.scale_out_bps} must be below "
                          f"exit_bps = {s.exit_bps}: the partial exit comes before convergence")
    if s.qty != OFF and s.qty <= 0:
        raise ConfigError(f'{source}: strategy.qty = {s.qty}; must be > 0 (base units per '
                          'entry, e.g. 0.01 BTC), or "off" to size by notional')
    if s.unwind_retries < 1:
        raise ConfigError(f"{source}: strategy.unwind_retries = {s.unwind_retries}; must be >= 1")
    if s.anchor not in ("none", "ewma"):
        raise ConfigError(f"{source}: strategy.anchor = {s.anchor!r}; use 'none' (edges against "
                          "0) or 'ewma' (against an EWMA of the premium)")
    if s.anchor_halflife_s <= 0 or s.anchor_warmup_s < 0:
        raise ConfigError(f"{source}: strategy.anchor_halflife_s must be > 0 and "
                          "anchor_warmup_s >= 0")


def _check_fx(cfg: Config, source: str) -> None:
    for k, fx in enumerate(cfg.fx):
        base, quote = fx.pair
        if not base or not quote or base == quote:
            raise ConfigError(f"{source}: fx[{k}].symbol = {fx.symbol!r}; write BASE/QUOTE, e.g. "
                              "USDT/KRW (KRW per one USDT)")
        if cfg.run.reference_ccy not in (base, quote):
            raise ConfigError(f"{source}: fx[{k}] {fx.symbol} does not involve reference_ccy "
                              f"{cfg.run.reference_ccy}; only direct conversions are used")
        if fx.max_age_s != OFF and fx.max_age_s <= 0:
            raise ConfigError(f'{source}: fx[{k}].max_age_s = {fx.max_age_s}; must be > 0 or '
                              '"off"')


def _check_risk(r: RiskConfig, source: str) -> None:
    for name in ("max_symbol_notional", "max_gross_exposure", "max_venue_imbalance",
                 "daily_loss_limit", "max_drawdown", "max_entry_slippage_bps",
                 "max_orders_per_s"):
        v = getattr(r, name)
        if v != OFF and v <= 0:
            raise ConfigError(f'{source}: risk.{name} = {v}; must be > 0, or "off" (a loss '
                              "limit is a positive amount)")
    if r.same_jump_routes == 1 or r.same_jump_routes < 0:
        raise ConfigError(f"{source}: risk.same_jump_routes = {r.same_jump_routes}; 0 (off) "
                          "or at least 2 routes")
    if r.loss_streak < 0 or r.same_jump_window_ms <= 0 or r.loss_streak_cooldown_s <= 0:
        raise ConfigError(f"{source}: risk.loss_streak >= 0 (0 = off), same_jump_window_ms "
                          "> 0 and loss_streak_cooldown_s > 0 needed")


def _check_reference(cfg: Config, source: str) -> None:
    ref = cfg.run.reference_ccy
    if ref not in CURRENCIES:
        hint = (f"currency codes are upper case: reference_ccy = {ref.upper()!r}"
                if ref.upper() in CURRENCIES else f"use one of {CURRENCIES}")
        raise ConfigError(f"{source}: run.reference_ccy = {ref!r}; {hint}")


def _check_run(cfg: Config, source: str) -> None:
    _check_fx(cfg, source)
    _check_risk(cfg.risk, source)
    if cfg.run.timeline not in ("recv", "exch"):
        raise ConfigError(f"{source}: run.timeline = {cfg.run.timeline!r}; use 'recv' or 'exch'")
    if cfg.run.capital <= 0 or cfg.run.equity_interval_s <= 0:
        raise ConfigError(f"{source}: run.capital and run.equity_interval_s must be > 0")
    g = cfg.run.max_gap_s
    if isinstance(g, float) and g <= 0:
        raise ConfigError(f'{source}: run.max_gap_s = {g}; must be > 0 seconds, "auto" (300 s, '
                          'or 3 bar intervals for bar data) or "off"')
    b = cfg.bars
    for name in ("half_spread_bps", "quote_size"):
        v = getattr(b, name)
        if v != OFF and v <= 0:
            raise ConfigError(f'{source}: bars.{name} = {v}; must be > 0, or "off"')
    if not 0 < b.participation <= 1:
        raise ConfigError(f"{source}: bars.participation = {b.participation}; must be in (0, 1]")
