"""Writes that are whole or absent: stage every file, then publish them together.

Every command that writes user-visible files goes through here, so that a failure, a bad input
or a Ctrl-C never leaves a half-written result:

- :func:`deferred_interrupt` holds a Ctrl-C (SIGINT) back while a short critical section runs
  (the renames that publish staged files, the clean-up of a temporary folder) and delivers it
  right after, so an interrupt lands either before anything is published or after all of it;
- :func:`publish` renames staged temporary files over their targets in one such section and,
  if anything fails before that, removes every staged file;
- :data:`TMP_SUFFIX` is the suffix of a staged file: a file ending in it that is still there
  after the command is gone is an orphan (``arbkit data validate`` and ``ls`` name them).

A SIGKILL or a power cut can still stop a publish half-way (no rename of several files is
atomic); the staging keeps that window to the renames alone.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

TMP_SUFFIX = ".tmp"  # a staged catalog file is <name>.parquet.tmp


@contextlib.contextmanager
def deferred_interrupt() -> Iterator[None]:
    """Run the block with SIGINT held back; a Ctrl-C during it is delivered when it ends.

    Only the main thread can handle signals: elsewhere this is a no-op.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    got: list[int] = []
    try:
        old = signal.signal(signal.SIGINT, lambda sig, _frame: got.append(sig))
    except ValueError:  # not the main interpreter
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)
        if got:
            _deliver(old)


def _deliver(handler: Any) -> None:
    """Hand a held-back SIGINT to the handler that was in place (default: KeyboardInterrupt)."""
    if handler in (signal.SIG_IGN, None):
        return
    if callable(handler) and handler is not signal.default_int_handler:
        handler(signal.SIGINT, None)
        return
    raise KeyboardInterrupt


def staged(path: Path) -> Path:
    """The temporary name ``path`` is written under before it is published."""
    return path.with_name(path.name + TMP_SUFFIX)


PUBLISHED = [0]  # publishes done by this process (what a Ctrl-C report tells apart)


def publish(pairs: Sequence[tuple[Path, Path]]) -> None:
    """Rename each staged file over its target, all in one interrupt-free section."""
    with deferred_interrupt():
        for tmp, target in pairs:
            os.replace(tmp, target)
        PUBLISHED[0] += 1


def discard(paths: Sequence[Path]) -> None:
    """Remove staged files or folders (interrupt-free; missing ones are fine)."""
    with deferred_interrupt():
        for p in paths:
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()


def make_parents(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; returns the ones created, outermost first
    (for :func:`remove_created` to undo)."""
    missing = []
    d = Path(folder)
    while not d.exists() and d != d.parent:
        missing.append(d)
        d = d.parent
    Path(folder).mkdir(parents=True, exist_ok=True)
    return list(reversed(missing))


def remove_created(folders: Sequence[Path]) -> None:
    """Remove folders :func:`make_parents` created, innermost first, where still empty."""
    with deferred_interrupt():
        for d in reversed(folders):
            with contextlib.suppress(OSError):
                d.rmdir()
