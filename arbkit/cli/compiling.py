"""Say so when a command is about to compile the numba kernel (the first run of an install).

Compiling ``core`` takes about 2 minutes of CPU (4 wall minutes on a busy 2-core machine),
once: numba then caches it (``~/.cache/arbkit/numba-<hash>``, see ``arbkit/core/__init__.py``)
and later runs load it in a fraction of a second. Without a word, a first ``arbkit backtest`` looks hung.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

ESTIMATE = "about 2-4 min, once"  # 127 s of CPU; 240 s wall on 2 busy cores


def _kernel() -> Any:
    from arbkit.core.loop import run_chunk

    return run_chunk


def kernel_ready() -> bool:
    """True when the kernel runs without compiling: already compiled in this process, or in
    numba's on-disk cache for these sources (an index entry whose source stamp matches).
    When that cannot be told (numba's cache internals changed), True: better silent than a
    false alarm."""
    fn = _kernel()
    if fn.overloads:
        return True
    try:
        return bool(fn._cache._cache_file._load_index())
    except Exception:  # noqa: BLE001 - private numba API: say nothing rather than fail
        return True


def compile_line() -> str:
    import numba

    _kernel()  # (importing arbkit.core sets numba's cache folder)
    where = numba.config.CACHE_DIR or "arbkit/core/__pycache__"
    return (f"compiling arbkit's numba kernel: the first run of this install ({ESTIMATE}; "
            f"later runs load it from {where} in under a second)")


def note_once(console: Any) -> bool:
    """Print the compile line if the kernel will be compiled; True when it was printed."""
    if kernel_ready():
        return False
    console.print(compile_line(), highlight=False, markup=False)
    return True


@contextmanager
def compile_status(console: Any) -> Iterator[None]:
    """Around work whose first kernel call may compile: from that call (inputs read and
    checked by then), a spinner with the elapsed time on a terminal (a line elsewhere), then
    ``kernel compiled in N s`` once it is done. Nothing when no kernel ran."""
    if kernel_ready():
        yield
        return
    fn, t0, done, said = _kernel(), time.perf_counter(), threading.Event(), threading.Lock()
    status = console.status(compile_line(), spinner="dots") if console.is_terminal else None

    def compiled() -> None:  # once, from the watcher or at the end
        if fn.overloads and said.acquire(blocking=False):
            if status is not None:
                status.stop()
            console.print(f"kernel compiled in {time.perf_counter() - t0:.0f} s (cached for "
                          "later runs)", highlight=False)

    def watch() -> None:
        while not done.wait(0.5) and not fn.overloads:
            status.update(f"{compile_line()} [{time.perf_counter() - t0:.0f} s]")
        compiled()

    started = []

    def begin() -> None:  # at the first kernel call: inputs were read and checked by then
        nonlocal t0
        t0 = time.perf_counter()
        started.append(True)
        if status is None:
            console.print(compile_line(), highlight=False, markup=False)
        else:
            status.start()
            threading.Thread(target=watch, name="arbkit-compile-note", daemon=True).start()

    from arbkit.engine.session import FIRST_CALL_HOOKS

    FIRST_CALL_HOOKS.append(begin)
    try:
        yield
    finally:
        if begin in FIRST_CALL_HOOKS:  # no kernel ran (the inputs were refused): say nothing
            FIRST_CALL_HOOKS.remove(begin)
        done.set()
        if started:
            compiled()
            if status is not None:
                status.stop()
