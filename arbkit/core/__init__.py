"""The numba kernel. Imports only numpy, numba and itself.

Numba's on-disk cache checks only the source file of each function, not the files of the
functions it calls, nor the compile flags in ``jit.py``: after an edit to ``strategy.py`` a
cached ``run_chunk`` would still run the old strategy. So the cache directory is keyed on a
hash of every ``core`` source file (unless the user sets ``NUMBA_CACHE_DIR`` themselves).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numba


def _core_cache_dir() -> str:
    here = Path(__file__).resolve().parent
    h = hashlib.sha256(numba.__version__.encode())
    for src in sorted(here.glob("*.py")):
        h.update(src.name.encode())
        h.update(src.read_bytes())
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "arbkit"
    return str(base / f"numba-{h.hexdigest()[:16]}")


if not os.environ.get("NUMBA_CACHE_DIR"):
    numba.config.CACHE_DIR = _core_cache_dir()
