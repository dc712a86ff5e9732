"""Running guards: daily loss, drawdown and the kill switch, checked on the kernel's clock.

``running_check`` runs after every equity sample (the samples are wake-ups, so it runs even
when the market is quiet): a new UTC day resets the day's starting equity (and lifts a
daily-loss halt); a daily loss beyond the limit stops entries until the next day; a drawdown
from the running peak beyond the limit halts for good and flattens every position. The kill
switch (an ``EV_CONTROL`` event) halts and flattens at once.
"""

from __future__ import annotations

from arbkit.core.jit import njit
from arbkit.core.risk import log_guard
from arbkit.core.strategy import _tradable, send_exit
from arbkit.core.types import (
    CTL_RESUME,
    CTL_STOP,
    CTL_SYMBOL_OFF,
    CTL_SYMBOL_ON,
    FLAT,
    G_CONTROL,
    G_DAILY_LOSS,
    G_DAY_RESET,
    G_DRAWDOWN,
    G_KILL,
    HALT_DAILY,
    HALT_DRAWDOWN,
    HALT_KILL,
    HALT_NONE,
    HALT_STOP,
    OPEN,
    X_KILL,
    X_RISK,
)

DAY = 86_400_000_000_000


@njit
def running_check(s, t) -> None:
    """After the equity sample at ``t`` (see module doc)."""
    g = s.glob[0]
    rk = s.risk[0]
    eq = g["last_eq"]  # the sample just written (the buffer may have been drained)
    day = t // DAY
    if day != g["day"]:
        if g["halt"] == HALT_DAILY:
            g["halt"] = HALT_NONE
            log_guard(s, t, G_DAY_RESET, -1, eq, g["day_start_eq"])
        g["day"] = day
        g["day_start_eq"] = eq
    if eq > g["peak_eq"]:
        g["peak_eq"] = eq
    loss = g["day_start_eq"] - eq
    if g["halt"] == HALT_NONE and loss >= rk["daily_loss"]:
        g["halt"] = HALT_DAILY
        log_guard(s, t, G_DAILY_LOSS, -1, loss, rk["daily_loss"])
    dd = g["peak_eq"] - eq
    if g["halt"] != HALT_DRAWDOWN and g["halt"] != HALT_KILL and dd >= rk["max_dd"]:
        g["halt"] = HALT_DRAWDOWN
        log_guard(s, t, G_DRAWDOWN, -1, dd, rk["max_dd"])
        flatten(s, t, X_RISK)


@njit
def control(s, code, arg, t) -> None:
    """An operator control (CTL_*; ``arg`` a base asset's id for the symbol controls), logged
    as a guard row. The kill switch is ``kill``."""
    g = s.glob[0]
    if code == CTL_STOP and g["halt"] != HALT_KILL and g["halt"] != HALT_DRAWDOWN:
        g["halt"] = HALT_STOP
    elif code == CTL_RESUME and g["halt"] == HALT_STOP:
        g["halt"] = HALT_NONE
    elif code == CTL_SYMBOL_OFF or code == CTL_SYMBOL_ON:
        for r in range(s.route.shape[0]):
            if s.route[r]["base_id"] == arg:
                s.route[r]["off"] = 1 if code == CTL_SYMBOL_OFF else 0
    log_guard(s, t, G_CONTROL, -1, float(code), float(arg))


@njit
def kill(s, t) -> None:
    """The kill switch: halt for good and flatten everything now."""
    g = s.glob[0]
    if g["halt"] == HALT_KILL:
        return
    g["halt"] = HALT_KILL
    log_guard(s, t, G_KILL, -1, 0.0, 0.0)
    flatten(s, t, X_KILL)


@njit
def flatten(s, t, reason) -> None:
    """Every route with a position exits with ``reason``: now when it is open and its books
    are tradable, else as soon as it can (``force_exit`` is checked first by the exit rules)."""
    for r in range(s.route.shape[0]):
        rt = s.route[r]
        if rt["state"] == FLAT:
            continue
        rt["force_exit"] = reason
        if rt["state"] == OPEN and _tradable(s.inst, rt, t):
            send_exit(s, r, reason, t)
