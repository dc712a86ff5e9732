"""The one place that sets the compile policy for every kernel in ``arbkit.core``.

``cache=True`` so Optuna workers and CLI runs reuse compiled code; ``error_model="numpy"``
(no exception checks on division); fastmath is off on purpose: its no-NaN assumption deletes
NaN checks and its reordering breaks bit-identity with the pure-Python reference model and with
``NUMBA_DISABLE_JIT=1``.
"""

from __future__ import annotations

from typing import Any, Callable

import numba


def njit(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Compile ``fn`` with the project's policy (no exceptions, no fastmath, cached)."""
    return numba.njit(cache=True, error_model="numpy", fastmath=False, nogil=True)(fn)
