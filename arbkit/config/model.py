"""The configuration's dataclasses (frozen, keyword-only) and their constants."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from arbkit.errors import ConfigError

OFF = "off"
AUTO = "auto"
INSTRUMENT_KINDS = ("spot", "linear_perp", "inverse_perp")
FEE_CCYS = ("quote", "received")
LEGGING_POLICIES = ("unwind", "chase", "hold")
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
    # inverse_perp only: quote value of one contract (100 for Binance COIN-M BTCUSD_PERP);
    # its lot, book sizes and order sizes are in contracts
    contract_value: float = 0.0

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
    anchor: str = "none"
    anchor_halflife_s: float = 3600.0
    anchor_warmup_s: float = 0.0
    chase_retries: int = 2
    chase_max_slippage_bps: float = 20.0
    scale_out_bps: float | str = OFF
    scale_out_fraction: float = 0.5
    # size each entry in base units (coins) instead of ``notional`` (reference currency)
    qty: float | str = OFF


@dataclass(frozen=True, kw_only=True)
class RunConfig:
    """Run-wide settings."""

    seed: int = 0
    capital: float = 100_000.0
    reference_ccy: str = "USDT"
    equity_interval_s: float = 1.0
    timeline: str = "exch"
    label: str = ""
    # a leg silent longer than this closes its positions at the last books (exit reason
    # data_gap) and blocks entries until both legs quote again; the silence is left out of
    # time-based metrics. "auto": 300 s, or 3 bar intervals for bar data if longer; "off".
    max_gap_s: float | str = AUTO


@dataclass(frozen=True, kw_only=True)
class RiskConfig:
    """Risk guards (BRIEF §6), each off unless set. Money in the reference currency.

    Pre-trade guards skip an entry and count it (``skipped_<guard>``); running guards (daily
    loss, drawdown, kill) are checked at every equity sample on the kernel's clock, so they
    fire even when the market is quiet. Every guard writes a row to the guard log.
    """

    max_symbol_notional: float | str = OFF
    max_gross_exposure: float | str = OFF
    max_venue_imbalance: float | str = OFF
    daily_loss_limit: float | str = OFF
    max_drawdown: float | str = OFF
    max_entry_slippage_bps: float | str = OFF
    same_jump_routes: int = 0
    same_jump_window_ms: float = 1000.0
    loss_streak: int = 0
    loss_streak_cooldown_s: float = 600.0
    max_orders_per_s: float | str = OFF


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
class WalletConfig:
    """One venue's spot wallet: starting balance per currency, shared by every spot instrument
    of that venue (BTC/USDT and ETH/USDT on one venue draw on one USDT balance). A currency not
    listed starts at 0. Without a ``[[wallets]]`` entry a venue's instruments keep their own
    ``initial_base`` / ``initial_quote``."""

    venue: str
    balances: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class TransferConfig:
    """Rebalancing between venues' wallets (``[transfers]``, off unless ``rebalance_below`` is
    set). When a wallet falls below ``rebalance_below`` x its starting balance, the venue with
    the most of that currency sends what refills it to its start (never taking the sender
    below its own trigger); it arrives ``delay_s`` later, less ``fee_bps`` of the amount and
    the currency's fixed fee (``fee_fixed``, e.g. ``{ BTC = 0.0002 }``, network withdrawal)."""

    rebalance_below: float | str = OFF
    delay_s: float = 1800.0
    fee_bps: float = 0.0
    fee_fixed: dict[str, float] = field(default_factory=dict)


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
    risk: RiskConfig = field(default_factory=RiskConfig)
    wallets: tuple[WalletConfig, ...] = ()
    transfers: TransferConfig = field(default_factory=TransferConfig)

    def wallet(self, venue: str) -> WalletConfig | None:
        """The venue's ``[[wallets]]`` entry, if it has one."""
        for w in self.wallets:
            if w.venue == venue:
                return w
        return None

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
        from arbkit.config.load import from_dict

        merged = {**dataclasses.asdict(self.strategy), **changes}
        return from_dict({**self.to_dict(), "strategy": merged}, source="<override>")
