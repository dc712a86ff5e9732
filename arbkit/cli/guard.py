"""What the CLI may write, and how: output folders and files are checked before any work
starts, and written whole or not at all.

- An output folder (``backtest --out``) is replaced only when arbkit wrote it (it holds the
  :data:`MARKER` file) and ``--force`` says so; a new or empty folder is simply written. Never
  the working folder, a parent of it, or a folder holding one of the command's inputs.
- A folder is written into a hidden temporary folder beside it, marked, then renamed into
  place; a failure or a Ctrl-C removes the temporary folder (:func:`write_dir`).
- An output file (``report --out``) is written to a temporary name and renamed; it may only
  replace a file of the same kind that arbkit wrote.
- ``interrupted: ...``: what a Ctrl-C leaves behind, set by the command that knows
  (:func:`set_interrupt_note`), printed by :func:`arbkit.cli.app.run`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

from arbkit.atomic import PUBLISHED, deferred_interrupt, discard, make_parents, remove_created
from arbkit.errors import ConfigError

MARKER = ".arbkit-results"
MARKER_TEXT = ("Written by `arbkit backtest --out`. arbkit replaces this folder only when asked "
               "with --force; it never replaces a folder without this file.\n")
TMP_PREFIX = ".arbkit-"

_note: list[str | Callable[[], str] | None] = [None]


def set_interrupt_note(text: str | Callable[[], str] | None) -> None:
    """What a Ctrl-C from now on leaves behind (None: the default), or a function that says
    it when asked."""
    _note[0] = text


def interrupt_note() -> str:
    note = _note[0]
    if callable(note):
        note = note()
    return note or "stopped before finishing; nothing was left half-written"


def publish_note(unchanged: str, published: str) -> Callable[[], str]:
    """The Ctrl-C report of a command that publishes once: ``unchanged`` until it has (a
    Ctrl-C during the final renames is held back until they are done), then ``published``."""
    before = PUBLISHED[0]
    return lambda: unchanged if PUBLISHED[0] == before else published


def catalog_note(root: Path) -> Callable[[], str]:
    """The Ctrl-C report of a command writing into the catalog at ``root``."""
    return publish_note(f"the catalog {root} is unchanged (nothing of this command was "
                        "published)", f"after the catalog {root} was updated whole; nothing "
                        "was left half-written")


# ------------------------------------------------------------------------- checks


def _nearest_existing(path: Path) -> Path:
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def check_parent(path: Path, flag: str) -> None:
    """``path`` can be created: its nearest existing ancestor is a writable folder."""
    above = _nearest_existing(path.absolute().parent)
    if not above.is_dir():
        raise ConfigError(f"{flag} {path}: {above} is a file, so nothing can be created under "
                          "it; pass a path in a folder")
    if not os.access(above, os.W_OK | os.X_OK):
        raise ConfigError(f"{flag} {path}: {above} is read-only (permission denied); pass a "
                          "folder you can write to")


def check_folder_arg(path: Path, flag: str) -> Path:
    """A folder option that may not exist yet (``--results``): not a file, creatable."""
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{flag} {path}: is a file, not a folder; pass a folder (it is "
                          "created when missing)")
    if not path.exists():
        check_parent(path, flag)
    return path


def check_out_dir(out: Path, *, flag: str = "--out", force: bool = False,
                  inputs: Sequence[tuple[str, Path | None]] = ()) -> Path:
    """Refuse an output folder whose replacement could destroy anything (see module doc).

    ``inputs``: (option name, path) of each input the command reads.
    """
    out = Path(out)
    full = out.resolve()
    cwd = Path.cwd().resolve()
    if full == cwd or full in cwd.parents:
        where = "the working folder" if full == cwd else f"a parent of the working folder {cwd}"
        raise ConfigError(f"{flag} {out}: it is {where}, which results would replace; pass a "
                          f"new folder, e.g. {flag} results/run1")
    for name, p in inputs:
        if p is None:
            continue
        pf = Path(p).resolve()
        if full == pf or full in pf.parents:
            what = "is" if full == pf else "holds"
            raise ConfigError(f"{flag} {out}: it {what} the input {name} {p}, which results "
                              f"would replace; pass a new folder, e.g. {flag} "
                              f"{out.name or 'results'}-results")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{flag} {out}: is a file, not a folder; pass a new folder for the "
                          "results")
    check_parent(out, flag)
    if out.is_dir():
        if (out / MARKER).is_file():
            if not force:
                raise ConfigError(f"{flag} {out}: holds the results of an earlier arbkit run; "
                                  "pass --force to replace them, or a new folder")
        else:
            held = sorted(p.name for p in out.iterdir())
            if held:
                shown = ", ".join(held[:4]) + (f" (+{len(held) - 4} more)" if len(held) > 4
                                                else "")
                raise ConfigError(f"{flag} {out}: an existing folder arbkit did not write "
                                  f"(it holds {shown}); arbkit replaces only its own result "
                                  "folders, even with --force: pass a new or empty folder")
    return out


def check_out_file(path: Path, flag: str, *, suffix: str, signature: str) -> Path:
    """An output file: not a folder, creatable, and replacing only a file arbkit wrote (its
    first 64 kB hold ``signature``)."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{flag} {path}: is a folder; pass a file name, e.g. "
                          f"{flag} {path / ('report' + suffix)}")
    check_parent(path, flag)
    if path.exists():
        with path.open("rb") as fh:
            head = fh.read(1 << 16)
        if signature.encode() not in head:
            raise ConfigError(f"{flag} {path}: an existing file arbkit did not write; arbkit "
                              f"replaces only its own {suffix} files: pass a new file name")
    return path


# ------------------------------------------------------------------------- writing


def write_dir(out: Path, fill: Callable[[Path], None]) -> None:
    """Write a result folder whole: ``fill`` writes into a hidden temporary folder beside
    ``out``, which is marked and renamed to ``out`` (an existing ``out``, already checked by
    :func:`check_out_dir`, is swapped out in the same interrupt-free step and removed)."""
    out = Path(out)
    created: list[Path] = []
    tmp: Path | None = None
    try:
        with deferred_interrupt():  # what is made is known, to be undone
            created = make_parents(out.absolute().parent)
            tmp = Path(tempfile.mkdtemp(prefix=TMP_PREFIX, dir=out.absolute().parent))
        fill(tmp)
        (tmp / MARKER).write_text(MARKER_TEXT)
        with deferred_interrupt():
            old = None
            if out.exists():
                old = out.absolute().parent / f"{TMP_PREFIX}old-{uuid.uuid4().hex[:8]}"
                os.rename(out, old)
            try:
                os.rename(tmp, out)
            except OSError:
                if old is not None:
                    os.rename(old, out)
                raise
            tmp = None
            PUBLISHED[0] += 1
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        if tmp is not None:
            discard([tmp])
        remove_created(created)
        raise


def write_file(path: Path, write: Callable[[Path], None]) -> Path:
    """Write one file whole: ``write`` fills a temporary file beside it, renamed into place."""
    path = Path(path)
    tmp = path.with_name(f"{TMP_PREFIX}{uuid.uuid4().hex[:8]}-{path.name}")
    created: list[Path] = []
    try:
        with deferred_interrupt():
            created = make_parents(path.absolute().parent)
        write(tmp)
        with deferred_interrupt():
            os.replace(tmp, path)
            PUBLISHED[0] += 1
    except BaseException:
        discard([tmp])
        remove_created(created)
        raise
    return path
