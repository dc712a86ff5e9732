"""The one place that sets the compile policy for every kernel in ``arbkit.core``.

- ``cache=True``: Optuna workers and CLI runs reuse compiled code (warm start ~0.2 s).
- ``error_model="numpy"``: no exception checks on division.
- fastmath off on purpose: its no-NaN assumption deletes NaN checks and its reordering breaks
  bit-identity with the pure-Python reference model and with ``NUMBA_DISABLE_JIT=1``.
- ``_nrt=False``: the kernel never allocates, so numba's reference-counted runtime is not
  needed. With it on, every call that passes arrays emits atomic incref/decref pairs per array
  (numba's pruning pass gives up on branchy callees): measured 20 M events/s with NRT against
  70 M without, on the same loop (benchmarks/bench_core.py, docs/benchmarks.md). The cost of
  this choice: no array creation, slicing into new arrays or list building inside ``core``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numba


def njit(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Compile ``fn`` with the project's policy (no exceptions, no fastmath, no NRT, cached)."""
    return numba.njit(cache=True, error_model="numpy", fastmath=False, nogil=True, _nrt=False)(fn)


def njit_inline(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Like :func:`njit`, and inlined at numba-IR level into every caller.

    For the few helpers on the per-event path (book update, route test, exit test). Numba
    compiles each function into its own LLVM module and calls it through its full
    array-struct ABI (data pointer, shape, strides... per array argument); IR inlining lets
    LLVM keep the arrays' pointers in registers across the loop. Measured on the same 10M
    events: 27 -> 50 M events/s (benchmarks/bench_breakdown.py, docs/benchmarks.md). Cost:
    each caller compiles its own copy (longer cold start), so use it only on the hot path.
    """
    return numba.njit(cache=True, error_model="numpy", fastmath=False, nogil=True, _nrt=False,
                      inline="always")(fn)
