"""Named crash points of a live session, for the crash suite (``arbkit.runtime.crashsuite``).

``ARBKIT_KILL_AT="step:n"`` makes the process kill itself with SIGKILL (no cleanup, no
flush: what a power cut or the OOM killer does) the ``n``-th time it passes ``step``
(``*`` = any step). ``ARBKIT_KILL_LOG=FILE`` appends ``<step> <CLOCK_MONOTONIC ns>`` for the
steps the suite times (``node.ready``) and the one it dies at. Unset (always, outside the
suite), :func:`hit` is one dictionary lookup.

The steps (where a crash hurts): the execution client's ``exec.durable`` (intent journaled,
order not sent yet), ``exec.answered`` (the venue answered, nothing journaled), ``exec.unknown``
(a send went unclear), ``exec.lookup`` (an unclear send being resolved by client id),
``exec.reported`` (a report journaled, not delivered to the node), ``exec.final``; the node's
``node.flushed`` (events durable, the orders they caused not handed over), ``node.submitted``,
``node.report`` (a report taken into the kernel, not journaled by the node),
``node.checkpoint`` (a snapshot being written) and ``node.ready``.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter

KILL_ENV, LOG_ENV = "ARBKIT_KILL_AT", "ARBKIT_KILL_LOG"
TIMED = ("node.run", "node.opened", "exec.markets", "node.ready", "node.quoted")


def _target() -> tuple[str, int] | None:
    spec = os.environ.get(KILL_ENV)
    if not spec:
        return None
    step, _, n = spec.rpartition(":")
    return step, int(n)


_TARGET = _target()
_LOG = os.environ.get(LOG_ENV)
counts: Counter[str] = Counter()


def hit(step: str) -> None:
    """Pass crash point ``step`` (module doc)."""
    if _TARGET is None and _LOG is None:
        return
    counts[step] += 1
    counts["*"] += 1
    if _LOG and step in TIMED:
        _log(step)
    if _TARGET is not None and counts[_TARGET[0]] == _TARGET[1]:
        if _LOG:
            _log(f"kill:{step}")
        os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(10)  # SIGKILL is asynchronous: never run past the crash point


def _log(text: str) -> None:
    fd = os.open(_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{text} {time.monotonic_ns()}\n".encode())
    finally:
        os.close(fd)
