"""Run the CLI in-process as a user would (``arbkit.cli.app.run``: the same code path as the
console script, exit codes and one-line errors included) and photograph folders before and
after, to prove a command destroyed and half-wrote nothing."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
from dataclasses import dataclass
from pathlib import Path

from arbkit.cli.app import run


@dataclass
class Ran:
    code: int
    out: str
    err: str

    def lines(self) -> list[str]:
        return [ln for ln in self.err.splitlines() if ln.strip()]


def cli(*args: str | Path) -> Ran:
    """``arbkit ARGS...`` in this process; stdout and stderr captured."""
    out, err = io.StringIO(), io.StringIO()
    env = {"COLUMNS": "200", "ARBKIT_DEBUG": ""}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = run([str(a) for a in args])
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return Ran(code, out.getvalue(), err.getvalue())


def snapshot(*roots: Path) -> dict[str, str]:
    """Every file and folder under ``roots`` (hidden ones too): path -> content hash ("dir"
    for folders, the link target for symlinks)."""
    snap: dict[str, str] = {}
    for root in roots:
        root = Path(root)
        if not root.exists():
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            d = Path(dirpath)
            for name in dirnames:
                snap[str(d / name)] = "dir"
            for name in filenames:
                f = d / name
                if f.is_symlink():
                    snap[str(f)] = "link:" + os.readlink(f)
                else:
                    snap[str(f)] = hashlib.sha256(f.read_bytes()).hexdigest()
    return snap


def assert_one_error(r: Ran, *needles: str) -> str:
    """Exit 1, exactly one ``error:`` line on stderr holding every needle, no traceback."""
    assert r.code == 1, (r.code, r.out[-2000:], r.err[-2000:])
    lines = r.lines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.err
    assert "Traceback" not in r.err + r.out
    for n in needles:
        assert n.lower() in lines[0].lower(), (n, lines[0])
    return lines[0]
