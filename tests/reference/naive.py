"""Naive reference model of arbkit's event loop: slow, obvious, pure Python.

Read this file as the executable specification of the backtest kernel (``arbkit/core``) for one
route on two instruments. It uses plain classes, lists and dicts (no numpy, no numba) and is
compared against the kernel on random small streams in ``tests/property/test_reference.py``.
Where this model and the kernel disagree, this file follows BRIEF.md; the disagreement is a
kernel finding, not something to copy here.

Semantics (BRIEF §4, §5, §7, §7b)
---------------------------------
Time.
    Events are processed in the order given (sorted by receive time ``ts_recv``). Before an
    event at time ``t`` is applied, every *item* due strictly before ``t`` runs, earliest first;
    items due at the same time run as: order matches, then acks, then time stops, then equity
    samples (ties inside a kind: lower order id first). An item runs at clock
    ``max(item time, clock)``. Items due exactly at ``t`` wait until the event is applied
    (the venue's book at ``t`` includes the updates stamped ``t``).
Orders.
    Every order is an IOC limit order. Sent at ``t``, it arrives at
    ``t_arrive = t + latency + jitter`` (jitter: splitmix64 of the seed and the order id,
    modulo ``jitter + 1``). On the receive timeline it is matched when the clock reaches
    ``t_arrive``. When the instrument carries exchange times, it is matched just before the
    first update of its instrument stamped (exchange time) later than ``t_arrive``, or when
    the receive clock reaches ``t_arrive + exch_match_timeout``, whichever comes first. The
    fill is stamped ``t_arrive``; the strategy learns the result ``ack_latency`` later.
Matching.
    Rejected when the instrument has no book, the book is crossed, or (spot only) the venue
    balance cannot cover it (buy: cash >= qty x limit x (1 + fee); sell: inventory >= qty).
    Otherwise walk the book side from the touch while the price is within the limit; at each
    level take ``floor_lot(min(level size - size we already took, remaining))``. Size taken
    stays taken until that instrument's book next updates. Fill price = VWAP; fee =
    filled x VWAP x taker fee rate; status filled / partially filled / cancelled (nothing).
Strategy (on each book update of a route leg, when both legs have a book).
    ``mid_ref`` = mean of the four touch prices; edges in bps of it: ``e_AB = (bid_B - ask_A)``,
    ``e_BA = (bid_A - ask_B)``. Entry threshold (precomputed) = entry_bps - exit_bps
    (0 when converge is off) + fees of four fills + latency allowance.
    FLAT: take the better direction (ties: buy A); when its edge >= threshold, try to enter:
    guards in order crossed, stale, sanity, cooldown; size = floor to the common lot of
    min(notional / ask, depth within both limits, spot cash / (buy limit x (1 + fee)),
    spot inventory on the sell venue); re-check the edge at the VWAPs for that size; check
    each leg's min notional; then send both IOC legs (limits = touch -/+ max slippage, on the
    tick grid). Not FLAT: count the opportunity as "busy"; OPEN: check exits.
Exits (OPEN, neither book crossed), precedence stop-loss > time > take-profit > reversal >
    converge. Stop: the mid premium (mid_B - mid_A) moved against the position by >= sl_bps
    since entry. Time: clock >= entry time + max_hold (also fired by its own timer). Take
    profit: cash flow - fees + value of closing at the touch net of fees >= tp_bps of entry
    notional. Reversal: closing edge >= entry threshold. Converge: closing edge >= exit_bps.
    Stop and time exits use the wide (unwind) slippage bound.
Acks and legging (``unwind`` policy).
    The strategy's positions change only at acks. When every order of the route is acked:
    if the legs differ, send the excess on the larger leg at market (wide bound), up to
    ``unwind_retries`` times, then give up and hold the naked residual (route OPEN); a
    legging incident is logged with its own cost and duration. Hedged (legs equal): OPEN, or
    FLAT and the round trip is written (no fills at all = no round trip). A stop-loss starts
    the cooldown when the route goes flat.
Accounting per round trip.
    gross_pnl = Σ -side·qty·px; price_pnl = Σ -side·qty·decision touch;
    slippage = Σ side·qty·(px - decision touch); fees = Σ fees; net_pnl = gross - fees
    (fx and funding are 0: single currency, no funding events yet); R multiple = net /
    (entry notional x sl_bps) (stop off: x max(fees of 4 fills, 1 bps)); legging cost =
    Σ over unwind fills of side·qty·(px - the price the leg was meant to get) + fee.
    Open at the end: marked at mid (gross, price, net_pnl_mid) and at the touch net of fees
    (net_pnl).
Equity.
    capital + Σ_venues cash + Σ_venues pos x mid (cash and pos are what trading changed;
    the venue holds cash0 + cash and pos0 + pos), sampled on the
    ``equity_interval`` grid (first point at or after the first event), plus one final
    sample after the end of data; samples and time stops past the last event do not fire.

Floating point: expressions are written in the same order as the kernel so results compare
bit for bit (the kernel runs without fastmath); comments mark the places where that matters.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any

from arbkit.config import OFF, Config

MS = 1_000_000
S = 1_000_000_000
NEVER = 2**63 - 1

QUOTE, HEARTBEAT = 1, 2
BUY, SELL = 1, -1
SPOT, LINEAR_PERP = 0, 1

# route states
FLAT, ENTERING, OPEN, EXITING, UNWINDING = 0, 1, 2, 3, 4
# order purposes
ENTRY, EXIT, UNWIND = 0, 1, 2
# order statuses
NEW, ACCEPTED, PARTIAL, FILLED, CANCELLED, REJECTED = 0, 1, 2, 3, 4, 5
# reject reasons
RJ_NONE, RJ_BALANCE, RJ_NO_BOOK, RJ_CROSSED, RJ_STALE = 0, 1, 2, 3, 4
# exit reasons
(X_NONE, X_CONVERGE, X_TAKE_PROFIT, X_STOP_LOSS, X_TIME, X_REVERSAL, X_OPEN_AT_END,
 X_ENTRY_LEGGED) = range(8)
X_DATA_GAP = 11
# why an opportunity was not taken
SKIPS = ("crossed_book", "stale_quote", "sanity", "busy", "cooldown", "depth", "balance",
         "min_notional", "taken",
         # the model has no FX and no [risk] guards (all off in the generated configs): 0
         "stale_fx", "symbol_cap", "gross_cap", "venue_imbalance", "slippage", "same_jump",
         "loss_streak", "rate_limit", "halted", "same_jump_wait",
         "data_gap", "symbol_off")

# due-item ranks at equal times
R_MATCH, R_ACK, R_TIME_STOP, R_GAP, R_SAMPLE = 0, 1, 2, 3, 4
AUTO_GAP_NS = 300 * S  # run.max_gap_s = "auto" on quote data

MAX_ORDERS = 100_000  # a safety stop for the tests, far above any scenario's need
MASK64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15


def splitmix64(x: int) -> int:
    """Counter-based generator: the n-th draw depends only on (seed, n)."""
    z = (x + GOLDEN) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def floor_lot(qty: float, lot: float) -> float:
    """Whole lots, rounding down (a 1e-9 lot tolerance absorbs float noise)."""
    if qty <= 0.0:
        return 0.0
    return math.floor(qty / lot + 1e-9) * lot


def snap(x: float, lot: float) -> float:
    """A position smaller than a millionth of a lot is float noise: zero."""
    return 0.0 if abs(x) < 1e-6 * lot else x


def limit_price(touch: float, side: int, bound: float, tick: float) -> float:
    """IOC limit: the touch moved by ``bound`` against us, on the tick grid, never inside."""
    if side == BUY:
        px = math.floor(touch * (1.0 + bound) / tick + 1e-9) * tick
        return px if px > touch else touch
    px = math.ceil(touch * (1.0 - bound) / tick - 1e-9) * tick
    return px if px < touch else touch


def common_lot(lot_a: float, lot_b: float) -> float:
    """Smallest quantity that is a whole number of lots on both venues (BRIEF §4)."""
    fa, fb = Fraction(Decimal(repr(lot_a))), Fraction(Decimal(repr(lot_b)))
    num = math.lcm(fa.numerator * fb.denominator, fb.numerator * fa.denominator)
    return float(Fraction(num, fa.denominator * fb.denominator))


def flag(value: float | str) -> tuple[bool, float]:
    return (False, 0.0) if value == OFF else (True, float(value))


# ------------------------------------------------------------------------------------------
# events
# ------------------------------------------------------------------------------------------


@dataclass
class Event:
    ts_recv: int
    ts_exch: int
    inst: int
    kind: int
    bids: list[tuple[float, float]]  # (price, size), best first
    asks: list[tuple[float, float]]


def events_from_arrays(events: Any, depth: Any = None) -> list[Event]:
    """Plain events from the kernel's event array (+ depth array), or from dict rows.

    A dict row has ts_recv, inst, bid_px, bid_qty, ask_px, ask_qty and optionally ts_exch,
    kind, and ``bids``/``asks`` lists of deeper (price, size) levels.
    """
    out = []
    for row in events:
        if isinstance(row, dict):
            get = row.get
            deeper_bids, deeper_asks = list(get("bids", [])), list(get("asks", []))
            depth_row = -1
        else:
            get = row.__getitem__
            depth_row = int(row["depth_row"])
            deeper_bids, deeper_asks = [], []
        kind = int(get("kind") or QUOTE) if isinstance(row, dict) else int(row["kind"])
        ts_recv = int(get("ts_recv"))
        ts_exch = get("ts_exch") if isinstance(row, dict) else row["ts_exch"]
        ts_exch = ts_recv if ts_exch is None else int(ts_exch)
        if depth_row >= 0:
            for lvl in range(depth.shape[2]):
                px = float(depth[depth_row, 0, lvl])
                if math.isnan(px):
                    break
                deeper_bids.append((px, float(depth[depth_row, 1, lvl])))
            for lvl in range(depth.shape[2]):
                px = float(depth[depth_row, 2, lvl])
                if math.isnan(px):
                    break
                deeper_asks.append((px, float(depth[depth_row, 3, lvl])))
        bids = [(float(get("bid_px")), float(get("bid_qty")))] + deeper_bids
        asks = [(float(get("ask_px")), float(get("ask_qty")))] + deeper_asks
        out.append(Event(ts_recv, ts_exch, int(get("inst")), kind, bids, asks))
    return out


# ------------------------------------------------------------------------------------------
# venue: book, balances, IOC matching
# ------------------------------------------------------------------------------------------


@dataclass
class Level:
    px: float
    qty: float
    taken: float = 0.0  # what our own orders consumed since this book arrived


@dataclass
class Order:
    oid: int
    trade_id: int
    inst: int
    side: int
    purpose: int
    qty: float
    limit_px: float
    dec_px: float  # touch at decision (ask for a buy, bid for a sell)
    t_send: int
    t_arrive: int
    t_deadline: int  # receive time by which it is matched regardless
    matched: bool = False
    t_match: int = -1
    t_ack: int = -1
    filled: float = 0.0
    fill_px: float = math.nan
    fee: float = 0.0
    status: int = NEW
    reason: int = RJ_NONE
    levels: int = 0
    last_book: bool = False  # a data-gap exit: the last book, whatever its age


@dataclass
class Venue:
    key: str
    kind: int
    fee_rate: float
    lot: float
    tick: float
    min_notional: float
    lat_ns: int
    jitter_ns: int
    ack_ns: int
    timeout_ns: int
    stale_ns: int  # a book older than this at arrival means the venue is unavailable (0 = off)
    use_exch: bool
    cash: float
    pos: float
    cash0: float = 0.0
    pos0: float = 0.0
    fees: float = 0.0
    bids: list[Level] = field(default_factory=list)
    asks: list[Level] = field(default_factory=list)
    has_quote: bool = False
    crossed: bool = False
    ts_recv: int = 0
    ts_exch: int = 0

    def apply(self, ev: Event) -> None:
        """A new book replaces the old one (and with it what we had taken)."""
        self.bids = [Level(px, q) for px, q in ev.bids]
        self.asks = [Level(px, q) for px, q in ev.asks]
        self.crossed = ev.bids[0][0] >= ev.asks[0][0]
        self.has_quote = True
        self.ts_recv = ev.ts_recv
        self.ts_exch = ev.ts_exch

    def bid(self) -> float:
        return self.bids[0].px if self.bids else math.nan

    def ask(self) -> float:
        return self.asks[0].px if self.asks else math.nan

    def mid(self) -> float:
        return 0.5 * (self.bid() + self.ask())

    def touch(self, side: int) -> float:
        """Where an order of ``side`` trades first: a buy lifts the ask, a sell hits the bid."""
        return self.ask() if side == BUY else self.bid()

    def _walk(self, side: int, limit: float) -> list[Level]:
        """Levels an order of ``side`` may trade against: from the touch while within limit."""
        out = []
        for lvl in self.asks if side == BUY else self.bids:
            if (side == BUY and lvl.px > limit) or (side == SELL and lvl.px < limit):
                break
            out.append(lvl)
        return out

    def available(self, side: int, limit: float) -> float:
        total = 0.0
        for lvl in self._walk(side, limit):
            total += lvl.qty - lvl.taken
        return total

    def vwap(self, side: int, qty: float, limit: float) -> float:
        """Average price of ``qty`` within ``limit`` (NaN when the book cannot fill it)."""
        remaining = qty
        notional = 0.0
        for lvl in self._walk(side, limit):
            avail = lvl.qty - lvl.taken
            if avail <= 0.0:
                continue
            got = min(avail, remaining)
            notional += got * lvl.px
            remaining -= got
            if remaining <= 1e-12 * qty:
                return notional / qty
        return math.nan

    def book_age(self, t_arrive: int) -> int:
        """Age of the book an order meets, on the timeline the venue matches on (exchange
        time when the instrument has it: ``t_arrive`` is an exchange time then)."""
        return t_arrive - (self.ts_exch if self.use_exch else self.ts_recv)

    def balance_ok(self, order: Order) -> bool:
        """Spot venues cannot go short, nor spend cash they do not hold."""
        if self.kind != SPOT:
            return True
        if order.side == BUY:
            return self.cash0 + self.cash >= order.qty * order.limit_px * (1.0 + self.fee_rate)
        return self.pos0 + self.pos >= order.qty - 1e-6 * self.lot

    def match(self, order: Order) -> None:
        """Fill an arrived IOC order against the current book; the rest is cancelled."""
        order.matched = True
        order.t_match = order.t_arrive
        order.t_ack = order.t_arrive + self.ack_ns
        if not self.has_quote:
            order.status, order.reason = REJECTED, RJ_NO_BOOK
            return
        if self.crossed:
            order.status, order.reason = REJECTED, RJ_CROSSED
            return
        if (self.stale_ns > 0 and not order.last_book
                and self.book_age(order.t_arrive) > self.stale_ns):
            order.status, order.reason = REJECTED, RJ_STALE
            return
        if not self.balance_ok(order):
            order.status, order.reason = REJECTED, RJ_BALANCE
            return
        remaining, filled, notional, levels = order.qty, 0.0, 0.0, 0
        for lvl in self._walk(order.side, order.limit_px):
            got = floor_lot(min(lvl.qty - lvl.taken, remaining), self.lot)
            if got <= 0.0:
                continue
            lvl.taken += got
            filled += got
            notional += got * lvl.px
            remaining -= got
            levels += 1
            if remaining < 1e-6 * self.lot:
                break
        if levels == 0:
            order.status = CANCELLED
            return
        px = notional / filled
        fee = filled * px * self.fee_rate
        self.cash += -order.side * filled * px - fee
        self.pos += order.side * filled
        self.fees += fee
        order.filled, order.fill_px, order.fee, order.levels = filled, px, fee, levels
        order.status = FILLED if filled >= order.qty - 1e-6 * self.lot else PARTIAL


# ------------------------------------------------------------------------------------------
# route: strategy state and the round trip being built
# ------------------------------------------------------------------------------------------


@dataclass
class Route:
    a: int
    b: int
    thr: float  # entry threshold, bps
    conv_on: bool
    exit_bps: float
    tp_on: bool
    tp_bps: float
    sl_on: bool
    sl_bps: float
    hold_on: bool
    hold_ns: int
    rev_on: bool
    stale_on: bool
    stale_ns: int
    sanity_bps: float
    notional: float
    slip: float
    force_slip: float
    cooldown_ns: int
    lot: float
    r_unit_bps: float
    unwind_retries: int
    state: int = FLAT
    dir: int = 0
    inflight: int = 0
    pos_a: float = 0.0  # positions as the strategy knows them (acks)
    pos_b: float = 0.0
    cooldown_until: int = 0
    hold_deadline: int = 0
    hold_armed: bool = False  # the time stop is a pending timer
    hold_fired: bool = False  # the time stop's timer fired for this round trip
    dec_px_a: float = 0.0
    dec_px_b: float = 0.0
    entry_buy_px: float = 0.0
    n_entries: int = 0
    n_unfilled: int = 0
    unwind_tries: int = 0
    pending_reason: int = X_NONE
    trade_id: int = 0
    entry_ts: int = 0
    qty: float = 0.0
    entry_edge_bps: float = 0.0
    entry_prem_bps: float = 0.0
    entry_notional: float = 0.0
    exit_edge_bps: float = 0.0
    exit_prem_bps: float = 0.0
    cq_a: float = 0.0  # the round trip's own ledger per leg: quote cash, fees, coins held
    cq_b: float = 0.0
    fq_a: float = 0.0
    fq_b: float = 0.0
    vp_a: float = 0.0
    vp_b: float = 0.0
    naked_leg: int = -1  # a legging residual held naked (its cost counted when closed)
    naked_qty: float = 0.0
    naked_px: float = 0.0
    naked_start: int = 0
    naked_closed: float = 0.0
    naked_cost: float = 0.0
    gap_at: int = 0  # data-gap deadline that already fired
    dec_pnl: float = 0.0
    slip_cost: float = 0.0
    fee_sum: float = 0.0
    leg_cost: float = 0.0
    n_fills: int = 0
    n_legs: int = 0
    leg_open: bool = False
    leg_start: int = 0
    leg_qty: float = 0.0
    leg_cost_at_start: float = 0.0
    leg_ref_px: float = 0.0
    best_miss_bps: float = -math.inf
    best_miss_ts: int = 0
    best_miss_dir: int = 0
    skips: dict[str, int] = field(default_factory=lambda: {k: 0 for k in SKIPS})


@dataclass
class Result:
    trades: list[dict]
    fills: list[dict]
    orders: list[dict]
    equity: list[dict]  # every grid sample, then the final one
    legs: list[dict]
    route: Route
    venues: list[Venue]


class NaiveModel:
    """One route, its two venues and the clock. ``run(events)`` returns a :class:`Result`."""

    def __init__(self, cfg: Config, inst_keys: list[str], use_exch: dict[str, bool]) -> None:
        self.cfg = cfg
        self.venues = [self._venue(cfg, key, use_exch.get(key, False)) for key in inst_keys]
        self.route = self._route(cfg, inst_keys)
        self.capital = cfg.run.capital
        self.seed = cfg.run.seed
        self.sample_ns = max(1, round(cfg.run.equity_interval_s * S))
        g = cfg.run.max_gap_s
        self.gap_ns = 0 if g == OFF else AUTO_GAP_NS if g == "auto" else round(float(g) * S)
        self.next_sample = NEVER
        self.now = 0
        self.started = False
        self.order_seq = 0
        self.trade_seq = 0
        self.live: list[Order] = []  # sent and not yet acked
        self.trades: list[dict] = []
        self.fills: list[dict] = []
        self.orders: list[dict] = []
        self.equity: list[dict] = []
        self.legs: list[dict] = []

    # ---- setup -----------------------------------------------------------------------
    @staticmethod
    def _venue(cfg: Config, key: str, use_exch: bool) -> Venue:
        ic = cfg.instrument(key)
        return Venue(
            key=key, kind=SPOT if ic.kind == "spot" else LINEAR_PERP,
            fee_rate=ic.taker_fee_bps * 1e-4, lot=ic.lot, tick=ic.tick,
            min_notional=ic.min_notional, lat_ns=round(ic.order_latency_ms * MS),
            jitter_ns=round(ic.order_latency_jitter_ms * MS), ack_ns=round(ic.ack_latency_ms * MS),
            timeout_ns=round(ic.exch_match_timeout_ms * MS),
            stale_ns=0 if cfg.strategy.max_quote_age_ms == OFF
            else round(float(cfg.strategy.max_quote_age_ms) * MS),
            use_exch=use_exch,
            cash=0.0, pos=0.0, cash0=ic.initial_quote, pos0=ic.initial_base,
        )

    @staticmethod
    def _route(cfg: Config, inst_keys: list[str]) -> Route:
        s = cfg.strategy
        a, b = cfg.instrument(cfg.route.a), cfg.instrument(cfg.route.b)
        fees4 = 2.0 * (a.taker_fee_bps + b.taker_fee_bps)
        conv_on, exit_bps = flag(s.exit_bps)
        tp_on, tp_bps = flag(s.take_profit_bps)
        sl_on, sl_bps = flag(s.stop_loss_bps)
        hold_on, hold_s = flag(s.max_hold_s)
        stale_on, stale_ms = flag(s.max_quote_age_ms)
        return Route(
            a=inst_keys.index(a.key), b=inst_keys.index(b.key),
            thr=s.entry_bps - exit_bps + fees4 + s.latency_allowance_bps,
            conv_on=conv_on, exit_bps=exit_bps, tp_on=tp_on, tp_bps=tp_bps, sl_on=sl_on,
            sl_bps=sl_bps, hold_on=hold_on, hold_ns=round(hold_s * S), rev_on=bool(s.reversal),
            stale_on=stale_on, stale_ns=round(stale_ms * MS), sanity_bps=s.sanity_max_edge_bps,
            notional=s.notional, slip=s.max_slippage_bps * 1e-4,
            force_slip=max(s.unwind_max_slippage_bps, s.max_slippage_bps) * 1e-4,
            cooldown_ns=round(s.cooldown_after_stop_s * S), lot=common_lot(a.lot, b.lot),
            r_unit_bps=sl_bps if sl_on else max(fees4, 1.0),
            unwind_retries=s.unwind_retries,
        )

    # ---- the loop --------------------------------------------------------------------
    def run(self, events: Iterable[Event]) -> Result:
        """One decision per timestamp: every event of a receive time is applied before the
        route decides (when a later event comes, or at the end of data)."""
        evs = list(events)
        self.pending = None  # a timestamp whose decision waits for all of its events
        for k, ev in enumerate(evs):
            if self.pending is not None and ev.ts_recv != self.pending:
                self.on_market(self.pending)
                self.pending = None
            self.on_event(ev)
            more = k + 1 < len(evs) and evs[k + 1].ts_recv == ev.ts_recv
            if ev.kind == QUOTE and (more or self.pending is not None):
                self.pending = ev.ts_recv
            elif ev.kind == QUOTE:
                self.on_market(ev.ts_recv)
        if self.pending is not None:
            self.on_market(self.pending)
        return self.finish()

    def on_event(self, ev: Event) -> None:
        if not self.started:
            self.started = True
            self.now = ev.ts_recv
            self.next_sample = -(-ev.ts_recv // self.sample_ns) * self.sample_ns
        self.run_due_items(before=ev.ts_recv)
        if ev.kind != QUOTE:
            self.now = max(self.now, ev.ts_recv)
            return
        venue = self.venues[ev.inst]
        if venue.use_exch:
            self.match_arrived_before(ev)
        venue.apply(ev)
        self.now = ev.ts_recv

    def match_arrived_before(self, ev: Event) -> None:
        """Orders that reached the exchange before this update meet the book before it."""
        while True:
            due = [o for o in self.live if not o.matched and o.inst == ev.inst
                   and o.t_arrive < ev.ts_exch]
            if not due:
                return
            self.match(min(due, key=lambda o: (o.t_arrive, o.oid)))

    def due_items(self, timers: bool) -> list[tuple[int, int, int, Any]]:
        """(time, rank, order id, what) of everything pending."""
        items = []
        for o in self.live:
            if not o.matched:
                items.append((o.t_deadline, R_MATCH, o.oid, o))
            else:
                items.append((o.t_ack, R_ACK, o.oid, o))
        if timers:
            rt = self.route
            if rt.hold_armed and rt.state == OPEN:
                items.append((rt.hold_deadline, R_TIME_STOP, 0, rt))
            gap = self.gap_deadline()
            if gap is not None:
                items.append((gap, R_GAP, 0, rt))
            items.append((self.next_sample, R_SAMPLE, 0, None))
        return items

    def gap_deadline(self) -> int | None:
        """When an OPEN route's quieter leg will have been silent for longer than the data-gap
        limit (once per silence)."""
        rt = self.route
        if self.gap_ns <= 0 or rt.state != OPEN:
            return None
        dl = min(self.venues[rt.a].ts_recv, self.venues[rt.b].ts_recv) + self.gap_ns
        return dl if dl > rt.gap_at else None

    def run_due_items(self, before: int) -> None:
        while True:
            items = self.due_items(timers=True)
            t, rank, _, what = min(items, key=lambda x: x[:3])
            if t >= before:
                return
            self.run_item(t, rank, what)

    def run_item(self, t: int, rank: int, what: Any) -> None:
        if rank == R_SAMPLE:
            self.sample(t)
            self.next_sample = t + self.sample_ns
            return
        self.now = max(t, self.now)
        if rank == R_MATCH:
            self.match(what)
        elif rank == R_ACK:
            self.ack(what)
        elif rank == R_GAP:  # a leg went silent: close at the last books we saw
            self.route.gap_at = t
            self.send_exit(X_DATA_GAP, self.now)
        else:
            self.time_stop()

    def finish(self) -> Result:
        """End of data: settle in-flight orders on the last books (timers and samples past the
        last event do not fire), take a final equity sample, mark open round trips (the last
        timestamp's decision was taken in ``run``)."""
        while True:
            items = self.due_items(timers=False)
            if not items:
                break
            t, rank, _, what = min(items, key=lambda x: x[:3])
            self.run_item(t, rank, what)
        self.sample(self.now)
        if self.route.state != FLAT:
            self.write_trade(self.now, X_OPEN_AT_END, is_open=True)
        return Result(self.trades, self.fills, self.orders, self.equity, self.legs, self.route,
                      self.venues)

    # ---- equity ----------------------------------------------------------------------
    def sample(self, ts: int) -> None:
        eq, gross = self.capital, 0.0
        for v in self.venues:
            dpos = v.pos
            eq += v.cash
            if dpos != 0.0:
                eq += dpos * v.mid()
                gross += abs(dpos) * v.mid()
        n_open = 1 if self.route.state != FLAT else 0
        self.equity.append({"ts": ts, "equity": eq, "gross_exposure": gross, "n_open": n_open})

    # ---- orders ----------------------------------------------------------------------
    def send(self, i: int, side: int, qty: float, limit_px: float, dec_px: float,
             purpose: int, t: int) -> Order:
        v = self.venues[i]
        self.order_seq += 1
        if self.order_seq > MAX_ORDERS:
            raise RuntimeError(f"runaway: more than {MAX_ORDERS} orders (a retry loop?)")
        jitter = 0
        if v.jitter_ns > 0:
            draw = splitmix64(self.seed ^ ((self.order_seq * GOLDEN) & MASK64))
            jitter = draw % (v.jitter_ns + 1)
        t_arrive = t + v.lat_ns + jitter
        t_deadline = t_arrive + (v.timeout_ns if v.use_exch else 0)
        o = Order(
            oid=self.order_seq, trade_id=self.route.trade_id, inst=i, side=side,
            purpose=purpose, qty=qty, limit_px=limit_px, dec_px=dec_px, t_send=t,
            t_arrive=t_arrive, t_deadline=t_deadline,
        )
        self.live.append(o)
        self.route.inflight += 1
        return o

    def match(self, o: Order) -> None:
        self.venues[o.inst].match(o)
        if o.filled > 0.0:
            self.book_fill(o)
        self.orders.append({
            "oid": o.oid, "trade_id": o.trade_id, "route": 0, "inst": o.inst, "side": o.side,
            "purpose": o.purpose, "qty": o.qty, "limit_px": o.limit_px, "dec_px": o.dec_px,
            "t_send": o.t_send, "t_match": o.t_match, "filled": o.filled,
            "fill_px": o.fill_px, "fee": o.fee, "status": o.status, "reason": o.reason,
        })

    def book_fill(self, o: Order) -> None:
        rt = self.route
        qty, px, fee = o.filled, o.fill_px, o.fee
        slip = o.side * qty * (px - o.dec_px)  # positive = cost
        self.fills.append({
            "ts": o.t_arrive, "oid": o.oid, "trade_id": o.trade_id, "route": 0, "inst": o.inst,
            "side": o.side, "purpose": o.purpose, "qty": qty, "px": px, "fee": fee,
            "dec_px": o.dec_px, "slip_cost": slip, "levels": o.levels,
        })
        cf = -o.side * qty * px
        if o.inst == rt.a:
            rt.cq_a += cf
            rt.fq_a += fee
            rt.vp_a += o.side * qty
        else:
            rt.cq_b += cf
            rt.fq_b += fee
            rt.vp_b += o.side * qty
        rt.dec_pnl += -o.side * qty * o.dec_px
        rt.slip_cost += slip
        rt.fee_sum += fee
        rt.n_fills += 1
        if o.purpose == UNWIND:
            rt.leg_cost += o.side * qty * (px - rt.leg_ref_px) + fee
        elif (rt.naked_leg >= 0 and o.purpose == EXIT and (rt.naked_leg == 0) == (o.inst == rt.a)
              and o.side * rt.naked_qty < 0.0):
            # an exit fill closing the naked residual: what holding it cost (its move from the
            # leg's decision price, and its share of the fill's fee) is legging cost
            n = rt.naked_qty
            part = min(qty, abs(n))
            cost = o.side * part * (px - rt.naked_px) + fee * part / qty
            rt.leg_cost += cost
            rt.naked_cost += cost
            rt.naked_closed += part
            rest = abs(n) - part
            if rest <= 1e-9 * abs(n):  # closed: a row of its own after the incident
                self.legs.append({
                    "trade_id": rt.trade_id, "route": 0, "start_ts": rt.naked_start,
                    "end_ts": o.t_arrive, "excess_qty": rt.naked_closed, "residual_qty": 0.0,
                    "cost": rt.naked_cost, "tries": 0, "closes": 1})
                rt.naked_leg, rt.naked_qty = -1, 0.0
            else:
                rt.naked_qty = rest if n > 0 else -rest

    # ---- strategy: market updates ----------------------------------------------------
    def on_market(self, t: int) -> None:
        rt = self.route
        A, B = self.venues[rt.a], self.venues[rt.b]
        if not (A.has_quote and B.has_quote):
            return
        bps = self.bps_per_price()
        d_ab, d_ba = B.bid() - A.ask(), A.bid() - B.ask()  # edges e_AB, e_BA as price diffs
        if rt.state == FLAT:
            d, best_d = (1, d_ab) if d_ab >= d_ba else (-1, d_ba)
            best = best_d * bps
            # nearest miss: the best edge seen on data the entry guards would accept
            if (self.tradable(t) and not self.gapped(t) and best <= rt.sanity_bps
                    and best - rt.thr > rt.best_miss_bps):
                rt.best_miss_bps, rt.best_miss_ts, rt.best_miss_dir = best - rt.thr, t, d
            if self.at_least_bps(best_d, rt.thr):
                self.try_entry(d, best, bps, t)
            return
        if self.at_least_bps(d_ab, rt.thr) or self.at_least_bps(d_ba, rt.thr):
            rt.skips["busy"] += 1
        if rt.state == OPEN:
            self.check_exit(t)

    def guard(self, edge: float, t: int) -> str | None:
        """Data-quality guards first, so the logged reason is the root one."""
        rt = self.route
        A, B = self.venues[rt.a], self.venues[rt.b]
        if A.crossed or B.crossed:
            return "crossed_book"
        if self.gapped(t):
            return "data_gap"
        if rt.stale_on and (t - A.ts_recv > rt.stale_ns or t - B.ts_recv > rt.stale_ns):
            return "stale_quote"
        if edge > rt.sanity_bps:
            return "sanity"
        if t < rt.cooldown_until:
            return "cooldown"
        return None

    def gapped(self, t: int) -> bool:
        """A leg has been silent longer than the data-gap limit."""
        A, B = self.venues[self.route.a], self.venues[self.route.b]
        return self.gap_ns > 0 and max(t - A.ts_recv, t - B.ts_recv) > self.gap_ns

    def try_entry(self, d: int, edge: float, bps: float, t: int) -> None:
        rt = self.route
        why = self.guard(edge, t)
        if why is not None:
            rt.skips[why] += 1
            return
        buy_i, sell_i = (rt.a, rt.b) if d == 1 else (rt.b, rt.a)
        buyer, seller = self.venues[buy_i], self.venues[sell_i]
        ask, bid = buyer.ask(), seller.bid()
        buy_lim = limit_price(ask, BUY, rt.slip, buyer.tick)
        sell_lim = limit_price(bid, SELL, rt.slip, seller.tick)
        want = rt.notional / ask
        depth_q = min(buyer.available(BUY, buy_lim), seller.available(SELL, sell_lim))
        bal_q = want
        if buyer.kind == SPOT:
            bal_q = min(bal_q, (buyer.cash0 + buyer.cash) / (buy_lim * (1.0 + buyer.fee_rate)))
        if seller.kind == SPOT:
            bal_q = min(bal_q, seller.pos0 + seller.pos)
        qty = floor_lot(min(want, depth_q, bal_q), rt.lot)
        if qty <= 0.0:
            rt.skips["balance" if bal_q < depth_q else "depth"] += 1
            return
        vb = buyer.vwap(BUY, qty, buy_lim)
        vs = seller.vwap(SELL, qty, sell_lim)
        e_vwap = (vs - vb) * bps
        if not (e_vwap >= rt.thr):  # NaN (cannot fill) also fails
            rt.skips["depth"] += 1
            return
        if qty * vb < buyer.min_notional or qty * vs < seller.min_notional:
            rt.skips["min_notional"] += 1
            return
        rt.skips["taken"] += 1
        self.start_trade(d, e_vwap, bps, t)
        self.send(buy_i, BUY, qty, buy_lim, ask, ENTRY, t)
        self.send(sell_i, SELL, qty, sell_lim, bid, ENTRY, t)
        rt.dec_px_a, rt.dec_px_b = (ask, bid) if d == 1 else (bid, ask)

    def premium_bps(self, bps: float) -> float:
        """Mid premium of B over A."""
        return (self.venues[self.route.b].mid() - self.venues[self.route.a].mid()) * bps

    def start_trade(self, d: int, e_vwap: float, bps: float, t: int) -> None:
        rt = self.route
        self.trade_seq += 1
        rt.trade_id = self.trade_seq
        rt.state, rt.dir, rt.entry_ts = ENTERING, d, t
        rt.entry_edge_bps = e_vwap
        rt.entry_prem_bps = self.premium_bps(bps)
        rt.pending_reason = X_NONE
        rt.qty = rt.entry_notional = rt.entry_buy_px = 0.0
        rt.dec_pnl = rt.slip_cost = rt.fee_sum = rt.leg_cost = 0.0
        rt.cq_a = rt.cq_b = rt.fq_a = rt.fq_b = rt.vp_a = rt.vp_b = 0.0
        rt.naked_leg, rt.naked_qty = -1, 0.0
        rt.n_fills = rt.n_legs = rt.unwind_tries = 0
        rt.leg_open = rt.hold_fired = False
        rt.exit_edge_bps = rt.exit_prem_bps = 0.0
        rt.n_entries += 1

    # ---- strategy: exits -------------------------------------------------------------
    def close_value(self, at_mid: bool) -> float:
        """Value of closing both legs now: at mid, or at the touch net of taker fees."""
        rt = self.route
        total = 0.0
        for i, pos in ((rt.a, rt.pos_a), (rt.b, rt.pos_b)):
            if pos == 0.0:
                continue
            v = self.venues[i]
            if at_mid:
                total += pos * v.mid()
            else:
                px = v.bid() if pos > 0 else v.ask()
                total += pos * px - abs(pos) * px * v.fee_rate
        return total

    def sum4(self) -> float:
        """Sum of the four touch prices (= 4 x mid_ref)."""
        A, B = self.venues[self.route.a], self.venues[self.route.b]
        return A.bid() + A.ask() + B.bid() + B.ask()

    def bps_per_price(self) -> float:
        """1e4 / mid_ref: turns a price difference into bps of mid_ref."""
        mid_ref = self.sum4() / 4
        return 1e4 / mid_ref  # (== the kernel's 4e4 / sum4, bit for bit)

    def at_least_bps(self, diff: float, x: float) -> bool:
        """``diff / mid_ref x 1e4 >= x``, tested without a division as the kernel does
        (docs/architecture.md): ``diff x 4e4 >= x x sum4``. Same real test; written this way
        so that an edge landing exactly on a threshold resolves the same on both sides."""
        return diff * 4e4 >= x * self.sum4()

    def closing_diff(self) -> float:
        """The closing edge of the open direction, as a price difference."""
        A, B = self.venues[self.route.a], self.venues[self.route.b]
        return A.bid() - B.ask() if self.route.dir == 1 else B.bid() - A.ask()

    def premium_moved_against(self) -> bool:
        """dir x (premium - entry premium) >= sl_bps, division-free: premium x sum4 =
        (mid_B - mid_A) x 4e4 = (bid_B + ask_B - bid_A - ask_A) x 2e4."""
        rt = self.route
        A, B = self.venues[rt.a], self.venues[rt.b]
        prem_x_sum4 = (B.bid() + B.ask() - A.bid() - A.ask()) * 2e4
        sum4 = self.sum4()
        return rt.dir * (prem_x_sum4 - rt.entry_prem_bps * sum4) >= rt.sl_bps * sum4

    def exit_reason(self, t: int) -> int:
        rt = self.route
        close_d = self.closing_diff()
        if rt.sl_on and self.premium_moved_against():
            return X_STOP_LOSS
        if rt.hold_on and t >= rt.hold_deadline:
            return X_TIME
        if rt.tp_on:
            upnl = ((rt.cq_a - rt.fq_a) + (rt.cq_b - rt.fq_b)
                    + self.close_value(at_mid=False))
            if upnl >= rt.tp_bps * 1e-4 * rt.entry_notional:
                return X_TAKE_PROFIT
        if rt.rev_on and self.at_least_bps(close_d, rt.thr):
            return X_REVERSAL
        if rt.conv_on and self.at_least_bps(close_d, rt.exit_bps):
            return X_CONVERGE
        return X_NONE

    def tradable(self, t: int) -> bool:
        """Exits wait while a book is crossed or (with a quote-age limit) stale: an order
        would meet a book the venue may not be showing any more."""
        rt = self.route
        A, B = self.venues[rt.a], self.venues[rt.b]
        if A.crossed or B.crossed:
            return False
        if rt.stale_on:
            return t - A.ts_recv <= rt.stale_ns and t - B.ts_recv <= rt.stale_ns
        return True

    def check_exit(self, t: int) -> None:
        if not self.tradable(t):
            return
        reason = self.exit_reason(t)
        if reason != X_NONE:
            self.send_exit(reason, t)

    def time_stop(self) -> None:
        """The max-hold timer fired on the clock: evaluate exits on the current books.

        It fires once per round trip. If that exit does not flatten the position, the time rule
        keeps holding (clock >= deadline) and is retried on the next book update, like every
        other exit rule: re-firing at once would meet the same books again (and, with zero
        latency, loop forever at one instant)."""
        self.route.hold_armed = False
        self.route.hold_fired = True
        self.check_exit(self.now)

    def send_exit(self, reason: int, t: int) -> None:
        rt = self.route
        bps = self.bps_per_price()
        rt.exit_edge_bps, rt.exit_prem_bps = self.closing_diff() * bps, self.premium_bps(bps)
        forced = reason in (X_STOP_LOSS, X_TIME, X_DATA_GAP)
        bound = rt.force_slip if forced else rt.slip
        for leg, i, pos in ((0, rt.a, rt.pos_a), (1, rt.b, rt.pos_b)):
            v = self.venues[i]
            qty = floor_lot(abs(pos), v.lot)  # whole lots of the venue
            if qty == 0.0:
                continue
            side = SELL if pos > 0 else BUY
            touch = v.touch(side)
            o = self.send(i, side, qty, limit_price(touch, side, bound, v.tick), touch, EXIT, t)
            if reason == X_DATA_GAP:
                o.last_book, o.t_deadline = True, o.t_arrive
            if leg == 0:
                rt.dec_px_a = touch
            else:
                rt.dec_px_b = touch
        rt.state, rt.pending_reason, rt.hold_armed = EXITING, reason, False
        if rt.inflight == 0:  # nothing to send (dust): done at once
            self.all_acked()

    # ---- acks and the lifecycle ------------------------------------------------------
    def ack(self, o: Order) -> None:
        rt = self.route
        signed = o.side * o.filled
        if o.inst == rt.a:
            rt.pos_a = snap(rt.pos_a + signed, rt.lot)
        else:
            rt.pos_b = snap(rt.pos_b + signed, rt.lot)
        if o.purpose == ENTRY and o.side == BUY and o.filled > 0.0:
            rt.entry_buy_px = o.fill_px
        self.live.remove(o)
        rt.inflight -= 1
        if rt.inflight == 0:
            self.all_acked()

    def all_acked(self) -> None:
        rt, now = self.route, self.now
        if rt.pending_reason != X_NONE:  # after an exit, less than a lot cannot be sold: dust
            for leg in (0, 1):
                v = self.venues[rt.a if leg == 0 else rt.b]
                pos = rt.pos_a if leg == 0 else rt.pos_b
                if abs(pos) < v.lot * (1.0 - 1e-9):
                    if leg == 0:
                        rt.pos_a = 0.0
                    else:
                        rt.pos_b = 0.0
        net = snap(rt.pos_a + rt.pos_b, rt.lot)
        if net != 0.0:  # legged
            if not rt.leg_open:
                rt.leg_open, rt.leg_start, rt.leg_qty = True, now, abs(net)
                rt.leg_cost_at_start = rt.leg_cost
                rt.unwind_tries = 0
            if rt.unwind_tries < rt.unwind_retries:
                self.send_unwind(net)
                return
            self.write_leg(now, abs(net))  # gave up: naked residual reported
            use_a = abs(rt.pos_a) >= abs(rt.pos_b)
            rt.naked_leg, rt.naked_qty = (0 if use_a else 1), net
            rt.naked_px = rt.dec_px_a if use_a else rt.dec_px_b
            rt.naked_start, rt.naked_closed, rt.naked_cost = now, 0.0, 0.0
            self.go_open()
            return
        if rt.leg_open:
            self.write_leg(now, 0.0)
        if rt.pos_a == 0.0 and rt.pos_b == 0.0:
            self.go_flat()
        else:
            self.go_open()

    def send_unwind(self, net: float) -> None:
        """Reduce the larger leg by the excess, at market within the wide bound."""
        rt = self.route
        use_a = abs(rt.pos_a) >= abs(rt.pos_b)
        i = rt.a if use_a else rt.b
        side = SELL if net > 0 else BUY
        v = self.venues[i]
        touch = v.touch(side)
        rt.leg_ref_px = rt.dec_px_a if use_a else rt.dec_px_b
        rt.unwind_tries += 1
        rt.state = UNWINDING
        self.send(i, side, abs(net), limit_price(touch, side, rt.force_slip, v.tick), touch,
                  UNWIND, self.now)

    def go_open(self) -> None:
        rt = self.route
        if rt.pending_reason == X_NONE and rt.qty == 0.0:
            # first time hedged after the entry: size and entry notional are fixed here
            rt.qty = abs(rt.pos_a)
            rt.entry_notional = rt.qty * rt.entry_buy_px
            rt.hold_deadline = rt.entry_ts + rt.hold_ns
        rt.state = OPEN
        rt.hold_armed = rt.hold_on and not rt.hold_fired

    def go_flat(self) -> None:
        rt = self.route
        if rt.n_fills == 0:
            rt.n_unfilled += 1  # neither IOC filled: no position, no round trip
        else:
            reason = rt.pending_reason if rt.pending_reason != X_NONE else X_ENTRY_LEGGED
            self.write_trade(self.now, reason, is_open=False)
            if reason == X_STOP_LOSS:
                rt.cooldown_until = self.now + rt.cooldown_ns
        rt.state, rt.hold_armed, rt.qty = FLAT, False, 0.0

    # ---- records ---------------------------------------------------------------------
    def write_leg(self, end_ts: int, residual: float) -> None:
        rt = self.route
        self.legs.append({
            "trade_id": rt.trade_id, "route": 0, "start_ts": rt.leg_start, "end_ts": end_ts,
            "excess_qty": rt.leg_qty, "residual_qty": residual,
            "cost": rt.leg_cost - rt.leg_cost_at_start,  # this incident's own cost
            "tries": rt.unwind_tries, "closes": 0,
        })
        rt.leg_open = False
        rt.n_legs += 1

    def leg_value(self, leg: int, is_open: bool) -> tuple[float, float, float]:
        """One leg of the round trip now, from its own ledger: (at mid, at the touch net of
        the closing fee, the mid value of the coins it holds). Written in the kernel's order
        of operations (one currency: every FX is 1.0)."""
        rt = self.route
        v = self.venues[rt.a if leg == 0 else rt.b]
        cq, fq, vp = (rt.cq_a, rt.fq_a, rt.vp_a) if leg == 0 else (rt.cq_b, rt.fq_b, rt.vp_b)
        q = cq - fq + 0.0
        m = ex = 0.0
        if vp != 0.0:
            m = vp * 0.5 * (v.bid() + v.ask())
            if is_open:
                px = v.bid() if vp > 0 else v.ask()
                ex = vp * px - abs(vp) * px * v.fee_rate
        return (q + m) * 1.0, (q + ex) * 1.0, m * 1.0

    def write_trade(self, ts: int, reason: int, is_open: bool) -> None:
        rt = self.route
        mid_a, ex_a, m_a = self.leg_value(0, is_open)
        mid_b, ex_b, m_b = self.leg_value(1, is_open)
        net_mid = mid_a + mid_b
        net = (ex_a + ex_b) if is_open else net_mid
        denom = rt.entry_notional if rt.entry_notional > 0.0 else rt.notional
        self.trades.append({
            "trade_id": rt.trade_id, "route": 0, "dir": rt.dir, "is_open": int(is_open),
            "entry_ts": rt.entry_ts, "exit_ts": ts, "qty": rt.qty,
            "entry_edge_bps": rt.entry_edge_bps,
            "exit_edge_bps": math.nan if is_open else rt.exit_edge_bps,
            "entry_prem_bps": rt.entry_prem_bps,
            "exit_prem_bps": math.nan if is_open else rt.exit_prem_bps,
            "entry_notional": rt.entry_notional,
            "gross_pnl": net_mid + rt.fee_sum - 0.0, "price_pnl": rt.dec_pnl + m_a + m_b,
            "slippage": rt.slip_cost, "fees": rt.fee_sum, "fx_pnl": 0.0 + 0.0, "funding": 0.0,
            "net_pnl": net, "net_pnl_mid": net_mid,
            "r_multiple": net / (denom * rt.r_unit_bps * 1e-4),
            "exit_reason": X_OPEN_AT_END if is_open else reason,
            "legging_cost": rt.leg_cost, "n_fills": rt.n_fills, "n_leg_incidents": rt.n_legs,
        })


def run_naive(cfg: Config, arrays: Any) -> Result:
    """Run the model on an ``arbkit.data.events.EventArrays`` (the kernel's own input)."""
    model = NaiveModel(cfg, list(arrays.inst_keys), dict(arrays.use_exch))
    return model.run(events_from_arrays(arrays.events, arrays.depth))
