"""Kernel state layout: structured dtypes, integer codes and their text tables.

Everything the numba loop touches is declared here, so a reader finds the whole state in one
file. Times are int64 nanoseconds; prices in quote currency; quantities in base units.
"""

from __future__ import annotations

import numpy as np

# ---- event kinds -------------------------------------------------------------------------
EV_QUOTE = 1  # book update of one instrument (L1 in the record; deeper levels via depth_row)
EV_HEARTBEAT = 2  # advances time only (paper/live inject these so timers fire on a quiet feed)
EV_FX = 3  # an FX rate: ``inst`` is the FX series index, ``bid_px`` the rate (quote per base)
EV_FUNDING = 4  # a perpetual's funding: ``inst`` the instrument, ``bid_px`` the realised rate,
# ``ask_px`` the mark price
EV_CONTROL = 5  # an operator control: ``inst`` is the control code (CTL_*), ``bid_px`` its
# argument (a base asset's id for the symbol controls)
CTL_KILL = 1  # kill switch: halt and flatten everything
CTL_STOP = 2  # reduce only: no new entries anywhere; open positions keep their exit rules
CTL_RESUME = 3  # lift a stop (not a kill, nor a drawdown halt)
CTL_SYMBOL_OFF = 4  # no new entries on the routes of one base asset (argument: its id)
CTL_SYMBOL_ON = 5
CONTROL_TEXT = ("", "kill", "stop", "resume", "symbol_off", "symbol_on")
EV_ORDER = 6  # a report of an EXTERNAL venue on one of our orders (runtime/ → kernel):
# ``depth_row`` the order id, ``bid_qty`` what this report filled (instrument units),
# ``bid_px`` its average price, ``ask_qty`` its fee (quote currency value), ``ask_px`` the
# order's final status (ST_*) or 0 while it is still working, ``inst`` a reject reason (RJ_*)
# when nothing filled, else the number of venue trades (book levels) the fill was made of

# ---- venue modes ----------------------------------------------------------------------------
VENUE_SIM = 0  # the kernel matches orders itself (backtest, paper)
VENUE_EXTERNAL = 1  # orders go out (the outbox: active, unmatched, ``out`` = 0); the venue's
# reports come back as EV_ORDER events and are booked by the same fill function

EVENT_DTYPE = np.dtype(
    [
        ("ts_recv", "i8"),  # when the strategy sees it (sort key)
        ("ts_exch", "i8"),  # exchange time, offset-corrected; == ts_recv on one timeline
        # unsigned on purpose: numba adds a negative-index wrap-around to every array access
        # with a signed index; the instrument index is used for ~10 accesses per event
        ("inst", "u4"),
        ("kind", "i4"),
        ("bid_px", "f8"),
        ("bid_qty", "f8"),
        ("ask_px", "f8"),
        ("ask_qty", "f8"),
        ("depth_row", "i8"),  # row in the depth array, -1 when the event is L1 only
    ]
)

# ---- sides, instrument kinds -------------------------------------------------------------
BUY = 1
SELL = -1
KIND_SPOT = 0
KIND_LINEAR_PERP = 1
KIND_INVERSE_PERP = 2  # coin-margined: orders in contracts of ``cv`` quote each (core/inverse.py)
BID = 0
ASK = 1

# ---- route states ------------------------------------------------------------------------
FLAT = 0
ENTERING = 1
OPEN = 2
EXITING = 3
UNWINDING = 4
ROUTE_STATE_TEXT = ("flat", "entering", "open", "exiting", "unwinding")

# ---- order purpose and status ------------------------------------------------------------
P_ENTRY = 0
P_EXIT = 1
P_UNWIND = 2
P_CHASE = 3  # the legging policy "chase": the missing quantity on the lagging leg
PURPOSE_TEXT = ("entry", "exit", "unwind", "chase")

# ---- legging policies ----------------------------------------------------------------------
LEG_UNWIND = 0
LEG_CHASE = 1
LEG_HOLD = 2

ST_NEW = 0
ST_ACCEPTED = 1
ST_PARTIAL = 2  # partially filled, IOC remainder cancelled
ST_FILLED = 3
ST_CANCELLED = 4  # IOC, nothing within the limit
ST_REJECTED = 5
ORDER_STATUS_TEXT = ("new", "accepted", "partially_filled", "filled", "cancelled", "rejected")

RJ_NONE = 0
RJ_BALANCE = 1
RJ_NO_BOOK = 2
RJ_CROSSED = 3
RJ_STALE = 4  # the venue's book is older than max_quote_age: treated as unavailable
RJ_NO_BAR = 5  # bar mode: no bar closed after the order arrived (within the data-gap limit)
# EXTERNAL venue (live): venues/execution.py and runtime/live.py report these
RJ_FILTER = 6  # refused before sending: below the lot or min notional after rounding
RJ_VENUE = 7  # the venue refused it (filters, market closed, bad timestamp ...)
RJ_RATE_LIMIT = 8  # 429/418/-1015: not booked; nothing is sent until Retry-After passed
RJ_HALTED = 9  # the execution client is halted (reconciliation found something unknown)
RJ_LIMIT = 10  # over the session's hard cap (live --max-notional): never sent
REJECT_TEXT = ("", "insufficient_balance", "no_book", "crossed_book", "stale_book", "no_next_bar",
               "venue_filter", "venue_reject", "rate_limited", "halted", "over_live_cap")

# ---- exit reasons ------------------------------------------------------------------------
X_NONE = 0
X_CONVERGE = 1
X_TAKE_PROFIT = 2
X_STOP_LOSS = 3
X_TIME = 4
X_REVERSAL = 5
X_OPEN_AT_END = 6
X_ENTRY_LEGGED = 7  # entry filled on one leg only and was unwound flat
X_RISK = 8  # flattened by a risk guard (max drawdown)
X_KILL = 9  # flattened by the kill switch
X_SCALE_OUT = 10  # a partial exit (never a round trip's final reason)
X_DATA_GAP = 11  # a leg went silent longer than run.max_gap_s: closed at the last books
EXIT_REASON_TEXT = (
    "none", "converge", "take_profit", "stop_loss", "time", "reversal", "open_at_end",
    "entry_legged", "risk", "kill", "scale_out", "data_gap",
)

# ---- why an opportunity was not taken (counted per route) --------------------------------
SK_CROSSED = 0
SK_STALE = 1
SK_SANITY = 2
SK_BUSY = 3  # orders in flight or a position already open
SK_COOLDOWN = 4
SK_DEPTH = 5  # VWAP for the size no longer clears the threshold within max slippage
SK_BALANCE = 6
SK_MIN_NOTIONAL = 7
SK_TAKEN = 8  # not a skip: the entry was sent
SK_STALE_FX = 9  # an FX rate a leg needs is older than its series' max age
SK_SYMBOL_CAP = 10  # risk guards ([risk]): pre-trade
SK_GROSS_CAP = 11
SK_VENUE_IMBALANCE = 12
SK_SLIPPAGE = 13
SK_SAME_JUMP = 14
SK_LOSS_STREAK = 15
SK_RATE_LIMIT = 16
SK_HALTED = 17  # trading halted by a running guard (daily loss, drawdown, kill)
SK_SAME_JUMP_WAIT = 18  # an entry signal waiting for the same-jump guard's confirmation
SK_DATA_GAP = 19  # a leg has been silent longer than run.max_gap_s
SK_SYMBOL_OFF = 20  # the operator turned this route's symbol off
N_SKIP = 21
SKIP_TEXT = (
    "crossed_book", "stale_quote", "sanity", "busy", "cooldown", "depth", "balance",
    "min_notional", "taken", "stale_fx", "symbol_cap", "gross_cap", "venue_imbalance",
    "slippage", "same_jump", "loss_streak", "rate_limit", "halted", "same_jump_wait",
    "data_gap", "symbol_off",
)

# ---- guard log codes: the SK_* codes of the pre-trade guards, and these --------------------
G_DAILY_LOSS = 100  # entries stop until the next UTC day
G_DAY_RESET = 101  # a new UTC day: a daily-loss halt is lifted
G_DRAWDOWN = 102  # halt for good and flatten
G_KILL = 103  # kill switch
G_LOSS_STREAK = 104  # a route starts its loss-streak pause
G_TRANSFER = 105  # a rebalancing transfer sent (route = receiving wallet, value, limit = fee)
G_TRANSFER_IN = 106  # ... and arrived
G_MARKET_GAP = 107  # no market event for longer than run.max_gap_s (ts = its start, value = s)
G_CONTROL = 108  # an operator control applied (value = CTL_* code, limit = its argument)
HALT_NONE = 0
HALT_DAILY = 1
HALT_DRAWDOWN = 2
HALT_KILL = 3
HALT_STOP = 4  # the operator's stop: reduce only until resumed

# ---- run_chunk status --------------------------------------------------------------------
S_DONE = 0
S_FULL = 1  # an output buffer is nearly full: grow it and call again from `next_index`
S_OUTBOX = 2  # an order entered an EXTERNAL venue's outbox: send it (and feed back what the
# venue answers at once) before calling again from `next_index`; nothing later was applied

# ---- state -------------------------------------------------------------------------------
INST_DTYPE = np.dtype(
    [
        # parameters
        ("kind", "i4"),
        ("use_exch", "i4"),
        ("fee_rate", "f8"),  # taker fee as a fraction of notional, paid in quote currency
        ("lot", "f8"),
        ("tick", "f8"),
        ("min_notional", "f8"),
        ("lat_ns", "i8"),
        ("jitter_ns", "i8"),
        ("ack_ns", "i8"),
        ("match_timeout_ns", "i8"),
        ("bar", "i4"),  # bar mode: an order fills at the next bar of its instrument
        ("ext", "i4"),  # VENUE_EXTERNAL: a real venue matches its orders (core/orders.py)
        # market state
        ("has_quote", "i4"),
        ("crossed", "i4"),
        ("ts_recv", "i8"),
        ("ts_exch", "i8"),
        ("n_pending", "i4"),  # orders sent to this venue and not matched yet
        ("taken_dirty", "i4"),  # our orders consumed size since the last book update
        # venue balances. cash/pos are what trading changed since the start (kept apart from the
        # initial balances so small PnL is not rounded against a large pre-funded balance);
        # what the venue holds is cash0 + cash and pos0 + pos.
        ("cash", "f8"),
        ("pos", "f8"),
        ("cash0", "f8"),
        ("pos0", "f8"),
        ("fees", "f8"),
        # reference currency: price in quote ccy x fx = price in the reference currency
        ("fx", "f8"),  # 1.0 when quoted in the reference currency
        ("fx_id", "i4"),  # FX series converting the quote ccy (-1: none needed)
        ("fx_inv", "i4"),  # 1: the series is quoted reference/quote, so fx = 1 / rate
        ("fee_in_base", "i4"),  # spot buys pay the fee in the received asset (Binance spot)
        ("funding", "f8"),  # funding paid (-) or received (+), quote ccy
        ("venue_id", "i4"),  # index into the venue arrays (rate limit, imbalance)
        # inverse perpetuals (core/inverse.py): ``pos`` is the base-equivalent of the position
        # (what it was worth in coins at the prices it was opened at), ``contracts`` the count
        ("cv", "f8"),  # contract value in the quote currency (0: not an inverse perpetual)
        ("contracts", "f8"),
        # spot balances live in wallets (core/wallet.py): a venue's shared one per currency,
        # or the instrument's own pair; -1 for perpetuals (no balance check)
        ("w_quote", "i4"),
        ("w_base", "i4"),
        # the account's lines (docs/metrics.md, "The account identity")
        ("mid0", "f8"),  # first mid and first FX: the treasury line's starting marks
        ("fx0", "f8"),
        ("conv_q", "f8"),  # closed round trips' quote cash left on this venue (quote ccy) ...
        ("conv_b", "f8"),  # ... and coins (fee dust): valued at their close from then on ...
        ("conv_ref", "f8"),  # ... at this value (reference ccy); later moves are treasury
        ("fund_free", "f8"),  # funding no route held a position for (quote ccy)
        ("xfer_c", "f8"),  # transfers' fees and relocations booked here (quote ccy, coins)
        ("xfer_p", "f8"),
        ("in_group", "i4"),  # its place (from 1) among the instruments updated at the pending
        # timestamp (loop.decide_group), 0 when not updated
    ]
)

FX_DTYPE = np.dtype(
    [
        ("rate", "f8"),  # last rate, quote per base of the series
        ("ts", "i8"),  # receive time of the last rate
        ("max_age_ns", "i8"),  # older than this blocks entries (0 = no limit)
        ("n", "i8"),  # rates seen
    ]
)

ROUTE_DTYPE = np.dtype(
    [
        # parameters
        ("inst_a", "i4"),
        ("inst_b", "i4"),
        ("thr_entry_bps", "f8"),
        ("conv_on", "i4"),
        ("exit_bps", "f8"),
        ("tp_on", "i4"),
        ("tp_bps", "f8"),
        ("sl_on", "i4"),
        ("sl_bps", "f8"),
        ("hold_on", "i4"),
        ("hold_ns", "i8"),
        ("rev_on", "i4"),
        ("stale_on", "i4"),
        ("stale_ns", "i8"),
        ("sanity_bps", "f8"),
        ("notional", "f8"),
        ("slip", "f8"),  # max slippage bound of entry/normal exit IOC limits, fraction
        ("force_slip", "f8"),  # bound for unwinds and forced exits (stop, time), fraction
        ("cooldown_ns", "i8"),
        ("lot", "f8"),  # common lot of both legs
        ("fees4_bps", "f8"),
        ("r_unit_bps", "f8"),  # denominator of the R multiple, bps of entry notional
        ("unwind_retries", "i4"),
        ("legging", "i4"),  # LEG_*
        ("chase_retries", "i4"),
        ("chase_slip", "f8"),
        ("scale_on", "i4"),
        ("scale_bps", "f8"),  # closing edge at which part of the position is closed
        ("scale_frac", "f8"),
        # dynamic state
        ("state", "i4"),
        ("dir", "i4"),
        ("inflight", "i4"),
        ("pos_a", "f8"),  # position as the strategy knows it (updated at acks)
        ("pos_b", "f8"),
        ("cooldown_until", "i8"),
        ("hold_deadline", "i8"),
        ("hold_armed", "i4"),  # the time stop is a pending wake-up
        ("hold_fired", "i4"),  # the time stop fired for this round trip (it fires once)
        ("dec_px_a", "f8"),  # touch at the last entry/exit decision, per leg
        ("dec_px_b", "f8"),
        ("entry_buy_px", "f8"),  # buy leg's entry fill VWAP (entry notional = qty x this)
        ("tp_k", "f8"),  # take-profit test while OPEN:
        # (ca*px_a + qa)*fx_a + (cb*px_b + qb)*fx_b >= tp_k (lifecycle._take_profit_terms)
        ("tp_qa", "f8"),
        ("tp_qb", "f8"),
        ("tp_ca", "f8"),
        ("tp_cb", "f8"),
        ("tp_sa", "i4"),  # book side each leg would close against (BID for a long leg)
        ("tp_sb", "i4"),
        ("n_entries", "i8"),  # entry decisions sent
        ("n_unfilled", "i8"),  # entries where neither IOC filled (no trade)
        ("unwind_tries", "i4"),
        ("chase_tries", "i4"),
        ("scaled", "i4"),  # the scale-out exit happened in this round trip
        ("pending_reason", "i4"),  # exit reason being executed
        ("trade_id", "i8"),
        ("entry_ts", "i8"),
        ("exit_ts", "i8"),
        ("qty", "f8"),  # hedged quantity held
        ("entry_edge_bps", "f8"),
        ("entry_prem_bps", "f8"),
        ("entry_notional", "f8"),
        ("exit_edge_bps", "f8"),
        ("exit_prem_bps", "f8"),
        ("dec_pnl", "f8"),  # PnL at decision prices (the price move)
        ("slip_cost", "f8"),  # fill vs touch at decision, positive = cost
        ("fee_sum", "f8"),  # fees, each valued at its fill's FX
        ("fx_a0", "f8"),  # each leg's FX at the entry decision: price and slippage use it
        ("fx_b0", "f8"),
        ("funding", "f8"),  # funding on the round trip's legs, each at its payment's FX
        # the round trip's own ledger per leg, as the venue booked it (at the match, not the
        # ack): the quote currency it moved and the coins it holds. The round trip is worth
        # ``(cq - fq + uq) x fx + vp x mid x fx`` of each leg (docs/metrics.md)
        ("cq_a", "f8"),  # sum of -side x qty x px (quote ccy; qty = coins that arrived)
        ("cq_b", "f8"),
        ("fq_a", "f8"),  # fees in the quote currency (a coin fee: its value at the fill)
        ("fq_b", "f8"),
        ("fr_a", "f8"),  # the same fees, each at its fill's FX (reference ccy)
        ("fr_b", "f8"),
        ("uq_a", "f8"),  # funding received (+) or paid (-), quote ccy ...
        ("uq_b", "f8"),
        ("ur_a", "f8"),  # ... and at each payment's FX
        ("ur_b", "f8"),
        ("vp_a", "f8"),  # position the venue holds for this round trip (base-equivalent)
        ("vp_b", "f8"),
        ("ctr_a", "f8"),  # ... and in contracts, on an inverse perpetual leg (core/inverse.py)
        ("ctr_b", "f8"),
        ("leg_cost", "f8"),  # legging cost of the round trip so far (all incidents)
        ("leg_cost0", "f8"),  # leg_cost when the open incident started
        ("n_fills", "i4"),
        ("n_legs", "i4"),
        ("leg_open", "i4"),  # a legging incident is open
        ("leg_start", "i8"),
        ("leg_qty", "f8"),
        ("leg_ref_px", "f8"),
        # opportunity statistics
        ("best_miss_bps", "f8"),  # max over FLAT events of (edge - entry threshold)
        ("best_miss_ts", "i8"),
        ("best_miss_dir", "i4"),
        # EWMA anchor of the mid premium (strategy.anchor = "ewma")
        ("anchor_on", "i4"),
        ("anchor_tau_ns", "f8"),  # half-life / ln 2
        ("anchor_warm_ns", "i8"),  # no entries until the anchor has run this long
        ("anchor_bps", "f8"),
        ("anchor_ts", "i8"),
        ("anchor_t0", "i8"),
        ("anchor_n", "i8"),
        ("entry_anchor_bps", "f8"),
        # risk guards
        ("base_id", "i4"),  # the base asset (symbol cap)
        ("signal_ts", "i8"),  # last time the entry signal fired (same-jump guard)
        ("sig_first", "i8"),  # start of the current signal episode (same-jump confirmation)
        ("streak", "i4"),  # losing round trips in a row
        ("streak_until", "i8"),  # loss-streak pause ends
        ("last_block", "i4"),  # last guard that blocked an entry (the log gets one row per episode)
        ("force_exit", "i4"),  # X_RISK / X_KILL: flatten at the next chance
        ("plugin", "i4"),  # a user signal decides entries (core/plugin.py)
        ("fx_route", "i4"),  # a leg is quoted in another currency than the reference
        ("sig_force", "i4"),  # the signal asked to enter whatever the threshold (+-2)
        ("off", "i4"),  # the operator turned this route's symbol off: no new entries
        ("hedge_tol", "f8"),  # legs within this (base units) count as hedged: half a contract
        # of an inverse leg, whose size is whole contracts, and the coins a fee paid in the
        # received asset keeps from arriving (0 when neither applies)
        ("fixed_qty", "f8"),  # strategy.qty: size in base units (0: size by notional)
        ("gap_at", "i8"),  # data-gap deadline that already fired (it fires once per gap)
        ("naked_leg", "i4"),  # a legging residual held naked: 0 leg a, 1 leg b, -1 none
        ("naked_qty", "f8"),  # its signed size
        ("naked_px", "f8"),  # the decision price of the leg it came from
        ("naked_start", "i8"),  # when it was left naked
        ("naked_closed", "f8"),  # of it, closed so far by the exit ...
        ("naked_cost", "f8"),  # ... and what that cost (a row of its own when it is closed)
    ]
)

ORDER_DTYPE = np.dtype(
    [
        ("active", "i4"),
        ("matched", "i4"),
        ("oid", "i8"),
        ("route", "i4"),
        ("inst", "i4"),
        ("side", "i4"),
        ("purpose", "i4"),
        ("trade_id", "i8"),
        ("qty", "f8"),
        ("limit_px", "f8"),
        ("dec_px", "f8"),  # touch at decision time (ask for a buy, bid for a sell)
        ("t_send", "i8"),
        ("t_arrive", "i8"),  # on the exchange timeline
        ("t_deadline", "i8"),  # receive-timeline time by which it is matched regardless
        ("t_match", "i8"),
        ("t_ack", "i8"),
        ("filled", "f8"),  # in the instrument's units (contracts for an inverse perpetual)
        ("filled_be", "f8"),  # its base-equivalent (== filled unless inverse): the route's unit
        ("fill_px", "f8"),
        ("fee", "f8"),
        ("status", "i4"),
        ("reason", "i4"),
        ("stale_ns", "i8"),  # the route's max quote age: an older book rejects it (0 = none)
        ("last_book", "i4"),  # a data-gap exit: fills against the last book, whatever its age
        ("out", "i4"),  # EXTERNAL venue: 1 once the runtime took the order from the outbox
    ]
)

WALLET_DTYPE = np.dtype(
    [
        ("bal0", "f8"),  # starting balance
        ("bal", "f8"),  # change since the start: fills, transfers (kept apart, as inst cash)
        ("ccy", "i4"),  # currency code (transfers move between wallets of one currency)
        ("shared", "i4"),  # a venue's [[wallets]] balance (may send and receive transfers)
        ("floor", "f8"),  # refill below this (0: never)
        ("fee_fixed", "f8"),  # fixed fee of a transfer out of this wallet
        ("owner", "i4"),  # instrument whose ledger books this wallet's transfer fees
        ("owner_base", "i4"),  # 1: the fee is in the owner's base (pos), 0: its quote (cash)
        ("incoming", "f8"),  # a transfer in flight to this wallet (net of fee)
        ("sent", "f8"),  # its amount as sent
        ("arrive", "i8"),
        ("n_in", "i8"),
        ("fees", "f8"),  # transfer fees this wallet paid as sender, in its currency
        ("src", "i4"),  # the wallet the transfer in flight comes from
    ]
)

GLOB_DTYPE = np.dtype(
    [
        ("now", "i8"),  # kernel clock: last processed time, never goes backwards
        ("next_wakeup", "i8"),
        ("next_sample", "i8"),
        ("sample_ns", "i8"),
        ("seed", "u8"),
        ("order_seq", "i8"),
        ("trade_seq", "i8"),
        ("capital", "f8"),
        ("n_fills", "i8"),
        ("n_orders", "i8"),
        ("n_trades", "i8"),
        ("n_equity", "i8"),
        ("n_legs", "i8"),
        ("n_active", "i8"),  # order slots in use (lets wake-ups skip the slot scan)
        ("n_events", "i8"),
        ("n_slow_wakeups", "i8"),  # wake-up items handled by the general (slow) path
        ("started", "i4"),
        ("halt", "i4"),  # HALT_*: entries stopped by a running guard
        ("day", "i8"),  # UTC day of the last equity sample
        ("day_start_eq", "f8"),
        ("peak_eq", "f8"),
        ("n_guard", "i8"),
        ("running_guards", "i4"),  # daily loss or drawdown on: samples take the slow path
        ("xfer_on", "i4"),  # [transfers] rebalancing on
        ("xfer_fee_bps", "f8"),
        ("xfer_delay_ns", "i8"),
        ("n_transit", "i8"),  # transfers in flight
        ("gap_ns", "i8"),  # run.max_gap_s: a leg silent longer closes its positions (0 = off)
        ("t_first", "i8"),  # first and last market event (the run's span) ...
        ("t_last", "i8"),
        ("gaps_ns", "i8"),  # ... less the silent stretches longer than gap_ns
        ("pend_t", "i8"),  # timestamp whose decisions wait for all its events (-1: none)
        ("last_eq", "f8"),  # the last equity sample (what the running guards read: the
        # output buffers may be drained by a live session, never read back)
        ("n_dirty", "i8"),  # instruments updated at pend_t, in order (the ``dirty`` array)
        ("n_outbox_new", "i8"),  # orders put in the outbox since the kernel last returned
    ]
)

FILL_DTYPE = np.dtype(
    [
        ("ts", "i8"), ("oid", "i8"), ("trade_id", "i8"), ("route", "i4"), ("inst", "i4"),
        ("side", "i4"), ("purpose", "i4"), ("qty", "f8"), ("px", "f8"), ("fee", "f8"),
        ("dec_px", "f8"), ("slip_cost", "f8"), ("levels", "i4"), ("fx", "f8"),
    ]
)

ORDER_LOG_DTYPE = np.dtype(
    [
        ("oid", "i8"), ("trade_id", "i8"), ("route", "i4"), ("inst", "i4"), ("side", "i4"),
        ("purpose", "i4"), ("qty", "f8"), ("limit_px", "f8"), ("dec_px", "f8"),
        ("t_send", "i8"), ("t_match", "i8"), ("filled", "f8"), ("fill_px", "f8"),
        ("fee", "f8"), ("status", "i4"), ("reason", "i4"),
    ]
)

TRADE_DTYPE = np.dtype(
    [
        ("trade_id", "i8"), ("route", "i4"), ("dir", "i4"), ("is_open", "i4"),
        ("entry_ts", "i8"), ("exit_ts", "i8"), ("qty", "f8"),
        ("entry_edge_bps", "f8"), ("exit_edge_bps", "f8"),
        ("entry_prem_bps", "f8"), ("exit_prem_bps", "f8"), ("entry_anchor_bps", "f8"),
        ("entry_notional", "f8"),
        ("gross_pnl", "f8"), ("price_pnl", "f8"), ("slippage", "f8"), ("fees", "f8"),
        ("fx_pnl", "f8"), ("funding", "f8"), ("net_pnl", "f8"), ("net_pnl_mid", "f8"),
        ("r_multiple", "f8"), ("exit_reason", "i4"), ("legging_cost", "f8"),
        ("n_fills", "i4"), ("n_leg_incidents", "i4"), ("scaled_out", "i4"),
    ]
)

EQUITY_DTYPE = np.dtype(
    [("ts", "i8"), ("equity", "f8"), ("gross_exposure", "f8"), ("n_open", "i4")]
)

LEG_DTYPE = np.dtype(
    [
        ("trade_id", "i8"), ("route", "i4"), ("start_ts", "i8"), ("end_ts", "i8"),
        ("excess_qty", "f8"), ("residual_qty", "f8"), ("cost", "f8"), ("tries", "i4"),
        # 1: this row is the exit closing the naked residual the incident before it left (its
        # cost is what holding that residual cost); rows are only ever appended
        ("closes", "i4"),
    ]
)

GUARD_DTYPE = np.dtype(
    [("ts", "i8"), ("code", "i4"), ("route", "i4"), ("value", "f8"), ("limit", "f8")]
)

RISK_DTYPE = np.dtype(
    [
        # caps are +inf when off (nothing exceeds them); counts 0 when off
        ("symbol_cap", "f8"),
        ("gross_cap", "f8"),
        ("imbalance_cap", "f8"),
        ("daily_loss", "f8"),
        ("max_dd", "f8"),
        ("slip_bps", "f8"),
        ("jump_routes", "i4"),
        ("jump_ns", "i8"),
        ("streak", "i4"),
        ("streak_ns", "i8"),
        ("rate", "f8"),
    ]
)

VENUE_DTYPE = np.dtype([("second", "i8"), ("orders", "i8")])  # orders in the current second


def guard_text(code: int) -> str:
    """Name of a guard-log code."""
    names = {G_DAILY_LOSS: "daily_loss", G_DAY_RESET: "day_reset", G_DRAWDOWN: "drawdown",
             G_KILL: "kill", G_LOSS_STREAK: "loss_streak", G_TRANSFER: "transfer_sent",
             G_TRANSFER_IN: "transfer_arrived", G_MARKET_GAP: "market_gap",
             G_CONTROL: "control"}
    return names.get(code) or SKIP_TEXT[code]
