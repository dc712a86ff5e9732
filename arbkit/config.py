"""Run configuration: frozen dataclasses loaded from TOML, unknown keys rejected.

A disabled rule is written explicitly as the string ``"off"`` (never a 0 that silently means
off); inside the kernel it becomes a flag plus a value. Units are in the key names
(``_bps``, ``_ms``, ``_s``).

Example
-------
>>> cfg = load_config_text('''
... [[instruments]]
... venue = "A"
... symbol = "BTC-USDT"
... quote = "USDT"
... taker_fee_bps = 1.0
... [[instruments]]
... venue = "B"
... symbol = "BTC-USDT"
... quote = "USDT"
... taker_fee_bps = 1.0
... [route]
... a = "A:BTC-USDT"
... b = "B:BTC-USDT"
... [strategy]
... entry_bps = 2.0
... exit_bps = 0.0
... ''')
>>> cfg.strategy.entry_bps
2.0
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from arbkit.errors import ConfigError

OFF = "off"
INSTRUMENT_KINDS = ("spot", "linear_perp")
FEE_CCYS = ("quote", "received")
LEGGING_POLICIES = ("unwind",)
CURRENCIES = ("USD", "USDT", "USDC", "BUSD", "KRW", "EUR", "BTC", "ETH")


@dataclass(frozen=True, kw_only=True)
class InstrumentConfig:
    """One tradable market: (venue, symbol) with its costs and limits."""

    venue: str
    symbol: str
    base: str = "BTC"
    quote: str = "USDT"
    kind: str = "spot"
    taker_fee_bps: float = 0.0
    fee_ccy: str = "quote"
    tick: float = 0.01
    lot: float = 1e-5
    min_notional: float = 0.0
    order_latency_ms: float = 0.0
    order_latency_jitter_ms: float = 0.0
    ack_latency_ms: float = 0.0
    exch_match_timeout_ms: float = 200.0
    initial_base: float = 0.0
    initial_quote: float = 1e12

    @property
    def key(self) -> str:
        return f"{self.venue}:{self.symbol}"

    @property
    def shortable(self) -> bool:
        return self.kind != "spot"


@dataclass(frozen=True, kw_only=True)
class RouteConfig:
    """Two instruments on the same base asset. Direction +1 buys ``a`` and sells ``b``.

    ``strategy`` holds this route's overrides of ``[strategy]`` (``[routes.strategy]`` under
    its ``[[routes]]`` entry); ``name`` labels it in results (default ``a~b``).
    """

    a: str
    b: str
    name: str = ""
    strategy: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.name or f"{self.a}~{self.b}"


@dataclass(frozen=True, kw_only=True)
class StrategyConfig:
    """Spread-convergence strategy (BRIEF §5). Thresholds in bps of the reference mid."""

    entry_bps: float
    exit_bps: float | str = 0.0
    take_profit_bps: float | str = OFF
    stop_loss_bps: float | str = OFF
    max_hold_s: float | str = OFF
    reversal: bool = True
    notional: float = 10_000.0
    max_slippage_bps: float = 5.0
    latency_allowance_bps: float = 0.0
    cooldown_after_stop_s: float = 0.0
    max_quote_age_ms: float | str = OFF
    unwind_max_slippage_bps: float = 50.0
    sanity_max_edge_bps: float = 500.0
    legging: str = "unwind"
    unwind_retries: int = 3
    allow_infeasible: bool = False


@dataclass(frozen=True, kw_only=True)
class RunConfig:
    """Run-wide settings."""

    seed: int = 0
    capital: float = 100_000.0
    reference_ccy: str = "USDT"
    equity_interval_s: float = 1.0
    timeline: str = "recv"
    label: str = ""


@dataclass(frozen=True, kw_only=True)
class FxConfig:
    """A recorded FX series converting an instrument's quote currency to the reference one.

    ``symbol`` is ``BASE/QUOTE`` as stored in the catalog's ``fx`` table (``USDT/KRW``: KRW per
    one USDT); ``venue`` is its source there (``upbit``, ``fred``, ``ecb``).
    """

    venue: str
    symbol: str
    max_age_s: float | str = OFF

    @property
    def pair(self) -> tuple[str, str]:
        base, _, quote = self.symbol.partition("/")
        return base, quote


@dataclass(frozen=True, kw_only=True)
class BarsConfig:
    """Bar mode: how bars become quotes (see ``arbkit.data.barmode``; coarser than book data)."""

    half_spread_bps: float | str = OFF
    participation: float = 0.1
    quote_size: float | str = OFF


@dataclass(frozen=True, kw_only=True)
class Config:
    """A whole backtest configuration."""

    run: RunConfig = field(default_factory=RunConfig)
    instruments: tuple[InstrumentConfig, ...]
    routes: tuple[RouteConfig, ...]
    strategy: StrategyConfig
    bars: BarsConfig = field(default_factory=BarsConfig)
    fx: tuple[FxConfig, ...] = ()

    def fx_for(self, ccy: str) -> tuple[int, bool] | None:
        """(index of the [[fx]] series converting ``ccy`` to the reference currency, whether
        it must be inverted), or None when ``ccy`` is the reference currency."""
        ref = self.run.reference_ccy
        if ccy == ref:
            return None
        for k, fx in enumerate(self.fx):
            if fx.pair == (ccy, ref):
                return k, False  # ref per one ccy: multiply
            if fx.pair == (ref, ccy):
                return k, True  # ccy per one ref: divide
        raise ConfigError(f"prices in {ccy} need an [[fx]] series {ref}/{ccy} (or {ccy}/{ref}) "
                          f"to reach reference_ccy = {ref}; record or import one (e.g. "
                          "`arbkit data import upbit-fx`); currencies are never assumed equal")

    @property
    def route(self) -> RouteConfig:
        """The first route (the only one in a single-route config)."""
        return self.routes[0]

    def route_strategy(self, r: int) -> StrategyConfig:
        """Route ``r``'s strategy: ``[strategy]`` with the route's overrides applied."""
        over = self.routes[r].strategy
        if not over:
            return self.strategy
        return dataclasses.replace(self.strategy, **over)

    def instrument(self, key: str) -> InstrumentConfig:
        for inst in self.instruments:
            if inst.key == key:
                return inst
        known = ", ".join(i.key for i in self.instruments)
        raise ConfigError(f"route: instrument {key!r} is not configured; known: {known}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def config_hash(self) -> str:
        """Stable hash of the effective config (keys runs and studies)."""
        blob = json.dumps(self.to_dict(), sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def replace_strategy(self, **changes: Any) -> Config:
        """A copy with some strategy fields changed (validated like a loaded file)."""
        merged = {**dataclasses.asdict(self.strategy), **changes}
        return from_dict({**self.to_dict(), "strategy": merged}, source="<override>")


def _build(cls: type, raw: Any, where: str, source: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: [{where}] must be a table, got {type(raw).__name__}")
    allowed = {f.name: f for f in fields(cls)}
    unknown = sorted(set(raw) - set(allowed))
    if unknown:
        raise ConfigError(
            f"{source}: unknown key {where}.{unknown[0]} = {raw[unknown[0]]!r}; "
            f"allowed keys: {', '.join(sorted(allowed))}"
        )
    missing = [
        n for n, f in allowed.items()
        if n not in raw and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING  # type: ignore[misc]
    ]
    if missing:
        raise ConfigError(f"{source}: missing required key {where}.{missing[0]}; add it to [{where}]")
    kwargs = {}
    for name, value in raw.items():
        kwargs[name] = _coerce(cls, allowed[name], value, f"{where}.{name}", source)
    return cls(**kwargs)


def _coerce(cls: type, f: dataclasses.Field, value: Any, where: str, source: str) -> Any:
    ann = str(f.type)
    if "str" in ann and "float" in ann:
        if isinstance(value, str):
            if value != OFF:
                raise ConfigError(f'{source}: {where} = {value!r}; use a number or "off"')
            return OFF
        return _number(value, where, source)
    if ann == "float":
        return _number(value, where, source)
    if ann == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{source}: {where} = {value!r}; expected a whole number")
        return value
    if ann == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{source}: {where} = {value!r}; expected true or false")
        return value
    if ann == "str" and not isinstance(value, str):
        raise ConfigError(f"{source}: {where} = {value!r}; expected a string")
    return value


def _number(value: Any, where: str, source: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{source}: {where} = {value!r}; expected a number")
    if not math.isfinite(float(value)):
        raise ConfigError(f"{source}: {where} = {value!r}; expected a finite number")
    return float(value)


def _check(cfg: Config, source: str) -> None:
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
        for name in ("taker_fee_bps", "order_latency_ms", "order_latency_jitter_ms",
                     "ack_latency_ms", "exch_match_timeout_ms", "min_notional",
                     "initial_base", "initial_quote"):
            v = getattr(inst, name)
            if v < 0:
                raise ConfigError(f"{w}: {name} = {v}; must be >= 0 (fees are costs: a rebate "
                                  "is not modelled for taker orders)")
        for name in ("tick", "lot"):
            if getattr(inst, name) <= 0:
                raise ConfigError(f"{w}: {name} = {getattr(inst, name)}; must be > 0")
        if inst.quote not in CURRENCIES:
            raise ConfigError(f"{w}: quote = {inst.quote!r}; use one of {CURRENCIES}")
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


def _check_route(cfg: Config, r: int, route: RouteConfig, source: str) -> None:
    w = f"{source}: routes[{r}]"
    a, b = cfg.instrument(route.a), cfg.instrument(route.b)
    if a.key == b.key:
        raise ConfigError(f"{w}: a and b are both {a.key!r}; pick two markets")
    if a.base != b.base:
        raise ConfigError(f"{w}: legs trade {a.base} and {b.base}; use the same base")
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
        raise ConfigError(
            f"{source}: strategy.legging = {s.legging!r}; only 'unwind' is supported so far"
        )
    if s.unwind_retries < 1:
        raise ConfigError(f"{source}: strategy.unwind_retries = {s.unwind_retries}; must be >= 1")


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


def _check_run(cfg: Config, source: str) -> None:
    _check_fx(cfg, source)
    if cfg.run.timeline not in ("recv", "exch"):
        raise ConfigError(f"{source}: run.timeline = {cfg.run.timeline!r}; use 'recv' or 'exch'")
    if cfg.run.capital <= 0 or cfg.run.equity_interval_s <= 0:
        raise ConfigError(f"{source}: run.capital and run.equity_interval_s must be > 0")
    b = cfg.bars
    for name in ("half_spread_bps", "quote_size"):
        v = getattr(b, name)
        if v != OFF and v <= 0:
            raise ConfigError(f'{source}: bars.{name} = {v}; must be > 0, or "off"')
    if not 0 < b.participation <= 1:
        raise ConfigError(f"{source}: bars.participation = {b.participation}; must be in (0, 1]")


def from_dict(raw: dict[str, Any], source: str = "<config>") -> Config:
    """Build and validate a Config from a plain dict (as parsed from TOML)."""
    allowed = {"run", "instruments", "route", "routes", "strategy", "bars", "fx"}
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise ConfigError(
            f"{source}: unknown section [{unknown[0]}]; allowed: {', '.join(sorted(allowed))}"
        )
    for sec in ("instruments", "strategy"):
        if sec not in raw:
            raise ConfigError(f"{source}: missing section [{sec}]")
    if ("route" in raw) == ("routes" in raw):
        raise ConfigError(f"{source}: give either one [route] or a list of [[routes]]"
                          + (" (not both)" if "route" in raw else ""))
    insts = raw["instruments"]
    if not isinstance(insts, (list, tuple)) or len(insts) < 2:
        raise ConfigError(f"{source}: [[instruments]] needs at least two entries")
    cfg = Config(
        run=_build(RunConfig, raw.get("run", {}), "run", source),
        instruments=tuple(
            _build(InstrumentConfig, d, f"instruments[{i}]", source) for i, d in enumerate(insts)
        ),
        routes=_routes(raw, source),
        strategy=_build(StrategyConfig, raw["strategy"], "strategy", source),
        bars=_build(BarsConfig, raw.get("bars", {}), "bars", source),
        fx=tuple(_build(FxConfig, d, f"fx[{k}]", source) for k, d in enumerate(raw.get("fx", []))),
    )
    _check(cfg, source)
    return cfg


def _routes(raw: dict[str, Any], source: str) -> tuple[RouteConfig, ...]:
    if "route" in raw:
        return (_build(RouteConfig, raw["route"], "route", source),)
    items = raw["routes"]
    if not isinstance(items, (list, tuple)) or not items:
        raise ConfigError(f"{source}: [[routes]] must be a non-empty list of tables")
    out = []
    for r, item in enumerate(items):
        route = _build(RouteConfig, item, f"routes[{r}]", source)
        if not isinstance(route.strategy, dict):
            raise ConfigError(f"{source}: routes[{r}].strategy must be a table of overrides")
        if route.strategy:  # overrides are coerced like [strategy] keys
            allowed = {f.name: f for f in fields(StrategyConfig)}
            over = {}
            for k, v in route.strategy.items():
                if k not in allowed:
                    raise ConfigError(f"{source}: unknown key routes[{r}].strategy.{k} = {v!r}; "
                                      "allowed keys are those of [strategy]")
                over[k] = _coerce(StrategyConfig, allowed[k], v, f"routes[{r}].strategy.{k}",
                                  source)
            route = dataclasses.replace(route, strategy=over)
        out.append(route)
    return tuple(out)


def load_config_text(text: str, source: str = "<string>") -> Config:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML ({exc}); fix the syntax") from None
    return from_dict(raw, source)


def load_config(path: str | Path) -> Config:
    """Load and validate a TOML config file."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: config file not found; pass an existing --config path")
    return load_config_text(p.read_text(), str(p))


def dump_config(cfg: Config) -> str:
    """TOML text for a config (round-trips through load_config_text)."""
    d = cfg.to_dict()
    out: list[str] = ["[run]"]
    out += [f"{k} = {_toml(v)}" for k, v in d["run"].items()]
    for inst in d["instruments"]:
        out += ["", "[[instruments]]"] + [f"{k} = {_toml(v)}" for k, v in inst.items()]
    for route in d["routes"]:
        out += ["", "[[routes]]"] + [f"{k} = {_toml(v)}" for k, v in route.items()
                                     if k != "strategy"]
        if route["strategy"]:
            out += ["[routes.strategy]"] + [f"{k} = {_toml(v)}"
                                            for k, v in route["strategy"].items()]
    out += ["", "[strategy]"] + [f"{k} = {_toml(v)}" for k, v in d["strategy"].items()]
    out += ["", "[bars]"] + [f"{k} = {_toml(v)}" for k, v in d["bars"].items()]
    for fx in d["fx"]:
        out += ["", "[[fx]]"] + [f"{k} = {_toml(v)}" for k, v in fx.items()]
    return "\n".join(out) + "\n"


def _toml(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    return json.dumps(v)
