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

