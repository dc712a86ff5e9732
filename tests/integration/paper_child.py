"""A child process of the paper crash tests, forked from a clean fork server.

Importing this module imports arbkit's runtime and loads the compiled kernel once (no thread
is started: polars and DuckDB start theirs on first use), so the fork server holding it forks
children that start in milliseconds instead of seconds (tests/integration/test_paper.py).
"""

from __future__ import annotations

import os
import sys

import numpy as np

import arbkit.cli.app  # noqa: F401 - preloaded for the children
import arbkit.runtime.node  # noqa: F401
from arbkit.core import types as T
from arbkit.core.loop import run_chunk


def _warm() -> None:
    """Load the kernel from numba's cache now (in the fork server), not in every child."""
    from arbkit.config import load_config_text
    from arbkit.data.events import EventArrays
    from arbkit.engine.state import build_state

    cfg = load_config_text("""
[[instruments]]
venue = "A"
symbol = "X"
kind = "linear_perp"
[[instruments]]
venue = "B"
symbol = "X"
kind = "linear_perp"
[route]
a = "A:X"
b = "B:X"
[strategy]
entry_bps = 5.0
""")
    keys = [i.key for i in cfg.instruments]
    arrays = EventArrays(np.zeros(0, T.EVENT_DTYPE), np.zeros((0, 4, 0)), keys, 1, {}, {}, 0)
    run_chunk(build_state(cfg, keys, 1, {}), arrays.events, arrays.depth, 0, 1)


_warm()


def main(args: list[str], env: dict, out: str, err: str) -> None:
    """``arbkit ARGS`` with ``env`` set, stdout/stderr to files; exits with its code."""
    with open(out, "wb") as fo, open(err, "wb") as fe:
        os.dup2(fo.fileno(), 1)
        os.dup2(fe.fileno(), 2)
        os.environ.update(env)
        from arbkit.cli.app import run

        code = run(args)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
