"""User entry signals: an ``@njit`` function in place of the built-in entry rule.

The function is called at every decision of a flat route (once per timestamp its legs update), with the four touch prices in
the reference currency, the route's anchor (0 without one), its entry threshold and the time::

    @numba.njit
    def my_signal(bid_a, ask_a, bid_b, ask_b, anchor_bps, thr_bps, t):
        ...
        return d

``d`` = 0: no entry; +1 / -1: enter buying A / buying B if the edge at the VWAP of the size still
clears the threshold (as the built-in rule); +2 / -2: enter in that direction whatever the
threshold. Every guard, the sizing and the exit rules stay the kernel's own.

**Compile cost.** The built-in kernel is compiled once and cached on disk. A plug-in gets its
own copy of the event loop (the signal is inlined into it), compiled once per process and per
function: numba cannot cache a kernel that calls a function it only learns at run time. That
costs a cold compile of the loop (measured in docs/benchmarks.md), then runs at full speed.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

import numba

_KERNELS: dict[Any, Callable[..., Any]] = {}


def kernel_with_signal(signal: Any) -> Callable[..., Any]:
    """``run_chunk`` with ``signal`` as the entry rule (memoized per function)."""
    if signal in _KERNELS:
        return _KERNELS[signal]
    if not hasattr(signal, "py_func"):
        from arbkit.errors import ConfigError

        raise ConfigError(f"signal={signal!r}: pass a numba @njit function (see "
                          "arbkit/core/plugin.py for its signature)")
    from arbkit.core import loop, strategy

    g_s = dict(strategy.__dict__, entry_signal=signal, PLUGIN=True)
    on_market = numba.njit(error_model="numpy", fastmath=False, nogil=True, _nrt=False,
                           inline="always")(_copy(strategy.on_market.py_func, g_s))
    g_d = dict(loop.__dict__, on_market=on_market)
    decide = numba.njit(error_model="numpy", fastmath=False, nogil=True, _nrt=False)(
        _copy(loop.decide_group.py_func, g_d))
    g_l = dict(loop.__dict__, on_market=on_market, decide_group=decide)
    run = numba.njit(error_model="numpy", fastmath=False, nogil=True, _nrt=False)(
        _copy(loop.run_chunk.py_func, g_l))
    _KERNELS[signal] = run
    return run


def _copy(fn: types.FunctionType, globals_: dict[str, Any]) -> types.FunctionType:
    return types.FunctionType(fn.__code__, globals_, fn.__name__, fn.__defaults__,
                              fn.__closure__)
