"""Many parameter sets over the same events in one numba call: the grid fast path.

``run_many`` runs ``run_chunk`` for every kernel state of a typed list in a ``prange`` loop:
the states differ (each holds one trial's config), the events and depth arrays are shared and
only read. Each state is exactly what ``Runner`` builds, so a state run here is bit-identical to
the same config run alone (``tests/acceptance/test_tune.py``). A state whose output buffers
fill up stops with ``S_FULL`` like a single run; the caller grows it and calls again for the
states not done (``engine.sweep``).

This one function is compiled with numba's parallel backend (which needs numba's runtime, so
it is not under ``jit.njit``'s ``_nrt=False`` policy); the loop it calls is the usual one.
"""

from __future__ import annotations

import numba
import numpy as np

from arbkit.core.loop import run_chunk
from arbkit.core.types import S_DONE

DONE = 1
FULL = 2


@numba.njit(parallel=True, cache=True, nogil=True, error_model="numpy")
def run_many(states, ev, depth, starts, status) -> None:
    """Advance every state with ``status == 0`` over ``ev[starts[j]:]``; set ``status[j]`` to
    DONE or FULL and ``starts[j]`` to the index reached."""
    n = len(states)
    for p in numba.prange(n):
        j = np.int64(p)
        if status[j] == 0:
            st, k = run_chunk(states[j], ev, depth, starts[j], 0)
            status[j] = DONE if st == S_DONE else FULL
            starts[j] = k
