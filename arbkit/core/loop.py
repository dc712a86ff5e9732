"""The one event loop every mode calls: ``run_chunk(s, events, depth, start, flush)``.

Backtests pass the whole array (or chunks of it), paper/live pass one event at a time; the
result is identical by construction because all state lives in ``s`` and time comes only from
the events. Before an event at receive time ``t`` is applied, every wake-up due strictly before
``t`` runs in time order (order matches, acks, time stops and data-gap exits, equity samples),
so timers fire from the kernel's own deadline even when the feed is quiet. Events at the same
time as a wake-up are applied first (the venue's book at ``t`` includes updates stamped ``t``).

**One decision per timestamp.** Every event of one receive time is applied before any route
decides: a route whose legs both move at ``t`` sees both moves, never a half-updated world.
When the next event is later (or the chunk ends with ``flush``), the routes of the instruments
updated at ``t`` are evaluated, each route once, in the order its instruments first updated.
A chunk that ends without ``flush`` leaves the decision pending until the next event that is
later than ``t`` (so chunked = whole); paper/live pass ``flush=1`` when their queue is drained.
"""

from __future__ import annotations

from arbkit.core.book import apply_quote
from arbkit.core.carry import apply_funding, apply_fx
from arbkit.core.halt import DAY, control, kill, running_check
from arbkit.core.jit import njit
from arbkit.core.ledger import has_room, write_equity, write_equity_arrays, write_trade
from arbkit.core.lifecycle import process_ack
from arbkit.core.orders import apply_report, match_arrived, match_bar, match_order
from arbkit.core.risk import log_guard
from arbkit.core.strategy import (
    A_ENTRY_AB,
    A_EXIT,
    A_NONE,
    check_exit,
    on_market,
    send_exit,
    try_entry,
)
from arbkit.core.types import (
    ASK,
    BID,
    CTL_KILL,
    EV_CONTROL,
    EV_FUNDING,
    EV_FX,
    EV_ORDER,
    EV_QUOTE,
    FLAT,
    G_MARKET_GAP,
    OPEN,
    S_DONE,
    S_FULL,
    S_OUTBOX,
    X_DATA_GAP,
    X_OPEN_AT_END,
)
from arbkit.core.wallet import wallet_settle

NEVER = 9_223_372_036_854_775_807
ROOM = 4  # records one wake-up step can write to any one buffer


@njit
def run_chunk(s, ev, depth, start, flush):
    """Process ``ev[start:]``. Returns (status, next index): S_FULL asks the caller to grow
    the output buffers and call again from that index; S_DONE when the chunk is consumed.
    ``flush=1``: the chunk's last timestamp is complete, decide on it now (see module doc)."""
    g = s.glob[0]
    # hot state as locals: the per-event path never passes the whole state tuple around
    inst = s.inst
    route = s.route
    book_px = s.book_px
    book_qty = s.book_qty
    book_taken = s.book_taken
    book_n = s.book_n
    skips = s.skips
    ptr = s.inst_route_ptr
    idx = s.inst_route_idx
    equity = s.equity
    glob = s.glob
    fx = s.fx
    room = ROOM * s.orders.shape[0]
    any_ext = False  # exchange-timeline or bar-mode instruments match on their own updates
    for i in range(inst.shape[0]):
        if inst[i]["use_exch"] == 1 or inst[i]["bar"] == 1:
            any_ext = True
    n = ev.shape[0]
    # clock, wake-up and event count live in registers; synced with g around every slow path
    now = g["now"]
    wake = g["next_wakeup"]
    counted = g["n_events"] - start
    gap = g["gap_ns"]
    last_q = g["t_last"]
    gaps = g["gaps_ns"]
    pend = g["n_dirty"] > 0
    pend_t = g["pend_t"]
    k = start
    while k < n:
        e = ev[k]
        t = e["ts_recv"]
        if pend and t != pend_t:  # every event of pend_t is in: its decisions come first
            if not has_room(s, room):
                g["now"], g["n_events"], g["t_last"], g["gaps_ns"] = now, counted + k, last_q, gaps
                return S_FULL, k
            g["now"] = now
            decide_group(s, pend_t)
            pend = False
            wake = g["next_wakeup"]
            if g["n_outbox_new"] > 0:  # an EXTERNAL venue's order: out before event k
                g["n_outbox_new"] = 0
                g["n_events"], g["t_last"], g["gaps_ns"] = counted + k, last_q, gaps
                return S_OUTBOX, k
        if wake < t:
            g["now"] = now
            ok = _samples_only(glob, inst, route, book_px, equity, t) or _wakeups(s, t)
            now = g["now"]
            wake = g["next_wakeup"]
            if not ok:
                g["n_events"], g["t_last"], g["gaps_ns"] = counted + k, last_q, gaps
                return S_FULL, k
            if g["n_outbox_new"] > 0:  # a timer's order (time stop, data gap): out first
                g["n_outbox_new"] = 0
                g["n_events"], g["t_last"], g["gaps_ns"] = counted + k, last_q, gaps
                return S_OUTBOX, k
        if e["kind"] == EV_QUOTE:
            i = e["inst"]
            if gap > 0 and t - last_q > gap and not has_room(s, room):
                g["now"], g["n_events"], g["t_last"], g["gaps_ns"] = now, counted + k, last_q, gaps
                return S_FULL, k
            if any_ext and inst[i]["n_pending"] > 0:
                if not has_room(s, room):
                    g["now"], g["n_events"], g["t_last"], g["gaps_ns"] = (now, counted + k,
                                                                         last_q, gaps)
                    return S_FULL, k
                if inst[i]["use_exch"] == 1:
                    match_arrived(s, i, e["ts_exch"])
                    wake = g["next_wakeup"]
            first = inst[i]["has_quote"] == 0
            apply_quote(inst, book_px, book_qty, book_taken, book_n, ev, depth, k)
            if first:  # the treasury line's starting mark
                inst[i]["mid0"] = 0.5 * (book_px[i, BID, 0] + book_px[i, ASK, 0])
            if any_ext and inst[i]["bar"] == 1 and inst[i]["n_pending"] > 0:
                g["now"] = t if t > now else now
                match_bar(s, i, t)  # bar mode: orders waiting for this bar fill at it
                wake = g["next_wakeup"]
            if gap > 0 and t - last_q > gap:  # a silent stretch: out of the run's span
                gaps += t - last_q
                log_guard(s, last_q, G_MARKET_GAP, -1, (t - last_q) * 1e-9, gap * 1e-9)
            last_q = t
            now = t
            if pend or (k + 1 < n and ev[k + 1]["ts_recv"] == t) or (k + 1 == n and flush == 0):
                # more events at t may follow: decide when they are all in
                if inst[i]["in_group"] == 0:
                    s.dirty[g["n_dirty"]] = i
                    g["n_dirty"] += 1
                    inst[i]["in_group"] = g["n_dirty"]  # its place in the order, from 1
                pend = True
                pend_t = t
                g["pend_t"] = t
            else:
                acted = False
                for j in range(ptr[i], ptr[i + 1]):
                    r = idx[j]
                    action = on_market(inst, route, book_px, skips, fx, glob, r, t)
                    if action != A_NONE:
                        g["now"] = now
                        if action >= A_EXIT:
                            send_exit(s, r, action - A_EXIT, t)
                        else:
                            try_entry(s, r, 1 if action == A_ENTRY_AB else -1, t)
                        wake = g["next_wakeup"]
                        acted = True
                if acted and g["n_outbox_new"] > 0:  # (only an action sends orders)
                    g["n_outbox_new"] = 0
                    g["now"], g["n_events"], g["t_last"], g["gaps_ns"] = (now, counted + k + 1,
                                                                         last_q, gaps)
                    return S_OUTBOX, k + 1
        else:
            if e["kind"] == EV_FX:
                apply_fx(fx, inst, e["inst"], e["bid_px"], e["ts_exch"])
            elif e["kind"] == EV_FUNDING:
                g["now"] = now
                apply_funding(s, e["inst"], e["bid_px"], e["ask_px"])
            elif e["kind"] == EV_ORDER:
                if not has_room(s, room):
                    g["now"], g["n_events"], g["t_last"], g["gaps_ns"] = (now, counted + k,
                                                                         last_q, gaps)
                    return S_FULL, k
                g["now"] = t if t > now else now
                slot = apply_report(s, e["depth_row"], e["bid_qty"], e["bid_px"], e["ask_qty"],
                                    int(e["ask_px"]), e["inst"], g["now"])
                if slot >= 0:  # a final report is the acknowledgement: the strategy reacts now
                    process_ack(s, slot, g["now"])
                now = g["now"]
                wake = g["next_wakeup"]
            elif e["kind"] == EV_CONTROL:
                if not has_room(s, room):
                    g["now"], g["n_events"], g["t_last"], g["gaps_ns"] = (now, counted + k,
                                                                         last_q, gaps)
                    return S_FULL, k
                g["now"] = t if t > now else now
                if e["inst"] == CTL_KILL:
                    kill(s, g["now"])
                else:
                    control(s, e["inst"], int(e["bid_px"]), g["now"])
                wake = g["next_wakeup"]
            if t > now:
                now = t
            if g["n_outbox_new"] > 0:  # an acknowledgement's or a kill's orders
                g["n_outbox_new"] = 0
                g["now"], g["n_events"], g["t_last"], g["gaps_ns"] = (now, counted + k + 1,
                                                                     last_q, gaps)
                return S_OUTBOX, k + 1
        k += 1
    g["now"] = now
    g["t_last"] = last_q
    g["gaps_ns"] = gaps
    if pend and flush == 1:
        if not has_room(s, room):
            g["n_events"] = counted + n
            return S_FULL, n
        decide_group(s, pend_t)
    g["n_events"] = counted + n
    if g["n_outbox_new"] > 0:
        g["n_outbox_new"] = 0
        return S_OUTBOX, n
    return S_DONE, n


@njit
def decide_group(s, t) -> None:
    """The decisions of timestamp ``t``, after all of its events: each route of the
    instruments updated at ``t`` once, in the order the instruments first updated."""
    g = s.glob[0]
    for q in range(g["n_dirty"]):
        i = s.dirty[q]
        for j in range(s.inst_route_ptr[i], s.inst_route_ptr[i + 1]):
            r = s.inst_route_idx[j]
            a = s.route[r]["inst_a"]
            other = s.route[r]["inst_b"] if a == i else a
            if 0 < s.inst[other]["in_group"] <= q:  # decided already, from its other leg
                continue
            action = on_market(s.inst, s.route, s.book_px, s.skips, s.fx, s.glob, r, t)
            if action >= A_EXIT:
                send_exit(s, r, action - A_EXIT, t)
            elif action != A_NONE:
                try_entry(s, r, 1 if action == A_ENTRY_AB else -1, t)
    for q in range(g["n_dirty"]):
        s.inst[s.dirty[q]]["in_group"] = 0
    g["n_dirty"] = 0
    g["pend_t"] = -1


@njit
def _timers(inst, route, gap):
    """Earliest timer of any route: (route, time, is a data-gap exit). Time stops of OPEN
    routes, and with ``gap`` > 0 the moment an OPEN route's quieter leg has been silent for
    longer than ``gap`` (once per silence: ``gap_at``)."""
    best = -1
    best_t = NEVER
    is_gap = False
    for r in range(route.shape[0]):
        rt = route[r]
        if rt["state"] != OPEN:
            continue
        if rt["hold_armed"] == 1 and rt["hold_deadline"] < best_t:
            best, best_t, is_gap = r, rt["hold_deadline"], False
        if gap > 0:
            ta = inst[rt["inst_a"]]["ts_recv"]
            tb = inst[rt["inst_b"]]["ts_recv"]
            dl = (ta if ta < tb else tb) + gap
            if dl > rt["gap_at"] and dl < best_t:
                best, best_t, is_gap = r, dl, True
    return best, best_t, is_gap


@njit
def _samples_only(glob, inst, route, book_px, equity, limit) -> bool:
    """Fast path for the common wake-up: only equity samples are due (no order in flight, no
    timer before them). Same result as ``_wakeups``; False hands over to it."""
    g = glob[0]
    if g["n_active"] > 0 or g["running_guards"] == 1:
        return False
    _, t_h, _ = _timers(inst, route, g["gap_ns"])
    step = g["sample_ns"]
    while g["next_sample"] < limit:
        t_s = g["next_sample"]
        if t_h <= t_s or g["n_equity"] >= equity.shape[0]:
            return False
        write_equity_arrays(glob, inst, route, book_px, equity, t_s)
        cap = limit - 1 if limit - 1 < t_h else t_h
        tgt = (cap // step) * step
        g["next_sample"] = tgt if tgt > t_s + step else t_s + step
    g["next_wakeup"] = g["next_sample"] if g["next_sample"] < t_h else t_h
    return g["next_wakeup"] >= limit


@njit
def _wakeups(s, limit) -> bool:
    """Run every wake-up due strictly before ``limit``. False = out of buffer room.

    ``next_wakeup`` is a lower bound (it is only ever lowered between wake-ups: a disarmed time
    stop or an order matched early leaves it stale-early), so it is recomputed exactly before
    anything runs: an item due at ``limit`` or later must wait for the event to be applied."""
    g = s.glob[0]
    g["next_wakeup"] = next_wakeup(s)
    while g["next_wakeup"] < limit:
        if not has_room(s, ROOM * s.orders.shape[0]):
            return False
        _one_wakeup(s, limit, True)
        g["n_slow_wakeups"] += 1
        g["next_wakeup"] = next_wakeup(s)
        if g["n_outbox_new"] > 0:
            break  # an EXTERNAL venue's order: the caller hands it out before anything later
    return True


@njit
def _one_wakeup(s, limit, timers) -> None:
    """Handle the earliest due item. Ties: matches, then acks, then timers (time stops, data
    gaps), then samples."""
    g = s.glob[0]
    slot, t_o = _next_order_item(s)
    if timers:
        r, t_h, is_gap = _timers(s.inst, s.route, g["gap_ns"])
    else:
        r, t_h, is_gap = -1, NEVER, False
    t_s = g["next_sample"] if timers else NEVER
    if slot >= 0 and t_o <= t_h and t_o <= t_s:
        now = t_o if t_o > g["now"] else g["now"]
        g["now"] = now
        if s.orders[slot]["matched"] == 0:
            match_order(s, slot)
        else:
            process_ack(s, slot, now)
    elif r >= 0 and t_h <= t_s:
        now = t_h if t_h > g["now"] else g["now"]
        g["now"] = now
        if is_gap:
            s.route[r]["gap_at"] = t_h
            send_exit(s, r, X_DATA_GAP, now)
        else:
            _time_stop(s, r, now)
    else:
        write_equity(s, t_s)
        if g["running_guards"] == 1:
            running_check(s, t_s)
        g["next_sample"] = _next_sample(s, t_s, limit, t_o, t_h)


@njit
def _next_sample(s, t_s, limit, t_o, t_h) -> int:
    """Nothing marks equity between now and the next event or order/timer item, so the samples
    in between would all be equal: skip to the last grid point before the earliest of them."""
    step = s.glob[0]["sample_ns"]
    cap = limit - 1
    if t_o < cap:
        cap = t_o
    if t_h < cap:
        cap = t_h
    if s.glob[0]["running_guards"] == 1:  # a sample at every UTC midnight: the daily reset
        midnight = (t_s // DAY + 1) * DAY
        if midnight < cap:
            cap = midnight
    nxt = t_s + step
    tgt = (cap // step) * step
    return tgt if tgt > nxt else nxt


@njit
def _next_order_item(s):
    best = -1
    best_t = NEVER
    best_m = 2
    if s.glob[0]["n_active"] == 0:
        return best, best_t
    for slot in range(s.orders.shape[0]):
        o = s.orders[slot]
        if o["active"] == 0:
            continue
        m = o["matched"]
        if m == 0 and s.inst[o["inst"]]["ext"] == 1:
            continue  # an EXTERNAL venue's order: only its reports move it (EV_ORDER)
        t = o["t_ack"] if m == 1 else o["t_deadline"]
        if t < best_t or (t == best_t and (m < best_m or (m == best_m and o["oid"] < s.orders[best]["oid"]))):
            best, best_t, best_m = slot, t, m
    return best, best_t


@njit
def next_wakeup(s) -> int:
    """The single deadline covering pending matches, acks, timers and samples."""
    _, t_o = _next_order_item(s)
    _, t_h, _ = _timers(s.inst, s.route, s.glob[0]["gap_ns"])
    t = s.glob[0]["next_sample"]
    if t_o < t:
        t = t_o
    if t_h < t:
        t = t_h
    return t


@njit
def _time_stop(s, r, now) -> None:
    """The time stop fired on the kernel's clock: evaluate exits with the current books."""
    s.route[r]["hold_armed"] = 0
    s.route[r]["hold_fired"] = 1
    check_exit(s, r, now)


@njit
def start(s, t0) -> None:
    """Initialise clocks before the first event (first sample on the grid at or after t0)."""
    g = s.glob[0]
    if g["started"] == 1:
        return
    g["started"] = 1
    g["now"] = t0
    g["t_first"] = t0
    g["t_last"] = t0
    step = g["sample_ns"]
    g["next_sample"] = ((t0 + step - 1) // step) * step
    g["next_wakeup"] = g["next_sample"]


@njit
def finish(s) -> int:
    """End of data: settle in-flight orders (matches, acks, unwinds) on the last books, write a
    final equity sample and the open round trips marked at the end. Time stops and samples past
    the last event do not fire; bar-mode orders still waiting for a bar are given up (no bar
    will come). The caller flushed the last timestamp's decisions (``run_chunk`` with
    ``flush``) and guarantees buffer room."""
    g = s.glob[0]
    for slot in range(s.orders.shape[0]):
        o = s.orders[slot]
        if o["active"] == 1 and o["matched"] == 0 and s.inst[o["inst"]]["bar"] == 1:
            o["t_deadline"] = o["t_arrive"] if o["t_arrive"] > g["now"] else g["now"]
    for _ in range(10_000):
        slot, _t = _next_order_item(s)
        if slot < 0:
            break
        _one_wakeup(s, NEVER, False)
    wallet_settle(s, g["now"])  # transfers that arrived by the end (later ones stay in flight)
    write_equity(s, g["now"])
    for r in range(s.route.shape[0]):
        if s.route[r]["state"] != FLAT:
            write_trade(s, r, g["now"], X_OPEN_AT_END, 1)
    return S_DONE
